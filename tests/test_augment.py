"""DiffAugment (Zhao et al., 2020) and training on a fraction of the data."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxgan
from conftest import load_config, read_metrics, tiny
from jaxgan import augment, data as data_lib, families, parallel, trainer
from jaxgan.errors import ConfigError
from jaxgan.models import build_models


def _u(**values):
  """A [1, NUM_UNIFORMS] draw with the named entries set (the rest 0.5)."""
  u = np.full((1, augment.NUM_UNIFORMS), 0.5, np.float32)
  names = ("brightness", "saturation", "contrast", "ty", "tx", "cy", "cx")
  for name, value in values.items():
    u[0, names.index(name)] = value
  return jnp.asarray(u)


def test_colour_transforms_match_the_formulas():
  x = jax.random.uniform(jax.random.PRNGKey(0), (1, 4, 4, 3), minval=-1, maxval=1)
  u = _u(brightness=0.9, saturation=0.25, contrast=0.75)
  b = x + 0.4
  s = (b - b.mean(axis=3, keepdims=True)) * 0.5 + b.mean(axis=3, keepdims=True)
  c = (s - s.mean()) * 1.25 + s.mean()
  np.testing.assert_allclose(augment.augment_with(x, u, ("color",)), c, rtol=1e-6, atol=1e-6)
  # On one channel the saturation is the identity.
  g = x[..., :1]
  np.testing.assert_allclose(augment.saturation(g, jnp.array([0.1])), g, atol=1e-7)


def test_translation_shifts_by_whole_pixels_and_fills_with_zeros():
  x = jnp.zeros((1, 16, 16, 1)).at[0, 5, 9, 0].set(1.0).at[0, 0, 0, 0].set(1.0)
  # side 16: s = 2, shifts uniform over [-2, 2]; u = 0.0 -> -2, u = 0.99 -> +2.
  out = augment.augment_with(x, _u(ty=0.0, tx=0.99), ("translation",))
  assert float(out.sum()) == 1.0            # the corner pixel left the image, zeros came in
  assert float(out[0, 7, 7, 0]) == 1.0       # (dy, dx) = (-2, 2): out[i, j] = x[i + dy, j + dx]
  centre = augment.augment_with(x, _u(ty=0.5, tx=0.5), ("translation",))
  np.testing.assert_array_equal(centre, x)  # the middle draw is no shift


def test_cutout_zeroes_a_half_side_square_clipped_at_the_edges():
  x = jnp.ones((2, 16, 16, 1))
  u = jnp.asarray(np.stack([_u(cy=0.5, cx=0.5)[0], _u(cy=0.0, cx=0.0)[0]]))
  out = augment.augment_with(x, u, ("cutout",))
  # size 8; centre 8 -> rows/cols 4..11 fully inside; centre 0 -> rows/cols 0..3 (clipped).
  assert float((out[0] == 0).sum()) == 64 and float(out[0, 4:12, 4:12].sum()) == 0
  assert float((out[1] == 0).sum()) == 16 and float(out[1, :4, :4].sum()) == 0


@pytest.mark.parametrize("policy", [("translation",), ("cutout",), ("translation", "cutout")])
def test_gradients_flow_through_the_augmentation_as_its_adjoint(policy):
  """translation and cutout are linear in x: <T x, y> = <x, T^T y>, with T^T from jax.vjp."""
  kx, ky, ku = jax.random.split(jax.random.PRNGKey(3), 3)
  x = jax.random.normal(kx, (4, 8, 8, 2))
  y = jax.random.normal(ky, (4, 8, 8, 2))
  u = jax.random.uniform(ku, (4, augment.NUM_UNIFORMS))
  out, pull_back = jax.vjp(lambda t: augment.augment_with(t, u, policy), x)
  (xt,) = pull_back(y)
  np.testing.assert_allclose(jnp.sum(out * y), jnp.sum(x * xt), rtol=1e-5)
  assert float(jnp.abs(xt).sum()) > 0


def test_colour_gradient_matches_finite_differences():
  x = jax.random.uniform(jax.random.PRNGKey(4), (2, 4, 4, 3), minval=-1, maxval=1)
  u = jax.random.uniform(jax.random.PRNGKey(5), (2, augment.NUM_UNIFORMS))
  f = lambda t: jnp.sum(jnp.sin(augment.augment_with(t, u, augment.POLICIES)))
  g = jax.grad(f)(x)
  d = jax.random.normal(jax.random.PRNGKey(6), x.shape)
  eps = 1e-3
  fd = (f(x + eps * d) - f(x - eps * d)) / (2 * eps)
  np.testing.assert_allclose(jnp.sum(g * d), fd, rtol=2e-2)


def test_bad_policies_are_one_clear_error():
  assert augment.parse_policy(" color, cutout ") == ("color", "cutout")
  assert augment.parse_policy("") == ()
  with pytest.raises(ValueError, match="unknown augmentation 'colour'; choose from color, "):
    augment.parse_policy("colour,translation")
  with pytest.raises(ValueError, match="twice"):
    augment.parse_policy("cutout,cutout")
  config = tiny(load_config("dcgan_fmnist"))
  config.augment = "flip"
  with pytest.raises(ConfigError, match="config.augment='flip': unknown augmentation 'flip'"):
    families.check(config)
  config = tiny(load_config("began_fmnist"))
  config.augment = "color"
  with pytest.raises(ConfigError, match="the began family has no DiffAugment; set config.augment=.. .the families with it: cgan, gan"):
    families.check(config)


@pytest.mark.parametrize("value", [0, 0.0, -0.1, 1.5])
def test_data_fraction_outside_zero_one_is_refused(value):
  config = tiny(load_config("dcgan_fmnist"))
  config.data.fraction = value
  with pytest.raises(ConfigError, match=r"config.data.fraction must be in \(0, 1\]"):
    families.check(config)


def test_subset_is_seeded_and_independent_of_the_run_seed():
  images = np.arange(1000, dtype=np.float32).reshape(1000, 1, 1, 1)
  full = data_lib.ImageData(images, np.arange(1000, dtype=np.int32) % 10, 10, "x", "train")
  a, b = data_lib.subset(full, 0.1), data_lib.subset(full, 0.1)
  other = data_lib.subset(full, 0.1, seed=1)
  assert len(a.images) == 100 and a.subset.startswith("100 of 1000 examples") and a.split == "train"
  np.testing.assert_array_equal(a.images, b.images)
  assert not np.array_equal(a.images, other.images)
  np.testing.assert_array_equal(a.labels, a.images.reshape(-1).astype(np.int32) % 10)  # pairs kept
  assert np.all(np.diff(a.images.reshape(-1)) > 0)   # original order, no repeats
  assert data_lib.subset(full, 1.0) is full


def _state():
  g, d = build_models("dcgan", (16, 16, 1), 8, {"features": (8, 4)},
                      {"features": (4, 8), "norm": "spectral"})
  tx = optax.adam(1e-3, b1=0.0, b2=0.9)
  return jaxgan.create_state(g, d, tx, tx, jax.random.PRNGKey(0))


@pytest.mark.parametrize("n_critic", [1, 2])
def test_augmented_steps_on_eight_devices_equal_one_device(n_critic):
  state = _state()
  shape = (2, n_critic, 16, 16, 16, 1) if n_critic > 1 else (2, 16, 16, 16, 1)
  images = np.asarray(jax.random.uniform(jax.random.PRNGKey(2), shape, minval=-1))
  options = dict(loss="hinge", n_critic=n_critic, augment="color,translation,cutout")
  single = jaxgan.make_train_step(**options)
  plain = jaxgan.make_train_step(loss="hinge", n_critic=n_critic)
  expected, _ = single(state, {"image": images[0]})
  expected, m_single = single(expected, {"image": images[1]})
  unaugmented, m_plain = plain(plain(state, {"image": images[0]})[0], {"image": images[1]})
  assert abs(float(m_single["d_loss"]) - float(m_plain["d_loss"])) > 1e-4   # it does augment
  dp = parallel.DataParallel(mode="shard_map")
  step = dp.train_step(**options)
  got = dp.replicate(state)
  for k in range(2):
    got, m = step(got, dp.shard({"image": images[k]}, batch_axis=parallel.batch_axis(n_critic)))
  got = dp.unreplicate(got)
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(expected)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-5, atol=2e-6)
  np.testing.assert_allclose(dp.metrics(m)["d_loss"], m_single["d_loss"], rtol=1e-5)


def test_an_augmented_run_on_a_fraction_resumes_exactly(tmp_path, mock_fmnist, capsys):
  def config(num_steps):
    c = tiny(load_config("dcgan_fmnist"))
    c.augment, c.data.fraction = "color,translation,cutout", 0.25
    c.num_steps, c.log_every, c.sample_every, c.checkpoint_every = num_steps, 1, 1000, 3
    return c
  full, part = str(tmp_path / "full"), str(tmp_path / "part")
  trainer.train_and_evaluate(config(6), full)
  assert "64 of 256 examples (fraction 0.25" in capsys.readouterr().out   # the run says so
  trainer.train_and_evaluate(config(3), part)
  trainer.train_and_evaluate(config(6), part)
  a, b = read_metrics(full), read_metrics(part)
  assert [r["step"] for r in b] == [1, 2, 3, 4, 5, 6]
  for ra, rb in zip(a, b):
    assert (ra["d_loss"], ra["g_loss"]) == (rb["d_loss"], rb["g_loss"])
  assert json.load(open(os.path.join(part, "config.json")))["augment"] == "color,translation,cutout"
