"""Shared building blocks."""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from jaxgan.state import mode

# DCGAN (Radford et al., 2016, sec. 4): weights ~ N(0, 0.02), BatchNorm scale ~ N(1, 0.02).
dcgan_kernel_init = nn.initializers.normal(0.02)


def dcgan_scale_init(key, shape, dtype=jnp.float32):
  return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)


class WeightNormDense(nn.Module):
  r"""Dense layer with weight normalisation and data-dependent initialisation (Salimans & Kingma, 2016).

  .. math:: y = x\,\big(v \odot g / \|v\|_{\text{col}}\big) + b

  ``kernel`` (``v``, init N(0, 0.1^2) as Salimans et al.'s MNIST code),
  ``scale`` (``g``, init 1) and ``bias`` (``b``, init 0) are parameters.
  With ``train_scale=False`` the scale is fixed after initialisation (the
  hidden layers of Salimans et al.'s 2016 MNIST discriminator; only the output
  layer trains its scale): it gets no gradient.

  ``data_init=True`` (call through :func:`weight_norm_data_init` with
  ``mutable=["params"]``) is the data-dependent initialisation: the layer
  measures the per-unit mean ``m`` and standard deviation ``s`` of
  ``x (v g / ||v||)`` on the batch, sets ``g <- g / s`` and ``b <- -m / s``,
  and returns the normalised ``(y - m) / s`` so the layers above initialise on
  unit-variance inputs.
  """
  features: int
  train_scale: bool = True
  kernel_init: Callable[..., Any] = nn.initializers.normal(0.1)

  @nn.compact
  def __call__(self, x: jax.Array, data_init: bool = False) -> jax.Array:
    v = self.param("kernel", self.kernel_init, (x.shape[-1], self.features), jnp.float32)
    g = self.param("scale", nn.initializers.ones, (self.features,), jnp.float32)
    b = self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
    if not self.train_scale:
      g = lax.stop_gradient(g)
    w = v * (g / jnp.sqrt(jnp.sum(jnp.square(v), axis=0) + 1e-12))
    y = x @ w.astype(x.dtype)
    if data_init:
      m = jnp.mean(y, axis=0)
      s = jnp.sqrt(jnp.mean(jnp.square(y - m), axis=0) + 1e-12)
      self.put_variable("params", "scale", g / s)
      self.put_variable("params", "bias", -m / s)
      return (y - m) / s
    return y + b.astype(y.dtype)


# The layers spectral normalisation divides by their weight's largest singular value: the weight
# read as a matrix (a convolution's kernel [kh, kw, in, out] as [kh*kw*in, out]; an embedding's
# table [classes, features]), as Miyato et al. (2018) do.
SPECTRAL_NORM_LAYERS = (nn.Dense, nn.Conv, nn.ConvTranspose, nn.Embed)


def spectral_norm(layer: nn.Module, train: bool, n_steps: int = 1) -> Callable[..., jax.Array]:
  r"""``layer`` with spectral normalisation (Miyato, Kataoka, Koyama & Yoshida, 2018): call the
  result as the layer.

  .. math:: \bar W = W / \sigma(W), \quad \sigma(W) \approx v^\top W u,\;
            v = \frac{W u}{\|W u\|},\; u \leftarrow \frac{W^\top v}{\|W^\top v\|}

  ``sigma`` is estimated by ``n_steps`` power iterations (the paper's 1) from the vector ``u`` of
  the previous call, so the estimate sharpens as training goes. ``u`` (and the last ``sigma``)
  live in the ``batch_stats`` collection, which the state carries and checkpoints; they are
  updated only in training mode (``train=True``: every discriminator pass of a D update runs one
  power iteration, as the reference implementations do), and no gradient flows through them.
  Over a mapped axis the update is the same on every device (it depends only on the replicated
  weight and vector), so replicas stay identical. Built on ``flax.linen.SpectralNorm``; a layer
  type not in :data:`SPECTRAL_NORM_LAYERS` is a ``ValueError``.
  """
  if not isinstance(layer, SPECTRAL_NORM_LAYERS):
    names = ", ".join(c.__name__ for c in SPECTRAL_NORM_LAYERS)
    raise ValueError(f"spectral normalisation supports {names} layers, not "
                     f"{type(layer).__name__}; normalise those layers or leave this one plain")
  return functools.partial(nn.SpectralNorm(layer, n_steps=n_steps), update_stats=train)


def maybe_spectral_norm(layer: nn.Module, train: bool, spectral: bool) -> Callable[..., jax.Array]:
  """:func:`spectral_norm` ``(layer, train)`` when ``spectral``, else ``layer`` itself."""
  return spectral_norm(layer, train) if spectral else layer


def batch_norm(train: bool, *, momentum: float = 0.9, epsilon: float = 1e-5,
               scale_init: Callable[..., Any] = nn.initializers.ones,
               axis_name: str | None = None) -> nn.BatchNorm:
  """BatchNorm with PyTorch's defaults (running-average momentum 0.1, i.e. 0.9 here).

  ``axis_name``: in training mode, the batch statistics are averaged over that
  mapped axis (cross-device "sync" BatchNorm: with equal per-device batches the
  result is that of one device seeing the whole batch).
  """
  return nn.BatchNorm(use_running_average=not train, momentum=momentum,
                      epsilon=epsilon, scale_init=scale_init, axis_name=axis_name)


# Output phase a (0 = even row, 1 = odd row) -> {input offset d: kernel tap k}.
# Definition of the stride-2, kernel-4 up-sampling used by DCGAN
# (PyTorch ``ConvTranspose2d(k=4, s=2, p=1)``):  out[2i + a] = sum_d x[i + d] * W[_TAPS[a][d]].
_TAPS = ({-1: 3, 0: 1}, {0: 2, 1: 0})

_DN = ("NHWC", "HWIO", "NHWC")


def _conv(x: jax.Array, kernel: jax.Array, strides=(1, 1), padding="VALID", **kwargs) -> jax.Array:
  return lax.conv_general_dilated(x, kernel, strides, padding, dimension_numbers=_DN, **kwargs)


def _depth_to_space(y: jax.Array, cout: int) -> jax.Array:
  """``[N, H, W, (a, b, C)]`` -> ``[N, 2H, 2W, C]`` with ``out[2i + a, 2j + b] = y[i, j, a, b]``."""
  n, h, w, _ = y.shape
  y = y.reshape(n, h, w, 2, 2, cout).transpose(0, 1, 3, 2, 4, 5)
  return y.reshape(n, 2 * h, 2 * w, cout)


def _interleave(phases, cout: int) -> jax.Array:
  """``phases[a][b]`` of shape ``[N, H, W, C]`` -> ``[N, 2H, 2W, C]`` (``out[2i+a, 2j+b]``)."""
  n, h, w, _ = phases[0][0].shape
  y = jnp.stack([jnp.stack(row, axis=3) for row in phases], axis=2)  # n, h, a, w, b, c
  return y.reshape(n, 2 * h, 2 * w, cout)


def upsample2x_transpose(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """Transposed convolution: dilate the input by 2, pad 2, convolve with the flipped kernel."""
  return _conv(x, kernel[::-1, ::-1], padding=((2, 2), (2, 2)), lhs_dilation=(2, 2))


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

  5 of the 9 taps of every output phase are zeros: 2.25x the multiplies of
  the other formulations, in one large convolution.
  """
  return _depth_to_space(_conv(x, subpixel_kernel(kernel), padding=((1, 1), (1, 1))),
                         kernel.shape[-1])


def phase_kernel(kernel: jax.Array) -> jax.Array:
  """(4, 4, I, O) -> (2, 2, I, 2, 2, O): the 2x2 kernel of each output phase.

  ``K[u, v, :, a, b, :] = W[_TAPS[a][a + u - 1], _TAPS[b][b + v - 1]]``: output
  phase ``a`` reads inputs ``i + a - 1`` (``u = 0``) and ``i + a`` (``u = 1``).
  Since ``_TAPS[a][a + u - 1] = 3 - a - 2u``, this is the kernel reversed and
  split into (u, a) pairs.
  """
  kh, kw, cin, cout = kernel.shape
  assert (kh, kw) == (4, 4), kernel.shape
  k = kernel[::-1, ::-1].reshape(2, 2, 2, 2, cin, cout)  # (u, a, v, b, I, O)
  return k.transpose(0, 2, 4, 1, 3, 5)


def upsample2x_phase(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """Four 2x2 convolutions, one per output phase, then interleaving.

  Only the non-zero taps are multiplied (a quarter of the multiplies of the
  dilated form, 4/9 of the sub-pixel form); phase ``(a, b)`` pads the input by
  ``1 - a`` before and ``a`` after.
  """
  k = phase_kernel(kernel)
  return _interleave(
      [[_conv(x, k[:, :, :, a, b], padding=((1 - a, a), (1 - b, b))) for b in (0, 1)]
       for a in (0, 1)], kernel.shape[-1])


def upsample2x_phase_padded(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """One 2x2 convolution to all four phases over the input padded by one.

  It yields (H+1) x (W+1) positions per phase; phase ``(a, b)`` keeps the
  window starting at ``(a, b)``. No zero taps, but ``(H+1)(W+1)/(HW)`` of the
  needed multiplies (1.27x at 8x8), in a single convolution with ``4*O`` outputs.
  """
  n, h, w, cin = x.shape
  cout = kernel.shape[-1]
  xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))  # explicit pad + VALID: faster on XLA:CPU
  z = _conv(xp, phase_kernel(kernel).reshape(2, 2, cin, 4 * cout))
  z = z.reshape(n, h + 1, w + 1, 2, 2, cout)
  return _interleave([[z[:, a:a + h, b:b + w, a, b] for b in (0, 1)] for a in (0, 1)], cout)


# ---------------------------------------------------------------------------
# The stride-2 convolution and its adjoint, with hand-picked gradients.
#
# ``conv_down(x, W)`` (kernel 4, stride 2, padding 1; DCGAN's discriminator
# layer) and ``upsample(y, W)`` are adjoint: <upsample(y, W), x> =
# <y, conv_down(x, W^T)> with W^T the kernel with its channel axes swapped.
# So the gradients of each are the other one and one weight-gradient
# correlation, and both layers can be computed with three kernels:
#   conv_down forward            (a plain strided convolution),
#   upsample forward             (the best up-sampling formulation for the shape),
#   weight gradient of conv_down (the correlation of its input and output cotangent).
# XLA's own derivatives are not always that: the weight gradient of the
# dilated up-sampling is a convolution that XLA:CPU runs ~20x slower.


def conv_down(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """Kernel-4, stride-2, padding-1 convolution (``nn.Conv(k, (4, 4), 2, padding=1)``)."""
  return _conv(x, kernel, (2, 2), ((1, 1), (1, 1)))


# Largest cotangent+input chunk (in elements per batch chunk) for one weight-gradient
# convolution: on XLA:CPU the weight gradient of a large batch runs faster as a sum over
# batch chunks that fit in the cache (2-core AMD EPYC): up to 1.5x for DCGAN's stride-2
# convolutions at batch 256.
_KERNEL_GRAD_CHUNK = 1 << 20
# The same for 3x3 stride-1 convolutions (the ResNets), where smaller chunks measured faster
# (jax 0.10.1): the SNGAN ResNet step (64 channels, batch 64) took 8.2 s in chunks of 1 << 20
# elements and 7.4 s in chunks of 1 << 18, against 18.0 s with XLA's whole-batch gradients.
_STRIDE1_GRAD_CHUNK = 1 << 18


def _kernel_grad(conv: Callable[[jax.Array, jax.Array], jax.Array], x: jax.Array,
                 g: jax.Array, kernel_shape, limit: int | None = None) -> jax.Array:
  """d<conv(x, W), g>/dW for input ``x`` and output cotangent ``g``, summed over batch chunks
  of at most ``limit`` elements of ``x`` and ``g`` (default ``_KERNEL_GRAD_CHUNK``)."""
  limit = _KERNEL_GRAD_CHUNK if limit is None else limit
  def grad(x, g):
    return jax.linear_transpose(lambda k: conv(x, k),
                                jax.ShapeDtypeStruct(tuple(kernel_shape), g.dtype))(g)[0]
  n = x.shape[0]
  per_example = x[0].size + g[0].size
  chunk = n
  while chunk % 2 == 0 and chunk * per_example > limit:
    chunk //= 2
  if chunk == n:
    return grad(x, g)
  total = None
  for i in range(0, n, chunk):
    part = grad(x[i:i + chunk], g[i:i + chunk])
    total = part if total is None else total + part
  return total


def _upsample_forward(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """The fastest exact up-sampling formulation on XLA:CPU for this shape (measured)."""
  h, w, cin = x.shape[1:]
  if min(cin, kernel.shape[-1]) < 8:       # e.g. the 1-channel image layer
    return upsample2x_transpose(x, kernel)
  if min(h, w) >= 8:                        # padding overhead <= (9/8)^2
    return upsample2x_phase_padded(x, kernel)
  return upsample2x_phase(x, kernel)


@jax.custom_vjp
def conv_down_adjoint(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """:func:`conv_down` whose gradient is computed by the adjoint pair (see above)."""
  return conv_down(x, kernel)


# The forward rules call the custom_vjp functions themselves, not the plain formulation:
# under a second differentiation (a gradient penalty differentiates the input gradient
# with respect to the parameters) JAX differentiates the forward rule's primal
# computation. Plain ``conv_down`` there would get XLA's own derivatives (an
# input-dilated convolution for the input gradient, an unchunked weight gradient),
# 5-16 % slower in the WGAN-GP critic step than the adjoint pair on XLA:CPU
# (docs/performance.md, ``bench_gp.py``). Each call strips one level of
# differentiation, so the recursion ends in the plain formulation.
def _conv_down_fwd(x, kernel):
  return conv_down_adjoint(x, kernel), (x, kernel)


def _conv_down_bwd(res, g):
  x, kernel = res
  return (upsample2x_adjoint(g, kernel.swapaxes(2, 3)),
          _kernel_grad(conv_down, x, g, kernel.shape))


conv_down_adjoint.defvjp(_conv_down_fwd, _conv_down_bwd)


@jax.custom_vjp
def upsample2x_adjoint(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """Up-sampling with the forward chosen per shape and gradients from the adjoint pair.

  Forward: :func:`upsample2x_phase`, :func:`upsample2x_phase_padded` or
  :func:`upsample2x_transpose`, whichever was fastest on XLA:CPU for such a
  shape. Input gradient: the stride-2 convolution :func:`conv_down`. Kernel
  gradient: the weight gradient of that convolution. Reverse-mode derivatives
  of any order work (the backward pass is again made of these functions);
  forward-mode (``jax.jvp``) does not go through a ``custom_vjp``: use another
  formulation for it.
  """
  return _upsample_forward(x, kernel)


def _upsample_fwd(x, kernel):
  return upsample2x_adjoint(x, kernel), (x, kernel)


def _upsample_bwd(res, g):
  x, kernel = res
  kernel_t = kernel.swapaxes(2, 3)
  return (conv_down_adjoint(g, kernel_t),
          _kernel_grad(conv_down, g, x, kernel_t.shape).swapaxes(2, 3))


upsample2x_adjoint.defvjp(_upsample_fwd, _upsample_bwd)


def _stride1_backward_padding(kernel_shape, padding):
  """The padding of the input gradient of a stride-1 convolution: ``k - 1 - p`` per side."""
  return tuple((k - 1 - lo, k - 1 - hi) for k, (lo, hi) in zip(kernel_shape[:2], padding))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def conv_stride1_adjoint(x: jax.Array, kernel: jax.Array, padding) -> jax.Array:
  """Stride-1 NHWC convolution (explicit ``padding`` ``((lo, hi), (lo, hi))``, each side in
  ``[0, k - 1]``) whose weight gradient is summed over batch chunks (see
  ``_STRIDE1_GRAD_CHUNK``) and whose input gradient is again this convolution, with the
  kernel flipped and transposed and padding ``k - 1 - p``: reverse-mode derivatives of any
  order keep the fast weight gradient. A 1x1 kernel's weight gradient is one matrix
  product (XLA:CPU's convolution took 2.7 s for it at 32x32x64 and batch 128, the product
  0.04 s). The 3x3 and 1x1 convolutions of the ResNets."""
  return _conv(x, kernel, (1, 1), padding)


def _stride1_fwd(x, kernel, padding):
  return conv_stride1_adjoint(x, kernel, padding), (x, kernel)


def _stride1_bwd(padding, res, g):
  x, kernel = res
  back = jnp.flip(kernel, (0, 1)).swapaxes(2, 3)
  dx = conv_stride1_adjoint(g, back, _stride1_backward_padding(kernel.shape, padding))
  if kernel.shape[:2] == (1, 1):   # no padding (each side <= k - 1 = 0): a matrix product
    cin, cout = kernel.shape[2:]
    dk = (x.reshape(-1, cin).T @ g.reshape(-1, cout)).reshape(kernel.shape)
  else:
    dk = _kernel_grad(lambda x, k: _conv(x, k, (1, 1), padding), x, g, kernel.shape,
                      _STRIDE1_GRAD_CHUNK)
  return dx, dk


conv_stride1_adjoint.defvjp(_stride1_fwd, _stride1_bwd)


UPSAMPLE_IMPLS = {
    "transpose": upsample2x_transpose,
    "subpixel": upsample2x_subpixel,
    "phase": upsample2x_phase,
    "phase_padded": upsample2x_phase_padded,
    "adjoint": upsample2x_adjoint,
}

# What "auto" means per backend. XLA:GPU/TPU lower the dilated (transposed) convolution and
# its gradients natively (cuDNN / the TPU convolution unit); XLA:CPU does not (see above).
_AUTO_UPSAMPLE = {"cpu": "adjoint"}
_AUTO_CONV = {"cpu": "adjoint"}


def resolve_upsample_impl(impl: str) -> str:
  """``"auto"`` -> the formulation for ``jax.default_backend()``; other names are checked."""
  if impl == "auto":
    return _AUTO_UPSAMPLE.get(jax.default_backend(), "transpose")
  if impl not in UPSAMPLE_IMPLS:
    raise ValueError(f"unknown upsample impl {impl!r}; choose 'auto' or one of {sorted(UPSAMPLE_IMPLS)}")
  return impl


class Upsample2x(nn.Module):
  """Stride-2, kernel-4 learned up-sampling (DCGAN's "fractionally-strided convolution").

  ``out[2i + a, 2j + b] = sum_{dy, dx} x[i + dy, j + dx] W[_TAPS[a][dy], _TAPS[b][dx]]``
  (+ bias), i.e. PyTorch's ``ConvTranspose2d(k=4, s=2, p=1)`` with its kernel
  as ``W[ky, kx, in, out]``. ``impl`` picks the formulation, not the function:
  every entry of :data:`UPSAMPLE_IMPLS` computes the same output from the
  same parameters (``kernel`` (4, 4, in, out), ``bias``), so checkpoints are
  interchangeable; ``"auto"`` picks the fastest for the default backend.
  """
  features: int
  use_bias: bool = True
  impl: str = "auto"
  kernel_init: Callable[..., Any] = dcgan_kernel_init

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    fn = UPSAMPLE_IMPLS[resolve_upsample_impl(self.impl)]
    kernel = self.param("kernel", self.kernel_init, (4, 4, x.shape[-1], self.features))
    y = fn(x, kernel.astype(x.dtype))
    if self.use_bias:
      y = y + self.param("bias", nn.initializers.zeros, (self.features,))
    return y


# ---------------------------------------------------------------------------
# Drop-in ``conv_general_dilated`` for ``nn.Conv``: same module, same parameters.

def _plain_nhwc(lhs, rhs, lhs_dilation, rhs_dilation, dimension_numbers, feature_group_count,
                batch_group_count, precision, preferred_element_type) -> bool:
  """Whether a convolution is an undilated, ungrouped NHWC/HWIO one in the inputs' dtype."""
  if lhs.ndim != 4:
    return False
  if any(d is not None and tuple(d) != (1, 1) for d in (lhs_dilation, rhs_dilation)):
    return False
  if feature_group_count != 1 or batch_group_count != 1 or precision is not None:
    return False
  if preferred_element_type is not None or lhs.dtype != rhs.dtype:
    return False
  return lax.conv_dimension_numbers(lhs.shape, rhs.shape, _DN) == lax.conv_dimension_numbers(
      lhs.shape, rhs.shape, dimension_numbers)


def _is_conv_down(lhs, rhs, window_strides, padding, *plain) -> bool:
  if rhs.shape[:2] != (4, 4) or tuple(window_strides) != (2, 2):
    return False
  if isinstance(padding, str) or [tuple(p) for p in padding] != [(1, 1), (1, 1)]:
    return False
  return _plain_nhwc(lhs, rhs, *plain)


def _stride1_padding(lhs, rhs, window_strides, padding, *plain):
  """The explicit padding of a plain stride-1 NHWC convolution that
  :func:`conv_stride1_adjoint` computes (each side in ``[0, k - 1]``), else None."""
  if tuple(window_strides) != (1, 1) or not _plain_nhwc(lhs, rhs, *plain):
    return None
  if isinstance(padding, str):
    padding = lax.padtype_to_pads(lhs.shape[1:3], rhs.shape[:2], (1, 1), padding)
  padding = tuple((int(lo), int(hi)) for lo, hi in padding)
  if not all(0 <= p <= k - 1 for k, pair in zip(rhs.shape[:2], padding) for p in pair):
    return None
  return padding


def conv_general_dilated_adjoint(lhs, rhs, window_strides, padding, lhs_dilation=None,
                                 rhs_dilation=None, dimension_numbers=None,
                                 feature_group_count=1, batch_group_count=1, precision=None,
                                 preferred_element_type=None, **kwargs):
  """``lax.conv_general_dilated`` that routes the kernel-4 stride-2 padding-1 NHWC case
  to :func:`conv_down_adjoint` and stride-1 NHWC convolutions to
  :func:`conv_stride1_adjoint` (same value, faster gradients on XLA:CPU); anything else
  goes to ``lax.conv_general_dilated`` unchanged. Pass it as ``nn.Conv(...,
  conv_general_dilated=conv_general_dilated_adjoint)``."""
  args = (lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers,
          feature_group_count, batch_group_count, precision, preferred_element_type)
  if dimension_numbers is not None and not any(v is not None for v in kwargs.values()):
    if _is_conv_down(*args):
      return conv_down_adjoint(lhs, rhs)
    stride1 = _stride1_padding(*args)
    if stride1 is not None:
      return conv_stride1_adjoint(lhs, rhs, stride1)
  return lax.conv_general_dilated(*args, **kwargs)


CONV_IMPLS = {"xla": lax.conv_general_dilated, "adjoint": conv_general_dilated_adjoint}


def resolve_conv_impl(impl: str) -> str:
  """``"auto"`` -> the convolution formulation for ``jax.default_backend()``."""
  if impl == "auto":
    return _AUTO_CONV.get(jax.default_backend(), "xla")
  if impl not in CONV_IMPLS:
    raise ValueError(f"unknown conv impl {impl!r}; choose 'auto' or one of {sorted(CONV_IMPLS)}")
  return impl


def conv(features: int, kernel_size: Sequence[int], *, impl: str = "auto", **kwargs) -> nn.Conv:
  """``nn.Conv(features, kernel_size, **kwargs)`` computed with the formulation ``impl``
  (``"auto"``: the backend's fastest; on XLA:CPU, the gradients of stride-1 and of 4x4
  stride-2 padding-1 convolutions come from :func:`conv_general_dilated_adjoint`). Same
  module, same parameters, same values whichever formulation runs."""
  return nn.Conv(features, tuple(kernel_size),
                 conv_general_dilated=CONV_IMPLS[resolve_conv_impl(impl)], **kwargs)


def uses_batchnorm(module: nn.Module, *args) -> bool:
  """Whether ``module`` called on ``args`` (arrays or ``jax.ShapeDtypeStruct``) runs a BatchNorm layer.

  Traced shape-only (nothing is computed) with a method interceptor that sees
  every submodule call, so it finds the layer itself, not a ``batch_stats``
  collection (which other layers, e.g. spectral normalisation, also keep).
  """
  found = []

  def interceptor(next_fun, call_args, call_kwargs, context):
    if isinstance(context.module, nn.BatchNorm):
      found.append(context.module)
    return next_fun(*call_args, **call_kwargs)

  with nn.intercept_methods(interceptor):
    key = jax.random.PRNGKey(0)
    jax.eval_shape(lambda *xs: module.init({"params": key, "dropout": key}, *xs,
                                           **mode(module, False)), *args)
  return bool(found)
