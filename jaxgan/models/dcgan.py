"""DCGAN (Radford, Metz & Chintala, 2016): all-convolutional G and D with BatchNorm."""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgan.models.layers import Upsample2x, batch_norm, dcgan_kernel_init, dcgan_scale_init


def _levels(image_shape: Sequence[int], features: Sequence[int], who: str) -> int:
  h, w = image_shape[0], image_shape[1]
  n = len(features)
  if h != w or h % (2 ** n) or h // (2 ** n) < 1:
    raise ValueError(
        f"DCGAN {who} with {n} stride-2 layers needs a square image whose side is a multiple "
        f"of {2 ** n}, got {h}x{w}; set image_size to e.g. {4 * 2 ** n} or change the features")
  return h // (2 ** n)


class DCGANGenerator(nn.Module):
  """z -> Dense to s x s x features[0] -> [Upsample2x -> BN -> ReLU] -> Upsample2x -> tanh.

  Defaults give the 32x32 DCGAN: 100 -> 4x4x256 -> 8x8x128 -> 16x16x64 -> 32x32xC.
  Up-sampling is the kernel-4, stride-2 transposed convolution; ``upsample``
  chooses how it is computed (``"subpixel"`` or ``"transpose"``, same function).
  """
  image_shape: Sequence[int]
  latent_dim: int = 100
  features: Sequence[int] = (256, 128, 64)
  upsample: str = "subpixel"

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = True) -> jax.Array:
    s = _levels(self.image_shape, self.features, "generator")
    bn = lambda: batch_norm(train, scale_init=dcgan_scale_init)
    x = nn.Dense(s * s * self.features[0], use_bias=False, kernel_init=dcgan_kernel_init)(z)
    x = nn.relu(bn()(x.reshape(z.shape[0], s, s, self.features[0])))
    for f in self.features[1:]:
      x = nn.relu(bn()(Upsample2x(f, use_bias=False, impl=self.upsample)(x)))
    x = Upsample2x(self.image_shape[-1], use_bias=True, impl=self.upsample)(x)
    return jnp.tanh(x)


class DCGANDiscriminator(nn.Module):
  """image -> [Conv k4 s2 -> (BN) -> LeakyReLU(0.2)] -> Conv over the rest -> logit.

  Defaults give the 32x32 DCGAN critic: 16x16x64 (no BN) -> 8x8x128 -> 4x4x256
  -> 4x4 convolution to one logit.
  """
  features: Sequence[int] = (64, 128, 256)
  negative_slope: float = 0.2

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    s = _levels(x.shape[1:], self.features, "discriminator")
    for i, f in enumerate(self.features):
      x = nn.Conv(f, (4, 4), strides=(2, 2), padding=((1, 1), (1, 1)), use_bias=(i == 0),
                  kernel_init=dcgan_kernel_init)(x)
      if i > 0:
        x = batch_norm(train, scale_init=dcgan_scale_init)(x)
      x = nn.leaky_relu(x, self.negative_slope)
    x = nn.Conv(1, (s, s), padding="VALID", kernel_init=dcgan_kernel_init)(x)
    return x.reshape(x.shape[0])
