"""The BEGAN family: its losses, k_t control, step, recipe and checkpoints (jaxgan.families.began)."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import load_config, read_metrics, short_run
from jaxgan import losses, trainer
from jaxgan.checkpoint import Checkpointer
from jaxgan.errors import ConfigError
from jaxgan.families.began import BEGANState, make_began_step
from jaxgan.state import GANState


_config = short_run


def test_began_losses_and_convergence_measure_match_hand_computation():
  real, fake = jnp.array([0.2, 0.4]), jnp.array([0.1, 0.3])     # L(x) = 0.3, L(G(z)) = 0.2
  assert float(losses.discriminator_loss("began", real, fake, k=0.25)) == pytest.approx(0.3 - 0.25 * 0.2)
  assert float(losses.discriminator_loss("began", real, fake)) == pytest.approx(0.3)   # k_0 = 0
  assert float(losses.generator_loss("began", fake)) == pytest.approx(0.2)
  m = losses.began_convergence(real, fake, gamma=0.5)
  assert float(m) == pytest.approx(0.3 + abs(0.5 * 0.3 - 0.2))


def test_began_k_moves_as_the_paper_prescribes_and_stays_in_the_unit_interval():
  real = jnp.array([0.3])
  # gamma L(x) > L(G(z)): the fakes are reconstructed too well -> k grows (D pushes them up).
  assert float(losses.began_k_update(0.5, real, jnp.array([0.05]), gamma=0.5, lambda_k=0.1)) == \
      pytest.approx(0.5 + 0.1 * (0.15 - 0.05))
  # gamma L(x) < L(G(z)) -> k shrinks.
  assert float(losses.began_k_update(0.5, real, jnp.array([0.6]), gamma=0.5, lambda_k=0.1)) == \
      pytest.approx(0.5 + 0.1 * (0.15 - 0.6))
  # Clipped to [0, 1] at both ends.
  assert float(losses.began_k_update(0.99, real, jnp.array([0.0]), gamma=1.0, lambda_k=10.0)) == 1.0
  assert float(losses.began_k_update(0.01, real, jnp.array([5.0]), gamma=0.0, lambda_k=10.0)) == 0.0


def _began_state(seed=0):
  import optax
  import jaxgan
  from jaxgan.models import build_models
  g, d = build_models("began", (8, 8, 1), 8, {"filters": 4}, {"filters": 4, "embedding": 8})
  tx = optax.adam(1e-3, b1=0.5)
  return BEGANState.of(jaxgan.create_state(g, d, tx, tx, jax.random.PRNGKey(seed)))


@pytest.fixture(scope="module")
def began_state():
  return _began_state()


def test_began_models_energies_and_resize_convolution(began_state):
  from jaxgan.models.began import upsample_nearest
  x = jnp.arange(8.0).reshape(1, 2, 2, 2)
  up = upsample_nearest(x)
  assert up.shape == (1, 4, 4, 2)
  np.testing.assert_array_equal(up[0, :2, :2, :], jnp.broadcast_to(x[0, 0, 0], (2, 2, 2)))
  np.testing.assert_array_equal(up[0, 2:, 2:, 1], jnp.full((2, 2), x[0, 1, 1, 1]))
  state = began_state
  images = jax.random.uniform(jax.random.PRNGKey(1), (3, 8, 8, 1), minval=-1, maxval=1)
  energy, _ = state.discriminate(images)
  recon = state.discriminator.apply({"params": state.d_params}, images, return_reconstruction=True)
  assert energy.shape == (3,) and recon.shape == images.shape
  np.testing.assert_allclose(energy, jnp.mean(jnp.abs(images - recon), axis=(1, 2, 3)), rtol=1e-6)
  fakes, _ = state.generate(jnp.ones((2, 8)))
  assert fakes.shape == (2, 8, 8, 1) and float(jnp.abs(fakes).max()) <= 1.0


def test_began_step_updates_k_by_its_control_law(began_state):
  batch = {"image": jax.random.uniform(jax.random.PRNGKey(1), (4, 8, 8, 1), minval=-1, maxval=1)}
  step = make_began_step(gamma=0.5, lambda_k=0.1)
  state = began_state.replace(k_t=jnp.float32(0.5))
  for _ in range(3):
    k = float(state.k_t)
    state, m = step(state, batch)
    expected = np.clip(k + 0.1 * (0.5 * float(m["d_real"]) - float(m["d_fake"])), 0, 1)
    assert float(state.k_t) == pytest.approx(expected, rel=1e-5)
    assert float(m["k_t"]) == pytest.approx(expected, rel=1e-5)
    assert 0.0 <= float(state.k_t) <= 1.0
    assert float(m["d_loss"]) == pytest.approx(float(m["d_real"]) - k * float(m["d_fake"]), rel=1e-5)
    assert float(m["m_global"]) == pytest.approx(
        float(m["d_real"]) + abs(0.5 * float(m["d_real"]) - float(m["d_fake"])), rel=1e-5)


def test_began_recipe_trains_a_few_steps_and_logs_k_and_m_global(tmp_path, mock_fmnist):
  config = _config("began_fmnist", image_size=16)   # 2 resolutions instead of 3: a faster compile
  assert (config.loss, config.model, config.began.gamma, config.began.lambda_k) == (
      "began", "began", 1.0, 0.001)
  assert (load_config("began_fmnist").learning_rate, load_config("began_fmnist").batch_size) == (1e-4, 16)
  workdir = str(tmp_path / "began")
  state = trainer.train_and_evaluate(config, workdir)
  records = read_metrics(workdir)
  assert [r["step"] for r in records] == [1, 2, 3, 4]
  for r in records:
    assert {"d_loss", "g_loss", "k_t", "m_global", "d_real", "d_fake"} <= set(r)
    assert all(np.isfinite(v) for v in r.values()), r
    assert 0.0 <= r["k_t"] <= 1.0
  assert 0.0 <= float(state.k_t) <= 1.0 and float(state.k_t) == pytest.approx(records[-1]["k_t"])


def test_a_checkpoint_without_k_t_restores_with_k_t_zero(tmp_path, began_state):
  # Checkpoints written before GANState had k_t (jaxgan 0.1) still resume.
  import orbax.checkpoint as ocp
  from flax import serialization
  state = began_state.replace(step=jnp.int32(7))
  old = serialization.to_state_dict(state)
  del old["k_t"]
  ckpt = Checkpointer(str(tmp_path / "ckpt"))
  ckpt._manager.save(7, args=ocp.args.Composite(state=ocp.args.StandardSave(old),
                                                  meta=ocp.args.JsonSave({"model": "began"})))
  ckpt.wait()
  template = began_state.replace(d_params=jax.tree.map(jnp.zeros_like, began_state.d_params),
                                 k_t=jnp.float32(0.0))
  restored = ckpt.restore(template, {"model": "began"})
  assert int(restored.step) == 7 and float(restored.k_t) == 0.0
  for x, y in zip(jax.tree.leaves(restored.d_params), jax.tree.leaves(state.d_params)):
    np.testing.assert_array_equal(x, y)
  ckpt.close()


def test_a_checkpoint_of_the_first_layout_restores_into_a_state_without_k_t(tmp_path, began_state):
  # The first checkpoint format kept k_t in every family's state; a GANState has none now.
  import orbax.checkpoint as ocp
  from flax import serialization
  plain = GANState(**{f: getattr(began_state, f) for f in GANState.__dataclass_fields__})
  assert "k_t" not in serialization.to_state_dict(plain)
  old = {**serialization.to_state_dict(plain.replace(step=jnp.int32(5))), "k_t": np.float32(0.25)}
  ckpt = Checkpointer(str(tmp_path / "ckpt"))
  ckpt._manager.save(5, args=ocp.args.Composite(state=ocp.args.StandardSave(old),
                                                  meta=ocp.args.JsonSave({"model": "began"})))
  ckpt.wait()
  restored = ckpt.restore(plain, {"model": "began"})
  assert int(restored.step) == 5 and not hasattr(restored, "k_t")
  restored_began = ckpt.restore(began_state, {"model": "began"})   # BEGAN reads its k_t back
  assert float(restored_began.k_t) == 0.25
  ckpt.close()


def test_began_refuses_what_its_step_does_not_train(tmp_path):
  for key, value, match in (("n_critic", 5, "n_critic"), ("gp_weight", 10.0, "gp_weight"),
                            ("loss", "hinge", "config.loss='hinge' cannot train")):
    config = _config("began_fmnist")
    config[key] = value
    with pytest.raises(ConfigError, match=match):
      trainer.train_and_evaluate(config, str(tmp_path / "run"))
  assert not os.path.exists(tmp_path / "run")


def test_began_loss_needs_the_began_model(tmp_path):
  config = _config("dcgan_fmnist", loss="began")
  with pytest.raises(ConfigError, match="config.loss='began' cannot train config.model='dcgan'"):
    trainer.train_and_evaluate(config, str(tmp_path / "run"))
