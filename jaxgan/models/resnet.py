"""The SNGAN residual networks (Miyato, Kataoka, Koyama & Yoshida, 2018, appendix B).

The generator and discriminator of the paper's CIFAR-10 / STL-10 experiments, themselves
the residual networks of Gulrajani et al. (2017, WGAN-GP):

* G: ``z`` (128) -> Dense to 4x4x256 -> 3 x ResBlock up (256) -> BN -> ReLU -> 3x3 conv
  -> tanh. A block is ``BN -> ReLU -> nearest 2x up -> 3x3 conv -> BN -> ReLU -> 3x3 conv``
  plus a shortcut ``nearest 2x up -> 1x1 conv``.
* D: optimised first block (``3x3 conv -> ReLU -> 3x3 conv -> 2x2 avg pool``, shortcut
  ``avg pool -> 1x1 conv``) -> ResBlock down -> 2 x ResBlock (all 128 channels) -> ReLU ->
  global *sum* pooling -> Dense to one logit. A block is ``ReLU -> 3x3 conv -> ReLU -> 3x3
  conv (-> avg pool)`` plus a ``1x1 conv (-> avg pool)`` shortcut where the shape changes.
  Every layer is spectrally normalised (``spectral=False`` turns it off, e.g. for a
  gradient-penalty critic).

Initialisation follows the reference code: Glorot-uniform with gain sqrt(2) for the
residual branches' convolutions, gain 1 for shortcuts, the first Dense, the last layers.
``widths`` and ``downsample`` give the other sizes (a narrower network for CPU runs, or more
blocks for 64x64); the defaults are the paper's 32x32 networks (4,276,739 generator and
1,053,825 discriminator parameters for 3-channel images).
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgan.models.layers import batch_norm, spectral_norm

residual_init = nn.initializers.variance_scaling(2.0, "fan_avg", "uniform")  # Glorot, gain sqrt(2)
glorot_init = nn.initializers.xavier_uniform()


def upsample_nearest(x: jax.Array) -> jax.Array:
  """2x nearest-neighbour up-sampling of NHWC ``x``."""
  return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def avg_pool(x: jax.Array) -> jax.Array:
  """2x2 average pooling with stride 2."""
  return nn.avg_pool(x, (2, 2), strides=(2, 2))


class GeneratorBlock(nn.Module):
  """Pre-activation residual block of G: ``BN -> ReLU -> up -> conv3 -> BN -> ReLU -> conv3``,
  plus ``up -> conv1`` (a learned shortcut where the block up-samples or changes width)."""
  features: int
  upsample: bool = True
  bn_axis_name: str | None = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    bn = lambda: batch_norm(train, axis_name=self.bn_axis_name)
    up = upsample_nearest if self.upsample else (lambda t: t)
    h = up(nn.relu(bn()(x)))
    h = nn.Conv(self.features, (3, 3), padding=1, kernel_init=residual_init)(h)
    h = nn.Conv(self.features, (3, 3), padding=1, kernel_init=residual_init)(nn.relu(bn()(h)))
    shortcut = up(x)
    if self.upsample or x.shape[-1] != self.features:
      shortcut = nn.Conv(self.features, (1, 1), padding=0, kernel_init=glorot_init)(shortcut)
    return h + shortcut


class DiscriminatorBlock(nn.Module):
  """Residual block of D: ``ReLU -> conv3 -> ReLU -> conv3 (-> avg pool)`` plus a ``conv1
  (-> avg pool)`` shortcut where the shape changes. ``optimized`` is the first block of the
  paper's D (no leading ReLU on the image; the shortcut pools first, then convolves)."""
  features: int
  downsample: bool = True
  optimized: bool = False
  spectral: bool = True

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    def conv(size, init):
      layer = nn.Conv(self.features, (size, size), padding=(size - 1) // 2, kernel_init=init)
      return spectral_norm(layer, train) if self.spectral else layer

    down = avg_pool if self.downsample else (lambda t: t)
    h = x if self.optimized else nn.relu(x)
    h = conv(3, residual_init)(h)
    h = down(conv(3, residual_init)(nn.relu(h)))
    if self.optimized:
      return h + conv(1, glorot_init)(avg_pool(x))
    if self.downsample or x.shape[-1] != self.features:
      return h + down(conv(1, glorot_init)(x))
    return h + x


class ResNetGenerator(nn.Module):
  """SNGAN's ResNet generator: ``z -> Dense to bottom x bottom x widths[0] ->`` one up-sampling
  block per later width ``-> BN -> ReLU -> 3x3 conv -> tanh``. The image side must be
  ``bottom * 2 ** (len(widths) - 1)``."""
  image_shape: Sequence[int]
  latent_dim: int = 128
  widths: Sequence[int] = (256, 256, 256, 256)
  bottom: int = 4
  bn_axis_name: str | None = None  # set by jaxgan.parallel: sync BatchNorm across devices

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = True) -> jax.Array:
    h, w, c = self.image_shape
    side = self.bottom * 2 ** (len(self.widths) - 1)
    if h != w or h != side:
      raise ValueError(f"ResNet generator with widths {tuple(self.widths)} from {self.bottom}x"
                       f"{self.bottom} makes {side}x{side} images, not {h}x{w}: set image_size to "
                       f"{side} or give one width per 2x up-sampling (plus the first)")
    x = nn.Dense(self.bottom * self.bottom * self.widths[0], kernel_init=glorot_init)(z)
    x = x.reshape(z.shape[0], self.bottom, self.bottom, self.widths[0])
    for f in self.widths[1:]:
      x = GeneratorBlock(f, bn_axis_name=self.bn_axis_name)(x, train)
    x = nn.relu(batch_norm(train, axis_name=self.bn_axis_name)(x))
    x = nn.Conv(c, (3, 3), padding=1, kernel_init=glorot_init)(x)
    return jnp.tanh(x)


class ResNetDiscriminator(nn.Module):
  """SNGAN's ResNet discriminator: the optimised block, then one block per later width
  (``downsample[i]`` for block ``i``; default: the first two blocks halve the image, as the
  paper's 32x32 D), ReLU, global sum pooling, Dense to one logit; spectrally normalised."""
  widths: Sequence[int] = (128, 128, 128, 128)
  downsample: Sequence[bool] | None = None
  spectral: bool = True

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    down = (tuple(self.downsample) if self.downsample is not None
            else tuple(i < 2 for i in range(len(self.widths))))
    if len(down) != len(self.widths) or not down[0]:
      raise ValueError(f"ResNet discriminator: downsample needs one flag per width "
                       f"({len(self.widths)}) and the first block down-samples, got {down}")
    if x.shape[1] % 2 ** sum(down):
      raise ValueError(f"ResNet discriminator halves the image {sum(down)} times: its side "
                       f"must be a multiple of {2 ** sum(down)}, got {x.shape[1]}")
    h = DiscriminatorBlock(self.widths[0], optimized=True, spectral=self.spectral)(x, train)
    for f, d in zip(self.widths[1:], down[1:]):
      h = DiscriminatorBlock(f, downsample=d, spectral=self.spectral)(h, train)
    h = jnp.sum(nn.relu(h), axis=(1, 2))
    last = nn.Dense(1, kernel_init=glorot_init)
    return (spectral_norm(last, train) if self.spectral else last)(h).reshape(x.shape[0])
