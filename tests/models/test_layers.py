"""Every formulation of DCGAN's up-sampling and stride-2 convolution is the same function.

References are written from the definitions with numpy loops (float64), not
with any of the formulations under test:

* up-sampling, per output pixel: ``out[2i+a, 2j+b] = sum_{dy,dx} x[i+dy, j+dx] W[T[a][dy], T[b][dx]]``
  with ``T = ({-1: 3, 0: 1}, {0: 2, 1: 0})``;
* up-sampling, per input pixel as PyTorch's ``ConvTranspose2d(k=4, s=2, p=1)``
  scatters it: ``out[2i + ky - 1, 2j + kx - 1] += x[i, j] W[ky, kx]``.
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from jaxgan.models import DCGANDiscriminator, DCGANGenerator, build_models
from jaxgan.models import layers

TAPS = ({-1: 3, 0: 1}, {0: 2, 1: 0})
IMPLS = sorted(layers.UPSAMPLE_IMPLS)
# Shapes (N, H, W, Cin, Cout), non-square so that a swapped axis shows; together they
# take every branch of the per-shape forward of "adjoint" (few channels, small, >= 8x8).
SHAPES = [(2, 3, 4, 5, 6), (2, 4, 5, 8, 9), (1, 8, 9, 8, 8)]


def _rand(seed, shape, scale=1.0):
  return scale * np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def ref_upsample(x, w):
  """Loop over output pixels (the definition)."""
  x, w = np.float64(x), np.float64(w)
  n, h, wd, _ = x.shape
  out = np.zeros((n, 2 * h, 2 * wd, w.shape[-1]))
  for i in range(h):
    for j in range(wd):
      for a in (0, 1):
        for b in (0, 1):
          for dy, ky in TAPS[a].items():
            for dx, kx in TAPS[b].items():
              if 0 <= i + dy < h and 0 <= j + dx < wd:
                out[:, 2 * i + a, 2 * j + b] += x[:, i + dy, j + dx] @ w[ky, kx]
  return out


def ref_upsample_scatter(x, w):
  """PyTorch ConvTranspose2d(k=4, s=2, p=1): every input pixel scatters the kernel."""
  x, w = np.float64(x), np.float64(w)
  n, h, wd, _ = x.shape
  out = np.zeros((n, 2 * h + 2, 2 * wd + 2, w.shape[-1]))  # 1 pixel of margin per side
  for i in range(h):
    for j in range(wd):
      for ky in range(4):
        for kx in range(4):
          out[:, 2 * i + ky, 2 * j + kx] += x[:, i, j] @ w[ky, kx]
  return out[:, 1:-1, 1:-1]


def ref_upsample_vjp(x, w, g):
  """Cotangents of x and W for output cotangent g, from the same scatter."""
  x, w, g = np.float64(x), np.float64(w), np.float64(g)
  n, h, wd, _ = x.shape
  gp = np.pad(g, ((0, 0), (1, 1), (1, 1), (0, 0)))
  dx, dw = np.zeros_like(x), np.zeros_like(w)
  for i in range(h):
    for j in range(wd):
      for ky in range(4):
        for kx in range(4):
          gg = gp[:, 2 * i + ky, 2 * j + kx]
          dx[:, i, j] += gg @ w[ky, kx].T
          dw[ky, kx] += x[:, i, j].T @ gg
  return dx, dw


def _close(actual, expected, tol=1e-5):
  expected = np.asarray(expected, np.float64)
  scale = max(1.0, float(np.max(np.abs(expected))))
  np.testing.assert_allclose(np.asarray(actual, np.float64), expected, rtol=tol, atol=tol * scale)


def test_the_taps_are_the_documented_definition_and_both_references_agree():
  assert layers._TAPS == TAPS
  x, w = _rand(0, (2, 3, 4, 3)), _rand(1, (4, 4, 3, 2))
  np.testing.assert_allclose(ref_upsample(x, w), ref_upsample_scatter(x, w), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("shape", SHAPES)
def test_upsample_formulation_equals_the_definition_in_value_and_gradients(impl, shape):
  n, h, w, cin, cout = shape
  x, k = _rand(1, (n, h, w, cin)), _rand(2, (4, 4, cin, cout), 0.5)
  g = _rand(3, (n, 2 * h, 2 * w, cout))

  @jax.jit
  def value_and_vjp(x, k, g):
    y, vjp = jax.vjp(layers.UPSAMPLE_IMPLS[impl], x, k)
    return y, vjp(g)

  y, (dx, dk) = value_and_vjp(x, k, g)
  assert y.shape == (n, 2 * h, 2 * w, cout)
  _close(y, ref_upsample(x, k))
  ref_dx, ref_dk = ref_upsample_vjp(x, k, g)
  _close(dx, ref_dx)
  _close(dk, ref_dk)


def test_all_upsample_formulations_agree_in_second_order_gradients():
  # d/dW of ||d/dx <up(x, W), sin(up(x, W))>||^2: reverse over reverse, as in WGAN-GP.
  x, k = _rand(6, (2, 4, 5, 8)), _rand(7, (4, 4, 8, 8), 0.3)

  def objective(fn, x, k):
    gx = jax.grad(lambda x: jnp.sum(jnp.sin(fn(x, k))))(x)
    return jnp.sum(gx ** 2)

  results = {impl: jax.jit(jax.grad(functools.partial(objective, fn), argnums=(0, 1)))(x, k)
             for impl, fn in layers.UPSAMPLE_IMPLS.items()}
  base = results.pop("transpose")
  for impl, (dx, dk) in results.items():
    _close(dx, base[0], 1e-4)
    _close(dk, base[1], 1e-4)


def test_phase_kernel_matches_the_taps():
  k = _rand(8, (4, 4, 2, 3))
  pk = np.asarray(layers.phase_kernel(k))
  for a in (0, 1):
    for b in (0, 1):
      for u in (0, 1):
        for v in (0, 1):
          np.testing.assert_array_equal(pk[u, v, :, a, b], k[TAPS[a][a + u - 1], TAPS[b][b + v - 1]])


def _conv_ref(x, k):
  return lax.conv_general_dilated(x, k, (2, 2), ((1, 1), (1, 1)),
                                  dimension_numbers=("NHWC", "HWIO", "NHWC"))


@pytest.mark.parametrize("shape", [(2, 8, 6, 3, 5), (2, 8, 10, 8, 8), (1, 16, 16, 8, 16)])
def test_adjoint_stride2_conv_equals_xla_conv_in_value_and_gradients(shape):
  n, h, w, cin, cout = shape
  x, k = _rand(9, (n, h, w, cin)), _rand(10, (4, 4, cin, cout), 0.5)
  g = _rand(11, (n, h // 2, w // 2, cout))
  y, vjp = jax.vjp(layers.conv_down_adjoint, x, k)
  y_ref, vjp_ref = jax.vjp(_conv_ref, x, k)
  _close(y, y_ref)
  for a, b in zip(vjp(g), vjp_ref(g)):
    _close(a, b)


def test_kernel_gradient_summed_over_batch_chunks_is_the_whole_batch_gradient(monkeypatch):
  x, k = _rand(20, (6, 8, 8, 3)), _rand(21, (4, 4, 3, 4))
  g = _rand(22, (6, 4, 4, 4))
  whole = jax.vjp(_conv_ref, x, k)[1](g)[1]
  monkeypatch.setattr(layers, "_KERNEL_GRAD_CHUNK", 1)   # batch 6 -> chunks of 3
  chunked = jax.jit(lambda x, k, g: jax.vjp(layers.conv_down_adjoint, x, k)[1](g)[1])(x, k, g)
  _close(chunked, whole)


def test_stride2_conv_and_upsampling_are_adjoint():
  # <up(y, W), x> = <y, conv_down(x, W^T)>: the identity the "adjoint" gradients rest on.
  x, y, k = _rand(12, (2, 8, 10, 4)), _rand(13, (2, 4, 5, 6)), _rand(14, (4, 4, 6, 4))
  lhs = np.sum(np.float64(layers.upsample2x_transpose(y, k)) * x)
  rhs = np.sum(np.float64(layers.conv_down(x, k.swapaxes(2, 3))) * y)
  assert lhs == pytest.approx(rhs, rel=1e-5)


def test_nn_conv_with_the_adjoint_convolution_is_nn_conv():
  x = _rand(15, (2, 8, 8, 3))
  cases = [dict(features=5, kernel_size=(4, 4), strides=(2, 2), padding=((1, 1), (1, 1))),
           dict(features=5, kernel_size=(4, 4), strides=(2, 2), padding="SAME")]  # not routed
  for kw in cases:
    plain = nn.Conv(**kw)
    adjoint = nn.Conv(**kw, conv_general_dilated=layers.conv_general_dilated_adjoint)
    variables = jax.jit(plain.init)(jax.random.PRNGKey(0), x)
    assert jax.tree.map(jnp.shape, jax.eval_shape(adjoint.init, jax.random.PRNGKey(0), x)) == \
        jax.tree.map(jnp.shape, variables)

    @functools.partial(jax.jit, static_argnums=0)
    def value_and_grads(module, params, x):
      return jax.value_and_grad(lambda p, x: jnp.sum(jnp.cos(module.apply({"params": p}, x))),
                                (0, 1))(params, x)

    jax.tree.map(_close, value_and_grads(adjoint, variables["params"], x),
                 value_and_grads(plain, variables["params"], x))


def test_adjoint_conv_second_order_gradients_match_xla():
  # The WGAN-GP pattern: grad over params of a penalty on the input gradient.
  x, k = _rand(16, (2, 8, 8, 4)), _rand(17, (4, 4, 4, 8), 0.3)

  def penalty(conv, k, x):
    gx = jax.grad(lambda x: jnp.sum(jnp.tanh(conv(x, k))))(x)
    return jnp.sum((gx ** 2).sum(axis=(1, 2, 3)) ** 0.5)

  a = jax.grad(functools.partial(penalty, layers.conv_down_adjoint))(k, x)
  b = jax.grad(functools.partial(penalty, _conv_ref))(k, x)
  _close(a, b, 1e-4)


def _conv1_ref(x, k, padding):
  return lax.conv_general_dilated(x, k, (1, 1), padding, dimension_numbers=("NHWC", "HWIO", "NHWC"))


# (N, H, W, Cin, Cout), kernel side, padding: "same" 3x3 and 1x1, a 4x4 VALID convolution
# (DCGAN's last layer), an asymmetric padding, a non-square image.
STRIDE1 = [((6, 8, 8, 3, 4), 3, ((1, 1), (1, 1))), ((4, 6, 5, 5, 3), 1, ((0, 0), (0, 0))),
           ((4, 4, 4, 8, 1), 4, ((0, 0), (0, 0))), ((2, 7, 9, 2, 3), 3, ((0, 2), (2, 1)))]


@pytest.mark.parametrize("shape,size,padding", STRIDE1)
@pytest.mark.parametrize("chunk", [1 << 18, 1])
def test_stride1_conv_equals_xla_conv_in_value_and_gradients(monkeypatch, shape, size, padding,
                                                             chunk):
  monkeypatch.setattr(layers, "_STRIDE1_GRAD_CHUNK", chunk)   # 1: the smallest chunks there are
  n, h, w, cin, cout = shape
  x, k = _rand(30, (n, h, w, cin)), _rand(31, (size, size, cin, cout), 0.5)
  y, vjp = jax.vjp(lambda x, k: layers.conv_stride1_adjoint(x, k, padding), x, k)
  y_ref, vjp_ref = jax.vjp(lambda x, k: _conv1_ref(x, k, padding), x, k)
  _close(y, y_ref)
  g = _rand(32, y_ref.shape)
  for a, b in zip(jax.jit(vjp)(g), vjp_ref(g)):
    _close(a, b)


def test_stride1_conv_second_order_gradients_match_xla(monkeypatch):
  monkeypatch.setattr(layers, "_STRIDE1_GRAD_CHUNK", 1)
  x, k = _rand(33, (4, 8, 8, 3)), _rand(34, (3, 3, 3, 5), 0.3)
  pad = ((1, 1), (1, 1))

  def penalty(conv, k, x):
    gx = jax.grad(lambda x: jnp.sum(jnp.tanh(conv(x, k, pad))))(x)
    return jnp.sum((gx ** 2).sum(axis=(1, 2, 3)) ** 0.5)

  a = jax.grad(functools.partial(penalty, layers.conv_stride1_adjoint))(k, x)
  b = jax.grad(functools.partial(penalty, _conv1_ref))(k, x)
  _close(a, b, 1e-4)


def test_stride1_convolutions_are_routed_and_others_left_to_xla(monkeypatch):
  calls = []
  real = layers.conv_stride1_adjoint
  monkeypatch.setattr(layers, "conv_stride1_adjoint",
                      lambda x, k, padding: calls.append(padding) or real(x, k, padding))
  x = _rand(35, (2, 8, 8, 3))
  routed = [dict(kernel_size=(3, 3), padding=1), dict(kernel_size=(3, 3), padding="SAME"),
            dict(kernel_size=(1, 1), padding=0), dict(kernel_size=(3, 3), padding="VALID")]
  left = [dict(kernel_size=(3, 3), padding=3),                        # a side wider than k - 1
          dict(kernel_size=(3, 3), padding=1, strides=(2, 2)),
          dict(kernel_size=(3, 3), padding=1, kernel_dilation=(2, 2)),
          dict(kernel_size=(3, 3), padding=1, feature_group_count=3)]
  for kw, expected in [(kw, 1) for kw in routed] + [(kw, 0) for kw in left]:
    calls.clear()
    plain = nn.Conv(3, **kw)
    adjoint = nn.Conv(3, **kw, conv_general_dilated=layers.conv_general_dilated_adjoint)
    params = plain.init(jax.random.PRNGKey(1), x)["params"]
    _close(adjoint.apply({"params": params}, x), plain.apply({"params": params}, x))
    assert len(calls) == expected, kw


def _count(tree):
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def test_default_dcgan_shapes_and_exact_parameter_counts():
  g, d = build_models("dcgan", (32, 32, 1), 100)
  z = jnp.ones((3, 100))
  gv = jax.eval_shape(lambda: g.init(jax.random.PRNGKey(0), z))  # shapes only: fast
  assert _count(gv["params"]) == (
      100 * 4 * 4 * 256            # Dense to 4x4x256, no bias
      + 2 * 256                    # BN scale + bias
      + 4 * 4 * 256 * 128          # Upsample2x 256 -> 128, no bias
      + 2 * 128
      + 4 * 4 * 128 * 64           # Upsample2x 128 -> 64, no bias
      + 2 * 64
      + 4 * 4 * 64 * 1 + 1)        # Upsample2x 64 -> 1 with bias
  assert _count(gv["params"]) == 1_066_881
  assert _count(gv["batch_stats"]) == 2 * (256 + 128 + 64)
  images = jax.eval_shape(lambda v: g.apply(v, z, train=False), gv)
  assert images.shape == (3, 32, 32, 1)

  dv = jax.eval_shape(lambda: d.init(jax.random.PRNGKey(1), jnp.zeros(images.shape)))
  assert _count(dv["params"]) == (
      4 * 4 * 1 * 64 + 64          # Conv 1 -> 64 with bias, no BN
      + 4 * 4 * 64 * 128 + 2 * 128     # Conv 64 -> 128, BN
      + 4 * 4 * 128 * 256 + 2 * 256    # Conv 128 -> 256, BN
      + 4 * 4 * 256 * 1 + 1)       # 4x4 Conv to one logit with bias
  assert _count(dv["params"]) == 661_313
  assert _count(dv["batch_stats"]) == 2 * (128 + 256)
  assert jax.eval_shape(lambda v: d.apply(v, jnp.zeros(images.shape), train=False), dv).shape == (3,)


def test_auto_resolves_per_backend_and_unknown_names_are_refused():
  assert layers.resolve_upsample_impl("auto") in layers.UPSAMPLE_IMPLS
  assert layers.resolve_conv_impl("auto") in layers.CONV_IMPLS
  if jax.default_backend() == "cpu":
    assert layers.resolve_upsample_impl("auto") == "adjoint"
  with pytest.raises(ValueError, match="unknown upsample impl 'dilated'"):
    DCGANGenerator((16, 16, 1), 8, (8, 4), upsample="dilated").init(
        jax.random.PRNGKey(0), jnp.ones((1, 8)))
  with pytest.raises(ValueError, match="unknown conv impl 'fft'"):
    DCGANDiscriminator((4, 8), conv_impl="fft").init(jax.random.PRNGKey(0), jnp.ones((1, 16, 16, 1)))


def test_dcgan_formulations_share_parameters_outputs_and_gradients():
  # A small DCGAN: every upsample formulation and every conv_impl restores the same
  # checkpoint and computes the same images, logits and gradients from it.
  shape, latent = (16, 16, 1), 8
  z = jnp.asarray(_rand(18, (4, latent)))
  base_g = DCGANGenerator(shape, latent, (16, 8), upsample="transpose")
  base_d = DCGANDiscriminator((8, 16), conv_impl="xla")
  gv = jax.jit(base_g.init)(jax.random.PRNGKey(0), z)
  dv = jax.jit(base_d.init)(jax.random.PRNGKey(1), jnp.zeros((4, *shape)))

  def losses(g, d, gp, dp):
    fake, _ = g.apply({**gv, "params": gp}, z, mutable=["batch_stats"])
    logits, _ = d.apply({**dv, "params": dp}, fake, mutable=["batch_stats"])
    return jnp.mean(jax.nn.softplus(-logits)), (fake, logits)

  def run(g, d):
    (_, (fake, logits)), grads = jax.jit(jax.value_and_grad(
        functools.partial(losses, g, d), argnums=(0, 1), has_aux=True))(gv["params"], dv["params"])
    return fake, logits, grads

  expected = run(base_g, base_d)
  for up in IMPLS:   # same parameter layout (checkpoints restore in any formulation)
    for conv in sorted(layers.CONV_IMPLS):
      g = DCGANGenerator(shape, latent, (16, 8), upsample=up)
      d = DCGANDiscriminator((8, 16), conv_impl=conv)
      assert jax.tree.map(jnp.shape, jax.eval_shape(g.init, jax.random.PRNGKey(0), z)) == \
          jax.tree.map(jnp.shape, gv)
      assert jax.tree.map(jnp.shape, jax.eval_shape(
          d.init, jax.random.PRNGKey(1), jnp.zeros((4, *shape)))) == jax.tree.map(jnp.shape, dv)
  # Same numbers, end to end with BatchNorm between the layers, for what "auto" is on CPU
  # (every formulation is checked against the definition layer by layer above).
  fake, logits, grads = run(DCGANGenerator(shape, latent, (16, 8), upsample="adjoint"),
                            DCGANDiscriminator((8, 16), conv_impl="adjoint"))
  _close(fake, expected[0])
  _close(logits, expected[1], 1e-4)
  jax.tree.map(lambda a, b: _close(a, b, 1e-4), grads, expected[2])


@pytest.mark.parametrize("norm,per_example", [("batch", False), ("layer", True), ("none", True)])
def test_discriminator_norm_decides_whether_examples_interact(norm, per_example):
  d = DCGANDiscriminator((4, 8), norm=norm)
  x = jnp.asarray(_rand(19, (3, 16, 16, 1)))
  variables = d.init(jax.random.PRNGKey(0), x)
  assert ("batch_stats" in variables) == (norm == "batch")
  apply = lambda v, x: d.apply(v, x, train=True, mutable=["batch_stats"])[0]  # noqa: E731
  changed = apply(variables, x.at[1:].set(0.0))
  if per_example:   # what a per-example gradient penalty needs
    np.testing.assert_allclose(changed[0], apply(variables, x)[0], rtol=1e-5, atol=1e-6)
  else:
    assert abs(float(changed[0] - apply(variables, x)[0])) > 1e-4


def _family_networks():
  """{name: (module, inputs)} for the networks outside DCGAN and the ResNets whose
  convolutions go through :func:`layers.conv`: stride-1 3x3/4x4/7x7 and "VALID" ones."""
  from jaxgan.models.began import BEGANDiscriminator, BEGANGenerator
  from jaxgan.models.stackgan import Stage1Generator, Stage2Generator, StackDiscriminator
  from jaxgan.models.translation import (PatchGANDiscriminator, ResNetGenerator,
                                         StarGANDiscriminator)
  img = jnp.asarray(_rand(30, (2, 16, 16, 1)))
  img32 = jnp.asarray(_rand(31, (2, 32, 32, 1)))
  emb = jnp.asarray(_rand(32, (2, 6)))
  return {
      "began D": (BEGANDiscriminator(filters=4, embedding=8), (img,)),
      "began G": (BEGANGenerator(img.shape[1:], latent_dim=8, filters=4),
                  (jnp.asarray(_rand(33, (2, 8))),)),
      "cyclegan G": (ResNetGenerator(features=4, num_blocks=1, style="cyclegan"), (img,)),
      "stargan G": (ResNetGenerator(features=4, num_blocks=1, style="stargan", num_domains=3,
                                    upsample="transpose"), (img, jnp.eye(3)[:2])),
      "patchgan D": (PatchGANDiscriminator(features=4, num_layers=2), (img32,)),
      "stargan D": (StarGANDiscriminator(features=4, num_layers=2, num_domains=3), (img,)),
      "stackgan G1": (Stage1Generator(size=16, channels=1, width=4, latent_dim=8,
                                      condition_dim=4), (jnp.asarray(_rand(34, (2, 8))), emb)),
      "stackgan G2": (Stage2Generator(size=32, in_size=16, channels=1, width=4, condition_dim=4,
                                      residual_blocks=1, encoder_steps=1), (img, emb)),
      "stackgan D": (StackDiscriminator(width=4), (img, jnp.asarray(_rand(35, (2, 4))))),
  }


@pytest.mark.parametrize("name", ["began D", "began G", "cyclegan G", "stargan G", "patchgan D",
                                  "stargan D", "stackgan G1", "stackgan G2", "stackgan D"])
def test_family_networks_compute_the_same_values_and_gradients_as_with_xla_convolutions(
    name, monkeypatch):
  # Every family's convolutions are layers.conv: "auto" (on CPU, the adjoint gradients) and
  # XLA's convolution must give the same parameters, outputs, parameter gradients, and, for
  # the discriminators, the second-order gradient of a gradient penalty.
  module, inputs = _family_networks()[name]
  key = {"params": jax.random.PRNGKey(0), "condition": jax.random.PRNGKey(1)}

  def run():
    variables = jax.jit(module.init)(key, *inputs)
    weights = lambda a: jnp.sin(jnp.arange(a.size, dtype=a.dtype).reshape(a.shape))

    def loss(params, *xs):
      out, _ = module.apply({**variables, "params": params}, *xs, mutable=["batch_stats"],
                            rngs={"condition": jax.random.PRNGKey(2)})
      return sum(jnp.sum(weights(a) * a) for a in jax.tree.leaves(out))

    def penalty(params):  # ||d loss / d input||^2, as WGAN-GP and R1 take it
      g = jax.grad(loss, argnums=1)(params, *inputs)
      return jnp.sum(g ** 2)

    value, grads = jax.jit(jax.value_and_grad(loss))(variables["params"], *inputs)
    second = jax.jit(jax.grad(penalty))(variables["params"]) if name.endswith(" D") else 0.0
    return variables, value, grads, second

  routed = []
  stride1 = layers.conv_stride1_adjoint
  monkeypatch.setattr(layers, "conv_stride1_adjoint",
                      lambda *args: routed.append(args[2]) or stride1(*args))
  ours = run()
  if jax.default_backend() == "cpu":   # the test would compare XLA with itself otherwise
    assert routed, f"{name}: no convolution took the stride-1 route"
  monkeypatch.setattr(layers, "_AUTO_CONV", {})   # "auto" -> XLA's convolution
  assert layers.resolve_conv_impl("auto") == "xla"
  reference = run()
  assert jax.tree.map(jnp.shape, ours[0]) == jax.tree.map(jnp.shape, reference[0]), name
  jax.tree.map(lambda a, b: _close(a, b, 1e-5), ours[0], reference[0])
  _close(ours[1], reference[1], 1e-4)
  jax.tree.map(lambda a, b: _close(a, b, 1e-4), ours[2], reference[2])
  jax.tree.map(lambda a, b: _close(a, b, 1e-3), ours[3], reference[3])
