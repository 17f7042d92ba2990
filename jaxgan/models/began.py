"""BEGAN (Berthelot, Schumm & Metz, 2017): an auto-encoder discriminator.

Generator and the discriminator's decoder share one architecture (not their
weights): ``z -> Dense to 8x8xn -> [conv3x3-ELU, conv3x3-ELU, nearest-neighbour
upsample x2] ... -> conv3x3 to C``. Upsampling is resize-convolution (a
nearest-neighbour resize followed by 3x3 convolutions), which has no
checkerboard artefacts. The encoder mirrors it: ``conv3x3 n -> [conv3x3-ELU x2,
stride-2 conv3x3 to the next width] ... -> Dense to the embedding h``, widths
growing linearly ``n, 2n, 3n, ...`` (paper, Fig. 1).

The discriminator's output is the per-example auto-encoder energy
``L(x) = mean_pixels |x - Dec(Enc(x))|`` (L1, eta = 1 in the paper), so it fits
the ``image -> one scalar per example`` contract of every discriminator; the
BEGAN objective (``jaxgan.losses.began_*``) is written on these energies.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgan.models import layers


def upsample_nearest(x: jax.Array, factor: int = 2) -> jax.Array:
  """Nearest-neighbour resize of ``[N, H, W, C]`` by ``factor`` (each pixel becomes a block)."""
  n, h, w, c = x.shape
  x = jnp.broadcast_to(x[:, :, None, :, None, :], (n, h, factor, w, factor, c))
  return x.reshape(n, h * factor, w * factor, c)


def _scales(side: int, base: int, who: str) -> int:
  """Number of resolution levels from ``base`` x ``base`` up to ``side``."""
  levels, s = 1, base
  while s < side:
    s *= 2
    levels += 1
  if s != side:
    raise ValueError(f"BEGAN {who} needs a square image whose side is {base} times a power of 2, "
                     f"got {side}; set image_size to e.g. 32 or 64")
  return levels


def _conv(features: int, strides: int = 1) -> nn.Conv:
  return layers.conv(features, (3, 3), strides=(strides, strides), padding="SAME")


class BEGANDecoder(nn.Module):
  """h -> Dense 8x8xn -> [conv-ELU, conv-ELU, (upsample x2)] per level -> conv3x3 to ``channels``."""
  image_shape: Sequence[int]
  filters: int = 64
  base: int = 8

  @nn.compact
  def __call__(self, h: jax.Array) -> jax.Array:
    side, channels = self.image_shape[0], self.image_shape[-1]
    if self.image_shape[1] != side:
      raise ValueError(f"BEGAN needs square images, got {tuple(self.image_shape)}")
    levels = _scales(side, self.base, "decoder")
    x = nn.Dense(self.base * self.base * self.filters)(h)
    x = x.reshape(h.shape[0], self.base, self.base, self.filters)
    for level in range(levels):
      x = nn.elu(_conv(self.filters)(x))
      x = nn.elu(_conv(self.filters)(x))
      if level < levels - 1:
        x = upsample_nearest(x)   # resize-convolution: the next convs act on the resized map
    return _conv(channels)(x)


class BEGANEncoder(nn.Module):
  """image -> conv3x3 n -> [conv-ELU x2, (stride-2 conv to the next width)] per level -> Dense h."""
  filters: int = 64
  embedding: int = 64
  base: int = 8

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    levels = _scales(x.shape[1], self.base, "encoder")
    x = nn.elu(_conv(self.filters)(x))
    for level in range(levels):
      width = self.filters * (level + 1)
      x = nn.elu(_conv(width)(x))
      x = nn.elu(_conv(width)(x))
      if level < levels - 1:
        x = nn.elu(_conv(self.filters * (level + 2), strides=2)(x))
    return nn.Dense(self.embedding)(x.reshape(x.shape[0], -1))


class BEGANGenerator(nn.Module):
  """z -> the decoder architecture -> tanh (images in [-1, 1]).

  The paper leaves the output linear; the tanh keeps jaxgan's generator
  contract (images in [-1, 1]), the range of the data the L1 energies compare.
  """
  image_shape: Sequence[int]
  latent_dim: int = 64
  filters: int = 64

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = True) -> jax.Array:
    del train  # no BatchNorm or dropout
    return jnp.tanh(BEGANDecoder(tuple(self.image_shape), self.filters)(z))


class BEGANDiscriminator(nn.Module):
  """Auto-encoder discriminator; returns the per-example L1 energy ``mean |x - AE(x)|``.

  ``return_reconstruction=True`` returns ``AE(x) = Dec(Enc(x))`` instead.
  """
  filters: int = 64
  embedding: int = 64

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True,
               return_reconstruction: bool = False) -> jax.Array:
    del train  # no BatchNorm or dropout
    h = BEGANEncoder(self.filters, self.embedding, name="encoder")(x)
    recon = BEGANDecoder(tuple(x.shape[1:]), self.filters, name="decoder")(h)
    if return_reconstruction:
      return recon
    return jnp.mean(jnp.abs(x - recon.astype(x.dtype)).reshape(x.shape[0], -1), axis=1)
