import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import losses


def _sig(t):
  return 1.0 / (1.0 + math.exp(-t))


REAL = [2.0, -1.0, 0.5]
FAKE = [-3.0, 0.0, 1.5]


def test_bce_discriminator_loss_matches_hand_computation():
  expected = (-np.mean([math.log(_sig(t)) for t in REAL])
              - np.mean([math.log(1 - _sig(t)) for t in FAKE]))
  for kind in ("nonsaturating", "minimax"):
    got = losses.discriminator_loss(kind, jnp.array(REAL), jnp.array(FAKE))
    assert float(got) == pytest.approx(expected, rel=1e-6)


def test_one_sided_label_smoothing_by_hand():
  # Real target 0.9, fakes' target 0 (Salimans et al., 2016, sec. 3.4).
  expected = (-np.mean([0.9 * math.log(_sig(t)) + 0.1 * math.log(1 - _sig(t)) for t in REAL])
              - np.mean([math.log(1 - _sig(t)) for t in FAKE]))
  got = losses.discriminator_loss("nonsaturating", jnp.array(REAL), jnp.array(FAKE), label_smoothing=0.1)
  assert float(got) == pytest.approx(expected, rel=1e-6)
  # The smoothed real term is the plain one plus 0.1 x the mean real logit: D is no longer paid
  # for pushing real logits to +inf (the smoothed loss has its optimum at logit log 9).
  plain = losses.bce_discriminator_loss(jnp.array(REAL), jnp.array(FAKE))
  assert float(got) == pytest.approx(float(plain) + 0.1 * np.mean(REAL), rel=1e-6)
  grad = jax.grad(lambda r: losses.bce_discriminator_loss(r, jnp.array(FAKE), label_smoothing=0.1))
  assert float(grad(jnp.array([math.log(9.0)]))[0]) == pytest.approx(0.0, abs=1e-6)
  assert float(grad(jnp.array([5.0]))[0]) > 0


def test_generator_losses_match_hand_computation():
  ns = -np.mean([math.log(_sig(t)) for t in FAKE])
  mm = np.mean([math.log(1 - _sig(t)) for t in FAKE])
  assert float(losses.generator_loss("nonsaturating", jnp.array(FAKE))) == pytest.approx(ns, rel=1e-6)
  assert float(losses.generator_loss("minimax", jnp.array(FAKE))) == pytest.approx(mm, rel=1e-6)


def test_losses_are_stable_for_huge_logits():
  # A naive log(sigmoid(x)) gives -inf (and NaN gradients) here.
  real, fake = jnp.array([-200.0, 200.0]), jnp.array([200.0, -200.0])
  d = losses.discriminator_loss("nonsaturating", real, fake)
  assert float(d) == pytest.approx((200.0 + 0.0) / 2 + (200.0 + 0.0) / 2, rel=1e-6)
  g_grad = jax.grad(lambda f: losses.generator_loss("nonsaturating", f))(fake)
  assert np.all(np.isfinite(g_grad))
  # d/df of -mean(log sigmoid(f)) = -(1 - sigmoid(f)) / n
  np.testing.assert_allclose(g_grad, [-(1 - 1.0) / 2, -(1 - 0.0) / 2], atol=1e-6)


def test_saturation_difference_between_minimax_and_nonsaturating():
  # When D confidently rejects fakes, the minimax gradient vanishes, the NS one doesn't.
  fake = jnp.array([-10.0])
  mm = jax.grad(lambda f: losses.generator_loss("minimax", f))(fake)
  ns = jax.grad(lambda f: losses.generator_loss("nonsaturating", f))(fake)
  assert abs(float(mm[0])) < 1e-4 < abs(float(ns[0]))


def test_discriminator_accuracy():
  real_acc, fake_acc = losses.discriminator_accuracy(jnp.array(REAL), jnp.array(FAKE))
  assert float(real_acc) == pytest.approx(2 / 3)
  assert float(fake_acc) == pytest.approx(1 / 3)


def test_unknown_kind_names_the_choices():
  with pytest.raises(ValueError, match="nonsaturating"):
    losses.generator_loss("wgan-typo", jnp.zeros(2))
