"""The research API from a user's script: own models, samples as images, checkpoints, imports."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxgan


class PlainGenerator(nn.Module):
  """A user's generator: no latent_dim field, no train argument, no BatchNorm."""

  @nn.compact
  def __call__(self, z):
    return jnp.tanh(nn.Dense(8 * 8 * 1)(nn.relu(nn.Dense(32)(z)))).reshape(-1, 8, 8, 1)


class DropoutCritic(nn.Module):
  """A user's discriminator with dropout, switched by ``train``."""

  @nn.compact
  def __call__(self, x, train: bool = False):
    h = nn.leaky_relu(nn.Dense(32)(x.reshape(x.shape[0], -1)), 0.2)
    h = nn.Dropout(0.5, deterministic=not train)(h)
    return nn.Dense(1)(h)[:, 0]


class PlainCritic(nn.Module):
  @nn.compact
  def __call__(self, x):
    return nn.Dense(1)(x.reshape(x.shape[0], -1))[:, 0]


def _state(discriminator, **kw):
  tx = optax.adam(1e-3)
  return jaxgan.create_state(PlainGenerator(), discriminator, tx, tx, jax.random.key(0), **kw)


def test_own_models_without_latent_dim_or_train_and_with_dropout_train():
  with pytest.raises(ValueError, match=r"has no latent_dim field: pass create_state\(\.\.\., "
                                       r"latent_dim=N\)"):
    _state(DropoutCritic())
  state = _state(DropoutCritic(), latent_dim=6)
  assert state.latent_dim == 6
  batch = {"image": jax.random.uniform(jax.random.key(1), (16, 8, 8, 1), minval=-1, maxval=1)}
  step = jaxgan.make_train_step("nonsaturating")
  one, metrics = step(state, batch)
  again, _ = step(state, batch)          # the dropout masks are a function of the key and step
  jax.tree.map(np.testing.assert_array_equal, one.d_params, again.d_params)
  assert np.isfinite(float(metrics["d_loss"])) and int(one.step) == 1
  # Dropout is on in training (masks change with the step), off for sampling and evaluation.
  x = batch["image"]
  train_0 = one.discriminate(x, train=True)[0]
  train_1 = one.replace(step=one.step + 1).discriminate(x, train=True)[0]
  assert not np.allclose(train_0, train_1)
  np.testing.assert_array_equal(one.discriminate(x, train=False)[0],
                                one.replace(step=one.step + 1).discriminate(x, train=False)[0])
  for wgan_gp in (jaxgan.make_train_step("wasserstein", n_critic=2, gp_weight=10.0),):
    stacked = {"image": jnp.stack([x, x[::-1]])}
    assert np.isfinite(float(wgan_gp(state, stacked)[1]["gp"]))
  # A critic without a train argument trains too; generate_images uses the given latent size.
  plain = _state(PlainCritic(), latent_dim=6)
  plain, _ = jaxgan.make_train_step("hinge", reuse_fakes=False)(plain, batch)
  images = jaxgan.generate_images(plain, plain.latent_dim, 5, seed=1, batch_size=2)
  assert images.shape == (5, 8, 8, 1) and images.min() >= -1 and images.max() <= 1


def test_a_resumed_dropout_run_draws_the_same_masks(tmp_path):
  state = _state(DropoutCritic(), latent_dim=6)
  batch = {"image": jnp.linspace(-1, 1, 16 * 64).reshape(16, 8, 8, 1)}
  step = jaxgan.make_train_step("nonsaturating")
  for _ in range(2):
    state, _ = step(state, batch)
  ckpt = jaxgan.Checkpointer(str(tmp_path / "ckpt"))
  ckpt.save(state)                      # no meta: optional
  ckpt.wait()
  straight = step(state, batch)[0]
  resumed = ckpt.restore(_state(DropoutCritic(), latent_dim=6))
  ckpt.close()
  assert int(resumed.step) == 2
  jax.tree.map(np.testing.assert_array_equal, step(resumed, batch)[0].d_params, straight.d_params)


def test_samples_save_as_images_from_floats_or_uint8_and_refuse_the_rest(tmp_path):
  floats = np.linspace(-1, 1, 4 * 8 * 8).reshape(4, 8, 8, 1).astype(np.float32)
  out, png = jaxgan.save_images(floats, str(tmp_path / "a.npz"))
  saved = np.load(out)["images"]
  assert saved.dtype == np.uint8 and saved.min() == 0 and saved.max() == 255
  np.testing.assert_array_equal(saved, jaxgan.to_uint8(floats))
  import matplotlib.image
  assert matplotlib.image.imread(png).std() > 0.1        # a picture, not a blank
  out, _ = jaxgan.save_images(saved, str(tmp_path / "b"))   # uint8 as is, .npz added
  np.testing.assert_array_equal(np.load(out)["images"], saved)
  from jaxgan.generation import SampleError
  with pytest.raises(SampleError, match="floats in \\[-1, 1\\].*span \\[0, 255\\]"):
    jaxgan.save_images(saved.astype(np.float32), str(tmp_path / "c.npz"))
  with pytest.raises(SampleError, match="not int32"):
    jaxgan.save_images(saved.astype(np.int32), str(tmp_path / "d.npz"))
  assert not (tmp_path / "c.npz").exists() and not (tmp_path / "d.npz").exists()


def test_checkpointer_meta_is_optional_and_refuses_another_model_when_given(tmp_path):
  state = _state(PlainCritic(), latent_dim=6)
  ckpt = jaxgan.Checkpointer(str(tmp_path / "ckpt"))
  ckpt.save(state, {"model": "mine"})
  ckpt.wait()
  assert int(ckpt.restore(state).step) == 0                       # no meta: structure only
  from jaxgan.checkpoint import CheckpointError
  with pytest.raises(CheckpointError, match="model: checkpoint has 'mine', this run has 'other'"):
    ckpt.restore(state, {"model": "other"})
  ckpt.close()


def test_import_jaxgan_exposes_what_the_research_section_uses():
  import subprocess
  import sys
  code = ("import jaxgan\n"
          "print(jaxgan.data.load.__name__, jaxgan.generate_images.__name__, jaxgan.to_uint8.__name__,"
          " jaxgan.save_images.__name__, jaxgan.Checkpointer.__name__, jaxgan.MultiSeed.__name__,"
          " jaxgan.metrics.Evaluator.__name__)\n")
  result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
  assert result.returncode == 0, result.stderr[-2000:]
  assert result.stdout.split() == ["load", "generate_images", "to_uint8", "save_images",
                                   "Checkpointer", "MultiSeed", "Evaluator"]
  with pytest.raises(AttributeError, match="no attribute 'nope'"):
    jaxgan.nope
