"""DCGAN (Radford, Metz & Chintala, 2016): all-convolutional G and D with BatchNorm."""

from __future__ import annotations

import functools
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgan.models import layers
from jaxgan.models.layers import (Upsample2x, batch_norm, dcgan_kernel_init, dcgan_scale_init,
                                  maybe_spectral_norm, resolve_upsample_impl)


def _levels(image_shape: Sequence[int], features: Sequence[int], who: str) -> int:
  h, w = image_shape[0], image_shape[1]
  n = len(features)
  if h != w or h % (2 ** n) or h // (2 ** n) < 1:
    raise ValueError(
        f"DCGAN {who} with {n} stride-2 layers needs a square image whose side is a multiple "
        f"of {2 ** n}, got {h}x{w}; set image_size to e.g. {4 * 2 ** n} or change the features")
  return h // (2 ** n)


DISCRIMINATOR_NORMS = ("batch", "layer", "spectral", "none")


def dcgan_trunk(x: jax.Array, features: Sequence[int], *, negative_slope: float = 0.2,
                norm: str = "batch", conv_impl: str = "auto", bn_axis_name: str | None = None,
                train: bool = True) -> jax.Array:
  """The DCGAN critic's stride-2 stack (:class:`DCGANDiscriminator` without its last
  convolution): ``[N, s, s, features[-1]]``. Call it inside a compact module: the layers are
  that module's."""
  _levels(x.shape[1:], features, "discriminator")
  if norm not in DISCRIMINATOR_NORMS:
    raise ValueError(f"unknown discriminator norm {norm!r}; choose one of {list(DISCRIMINATOR_NORMS)}")
  conv = functools.partial(layers.conv, impl=conv_impl, kernel_init=dcgan_kernel_init)
  for i, f in enumerate(features):
    # A bias only where no normalisation with its own offset follows.
    layer = conv(f, (4, 4), strides=(2, 2), padding=((1, 1), (1, 1)),
                 use_bias=(i == 0 or norm in ("none", "spectral")))
    x = maybe_spectral_norm(layer, train, norm == "spectral")(x)
    if i > 0 and norm == "batch":
      x = batch_norm(train, scale_init=dcgan_scale_init, axis_name=bn_axis_name)(x)
    elif i > 0 and norm == "layer":
      x = nn.LayerNorm(epsilon=1e-5, reduction_axes=(1, 2, 3), feature_axes=-1)(x)
    x = nn.leaky_relu(x, negative_slope)
  return x


class DCGANGenerator(nn.Module):
  """z -> Dense to s x s x features[0] -> [Upsample2x -> BN -> ReLU] -> Upsample2x -> tanh.

  Defaults give the 32x32 DCGAN: 100 -> 4x4x256 -> 8x8x128 -> 16x16x64 -> 32x32xC.
  Up-sampling is the kernel-4, stride-2 transposed convolution; ``upsample``
  chooses how it is computed (a key of ``layers.UPSAMPLE_IMPLS`` or ``"auto"``,
  the fastest on the default backend); every choice is the same function of
  the same parameters.
  """
  image_shape: Sequence[int]
  latent_dim: int = 100
  features: Sequence[int] = (256, 128, 64)
  upsample: str = "auto"
  bn_axis_name: str | None = None  # set by jaxgan.parallel: sync BatchNorm across devices

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = True) -> jax.Array:
    s = _levels(self.image_shape, self.features, "generator")
    impl = resolve_upsample_impl(self.upsample)
    bn = lambda: batch_norm(train, scale_init=dcgan_scale_init, axis_name=self.bn_axis_name)
    x = nn.Dense(s * s * self.features[0], use_bias=False, kernel_init=dcgan_kernel_init)(z)
    x = nn.relu(bn()(x.reshape(z.shape[0], s, s, self.features[0])))
    for f in self.features[1:]:
      x = nn.relu(bn()(Upsample2x(f, use_bias=False, impl=impl)(x)))
    x = Upsample2x(self.image_shape[-1], use_bias=True, impl=impl)(x)
    return jnp.tanh(x)


class DCGANDiscriminator(nn.Module):
  """image -> [Conv k4 s2 -> (norm) -> LeakyReLU(0.2)] -> Conv over the rest -> logit.

  Defaults give the 32x32 DCGAN critic: 16x16x64 (no norm) -> 8x8x128 -> 4x4x256
  -> 4x4 convolution to one logit. ``norm`` after every stride-2 convolution but
  the first: ``"batch"`` (DCGAN's BatchNorm), ``"layer"`` (per-example layer
  normalisation over H, W, C with a per-channel scale and offset, as in the
  WGAN-GP critic, which cannot use BatchNorm), ``"spectral"`` (spectral normalisation of
  every convolution, the first and the last included, with biases: the SN-DCGAN critic of
  Miyato et al., 2018; see ``layers.spectral_norm``) or ``"none"``. ``conv_impl`` chooses how the stride-2
  convolutions are differentiated: ``"xla"`` (XLA's own gradients),
  ``"adjoint"`` (``layers.conv_down_adjoint``: same forward, gradients from the
  up-sampling/stride-2 adjoint pair) or ``"auto"`` (the faster on the default
  backend). The layers are ``nn.Conv`` either way: same parameters.
  """
  features: Sequence[int] = (64, 128, 256)
  negative_slope: float = 0.2
  norm: str = "batch"
  conv_impl: str = "auto"
  bn_axis_name: str | None = None  # set by jaxgan.parallel: sync BatchNorm across devices

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    x = dcgan_trunk(x, self.features, negative_slope=self.negative_slope, norm=self.norm,
                    conv_impl=self.conv_impl, bn_axis_name=self.bn_axis_name, train=train)
    last = nn.Conv(1, x.shape[1:3], padding="VALID", kernel_init=dcgan_kernel_init)
    x = maybe_spectral_norm(last, train, self.norm == "spectral")(x)
    return x.reshape(x.shape[0])
