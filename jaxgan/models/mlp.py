"""Fully connected GANs: the classic PyTorch-GAN tutorial model and the Keras-book GAN."""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxgan.models.layers import batch_norm


class MLPGenerator(nn.Module):
  """z -> [Dense -> (BatchNorm) -> LeakyReLU] * n -> Dense -> tanh -> image.

  With the defaults this is the vanilla GAN of the classic tutorial (Goodfellow
  et al., 2014 as popularised by PyTorch-GAN): 128 (no BatchNorm), 256, 512,
  1024 (BatchNorm), LeakyReLU(0.2). The first hidden layer is never normalised.
  """
  image_shape: Sequence[int]
  latent_dim: int = 100
  hidden: Sequence[int] = (128, 256, 512, 1024)
  batchnorm: bool = True
  negative_slope: float = 0.2
  batchnorm_epsilon: float = 1e-5
  batchnorm_momentum: float = 0.9
  bn_axis_name: str | None = None  # set by jaxgan.parallel: sync BatchNorm across devices

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = True) -> jax.Array:
    x = z
    for i, width in enumerate(self.hidden):
      x = nn.Dense(width)(x)
      if self.batchnorm and i > 0:
        x = batch_norm(train, momentum=self.batchnorm_momentum, epsilon=self.batchnorm_epsilon,
                       axis_name=self.bn_axis_name)(x)
      x = nn.leaky_relu(x, self.negative_slope)
    x = nn.Dense(int(np.prod(self.image_shape)))(x)
    return jnp.tanh(x).reshape((z.shape[0], *self.image_shape))


class MLPDiscriminator(nn.Module):
  """image -> flatten -> [Dense -> LeakyReLU] * n -> Dense(1) logit."""
  hidden: Sequence[int] = (512, 256)
  negative_slope: float = 0.2

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    del train  # no BatchNorm or dropout
    x = x.reshape((x.shape[0], -1))
    for width in self.hidden:
      x = nn.leaky_relu(nn.Dense(width)(x), self.negative_slope)
    return nn.Dense(1)(x)[:, 0]
