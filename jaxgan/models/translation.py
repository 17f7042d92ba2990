"""Image-to-image translation networks: the ResNet generator, the PatchGAN and the StarGAN critics.

* :class:`ResNetGenerator`: the generator of CycleGAN (Zhu et al., 2017; after
  Johnson et al., 2016) and of StarGAN (Choi et al., 2018): a 7x7 convolution,
  two stride-2 down-sampling convolutions, ``num_blocks`` residual blocks, two
  stride-2 up-sampling layers and a 7x7 convolution to the image channels, tanh.
  Instance normalisation and ReLU after every convolution but the last. With
  ``num_domains > 0`` it is StarGAN's conditional generator: the target-domain
  label vector is replicated over the image and concatenated channel-wise.
* :class:`PatchGANDiscriminator`: the 70x70 PatchGAN of pix2pix/CycleGAN
  (Isola et al., 2017): one logit per overlapping 70x70 patch.
* :class:`StarGANDiscriminator`: StarGAN's critic, stride-2 convolutions with
  LeakyReLU(0.01) and no normalisation, and two heads: ``D_src`` (a 3x3
  convolution: a patch map of critic values) and ``D_cls`` (a convolution
  whose kernel covers the remaining spatial size: ``K`` domain logits).

Parameter counts of the reference layer lists (computed by hand in
``tests/test_translation.py``): CycleGAN's ``resnet_6blocks`` generator
7,837,699 and its 70x70 PatchGAN 2,764,737 parameters; StarGAN's 128-px
generator with 5 labels 8,430,528 and its critic 44,762,048.

Image sizes must round-trip: the generator halves the side twice and doubles it
twice, so the side must be a multiple of 4; StarGAN's critic halves it
``num_layers`` times and needs a multiple of ``2**num_layers``. Wrong sizes and
label vectors of the wrong length raise :class:`~jaxgan.errors.ConfigError`.
"""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgan.errors import ConfigError
from jaxgan.models import layers
from jaxgan.models.layers import Upsample2x

STYLES = ("cyclegan", "stargan")
NORMS = ("instance", "none")

# CycleGAN's init_weights('normal', gain=0.02): weights ~ N(0, 0.02), biases 0.
cyclegan_kernel_init = nn.initializers.normal(0.02)


def instance_norm(affine: bool) -> nn.InstanceNorm:
  """Instance normalisation (Ulyanov et al., 2016) with PyTorch's epsilon.

  Per example and channel, ``(x - mean_hw) / sqrt(var_hw + 1e-5)``, followed by
  a per-channel scale and offset when ``affine`` (StarGAN) and nothing else
  otherwise (CycleGAN). No running statistics: training and inference both
  normalise with the example's own statistics.
  """
  return nn.InstanceNorm(epsilon=1e-5, use_scale=affine, use_bias=affine)


def _reflect_pad(x: jax.Array, p: int) -> jax.Array:
  return jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), mode="reflect")


def check_round_trip(image_shape, levels: int, who: str) -> None:
  """Refuses a side that ``levels`` halvings cannot take exactly (ConfigError naming the fix)."""
  h, w = int(image_shape[0]), int(image_shape[1])
  m = 2 ** levels
  if h % m or w % m or h < m or w < m:
    up = lambda s: max(m, -(-s // m) * m)
    raise ConfigError(
        f"{who} halves the image {levels} times and needs height and width that are multiples "
        f"of {m}; got {h}x{w}. Set image_size to a multiple of {m} (e.g. {up(h)}) or change "
        f"the number of down-sampling layers")


def cyclegan_upsample(features: int, use_bias: bool = True) -> nn.ConvTranspose:
  """PyTorch's ``ConvTranspose2d(k=3, s=2, p=1, output_padding=1)``: the adjoint of a 3x3
  stride-2 padding-1 convolution, doubling the side (CycleGAN's up-sampling layer)."""
  return nn.ConvTranspose(features, (3, 3), strides=(2, 2), padding=((1, 2), (1, 2)),
                          transpose_kernel=True, use_bias=use_bias, kernel_init=cyclegan_kernel_init)


class ResNetGenerator(nn.Module):
  """CycleGAN / StarGAN generator: c7s1-F, d2F, d4F, R4F x n, u2F, uF, c7s1-C, tanh.

  ``features`` is F (64 in both papers); ``num_blocks`` the residual blocks (6
  at 128 px, 9 at 256 px; fewer for small images). ``style`` fixes the
  details that differ between the reference implementations:

  * ``"cyclegan"``: reflection padding for the 7x7 convolutions and inside
    the residual blocks; 3x3 stride-2 down-sampling convolutions; 3x3 stride-2
    transposed convolutions (PyTorch ``ConvTranspose2d(k=3, s=2, p=1,
    output_padding=1)``); every convolution has a bias; weights ~ N(0, 0.02).
  * ``"stargan"``: zero padding; 4x4 stride-2 convolutions and 4x4 stride-2
    transposed convolutions (:class:`~jaxgan.models.layers.Upsample2x`); no
    biases; Flax's default initialisers.

  ``affine``: instance norm with a learned per-channel scale and offset
  (StarGAN ``True``, CycleGAN ``False``). ``num_domains``: length of the
  target label vector ``c`` (StarGAN; in multi-dataset mode the padded label
  plus the mask vector); ``0`` means no label input. ``out_channels`` (0 =
  the input's channels). A residual block is ``x + IN(conv(ReLU(IN(conv(x)))))``.
  ``conv_impl``: how every convolution is computed (:func:`~jaxgan.models.layers.conv`; the
  parameters and values are the same whichever runs).

  ``label_norm`` (StarGAN only; ``False`` = the reference): every instance
  norm is also modulated by the label, ``IN(h) * (1 + W_g c) + W_b c`` per
  channel (conditional instance normalisation, Dumoulin et al., 2017), with
  ``W_g``, ``W_b`` initialised to zero so that training starts from the
  reference network. The reference's only path for the label is the input:
  its tiled planes add a per-channel constant to the first convolution's
  output, which the first instance norm subtracts again up to what the
  zero-padded border band (3 pixels wide) changes, so the label reaches the
  interior weakened and as a pattern spread in from the border; a
  per-channel scale by the label can flip or gate the content directly.
  """
  features: int = 64
  num_blocks: int = 6
  num_domains: int = 0
  affine: bool = False
  style: str = "cyclegan"
  out_channels: int = 0
  upsample: str = "auto"
  conv_impl: str = "auto"
  label_norm: bool = False

  @nn.compact
  def __call__(self, x: jax.Array, c: jax.Array | None = None, train: bool = True) -> jax.Array:
    del train  # no batch statistics, no dropout
    if self.style not in STYLES:
      raise ConfigError(f"unknown generator style {self.style!r}; choose one of {list(STYLES)}")
    if not isinstance(self.label_norm, bool) or (self.label_norm and not self.num_domains):
      raise ConfigError(f"generator label_norm must be True or False and needs a label input "
                        f"(num_domains > 0, StarGAN); got label_norm={self.label_norm!r}, "
                        f"num_domains={self.num_domains}")
    check_round_trip(x.shape[1:3], 2, "the ResNet generator")
    channels = self.out_channels or x.shape[-1]
    x = jnp.concatenate([x, self._label_planes(x, c)], axis=-1) if self.num_domains else x
    cyc = self.style == "cyclegan"
    conv = functools.partial(layers.conv, impl=self.conv_impl, use_bias=cyc,
                             kernel_init=cyclegan_kernel_init if cyc else nn.initializers.lecun_normal())

    def norm(h):
      h = instance_norm(self.affine)(h)
      if not self.label_norm:
        return h
      cond = c.astype(h.dtype)
      gain = nn.Dense(h.shape[-1], use_bias=False, kernel_init=nn.initializers.zeros)(cond)
      shift = nn.Dense(h.shape[-1], use_bias=False, kernel_init=nn.initializers.zeros)(cond)
      return h * (1.0 + gain[:, None, None, :]) + shift[:, None, None, :]

    def conv_same(h, f, k):  # stride 1, padding (k - 1) / 2: reflection (CycleGAN) or zeros
      p = (k - 1) // 2
      if cyc:
        return conv(f, (k, k), padding="VALID")(_reflect_pad(h, p))
      return conv(f, (k, k), padding=((p, p), (p, p)))(h)

    f = self.features
    h = nn.relu(norm(conv_same(x, f, 7)))
    for mult in (2, 4):  # down-sampling
      if cyc:
        h = conv(f * mult, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))(h)
      else:
        h = conv(f * mult, (4, 4), strides=(2, 2), padding=((1, 1), (1, 1)))(h)
      h = nn.relu(norm(h))
    for _ in range(self.num_blocks):
      r = nn.relu(norm(conv_same(h, 4 * f, 3)))
      h = h + norm(conv_same(r, 4 * f, 3))
    for mult in (2, 1):  # up-sampling
      if cyc:
        h = cyclegan_upsample(f * mult)(h)
      else:
        h = Upsample2x(f * mult, use_bias=False, impl=self.upsample,
                       kernel_init=nn.initializers.lecun_normal())(h)
      h = nn.relu(norm(h))
    return jnp.tanh(conv_same(h, channels, 7))

  def _label_planes(self, x: jax.Array, c: jax.Array | None) -> jax.Array:
    """``c`` ``[N, K]`` replicated to ``[N, H, W, K]`` (StarGAN's depth-wise concatenation)."""
    if c is None:
      raise ConfigError(f"this generator takes a target label vector of length {self.num_domains} "
                        f"(num_domains); pass c, or build it with num_domains=0 for unconditional "
                        f"translation (CycleGAN)")
    if c.ndim != 2 or c.shape[0] != x.shape[0] or c.shape[1] != self.num_domains:
      raise ConfigError(
          f"the target label vector has shape {tuple(c.shape)}, the generator expects "
          f"[{x.shape[0]}, {self.num_domains}] (num_domains={self.num_domains}); make the labels "
          f"(plus the mask vector in multi-dataset mode) as long as the generator's num_domains")
    return jnp.broadcast_to(c[:, None, None, :].astype(x.dtype), x.shape[:3] + (c.shape[1],))


class PatchGANDiscriminator(nn.Module):
  """pix2pix/CycleGAN PatchGAN: C64-C128-C256-C512 (4x4 convs, LeakyReLU 0.2) -> 1-channel map.

  ``num_layers`` stride-2 convolutions (pix2pix's ``n_layers``; 3 gives the
  70x70 receptive field), widths ``features * min(2**i, 8)``, then a stride-1
  4x4 convolution and a stride-1 4x4 convolution to one channel, all with
  padding 1. ``norm`` (``"instance"`` without affine parameters, as CycleGAN,
  or ``"none"``) follows every convolution but the first and the last.
  Returns ``[N, h, w]`` logits, one per overlapping patch (14x14 at 128 px,
  30x30 at 256 px); the losses average over them.
  """
  features: int = 64
  num_layers: int = 3
  norm: str = "instance"
  negative_slope: float = 0.2

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    del train
    if self.norm not in NORMS:
      raise ConfigError(f"unknown PatchGAN norm {self.norm!r}; choose one of {list(NORMS)}")
    side = min(x.shape[1:3])
    for _ in range(self.num_layers):
      side = (side + 2 - 4) // 2 + 1
    if side - 2 < 1:
      raise ConfigError(
          f"a {x.shape[1]}x{x.shape[2]} image is too small for a PatchGAN with num_layers="
          f"{self.num_layers} (the map would be empty); lower discriminator num_layers or use "
          f"larger images (at least {3 * 2 ** self.num_layers} pixels)")
    conv = functools.partial(layers.conv, kernel_size=(4, 4), padding=((1, 1), (1, 1)),
                             kernel_init=cyclegan_kernel_init)
    act = lambda h: nn.leaky_relu(h, self.negative_slope)
    norm = (lambda h: instance_norm(False)(h)) if self.norm == "instance" else (lambda h: h)
    h = act(conv(self.features, strides=(2, 2))(x))
    for i in range(1, self.num_layers):
      h = act(norm(conv(self.features * min(2 ** i, 8), strides=(2, 2))(h)))
    h = act(norm(conv(self.features * min(2 ** self.num_layers, 8), strides=(1, 1))(h)))
    return conv(1, strides=(1, 1))(h)[..., 0]


class StarGANDiscriminator(nn.Module):
  """StarGAN critic: [4x4 stride-2 conv -> LeakyReLU(0.01)] x num_layers, then D_src and D_cls.

  Widths ``features * 2**i`` (64 ... 2048 at 128 px with ``num_layers = 6``);
  no normalisation (the gradient penalty is per example). ``D_src``: 3x3
  convolution to one channel, a patch map ``[N, h, w]`` of critic values.
  ``D_cls``: a convolution with an ``h x w`` kernel to ``num_domains``
  logits ``[N, K]``. Both heads have no bias, as the reference.
  Returns ``(src, cls)``. ``conv_impl``: as :class:`ResNetGenerator`'s.
  """
  features: int = 64
  num_layers: int = 6
  num_domains: int = 5
  negative_slope: float = 0.01
  conv_impl: str = "auto"

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> tuple[jax.Array, jax.Array]:
    del train
    check_round_trip(x.shape[1:3], self.num_layers, f"StarGAN's critic (num_layers={self.num_layers})")
    conv = functools.partial(layers.conv, impl=self.conv_impl)
    h = x
    for i in range(self.num_layers):
      h = conv(self.features * 2 ** i, (4, 4), strides=(2, 2), padding=((1, 1), (1, 1)))(h)
      h = nn.leaky_relu(h, self.negative_slope)
    src = conv(1, (3, 3), padding=((1, 1), (1, 1)), use_bias=False, name="D_src")(h)
    cls = conv(self.num_domains, h.shape[1:3], padding="VALID", use_bias=False, name="D_cls")(h)
    return src[..., 0], cls.reshape(x.shape[0], self.num_domains)


def count_params(params: Any) -> int:
  """Number of scalars in a parameter tree."""
  return int(sum(p.size for p in jax.tree.leaves(params)))
