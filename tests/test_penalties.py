"""Gradient penalties (WGAN-GP, one-sided, R1), weight clipping and n_critic in the train step."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxgan
from jaxgan import losses, steps
from jaxgan.models import DCGANDiscriminator, MLPDiscriminator, MLPGenerator, build_models

SHAPE = (4, 8, 8, 1)


def _images(seed, shape=SHAPE):
  return jax.random.uniform(jax.random.PRNGKey(seed), shape, minval=-1, maxval=1)


def _linear_critic(w):
  return lambda x: jnp.sum(x * w, axis=(1, 2, 3))


# ---------------------------------------------------------------------------- gradient penalty

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gp_of_a_linear_critic_is_norm_minus_one_squared(seed):
  # f(x) = <w, x> has input gradient w everywhere: GP = (||w|| - 1)^2 whatever real, fake, eps.
  w = jax.random.normal(jax.random.PRNGKey(100 + seed), SHAPE[1:])
  real, fake = _images(seed), 3.0 * _images(seed + 10)
  norm = float(jnp.linalg.norm(w))
  gp = losses.gradient_penalty(_linear_critic(w), real, fake, jax.random.PRNGKey(seed))
  assert float(gp) == pytest.approx((norm - 1.0) ** 2, rel=1e-5)
  one = losses.gradient_penalty(_linear_critic(w), real, fake, jax.random.PRNGKey(seed), one_sided=True)
  assert float(one) == pytest.approx(max(norm - 1.0, 0.0) ** 2, rel=1e-5)


def test_one_sided_gp_ignores_norms_below_one():
  w = jnp.full(SHAPE[1:], 0.5 / np.sqrt(np.prod(SHAPE[1:])))  # ||w|| = 0.5
  real, fake, key = _images(0), _images(1), jax.random.PRNGKey(0)
  assert float(losses.gradient_penalty(_linear_critic(w), real, fake, key)) == pytest.approx(0.25, rel=1e-5)
  assert float(losses.gradient_penalty(_linear_critic(w), real, fake, key, one_sided=True)) == 0.0


def _dead_relu_critic(params, x):
  # Input gradient exactly zero: the ReLU is dead for inputs in [-1, 1]. Output depends on b.
  h = jax.nn.relu(jnp.sum(x * params["w"], axis=(1, 2, 3)) - 1e3)
  return h + params["b"]


@pytest.mark.parametrize("one_sided", [False, True])
def test_gp_and_its_gradient_are_finite_where_the_input_gradient_is_zero(one_sided):
  params = {"w": jnp.full(SHAPE[1:], 0.1), "b": jnp.array(0.3)}
  real, fake, key = _images(0), _images(1), jax.random.PRNGKey(0)

  def penalty(p):
    return losses.gradient_penalty(lambda x: _dead_relu_critic(p, x), real, fake, key,
                                   one_sided=one_sided)

  value, grads = jax.value_and_grad(penalty)(params)
  assert float(value) == (0.0 if one_sided else 1.0)   # norm 0: (0 - 1)^2
  assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))

  # The naive norm, sqrt(sum(g^2)), gives NaN gradients here: the test would catch it.
  def naive(p):
    g = losses.critic_input_gradients(lambda x: _dead_relu_critic(p, x), losses.interpolates(real, fake, key))
    return jnp.mean((jnp.sqrt(jnp.sum(g ** 2, axis=(1, 2, 3))) - 1.0) ** 2)

  assert not np.all(np.isfinite(jax.grad(naive)(params)["w"]))


def test_gp_gradient_is_finite_for_a_zero_linear_critic_and_the_norm_is_exact():
  g = jax.grad(lambda w: losses.gradient_penalty(_linear_critic(w), _images(0), _images(1),
                                                 jax.random.PRNGKey(0)))(jnp.zeros(SHAPE[1:]))
  assert np.all(np.isfinite(g))
  np.testing.assert_array_equal(losses.safe_norm(jnp.zeros((2, 3))), [0.0, 0.0])
  np.testing.assert_allclose(losses.safe_norm(jnp.array([[3.0, 4.0], [1e-3, 0.0]])), [5.0, 1e-3],
                             rtol=1e-6)


def test_eps_is_drawn_per_example_and_broadcast_over_pixels():
  real, fake = jnp.ones((16, 4, 4, 2)), jnp.zeros((16, 4, 4, 2))
  key = jax.random.PRNGKey(3)
  x_hat = np.asarray(losses.interpolates(real, fake, key))
  eps = x_hat[:, 0, 0, 0]
  assert np.all((x_hat == eps[:, None, None, None]))          # one eps per example
  assert np.all((eps >= 0) & (eps <= 1)) and len(np.unique(eps)) == 16
  # A critic whose input gradient is x itself (f = ||x||^2 / 2): the norm at x_hat_i is
  # eps_i * ||1||, so the penalty averages per-example terms (one eps per example).
  critic = lambda x: 0.5 * jnp.sum(x ** 2, axis=(1, 2, 3))
  gp = losses.gradient_penalty(critic, real, fake, key)
  expected = np.mean((eps * np.sqrt(4 * 4 * 2) - 1.0) ** 2)
  assert float(gp) == pytest.approx(expected, rel=1e-5)
  # With a single shared eps the penalty would differ.
  assert abs(expected - (np.mean(eps) * np.sqrt(32) - 1.0) ** 2) > 1e-3


def test_r1_is_the_mean_squared_input_gradient_norm():
  w = jax.random.normal(jax.random.PRNGKey(0), SHAPE[1:])
  assert float(losses.r1_penalty(_linear_critic(w), _images(0))) == pytest.approx(
      float(jnp.sum(w ** 2)), rel=1e-5)
  x = _images(1)
  r1 = losses.r1_penalty(lambda x: 0.5 * jnp.sum(x ** 2, axis=(1, 2, 3)), x)
  assert float(r1) == pytest.approx(float(jnp.mean(jnp.sum(x ** 2, axis=(1, 2, 3)))), rel=1e-5)
  g = jax.grad(lambda p: losses.r1_penalty(lambda x: _dead_relu_critic(p, x), x))(
      {"w": jnp.full(SHAPE[1:], 0.1), "b": jnp.array(0.0)})
  assert all(np.all(np.isfinite(v)) for v in jax.tree.leaves(g))


# ---------------------------------------------------------------------------- train steps

IMAGE = (8, 8, 1)


@pytest.fixture(scope="module")
def mlp():
  """Tiny networks (compile time dominates on CPU): G with BatchNorm, an MLP critic without."""
  g = MLPGenerator(image_shape=IMAGE, latent_dim=8, hidden=(16, 32))
  d = MLPDiscriminator(hidden=(16,))
  tx = optax.adam(1e-3, b1=0.5)
  return jaxgan.create_state(g, d, tx, tx, jax.random.PRNGKey(0))


def _batch(k=None, n=6, image=IMAGE, seed=1):
  shape = (n, *image) if k is None else (k, n, *image)
  return {"image": _images(seed, shape)}


def _adam_count(opt_state):
  return int(opt_state[0].count)


def test_gp_and_r1_terms_enter_the_critic_loss_with_their_weights(mlp):
  state, batch = mlp, _batch()
  _, m = steps.make_d_step("wasserstein", gp_weight=10.0)(state, batch)
  assert {"gp", "grad_norm", "wasserstein", "d_real", "d_fake"} <= set(m)
  base = float(m["d_fake"]) - float(m["d_real"])
  assert float(m["d_loss"]) == pytest.approx(base + 10.0 * float(m["gp"]), rel=1e-5, abs=1e-6)
  assert float(m["wasserstein"]) == pytest.approx(-base, rel=1e-5, abs=1e-7)
  _, m1 = steps.make_d_step("wasserstein", r1_weight=4.0)(state, batch)   # gamma 4: + 2 * R1
  assert float(m1["r1"]) > 0
  assert float(m1["d_loss"]) == pytest.approx(
      float(m1["d_fake"]) - float(m1["d_real"]) + 2.0 * float(m1["r1"]), rel=1e-5, abs=1e-6)


def test_gp_train_step_is_finite_and_moves_the_critic(mlp):
  state, batch = mlp, _batch(k=2)
  step = jaxgan.make_train_step("wasserstein", n_critic=2, gp_weight=10.0, gp_one_sided=True)
  new, m = step(state, batch)
  assert all(np.isfinite(float(v)) for v in m.values())
  assert {"d_loss", "g_loss", "d_real_acc", "d_fake_acc", "wasserstein", "gp", "grad_norm"} <= set(m)
  assert not all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(new.d_params),
                                                      jax.tree.leaves(state.d_params)))


@pytest.mark.parametrize("option", [{"gp_weight": 10.0}, {"r1_weight": 1.0}])
def test_batchnorm_critic_with_a_penalty_is_refused(option):
  g, d = build_models("dcgan", IMAGE, 8, {"features": (8, 4)}, {"features": (4, 8)})
  tx = optax.adam(1e-3)
  state = jax.eval_shape(lambda: jaxgan.create_state(g, d, tx, tx, jax.random.PRNGKey(0)))  # shapes only
  assert jax.tree.leaves(state.d_batch_stats)
  step = jaxgan.make_train_step("wasserstein", **option)
  with pytest.raises(ValueError, match="gradient penalty is per example; BatchNorm mixes examples"):
    jax.eval_shape(step, state, _batch())


def test_clipping_keeps_every_critic_weight_in_the_box(mlp):
  c = 0.01
  big = optax.adam(0.1, b1=0.5)                     # a huge step: weights would leave the box
  state, batch = mlp.replace(d_tx=big, g_tx=big), _batch(k=2)
  step = jaxgan.make_train_step("wasserstein", n_critic=2, clip=c)
  new, m = step(state, batch)
  leaves = jax.tree.leaves(new.d_params)
  assert all(np.all(np.abs(np.asarray(x)) <= c) for x in leaves)
  assert any(np.any(np.abs(np.asarray(x)) == np.float32(c)) for x in leaves)   # clipping was active
  assert any(np.any(np.abs(np.asarray(x)) > c) for x in jax.tree.leaves(new.g_params))  # G untouched
  assert np.isfinite(float(m["d_loss"]))
  new, _ = step(new.replace(d_params=jax.tree.map(lambda x: 5 * x + 1, state.d_params)), batch)
  assert all(np.all(np.abs(np.asarray(x)) <= c) for x in jax.tree.leaves(new.d_params))


def test_n_critic_scan_is_k_critic_updates_then_one_generator_update(mlp):
  k = 3
  state, batch = mlp, _batch(k=k)
  step = jaxgan.make_train_step("nonsaturating", n_critic=k, r1_weight=1.0)
  fused, m = step(state, batch)
  # Exactly k critic updates per generator update (the optimizers count their updates).
  assert (_adam_count(fused.d_opt_state), _adam_count(fused.g_opt_state), int(fused.step)) == (k, 1, 1)
  again, _ = step(fused, batch)
  assert (_adam_count(again.d_opt_state), _adam_count(again.g_opt_state)) == (2 * k, 2)
  # ... and they are the k d_steps, each on its own slice and noise, then one g_step.
  d_step = jax.jit(lambda s, b, i: steps.d_step_fn(s, b, loss="nonsaturating", r1_weight=1.0, critic_index=i))
  manual, d_losses = state, []
  for i in range(k):
    manual, md = d_step(manual, jax.tree.map(lambda x: x[i], batch), i)
    d_losses.append(float(md["d_loss"]))
  manual, mg = jaxgan.make_g_step("nonsaturating")(manual, jax.tree.map(lambda x: x[-1], batch))
  # A smooth loss (hinge's kink let float reassociation flip a sample's term on one CPU). Adam's
  # lr * m / (sqrt(v) + eps) still magnifies that noise in a near-zero gradient (its first step
  # is lr * sign(g)), so a rare parameter may differ by up to one step per update (lr 1e-3); a
  # missing, repeated or misordered update moves many parameters by a whole step. Every
  # parameter stays within the k + 1 steps, and almost all must agree tightly.
  tight, total = 0, 0
  for a, b in zip(jax.tree.leaves(fused), jax.tree.leaves(manual)):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-3 * (k + 1))
    tight += int(np.sum(np.abs(a - b) <= 1e-6 + 1e-4 * np.abs(b)))
    total += a.size
  assert tight >= 0.999 * total, (tight, total)
  assert float(m["d_loss"]) == pytest.approx(np.mean(d_losses), rel=1e-4)
  assert float(m["g_loss"]) == pytest.approx(float(mg["g_loss"]), rel=1e-4, abs=1e-6)
  assert len(set(d_losses)) == k   # each critic update saw its own batch and noise


def test_n_critic_one_keeps_the_plain_batch_and_one_update(mlp):
  new, _ = jaxgan.make_train_step("wasserstein", gp_weight=1.0)(mlp, _batch())
  assert (_adam_count(new.d_opt_state), _adam_count(new.g_opt_state)) == (1, 1)


def test_n_critic_needs_a_stacked_batch(mlp):
  with pytest.raises(ValueError, match=r"n_critic=3 the batch must stack 3 batches"):
    jaxgan.make_train_step("wasserstein", n_critic=3)(mlp, _batch())
  with pytest.raises(ValueError, match="n_critic must be a positive integer"):
    jaxgan.make_train_step("wasserstein", n_critic=0)
  with pytest.raises(ValueError, match="clip must be positive"):
    jaxgan.make_train_step("wasserstein", clip=-1.0)


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the unrolling is CPU-only")
def test_critic_scan_is_unrolled_on_cpu(mlp):
  # XLA:CPU runs strided-conv kernel gradients inside while loops ~100x slower (steps.scan_unroll).
  body = jaxgan.make_train_step("wasserstein", n_critic=3, gp_weight=1.0, jit=False)
  jaxpr = jax.make_jaxpr(body)(mlp, _batch(k=3))
  scans = [e for e in jaxpr.jaxpr.eqns if e.primitive.name == "scan"]
  assert [(e.params["length"], e.params["unroll"]) for e in scans] == [(3, 3)]


# ---------------------------------------------------------------------------- GP of the DCGAN critic

class _NaiveCritic(nn.Module):
  """The WGAN-GP DCGAN critic written plainly (flax ``nn.Conv``: XLA's convolutions and
  derivatives), with the parameter names of ``DCGANDiscriminator(norm="layer")``."""
  features: tuple = (8, 16, 32)

  @nn.compact
  def __call__(self, x):
    for i, f in enumerate(self.features):
      x = nn.Conv(f, (4, 4), strides=(2, 2), padding=((1, 1), (1, 1)), use_bias=(i == 0))(x)
      if i > 0:
        x = nn.LayerNorm(epsilon=1e-5, reduction_axes=(1, 2, 3), feature_axes=-1)(x)
      x = nn.leaky_relu(x, 0.2)
    x = nn.Conv(1, (x.shape[1], x.shape[2]), padding="VALID")(x)
    return x.reshape(x.shape[0])


def _naive_gp(params, real, fake, eps):
  """mean((||grad_x D(x_hat)|| - 1)^2), one example at a time (jax.grad inside jax.vmap)."""
  critic = _NaiveCritic()
  x_hat = eps[:, None, None, None] * real + (1.0 - eps[:, None, None, None]) * fake
  per_example = jax.grad(lambda x: critic.apply({"params": params}, x[None])[0])
  g = jax.vmap(per_example)(x_hat)
  return jnp.mean((jnp.sqrt(jnp.sum(g ** 2, axis=(1, 2, 3))) - 1.0) ** 2)


def _dcgan_gp_case(seed=0, n=4):
  real = jnp.asarray(np.random.default_rng(seed).uniform(-1, 1, (n, 32, 32, 1)), jnp.float32)
  fake = jnp.asarray(np.random.default_rng(seed + 1).uniform(-1, 1, (n, 32, 32, 1)), jnp.float32)
  params = _NaiveCritic().init(jax.random.PRNGKey(seed), real)["params"]
  # Larger weights than DCGAN's N(0, 0.02), so that the norms are far from 1 and all terms count.
  params = jax.tree.map(lambda p: p * 10.0 if p.ndim == 4 else p + 0.1, params)
  key = jax.random.PRNGKey(seed + 2)
  eps = jax.random.uniform(key, (n, 1, 1, 1), jnp.float32).reshape(n)  # what interpolates draws
  return params, real, fake, key, eps


@pytest.mark.parametrize("conv_impl", ["adjoint", "xla", "auto"])
def test_dcgan_critic_gp_and_its_parameter_gradient_match_the_naive_double_grad(conv_impl):
  params, real, fake, key, eps = _dcgan_gp_case()
  d = DCGANDiscriminator(features=(8, 16, 32), norm="layer", conv_impl=conv_impl)
  assert jax.tree.map(jnp.shape, d.init(jax.random.PRNGKey(0), real)["params"]) == \
      jax.tree.map(jnp.shape, params)

  def gp(p):
    return losses.gradient_penalty(lambda x: d.apply({"params": p}, x), real, fake, key)

  value, grads = jax.jit(jax.value_and_grad(gp))(params)
  ref_value, ref_grads = jax.jit(jax.value_and_grad(_naive_gp))(params, real, fake, eps)
  assert float(ref_value) > 1.0   # norms far from 1: a real test of the second-order terms
  np.testing.assert_allclose(float(value), float(ref_value), rtol=1e-4)
  for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(ref_grads)):
    scale = float(np.max(np.abs(b)))
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-3, atol=1e-4 * scale)


def _convolutions(fn, *args):
  """Params of every convolution in ``fn``'s jaxpr (dead code removed), nested calls included."""
  from jax._src.interpreters import partial_eval as pe
  closed = jax.make_jaxpr(fn)(*args)
  jaxpr, _ = pe.dce_jaxpr(closed.jaxpr, [True] * len(closed.jaxpr.outvars))
  found = []

  def walk(j):
    for e in j.eqns:
      if e.primitive.name == "conv_general_dilated":
        found.append((e.invars[0].aval.shape, e.invars[1].aval.shape, e.params))
      for v in e.params.values():
        for sub in (v if isinstance(v, (list, tuple)) else [v]):
          if hasattr(sub, "jaxpr") and hasattr(sub.jaxpr, "eqns"):
            walk(sub.jaxpr)
          elif hasattr(sub, "eqns"):
            walk(sub)
  walk(jaxpr)
  return found


def test_adjoint_gp_double_backward_has_no_input_dilated_convolution():
  # An input-dilated ("transposed") convolution is XLA's own input gradient of a stride-2
  # convolution; differentiated once more with respect to its kernel (the penalty's parameter
  # gradient) it becomes XLA:CPU's slow generic convolution (docs/performance.md, bench_gp).
  # "adjoint" computes every input gradient, of any order, as the per-phase up-sampling.
  # (The 1-channel image layer's up-sampling keeps the dilated form: it is tiny.)
  params, real, fake, key, _ = _dcgan_gp_case()
  d = DCGANDiscriminator(features=(8, 16, 32), norm="layer", conv_impl="adjoint")
  gp = lambda p: losses.gradient_penalty(lambda x: d.apply({"params": p}, x), real, fake, key)  # noqa: E731
  convs = _convolutions(jax.grad(gp), params)
  dilated = [(lhs, rhs) for lhs, rhs, p in convs
             if tuple(p["lhs_dilation"]) != (1, 1) and min(rhs[2:]) > 1]
  assert len(convs) > 10 and not dilated, dilated
  plain = _convolutions(jax.grad(lambda p: losses.gradient_penalty(
      lambda x: DCGANDiscriminator((8, 16, 32), norm="layer", conv_impl="xla").apply({"params": p}, x),
      real, fake, key)), params)
  assert any(tuple(p["lhs_dilation"]) != (1, 1) and min(rhs[2:]) > 1 for _, rhs, p in plain)


def test_the_penalty_rule_looks_for_batchnorm_layers_not_for_batch_stats():
  # One rule (jaxgan.steps.penalty_refusal): a critic with BatchNorm layers is refused a gradient
  # penalty; a spectrally normalised critic keeps its power-iteration vectors in batch_stats too,
  # and is accepted, and its WGAN-GP step runs.
  import flax.linen as nn
  import optax
  from jaxgan.models import MLPGenerator

  class SNCritic(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = True):
      x = x.reshape((x.shape[0], -1))
      x = nn.leaky_relu(nn.SpectralNorm(nn.Dense(16))(x, update_stats=train), 0.2)
      return nn.SpectralNorm(nn.Dense(1))(x, update_stats=train)[:, 0]

  class BNCritic(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = True):
      x = nn.Dense(16)(x.reshape((x.shape[0], -1)))
      x = nn.BatchNorm(use_running_average=not train)(x)
      return nn.Dense(1)(nn.leaky_relu(x, 0.2))[:, 0]

  x = jnp.zeros((2, 4, 4, 1))
  assert steps.penalty_refusal(SNCritic(), x) is None
  assert "BatchNorm mixes examples" in steps.penalty_refusal(BNCritic(), x)
  g = MLPGenerator(image_shape=(4, 4, 1), latent_dim=4, hidden=(8,), batchnorm=False)
  tx = optax.adam(1e-3, b1=0.5)
  state = jaxgan.create_state(g, SNCritic(), tx, tx, jax.random.PRNGKey(0))
  assert jax.tree.leaves(state.d_batch_stats)   # the SN vectors: a non-empty batch_stats
  batch = {"image": jax.random.uniform(jax.random.PRNGKey(1), (4, 4, 4, 1), minval=-1, maxval=1)}
  new, m = jaxgan.make_d_step("wasserstein", gp_weight=10.0)(state, batch)
  assert np.isfinite(float(m["gp"])) and not np.allclose(
      jax.tree.leaves(new.d_batch_stats)[0], jax.tree.leaves(state.d_batch_stats)[0])
  bn = jaxgan.create_state(g, BNCritic(), tx, tx, jax.random.PRNGKey(0))
  with pytest.raises(ValueError, match="BatchNorm mixes examples"):
    jaxgan.make_d_step("wasserstein", gp_weight=10.0)(bn, batch)
