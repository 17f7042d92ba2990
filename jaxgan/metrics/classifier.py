"""The feature network of the quality metrics: a small CNN classifier per dataset family.

FID, KID and precision/recall compare distributions of *features*; on ImageNet-like
data these are Inception-v3's pool3 activations (Heusel et al., 2017). Inception knows
nothing of 28x28 grey clothes, so, as TF-GAN does for MNIST with its small
classifier, jaxgan uses a small CNN trained on the dataset itself
(``python -m jaxgan.metrics.train_classifier``). Its **penultimate layer** (the
``hidden``-wide ReLU layer before the logits) gives the features; its softmax gives
``p(y|x)`` for the classifier score.

The network reads grayscale images in [-1, 1] at ``INPUT_SIZE`` x ``INPUT_SIZE``
(32, the size of jaxgan's DCGAN samples); other sizes (28x28 MNIST) are resized
bilinearly inside the network, so real and generated images go through the same
path whatever their size.

Trained weights live in ``jaxgan/metrics/weights/<dataset>.msgpack`` (flax
msgpack of ``{"params", "batch_stats"}``) with a manifest ``<dataset>.json`` that
records the architecture, the sha256 of the weights file, the test accuracy and
the command that produced them. :func:`load_classifier` refuses a file whose
hash differs from its manifest's.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from jaxgan.errors import JaxganError

INPUT_SIZE = 32
WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights")


class WeightsError(JaxganError):
  """A feature network's weights are missing, corrupt or do not fit their manifest."""


def _max_pool_2x2(x: jax.Array) -> jax.Array:
  """2x2/2 max pooling as a reshape + max (XLA:CPU's select-and-scatter gradient of
  ``nn.max_pool`` made training ~2x slower)."""
  b, h, w, c = x.shape
  return x[:, :h // 2 * 2, :w // 2 * 2].reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


class Classifier(nn.Module):
  """Blocks of (Conv3x3-BN-ReLU) x n + MaxPool 2x2, a ``hidden`` ReLU layer (the features), logits.

  ``features`` lists the blocks: an int is one convolution, a tuple several
  (``(32, (64, 64), 64)``: 32x32 -> 16x16 -> 8x8 -> 4x4).
  ``__call__(x, train) -> (logits [N, num_classes], features [N, hidden])`` for
  ``x`` of shape ``[N, H, W, 1]`` in [-1, 1]; ``H, W != INPUT_SIZE`` is resized
  bilinearly to ``INPUT_SIZE``.
  """
  num_classes: int = 10
  features: Sequence[Any] = (32, (64, 64), 64)
  hidden: int = 128
  dropout: float = 0.3

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False):
    if x.ndim != 4 or x.shape[-1] != 1:
      raise ValueError(f"the classifier reads grayscale NHWC images [N, H, W, 1], got shape {x.shape}")
    x = jnp.asarray(x, jnp.float32)
    if x.shape[1:3] != (INPUT_SIZE, INPUT_SIZE):
      x = jax.image.resize(x, (x.shape[0], INPUT_SIZE, INPUT_SIZE, 1), "bilinear")
    for block in self.features:
      for f in (block if isinstance(block, (tuple, list)) else (block,)):
        x = nn.Conv(int(f), (3, 3), use_bias=False)(x)
        x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9)(x))
      x = _max_pool_2x2(x)
    x = x.reshape(x.shape[0], -1)
    features = nn.relu(nn.Dense(self.hidden)(x))
    h = nn.Dropout(self.dropout, deterministic=not train)(features)
    return nn.Dense(self.num_classes)(h), features


def architecture(module: Classifier) -> dict[str, Any]:
  blocks = [[int(f) for f in b] if isinstance(b, (tuple, list)) else int(b) for b in module.features]
  return {"num_classes": int(module.num_classes), "features": blocks,
          "hidden": int(module.hidden), "dropout": float(module.dropout), "input_size": INPUT_SIZE}


def sha256_of(path: str) -> str:
  h = hashlib.sha256()
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
      h.update(chunk)
  return h.hexdigest()


def weights_paths(name_or_path: str) -> tuple[str, str]:
  """``(weights .msgpack, manifest .json)`` of a dataset name or a weights path."""
  if name_or_path.endswith(".msgpack") or os.sep in name_or_path:
    weights = name_or_path if name_or_path.endswith(".msgpack") else name_or_path + ".msgpack"
  else:
    weights = os.path.join(WEIGHTS_DIR, f"{name_or_path}.msgpack")
  return weights, weights[:-len(".msgpack")] + ".json"


def save_classifier(path: str, module: Classifier, variables, manifest: dict[str, Any]) -> dict:
  """Writes ``path`` (.msgpack) and its manifest (.json, with the file's sha256); returns the manifest."""
  weights, manifest_path = weights_paths(path)
  os.makedirs(os.path.dirname(os.path.abspath(weights)), exist_ok=True)
  data = serialization.to_bytes({"params": variables["params"],
                                 "batch_stats": variables["batch_stats"]})
  with open(weights, "wb") as f:
    f.write(data)
  manifest = {**manifest, "architecture": architecture(module), "weights": os.path.basename(weights),
              "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
  with open(manifest_path, "w") as f:
    json.dump(manifest, f, indent=2)
    f.write("\n")
  return manifest


@dataclass
class FeatureNetwork:
  """A loaded classifier: ``network(images) -> (features, logits)`` in jitted batches."""
  name: str
  module: Classifier
  variables: Any
  manifest: dict[str, Any]

  @property
  def sha256(self) -> str:
    return self.manifest["sha256"]

  def __post_init__(self):
    self._apply = jax.jit(lambda v, x: self.module.apply(v, x, train=False))

  def __call__(self, images: np.ndarray, batch_size: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """``(features [N, hidden], logits [N, classes])``, float32, of images in [-1, 1]."""
    images = np.asarray(images)
    if images.ndim != 4:
      raise ValueError(f"images must be NHWC, got shape {images.shape}")
    n = len(images)
    feats, logits = [], []
    for start in range(0, n, batch_size):
      batch = images[start:start + batch_size]
      pad = batch_size - len(batch) if n > batch_size else 0  # one compiled shape
      if pad:
        batch = np.concatenate([batch, np.zeros((pad, *batch.shape[1:]), batch.dtype)])
      lo, fe = self._apply(self.variables, batch)
      feats.append(np.asarray(fe)[:len(fe) - pad])
      logits.append(np.asarray(lo)[:len(lo) - pad])
    if not feats:
      return (np.zeros((0, self.module.hidden), np.float32),
              np.zeros((0, self.module.num_classes), np.float32))
    return np.concatenate(feats), np.concatenate(logits)


def load_classifier(name_or_path: str = "fashion_mnist") -> FeatureNetwork:
  """Loads the committed classifier of a dataset (``"fashion_mnist"``, ``"mnist"``) or a
  ``.msgpack`` path, after checking the file's sha256 against its manifest."""
  weights, manifest_path = weights_paths(name_or_path)
  dataset = os.path.basename(weights)[:-len(".msgpack")]
  train_cmd = f"python -m jaxgan.metrics.train_classifier --dataset {dataset} --out {weights}"
  if not os.path.exists(manifest_path) or not os.path.exists(weights):
    have = sorted(f[:-5] for f in os.listdir(WEIGHTS_DIR) if f.endswith(".json")) \
        if os.path.isdir(WEIGHTS_DIR) else []
    raise WeightsError(
        f"no feature network {name_or_path!r}: {weights if os.path.exists(manifest_path) else manifest_path} "
        f"does not exist (committed ones: {have}). Train one with `{train_cmd}`.")
  with open(manifest_path) as f:
    manifest = json.load(f)
  digest = sha256_of(weights)
  if digest != manifest.get("sha256"):
    raise WeightsError(
        f"{weights} has sha256 {digest}, but {manifest_path} records {manifest.get('sha256')}: "
        f"the weights file is corrupt, a Git LFS pointer, or from another training run. Restore it "
        f"(git checkout -- {weights}) or retrain with `{train_cmd}`.")
  arch = manifest["architecture"]
  blocks = tuple(tuple(b) if isinstance(b, list) else b for b in arch["features"])
  module = Classifier(num_classes=arch["num_classes"], features=blocks,
                      hidden=arch["hidden"], dropout=arch["dropout"])
  template = jax.eval_shape(lambda: module.init(
      jax.random.PRNGKey(0), jnp.zeros((1, INPUT_SIZE, INPUT_SIZE, 1), jnp.float32)))
  with open(weights, "rb") as f:
    raw = serialization.msgpack_restore(f.read())
  try:
    variables = serialization.from_state_dict(
        {"params": template["params"], "batch_stats": template["batch_stats"]}, raw)
    shapes_ok = jax.tree.all(jax.tree.map(lambda t, v: tuple(t.shape) == tuple(np.shape(v)),
                                          template, variables))
  except (ValueError, KeyError, TypeError) as e:
    raise WeightsError(f"{weights} does not fit the architecture in {manifest_path}: {e}") from None
  if not shapes_ok:
    raise WeightsError(f"{weights}: parameter shapes differ from the architecture in {manifest_path}")
  variables = jax.tree.map(jnp.asarray, variables)
  return FeatureNetwork(name=os.path.basename(weights)[:-len(".msgpack")], module=module,
                        variables=variables, manifest=manifest)
