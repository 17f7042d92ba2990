"""Fully connected networks for 2-D toy data, with PacGAN packing in the discriminator."""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxgan.errors import ConfigError
from jaxgan.models.layers import batch_norm


def _activation(x: jax.Array, negative_slope: float) -> jax.Array:
  return nn.leaky_relu(x, negative_slope) if negative_slope else nn.relu(x)


class Toy2DGenerator(nn.Module):
  """z -> [Dense -> (BatchNorm) -> LeakyReLU] * n -> Dense(prod(image_shape)), linear output.

  A point generator: no tanh, the data are not confined to [-1, 1] (the grid
  spans [-4, 4]). ``negative_slope=0`` gives ReLU and ``batchnorm=True`` the
  PacGAN generator (four hidden layers of 400 ReLU units with BatchNorm).
  """
  image_shape: Sequence[int] = (2,)
  latent_dim: int = 2
  hidden: Sequence[int] = (128, 128, 128)
  negative_slope: float = 0.2
  batchnorm: bool = False
  bn_axis_name: str | None = None  # set by jaxgan.parallel: sync BatchNorm across devices

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = True) -> jax.Array:
    x = z
    for width in self.hidden:
      x = nn.Dense(width)(x)
      if self.batchnorm:
        x = batch_norm(train, axis_name=self.bn_axis_name)(x)
      x = _activation(x, self.negative_slope)
    x = nn.Dense(int(np.prod(self.image_shape)))(x)
    return x.reshape((z.shape[0], *self.image_shape))


class Toy2DDiscriminator(nn.Module):
  """point(s) -> [Dense -> LeakyReLU (or maxout)] * n -> Dense(1) logit.

  Packing (PacGAN, Lin et al., 2018): with ``pack = m`` the discriminator
  judges ``m`` samples at once. The batch ``[B, d]`` is reshaped to
  ``[B/m, m d]`` (consecutive rows form a pack: rows ``j m .. j m + m - 1``)
  and D outputs ``B/m`` logits. Real packs hold only real samples and fake
  packs only fakes, so every GAN loss applies unchanged to the packed logits.
  ``B`` (per device under data parallelism) must be a multiple of ``m``,
  else a :class:`~jaxgan.errors.ConfigError` is raised when the step is
  traced. At initialisation only shapes matter, so a batch that does not
  divide is padded with zeros.

  ``maxout = k > 1`` replaces LeakyReLU by maxout over ``k`` linear pieces
  (Goodfellow et al., 2013), ``h = max_i (W_i x + b_i)``: PacGAN's
  ``LinearMaxout`` with 5 pieces.
  """
  hidden: Sequence[int] = (128, 128, 128)
  negative_slope: float = 0.2
  pack: int = 1
  maxout: int = 1

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    del train  # no BatchNorm or dropout
    if isinstance(self.pack, bool) or not isinstance(self.pack, int) or self.pack < 1:
      raise ConfigError(f"discriminator pack must be a positive integer, got {self.pack!r}")
    if isinstance(self.maxout, bool) or not isinstance(self.maxout, int) or self.maxout < 1:
      raise ConfigError(f"discriminator maxout must be a positive integer (1 = LeakyReLU), "
                        f"got {self.maxout!r}")
    x = x.reshape((x.shape[0], -1))
    n, m = x.shape[0], self.pack
    if n % m:
      if not self.is_initializing():
        raise ConfigError(
            f"the discriminator packs {m} samples (PacGAN) but got a batch of {n} (per device "
            f"under data parallelism); use a batch size per device that is a multiple of "
            f"{m} (--config.batch_size=...), or --config.discriminator.pack=1")
      x = jnp.concatenate([x, jnp.zeros((m - n % m, x.shape[1]), x.dtype)])
    x = x.reshape((x.shape[0] // m, m * x.shape[1]))
    for width in self.hidden:
      if self.maxout > 1:
        x = nn.Dense(width * self.maxout)(x)
        x = jnp.max(x.reshape((x.shape[0], width, self.maxout)), axis=-1)
      else:
        x = _activation(nn.Dense(width)(x), self.negative_slope)
    return nn.Dense(1)(x)[:, 0]
