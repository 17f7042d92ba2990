"""The GAN objective family: loss values, the optima the papers state, and each recipe end to end."""

import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import load_config, read_metrics, short_run
from jaxgan import losses, trainer
from jaxgan.errors import ConfigError

REAL = np.array([2.0, -1.0, 0.5])
FAKE = np.array([-3.0, 0.0, 1.5])


def _d(kind, real=REAL, fake=FAKE):
  return float(losses.discriminator_loss(kind, jnp.asarray(real), jnp.asarray(fake)))


def _g(kind, fake=FAKE):
  return float(losses.generator_loss(kind, jnp.asarray(fake)))


# ---------------------------------------------------------------------------- hand-computed values

def test_least_squares_matches_hand_computation():
  # 1/2 mean((D(x) - 1)^2) + 1/2 mean(D(G(z))^2);  G: 1/2 mean((D(G(z)) - 1)^2)
  d = 0.5 * ((1 + 4 + 0.25) / 3) + 0.5 * ((9 + 0 + 2.25) / 3)
  g = 0.5 * ((16 + 1 + 0.25) / 3)
  assert _d("least_squares") == pytest.approx(d, rel=1e-6)
  assert _g("least_squares") == pytest.approx(g, rel=1e-6)


def test_wasserstein_matches_hand_computation():
  assert _d("wasserstein") == pytest.approx((-3 + 0 + 1.5) / 3 - (2 - 1 + 0.5) / 3, rel=1e-6)
  assert _g("wasserstein") == pytest.approx(-(-3 + 0 + 1.5) / 3, rel=1e-6)


def test_hinge_matches_hand_computation():
  real_term = (max(0, 1 - 2) + max(0, 1 + 1) + max(0, 1 - 0.5)) / 3      # (0 + 2 + 0.5) / 3
  fake_term = (max(0, 1 - 3) + max(0, 1 + 0) + max(0, 1 + 1.5)) / 3      # (0 + 1 + 2.5) / 3
  assert _d("hinge") == pytest.approx(real_term + fake_term, rel=1e-6)
  assert _g("hinge") == pytest.approx(0.5, rel=1e-6)


@pytest.mark.parametrize("kind", ["least_squares", "wasserstein", "hinge"])
def test_new_losses_are_registered_and_differentiable(kind):
  assert kind in losses.LOSSES
  g = jax.grad(lambda r, f: losses.discriminator_loss(kind, r, f), argnums=(0, 1))(
      jnp.asarray(REAL), jnp.asarray(FAKE))
  assert all(np.all(np.isfinite(x)) for x in g)


def test_wasserstein_and_hinge_generator_gradients_do_not_saturate():
  fake = jnp.array([-50.0, 50.0])
  for kind in ("wasserstein", "hinge"):
    np.testing.assert_allclose(jax.grad(lambda f: losses.generator_loss(kind, f))(fake), [-0.5, -0.5])


# ---------------------------------------------------------------------------- optima
# Two points x1, x2 with data weights P_D and generator weights P_G, realised exactly by batch
# counts; D is a free scalar per point, so the loss separates and each D(x_j) is found by a
# fine grid search with the other held fixed.

P_D, P_G = (0.8, 0.2), (0.3, 0.7)
REAL_IDX = np.array([0] * 8 + [1] * 2)
FAKE_IDX = np.array([0] * 3 + [1] * 7)
GRID = jnp.linspace(-4.0, 4.0, 8001)   # step 1e-3, holds -1, 0, 1


def _optimum(kind):
  def loss(d):
    return losses.discriminator_loss(kind, d[REAL_IDX], d[FAKE_IDX])
  best = []
  for j in range(2):
    values = jax.vmap(lambda v: loss(jnp.zeros(2).at[j].set(v)))(GRID)
    best.append(float(GRID[int(jnp.argmin(values))]))
  return np.array(best), float(loss(jnp.asarray(best)))


def test_least_squares_optimal_discriminator_is_the_papers():
  # Mao et al. eq. 4 with a = 0, b = 1: D*(x) = (b p_d + a p_g) / (p_d + p_g) = p_d / (p_d + p_g).
  d_star, _ = _optimum("least_squares")
  np.testing.assert_allclose(d_star, [p / (p + q) for p, q in zip(P_D, P_G)], atol=1e-3)


def test_bce_optimal_logit_is_the_log_density_ratio():
  d_star, value = _optimum("nonsaturating")   # Goodfellow et al.: D* = p_d / (p_d + p_g)
  # (the loss is flat near its minimum: float32 rounding moves the grid argmin by ~1e-3)
  np.testing.assert_allclose(d_star, [math.log(p / q) for p, q in zip(P_D, P_G)], atol=5e-3)
  jsd = 0.5 * sum(p * math.log(2 * p / (p + q)) + q * math.log(2 * q / (p + q)) for p, q in zip(P_D, P_G))
  assert value == pytest.approx(2 * math.log(2) - 2 * jsd, abs=1e-5)   # -(-log 4 + 2 JSD)


def test_hinge_optimum_is_the_sign_of_the_density_difference_and_gives_total_variation():
  d_star, value = _optimum("hinge")
  np.testing.assert_allclose(d_star, [1.0, -1.0], atol=1e-6)   # sign(p_d - p_g)
  tv = 0.5 * sum(abs(p - q) for p, q in zip(P_D, P_G))
  assert value == pytest.approx(2 * (1 - tv), abs=1e-5)


@pytest.mark.parametrize("shift", [0.7, -1.3])
def test_wasserstein_critic_optimum_over_lipschitz_critics_is_the_w1_distance(shift):
  # 1-D samples and their translate: W1 = |shift|. Over 1-Lipschitz linear critics
  # f(x) = w x (|w| <= 1, the clipping box) the critic loss is minimised at w = sign(mean gap)
  # and -L_D* equals W1; unconstrained (|w| <= 10) it is 10x larger: the constraint matters.
  real = jax.random.normal(jax.random.PRNGKey(0), (256,))
  fake = real - shift
  for box in (1.0, 10.0):
    ws = jnp.linspace(-box, box, 2001)
    values = jax.vmap(lambda w: losses.discriminator_loss("wasserstein", w * real, w * fake))(ws)
    assert -float(values.min()) == pytest.approx(box * abs(shift), rel=1e-4)
    assert float(ws[int(jnp.argmin(values))]) == pytest.approx(box * math.copysign(1, shift))
  from scipy.stats import wasserstein_distance
  assert wasserstein_distance(np.asarray(real), np.asarray(fake)) == pytest.approx(abs(shift), rel=1e-4)


# ---------------------------------------------------------------------------- recipes end to end

_config = short_run


PAPER = {
    "lsgan_fmnist": dict(loss="least_squares", optimizer="adam", learning_rate=2e-4, b1=0.5, n_critic=1),
    "hinge_fmnist": dict(loss="hinge", optimizer="adam", learning_rate=2e-4, b1=0.5, b2=0.999, n_critic=1),
    "wgan_fmnist": dict(loss="wasserstein", optimizer="rmsprop", learning_rate=5e-5, clip=0.01,
                        n_critic=5, batch_size=64),
    "wgangp_fmnist": dict(loss="wasserstein", optimizer="adam", learning_rate=1e-4, b1=0.0, b2=0.9,
                          gp_weight=10.0, n_critic=5, batch_size=64),
}


@pytest.mark.parametrize("name", sorted(PAPER))
def test_recipe_has_the_papers_hyper_parameters(name):
  config = load_config(name)
  for key, value in PAPER[name].items():
    assert config[key] == value, key
  assert (config.model, config.dataset, config.image_size) == ("dcgan", "fashion_mnist", 32)


@pytest.mark.parametrize("name,extra", [
    ("lsgan_fmnist", set()),
    ("hinge_fmnist", {"wasserstein"}),
    ("wgangp_fmnist", {"wasserstein", "gp", "grad_norm"}),
])
def test_recipe_trains_a_few_steps_without_nan(tmp_path, mock_fmnist, name, extra):
  workdir = str(tmp_path / name)
  state = trainer.train_and_evaluate(_config(name), workdir)
  assert int(state.step) == 4
  records = read_metrics(workdir)
  assert [r["step"] for r in records] == [1, 2, 3, 4]
  for r in records:
    assert {"d_loss", "g_loss", "d_real_acc", "d_fake_acc", *extra} <= set(r)
    assert all(np.isfinite(v) for v in r.values()), r
  assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves((state.g_params, state.d_params)))


def test_wgan_trains_clipped_and_resumes_exactly(tmp_path, mock_fmnist):
  # n_critic = 5: a step reads 5 batches; a resumed run must read the same ones.
  full = str(tmp_path / "full")
  final = trainer.train_and_evaluate(_config("wgan_fmnist"), full)
  assert int(final.step) == 4
  assert all(np.all(np.abs(np.asarray(x)) <= 0.01) for x in jax.tree.leaves(final.d_params))
  part = str(tmp_path / "part")
  trainer.train_and_evaluate(_config("wgan_fmnist", num_steps=2), part)   # final checkpoint at 2
  resumed = trainer.train_and_evaluate(_config("wgan_fmnist"), part)
  a, b = read_metrics(full), read_metrics(part)
  assert [r["step"] for r in b] == [1, 2, 3, 4]
  for ra, rb in zip(a, b):
    assert {"wasserstein", "d_loss", "g_loss"} <= set(ra)
    assert all(np.isfinite(v) for v in ra.values())
    for key in ("d_loss", "g_loss", "wasserstein", "d_real_acc", "d_fake_acc"):
      assert ra[key] == rb[key], (ra["step"], key)
  for x, y in zip(jax.tree.leaves(final), jax.tree.leaves(resumed)):
    np.testing.assert_array_equal(x, y)


def test_gradient_penalty_with_a_batchnorm_critic_is_refused_before_any_work(tmp_path):
  config = _config("wgangp_fmnist")
  config.discriminator.norm = "batch"
  with pytest.raises(ConfigError, match="gradient penalty is per example; BatchNorm mixes examples"):
    trainer.train_and_evaluate(config, str(tmp_path / "run"))
  config = _config("dcgan_fmnist", r1_weight=10.0)   # the DCGAN critic has BatchNorm by default
  with pytest.raises(ConfigError, match="r1_weight.*BatchNorm"):
    trainer.train_and_evaluate(config, str(tmp_path / "run"))
  assert not os.path.exists(tmp_path / "run")


@pytest.mark.parametrize("key,value,match", [
    ("n_critic", 0, "n_critic must be a positive integer"),
    ("n_critic", -3, "n_critic must be a positive integer"),
    ("clip", -0.01, "clip must be a number >= 0"),
    ("gp_weight", float("nan"), "gp_weight must be a number >= 0"),
    ("optimizer", "sgd", "config.optimizer='sgd' is unknown"),
])
def test_bad_objective_settings_are_refused(tmp_path, key, value, match):
  config = _config("wgan_fmnist")
  config[key] = value
  with pytest.raises(ConfigError, match=match):
    trainer.train_and_evaluate(config, str(tmp_path / "run"))
