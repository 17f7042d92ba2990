"""Shared building blocks."""

from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

# DCGAN (Radford et al., 2016, sec. 4): weights ~ N(0, 0.02), BatchNorm scale ~ N(1, 0.02).
dcgan_kernel_init = nn.initializers.normal(0.02)


def dcgan_scale_init(key, shape, dtype=jnp.float32):
  return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)


def batch_norm(train: bool, *, momentum: float = 0.9, epsilon: float = 1e-5,
               scale_init: Callable[..., Any] = nn.initializers.ones) -> nn.BatchNorm:
  """BatchNorm with PyTorch's defaults (running-average momentum 0.1, i.e. 0.9 here)."""
  return nn.BatchNorm(use_running_average=not train, momentum=momentum,
                      epsilon=epsilon, scale_init=scale_init)


# Output phase a (0 = even row, 1 = odd row) -> {input offset d: kernel tap k}.
# Definition of the stride-2, kernel-4 up-sampling used by DCGAN
# (PyTorch ``ConvTranspose2d(k=4, s=2, p=1)``):  out[2i + a] = sum_d x[i + d] * W[_TAPS[a][d]].
_TAPS = ({-1: 3, 0: 1}, {0: 2, 1: 0})


def upsample2x_transpose(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """Transposed convolution: dilate the input by 2, pad 2, convolve with the flipped kernel."""
  return lax.conv_general_dilated(
      x, kernel[::-1, ::-1], window_strides=(1, 1), padding=((2, 2), (2, 2)),
      lhs_dilation=(2, 2), dimension_numbers=("NHWC", "HWIO", "NHWC"))


def subpixel_kernel(kernel: jax.Array) -> jax.Array:
  """Rearranges a (4, 4, I, O) up-sampling kernel into a (3, 3, I, 4*O) convolution kernel.

  Output channel block ``(a, b)`` of the 3x3 convolution computes output phase
  ``(a, b)`` of the transposed convolution; depth-to-space then interleaves them.
  """
  kh, kw, cin, cout = kernel.shape
  assert (kh, kw) == (4, 4), kernel.shape
  k3 = jnp.zeros((3, 3, cin, 2, 2, cout), kernel.dtype)
  for a in (0, 1):
    for b in (0, 1):
      for dy, ky in _TAPS[a].items():
        for dx, kx in _TAPS[b].items():
          k3 = k3.at[dy + 1, dx + 1, :, a, b, :].set(kernel[ky, kx])
  return k3.reshape(3, 3, cin, 4 * cout)


def upsample2x_subpixel(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """The same function as :func:`upsample2x_transpose`, as a 3x3 conv + depth-to-space.

  On XLA:CPU this is several times faster than the dilated (transposed)
  convolution, which spends 3/4 of its multiplies on inserted zeros.
  """
  n, h, w, _ = x.shape
  cout = kernel.shape[-1]
  y = lax.conv_general_dilated(
      x, subpixel_kernel(kernel), window_strides=(1, 1), padding=((1, 1), (1, 1)),
      dimension_numbers=("NHWC", "HWIO", "NHWC"))
  y = y.reshape(n, h, w, 2, 2, cout).transpose(0, 1, 3, 2, 4, 5)
  return y.reshape(n, 2 * h, 2 * w, cout)


UPSAMPLE_IMPLS = {"transpose": upsample2x_transpose, "subpixel": upsample2x_subpixel}


class Upsample2x(nn.Module):
  """Stride-2, kernel-4 learned up-sampling (DCGAN's "fractionally-strided convolution").

  ``impl`` picks the formulation, not the function: ``"transpose"`` and
  ``"subpixel"`` compute the same output from the same parameters.
  """
  features: int
  use_bias: bool = True
  impl: str = "subpixel"
  kernel_init: Callable[..., Any] = dcgan_kernel_init

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if self.impl not in UPSAMPLE_IMPLS:
      raise ValueError(f"unknown upsample impl {self.impl!r}; choose one of {sorted(UPSAMPLE_IMPLS)}")
    kernel = self.param("kernel", self.kernel_init, (4, 4, x.shape[-1], self.features))
    y = UPSAMPLE_IMPLS[self.impl](x, kernel.astype(x.dtype))
    if self.use_bias:
      y = y + self.param("bias", nn.initializers.zeros, (self.features,))
    return y
