"""One real D step and G step on tiny models (Mimicry-style)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxgan
from jaxgan import steps
from jaxgan.models import build_models


def _tree_equal(a, b):
  return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


@pytest.fixture(scope="module")
def state_and_batch():
  g, d = build_models("dcgan", (16, 16, 1), 8, {"features": (8, 4)}, {"features": (4, 8)})
  tx = optax.adam(1e-3, b1=0.5)
  state = jaxgan.create_state(g, d, tx, tx, jax.random.PRNGKey(0))
  images = jax.random.uniform(jax.random.PRNGKey(1), (6, 16, 16, 1), minval=-1, maxval=1)
  return state, {"image": images}


def test_d_step_moves_only_the_discriminator(state_and_batch):
  state, batch = state_and_batch
  new, metrics = jaxgan.make_d_step()(state, batch)
  assert not _tree_equal(new.d_params, state.d_params)
  assert not _tree_equal(new.d_batch_stats, state.d_batch_stats)  # BatchNorm statistics updated
  assert not _tree_equal(new.d_opt_state, state.d_opt_state)
  assert _tree_equal(new.g_params, state.g_params)
  assert _tree_equal(new.g_batch_stats, state.g_batch_stats)
  assert _tree_equal(new.g_opt_state, state.g_opt_state)
  assert int(new.step) == int(state.step)
  assert set(metrics) >= {"d_loss", "d_real_acc", "d_fake_acc"}
  assert np.isfinite(float(metrics["d_loss"]))


def test_g_step_moves_only_the_generator(state_and_batch):
  state, batch = state_and_batch
  new, metrics = jaxgan.make_g_step()(state, batch)
  assert not _tree_equal(new.g_params, state.g_params)
  assert not _tree_equal(new.g_batch_stats, state.g_batch_stats)
  assert _tree_equal(new.d_params, state.d_params)
  assert _tree_equal(new.d_batch_stats, state.d_batch_stats)
  assert _tree_equal(new.d_opt_state, state.d_opt_state)
  assert int(new.step) == int(state.step) + 1
  assert np.isfinite(float(metrics["g_loss"]))


def test_g_step_lowers_the_generator_loss_against_a_fixed_discriminator(state_and_batch):
  state, batch = state_and_batch
  g_step = jaxgan.make_g_step()
  losses = []
  for _ in range(5):
    state, m = g_step(state.replace(step=jnp.zeros((), jnp.int32)), batch)  # same noise each time
    losses.append(float(m["g_loss"]))
  assert losses[-1] < losses[0]


def test_train_step_is_d_then_g_and_deterministic(state_and_batch):
  state, batch = state_and_batch
  fused, m1 = jaxgan.make_train_step(reuse_fakes=False)(state, batch)
  fused2, _ = jaxgan.make_train_step(reuse_fakes=False)(state, batch)
  assert _tree_equal(fused, fused2)
  s, md = jaxgan.make_d_step()(state, batch)
  s, mg = jaxgan.make_g_step()(s, batch)
  for a, b in zip(jax.tree.leaves(fused), jax.tree.leaves(s)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  assert float(m1["d_loss"]) == pytest.approx(float(md["d_loss"]), rel=1e-5)
  assert float(m1["g_loss"]) == pytest.approx(float(mg["g_loss"]), rel=1e-5)


def test_reused_fakes_step_updates_g_through_the_updated_d_on_the_same_fakes(state_and_batch):
  state, batch = state_and_batch
  fused, metrics = jaxgan.make_train_step()(state, batch)
  # By hand: D step on G(z) with z from the D stream, then G's gradient of its loss
  # under the updated D on G(z) for that same z.
  s, md = jaxgan.make_d_step()(state, batch)
  z = steps.sample_latent(state, steps.step_key(state, 0), batch["image"].shape[0])

  def g_loss(g_params):
    fake, stats = s.replace(g_params=g_params).generate(z, train=True)
    return jaxgan.losses.generator_loss("nonsaturating", s.discriminate(fake)[0]), stats

  (loss, stats), grads = jax.value_and_grad(g_loss, has_aux=True)(s.g_params)
  updates, _ = s.g_tx.update(grads, s.g_opt_state, s.g_params)
  expected = optax.apply_updates(s.g_params, updates)
  for a, b in zip(jax.tree.leaves((fused.g_params, fused.g_batch_stats, fused.d_params)),
                  jax.tree.leaves((expected, stats, s.d_params))):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  assert float(metrics["g_loss"]) == pytest.approx(float(loss), rel=1e-5)
  assert float(metrics["d_loss"]) == pytest.approx(float(md["d_loss"]), rel=1e-5)
  assert int(fused.step) == int(state.step) + 1
  # ...which is not the fresh-noise composition.
  fresh, _ = jaxgan.make_train_step(reuse_fakes=False)(state, batch)
  assert not _tree_equal(fresh.g_params, fused.g_params)


def test_unjitted_body_matches_jitted_step(state_and_batch):
  state, batch = state_and_batch
  a, _ = jaxgan.make_train_step(jit=False)(state, batch)
  b, _ = jaxgan.make_train_step()(state, batch)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-6)


def test_step_randomness_depends_on_the_step_counter(state_and_batch):
  state, _ = state_and_batch
  k0 = steps.step_key(state, 0)
  k1 = steps.step_key(state.replace(step=state.step + 1), 0)
  assert not np.array_equal(k0, k1)
  assert not np.array_equal(k0, steps.step_key(state, 1))


def test_make_step_rejects_unknown_loss():
  with pytest.raises(ValueError, match="'wassersteinn' is not an objective on real / fake logits"):
    jaxgan.make_train_step("wassersteinn")
  with pytest.raises(ValueError, match="'began' is not an objective"):   # BEGAN's family step
    jaxgan.make_train_step("began")
