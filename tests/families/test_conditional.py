"""Label-aware GANs: conditional GAN, ACGAN, semi-supervised GAN (models, losses, steps, data, runs)."""

import json
import types
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

import jaxgan
from conftest import load_config, tiny
from jaxgan import families, losses, optim, steps, viz
from jaxgan.families import conditional
from jaxgan.families import sgan as sgan_family
from jaxgan.families.conditional import make_acgan_step
from jaxgan.families.sgan import make_sgan_step
from jaxgan import config as config_lib
from jaxgan.config import override
from jaxgan.data import DataError, ImageData
from jaxgan.data.labeled import SemiSupervisedData, labeled_subset
from jaxgan.errors import ConfigError
from jaxgan.models import build_models
from jaxgan.state import create_state


def _leaves_equal(a, b):
  return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def _count(tree):
  return sum(int(np.size(x)) for x in jax.tree.leaves(tree))


def _state(name, shape, gk, dk, lr=1e-3, classes=10, tx=None):
  g, d = build_models(name, shape, 8, gk, dk, num_classes=classes)
  tx = tx or optax.adam(lr, b1=0.5)
  return create_state(g, d, tx, tx, jax.random.PRNGKey(0))


def _abstract(name, shape, gk, dk):
  """The state's shapes only (no compilation): what the shape and count tests need."""
  return jax.eval_shape(lambda: _state(name, shape, gk, dk))


def _apply_shapes(module, *args, **kw):
  variables = jax.eval_shape(lambda: module.init(jax.random.PRNGKey(0), *args, train=False))
  return jax.eval_shape(lambda v: module.apply(v, *args, train=False, **kw), variables)


def _images(n, shape, seed=1):
  return jax.random.uniform(jax.random.PRNGKey(seed), (n,) + shape, minval=-1, maxval=1)


# --- models: shapes and parameter counts --------------------------------------------------

def test_conditional_mlp_shapes_and_parameter_counts():
  s = _abstract("cgan_mlp", (28, 28, 1), {"hidden": (16, 32), "embed_dim": 10},
             {"hidden": (32, 16), "conditioning": "concat"})
  # G: embedding 10x10; Dense 18->16; Dense 16->32 + BatchNorm(32); Dense 32->784.
  assert _count(s.g_params) == 100 + (18 * 16 + 16) + (16 * 32 + 32) + 64 + (32 * 784 + 784)
  # D (concat): embedding 10x10; Dense 794->32; Dense 32->16; Dense 16->1.
  assert _count(s.d_params) == 100 + (794 * 32 + 32) + (32 * 16 + 16) + 17
  y = jnp.arange(6) % 10
  x = _apply_shapes(s.generator, jnp.zeros((6, 8)), y)
  assert x.shape == (6, 28, 28, 1)
  assert _apply_shapes(s.discriminator, jnp.zeros((6, 28, 28, 1)), y).shape == (6,)
  p = _abstract("cgan_mlp", (28, 28, 1), {"hidden": (16,)}, {"hidden": (32, 16), "conditioning": "projection"})
  # D (projection): Dense 784->32; Dense 32->16; psi Dense 16->1; class embedding 10x16.
  assert _count(p.d_params) == (784 * 32 + 32) + (32 * 16 + 16) + 17 + 160


def test_dcgan_bodies_acgan_and_sgan_shapes_and_counts():
  y, x = jnp.array([0, 1, 2]), jnp.zeros((3, 16, 16, 1))
  s = _abstract("cgan_dcgan", (16, 16, 1), {"features": (8, 4)},
                {"features": (4, 8), "conditioning": "projection", "norm": "none"})
  # D: conv 1->4 (+bias), conv 4->8 (+bias), flattened 4x4x8 = 128 features: psi 128->1, embedding 10x128.
  assert _count(s.d_params) == (16 * 4 + 4) + (16 * 4 * 8 + 8) + 129 + 1280
  assert _apply_shapes(s.generator, jnp.zeros((3, 8)), y).shape == (3, 16, 16, 1)
  c = _abstract("cgan_dcgan", (16, 16, 1), {"features": (8, 4)},
                {"features": (4, 8), "conditioning": "concat", "norm": "none", "embed_dim": 3})
  # concat: 3 label channels join the image: the first conv reads 1 + 3 channels.
  assert c.d_params["Conv_0"]["kernel"].shape == (4, 4, 4, 4)
  assert _apply_shapes(c.discriminator, x, y).shape == (3,)
  a = _abstract("acgan", (16, 16, 1), {"features": (8, 4)}, {"features": (4, 8), "norm": "none"})
  source, classes = _apply_shapes(a.discriminator, x)
  assert source.shape == (3,) and classes.shape == (3, 10)
  assert _count(a.d_params) == (16 * 4 + 4) + (16 * 4 * 8 + 8) + 129 + (128 * 10 + 10)
  g = _abstract("sgan", (28, 28, 1), {"hidden": (16,)}, {"hidden": (32, 16)})
  logits, feats = _apply_shapes(g.discriminator, jnp.zeros((3, 28, 28, 1)))
  assert logits.shape == (3, 10) and feats.shape == (3, 16)
  # Weight-normalised Dense layers: kernel + bias + one scale per output unit.
  assert _count(g.d_params) == (784 * 32 + 64) + (32 * 16 + 32) + (16 * 10 + 20)
  assert [families.for_model(m).name for m in ("dcgan", "cgan_mlp", "cgan_dcgan", "acgan", "sgan")] == [
      "gan", "cgan", "cgan", "acgan", "sgan"]


def test_changing_the_label_changes_the_sample_for_the_same_noise():
  for name, gk in (("cgan_mlp", {"hidden": (16, 32)}), ("acgan", {"features": (4,)})):
    s = _state(name, (4, 4, 1), gk, {"hidden": (8,)} if name == "cgan_mlp" else {"body": "mlp", "hidden": (8,)})
    z = jnp.tile(jax.random.normal(jax.random.PRNGKey(3), (1, 8)), (10, 1))
    x = np.asarray(steps.generate(s, z, jnp.arange(10)))
    for k in range(1, 10):  # (DCGAN's N(0, 0.02) initialisation keeps outputs small: compare relatively)
      assert np.abs(x[k] - x[0]).max() > 0.05 * np.abs(x[0]).max() > 0, (name, k)
    np.testing.assert_array_equal(np.asarray(steps.generate(s, z, jnp.zeros(10, jnp.int32)))[3], x[0])


def test_multiply_label_join_scales_z_by_the_class_embedding():
  from jaxgan.models.conditional import ConditionalDCGANGenerator
  g = ConditionalDCGANGenerator((8, 8, 1), latent_dim=8, features=(4,), label_join="multiply")
  z, y = jax.random.normal(jax.random.PRNGKey(0), (3, 8)), jnp.array([0, 4, 9])
  v = g.init(jax.random.PRNGKey(1), z, y, train=False)
  table = v["params"]["label_embedding"]["embedding"]
  assert table.shape == (10, 8)  # one factor per latent dimension and class; no extra inputs
  assert v["params"]["body"]["Dense_0"]["kernel"].shape[0] == 8
  # The body sees exactly z * embed(y): feeding that product to the concat-free body agrees.
  from jaxgan.models.dcgan import DCGANGenerator
  body = DCGANGenerator((8, 8, 1), latent_dim=8, features=(4,))
  want = body.apply({"params": v["params"]["body"], "batch_stats": v["batch_stats"]["body"]},
                    z * table[y], train=False)
  np.testing.assert_allclose(g.apply(v, z, y, train=False), want, rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match="embed_dim must be 0 or the latent size 8"):
    ConditionalDCGANGenerator((8, 8, 1), latent_dim=8, embed_dim=10, label_join="multiply").init(
        jax.random.PRNGKey(1), z, y, train=False)


# --- losses against hand computations -----------------------------------------------------

def _log_softmax(l):
  l = np.asarray(l, np.float64)
  return l - np.log(np.sum(np.exp(l), -1, keepdims=True))


def test_acgan_losses_by_hand():
  rs, fs = np.array([0.5, -1.0, 2.0]), np.array([-0.3, 0.8, 0.0])
  rc = np.array([[1.0, 0.0, -1.0], [0.2, 0.3, 0.1], [2.0, -2.0, 0.0]])
  fc = np.array([[0.0, 1.0, 0.0], [1.5, 0.5, -0.5], [0.0, 0.0, 3.0]])
  ry, fy = np.array([0, 2, 0]), np.array([1, 1, 2])
  ce = lambda l, y: -np.mean(_log_softmax(l)[np.arange(len(y)), y])
  log_sig = lambda t: -np.log1p(np.exp(-t))
  adv_d = -np.mean(log_sig(rs)) - np.mean(log_sig(-fs))
  want_d = adv_d + 0.7 * (ce(rc, ry) + ce(fc, fy))
  got_d = losses.acgan_discriminator_loss("nonsaturating", jnp.array(rs), jnp.array(fs), jnp.array(rc),
                                          jnp.array(fc), jnp.array(ry), jnp.array(fy), class_weight=0.7)
  assert float(got_d) == pytest.approx(want_d, rel=1e-5)
  # fake_class_weight scales only the fakes' class term (0: D's class head learns from real images).
  for wf in (0.0, 0.25):
    got = losses.acgan_discriminator_loss("nonsaturating", jnp.array(rs), jnp.array(fs), jnp.array(rc),
                                          jnp.array(fc), jnp.array(ry), jnp.array(fy), class_weight=0.7,
                                          fake_class_weight=wf)
    assert float(got) == pytest.approx(adv_d + 0.7 * (ce(rc, ry) + wf * ce(fc, fy)), rel=1e-5)
  want_g = -np.mean(log_sig(fs)) + 0.7 * ce(fc, fy)
  got_g = losses.acgan_generator_loss("nonsaturating", jnp.array(fs), jnp.array(fc), jnp.array(fy), 0.7)
  assert float(got_g) == pytest.approx(want_g, rel=1e-5)
  hinge = losses.acgan_discriminator_loss("hinge", jnp.array(rs), jnp.array(fs), jnp.array(rc),
                                          jnp.array(fc), jnp.array(ry), jnp.array(fy))
  want_h = np.mean(np.maximum(0, 1 - rs)) + np.mean(np.maximum(0, 1 + fs)) + ce(rc, ry) + ce(fc, fy)
  assert float(hinge) == pytest.approx(want_h, rel=1e-5)
  assert float(losses.class_accuracy(jnp.array(rc), jnp.array(ry))) == pytest.approx(2 / 3)


def test_sgan_probability_identity_and_losses_by_hand():
  logits = np.array([[0.1, -0.4, 1.2], [-3.0, -2.0, -5.0], [4.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
  z = np.sum(np.exp(logits), -1)
  d = z / (z + 1)                                      # D(x) = Z / (Z + 1)
  np.testing.assert_allclose(np.asarray(losses.sgan_real_probability(jnp.array(logits))), d, rtol=1e-6)
  # Stable where exp overflows float32: Z/(Z+1) -> 1 and 0 without nan.
  extreme = losses.sgan_real_probability(jnp.array([[200.0, 150.0], [-200.0, -300.0]]))
  np.testing.assert_allclose(np.asarray(extreme), [1.0, 0.0], atol=1e-30)
  real, fake = logits[:2], logits[2:]
  zr, zf = np.sum(np.exp(real), -1), np.sum(np.exp(fake), -1)
  want = -np.mean(np.log(zr / (zr + 1))) - np.mean(np.log(1 / (zf + 1)))
  assert float(losses.sgan_unsupervised_loss(jnp.array(real), jnp.array(fake))) == pytest.approx(want, rel=1e-5)
  assert float(losses.sgan_generator_loss(jnp.array(fake))) == pytest.approx(
      -np.mean(np.log(zf / (zf + 1))), rel=1e-5)
  y = np.array([2, 1, 0, 1])
  assert float(losses.sgan_supervised_loss(jnp.array(logits), jnp.array(y))) == pytest.approx(
      -np.mean(_log_softmax(logits)[np.arange(4), y]), rel=1e-5)


def test_feature_matching_by_hand_and_no_gradient_into_the_real_statistics():
  rng = np.random.default_rng(0)
  real, fake = rng.normal(size=(5, 4)), rng.normal(size=(3, 4))
  want = np.mean((real.mean(0) - fake.mean(0)) ** 2)
  assert float(losses.feature_matching_loss(jnp.array(real), jnp.array(fake))) == pytest.approx(want, rel=1e-5)
  g_real, g_fake = jax.grad(losses.feature_matching_loss, argnums=(0, 1))(jnp.array(real), jnp.array(fake))
  assert float(jnp.abs(g_real).max()) == 0.0
  np.testing.assert_allclose(np.asarray(g_fake), np.tile(-2 * (real.mean(0) - fake.mean(0)) / 4 / 3, (3, 1)),
                             rtol=1e-5)


# --- one real step of each family ---------------------------------------------------------

@pytest.fixture(scope="module")
def cgan():
  # SGD, not Adam: the bias before G's BatchNorm has a zero gradient up to rounding, which
  # Adam would blow up to +-lr (rounding-dependent) and the hand comparison could not match.
  s = _state("cgan_mlp", (4, 4, 1), {"hidden": (8, 16)}, {"hidden": (16,), "conditioning": "projection"},
             tx=optax.sgd(0.1))
  return s, {"image": _images(6, (4, 4, 1)), "label": jnp.array([0, 1, 2, 3, 4, 5])}


def test_cgan_d_step_and_g_step_move_only_their_network(cgan):
  state, batch = cgan
  new, m = jaxgan.make_d_step(jit=False)(state, batch)
  assert not _leaves_equal(new.d_params, state.d_params)
  assert _leaves_equal(new.g_params, state.g_params) and _leaves_equal(new.g_batch_stats, state.g_batch_stats)
  new, m = jaxgan.make_g_step(jit=False)(state, batch)
  assert not _leaves_equal(new.g_params, state.g_params)
  assert not _leaves_equal(new.g_batch_stats, state.g_batch_stats)
  assert _leaves_equal(new.d_params, state.d_params) and _leaves_equal(new.d_opt_state, state.d_opt_state)
  # The real labels reach D: other labels, other loss.
  _, m1 = jaxgan.make_d_step(jit=False)(state, batch)
  _, m2 = jaxgan.make_d_step(jit=False)(state, {**batch, "label": batch["label"][::-1]})
  assert float(m1["d_loss"]) != pytest.approx(float(m2["d_loss"]), abs=1e-6)


def test_cgan_fused_step_is_d_then_g_on_the_same_labelled_fakes(cgan):
  state, batch = cgan
  fused, metrics = jaxgan.make_train_step(jit=False)(state, batch)
  s, md = jaxgan.make_d_step(jit=False)(state, batch)
  key = steps.step_key(state, 0)
  z, y = steps.sample_latent(state, key, 6), steps.sample_labels(state, key, 6)
  assert y.dtype == jnp.int32 and int(y.min()) >= 0 and int(y.max()) < 10

  def g_loss(g_params):
    fake, stats = s.replace(g_params=g_params).generate(z, train=True, label=y)
    return losses.generator_loss("nonsaturating", s.discriminate(fake, label=y)[0]), stats

  (loss, stats), grads = jax.value_and_grad(g_loss, has_aux=True)(s.g_params)
  updates, _ = s.g_tx.update(grads, s.g_opt_state, s.g_params)
  for a, b in zip(jax.tree.leaves((fused.g_params, fused.g_batch_stats, fused.d_params)),
                  jax.tree.leaves((optax.apply_updates(s.g_params, updates), stats, s.d_params))):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  assert float(metrics["g_loss"]) == pytest.approx(float(loss), rel=1e-5)
  assert float(metrics["d_loss"]) == pytest.approx(float(md["d_loss"]), rel=1e-5)


def test_cgan_step_on_eight_devices_equals_one_device():
  from jaxgan.parallel import DataParallel
  s = _state("cgan_mlp", (4, 4, 1), {"hidden": (8, 16)}, {"hidden": (16,), "conditioning": "projection"},
             tx=optax.sgd(0.1))  # SGD: see the cgan fixture
  batch = {"image": np.asarray(_images(8, (4, 4, 1))), "label": np.arange(8, dtype=np.int32) % 10}
  one, m1 = jaxgan.make_train_step(jit=False)(s, batch)
  dp = DataParallel(mode="shard_map", devices=jax.devices()[:8])
  many, m8 = dp.train_step("nonsaturating")(dp.replicate(s), dp.shard(batch))
  for a, b in zip(jax.tree.leaves(one), jax.tree.leaves(dp.unreplicate(many))):
    np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-6)
  assert float(m8["d_loss"]) == pytest.approx(float(m1["d_loss"]), rel=1e-4)


@pytest.mark.parametrize("wf", [1.0, 0.0])
def test_acgan_step_matches_a_hand_written_update(wf):
  state = _state("acgan", (4, 4, 1), {"features": (4,)}, {"body": "mlp", "hidden": (8,)})  # BatchNorm in G
  batch = {"image": _images(6, (4, 4, 1)), "label": jnp.array([0, 1, 2, 3, 4, 5])}
  new, m = make_acgan_step(jit=False, fake_class_weight=wf)(state, batch)
  assert {"d_class_acc_real", "d_class_acc_fake", "d_real_acc", "d_fake_acc", "g_loss"} <= set(m)
  key = steps.step_key(state, 0)
  z, y = steps.sample_latent(state, key, 6), steps.sample_labels(state, key, 6)
  fake, g_stats = state.generate(z, train=True, label=y)

  def d_loss(d_params):
    (rs, rc), st = state.discriminate(batch["image"], d_params=d_params)
    (fs, fc), st = state.discriminate(fake, st, d_params=d_params)
    return losses.acgan_discriminator_loss("nonsaturating", rs, fs, rc, fc, batch["label"], y,
                                           fake_class_weight=wf), (st, rc)

  (dl, (st, rc)), grads = jax.value_and_grad(d_loss, has_aux=True)(state.d_params)
  upd, _ = state.d_tx.update(grads, state.d_opt_state, state.d_params)
  d_params = optax.apply_updates(state.d_params, upd)
  s = state.replace(d_params=d_params, d_batch_stats=st)

  def g_loss(g_params):
    f, _ = s.replace(g_params=g_params).generate(z, train=True, label=y)
    src, cls = s.discriminate(f)[0]
    return losses.acgan_generator_loss("nonsaturating", src, cls, y)

  gl, ggrads = jax.value_and_grad(g_loss)(state.g_params)
  upd, _ = state.g_tx.update(ggrads, state.g_opt_state, state.g_params)
  for a, b in zip(jax.tree.leaves((new.d_params, new.d_batch_stats, new.g_params, new.g_batch_stats)),
                  jax.tree.leaves((d_params, st, optax.apply_updates(state.g_params, upd), g_stats))):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  assert float(m["d_loss"]) == pytest.approx(float(dl), rel=1e-5)
  assert float(m["g_loss"]) == pytest.approx(float(gl), rel=1e-5)
  assert float(m["d_class_acc_real"]) == pytest.approx(float(losses.class_accuracy(rc, batch["label"])))
  assert int(new.step) == 1


def test_acgan_class_loss_falls_on_a_separable_toy_problem():
  # Class k: a 4x4 image whose quadrant k is +1 and the rest -1, plus a little noise.
  state = _state("acgan", (4, 4, 1), {"features": (4,)}, {"body": "mlp", "hidden": (16,)}, lr=1e-2,
                 classes=4)
  labels = jnp.arange(32) % 4
  quadrants = -jnp.ones((4, 4, 4))
  for k, (r, c) in enumerate([(0, 0), (0, 2), (2, 0), (2, 2)]):
    quadrants = quadrants.at[k, r:r + 2, c:c + 2].set(1.0)
  base = quadrants[labels][..., None]
  step = make_acgan_step()  # jitted: one compilation, 25 calls
  history = []
  for i in range(25):
    noise = 0.1 * jax.random.normal(jax.random.PRNGKey(100 + i), base.shape)
    state, m = step(state, {"image": base + noise, "label": labels})
    history.append({k: float(v) for k, v in m.items()})
  first, last = history[0], history[-1]
  assert first["d_class_loss_real"] > 1.0 and first["d_class_acc_real"] < 0.5   # ~log 4 and chance
  assert last["d_class_loss_real"] < 0.1 * first["d_class_loss_real"]
  assert last["d_class_acc_real"] == 1.0
  # G learns to make fakes of the asked class too (the class term of its loss falls).
  assert last["g_class_loss"] < 0.5 * first["g_class_loss"] and last["d_class_acc_fake"] > 0.9


def _sgan_batch(shape=(4, 4, 1)):
  return {"image": _images(6, shape), "labeled_image": _images(4, shape, seed=2),
          "labeled_label": jnp.array([0, 1, 2, 3])}


def test_sgan_step_moves_both_networks_and_the_baseline_ignores_the_fakes():
  state = _state("sgan", (4, 4, 1), {"hidden": (16,)}, {"hidden": (32, 16)})
  batch = _sgan_batch()
  full, baseline = make_sgan_step(jit=False), make_sgan_step(jit=False, unsupervised_weight=0.0)
  new, m = full(state, batch)
  assert not _leaves_equal(new.d_params, state.d_params) and not _leaves_equal(new.g_params, state.g_params)
  assert {"d_sup_loss", "d_unsup_loss", "d_labeled_acc", "d_real_acc", "d_fake_acc", "g_loss"} <= set(m)
  assert float(m["d_loss"]) == pytest.approx(float(m["d_sup_loss"]) + 0.5 * float(m["d_unsup_loss"]), rel=1e-5)
  # Feature matching is G's default loss; the non-saturating one is another number.
  _, m_ns = make_sgan_step(jit=False, feature_matching=False)(state, batch)
  assert float(m_ns["g_loss"]) != pytest.approx(float(m["g_loss"]))
  # Baseline (unsupervised_weight=0): D's update is the supervised one, whatever G is...
  other_g = state.replace(g_params=jax.tree.map(lambda p: p + 0.5, state.g_params))
  base, mb = baseline(state, batch)
  base2, _ = baseline(other_g, batch)
  assert _leaves_equal(base.d_params, base2.d_params)
  assert float(mb["d_loss"]) == pytest.approx(float(mb["d_sup_loss"]), rel=1e-6)
  # ...while with the GAN terms on, G changes D's update.
  full2, _ = full(other_g, batch)
  assert not _leaves_equal(new.d_params, full2.d_params)


def test_sgan_label_smoothing_changes_only_the_unsupervised_term():
  state = _state("sgan", (4, 4, 1), {"hidden": (16,)}, {"hidden": (32, 16)})
  _, plain = make_sgan_step(jit=False)(state, _sgan_batch())
  _, smooth = make_sgan_step(jit=False, label_smoothing=0.1)(state, _sgan_batch())
  assert float(smooth["d_sup_loss"]) == pytest.approx(float(plain["d_sup_loss"]), rel=1e-6)
  # The same logits (same state, batch and noise): the real term gains 0.1 x mean log Z(real).
  assert float(smooth["d_unsup_loss"]) != pytest.approx(float(plain["d_unsup_loss"]), rel=1e-4)
  assert float(smooth["d_real_prob"]) == pytest.approx(float(plain["d_real_prob"]), rel=1e-6)


@pytest.mark.parametrize("name,gk,dk,make", [
    ("mlp", {"hidden": (8,)}, {"hidden": (8,)}, jaxgan.make_train_step),    # the reused-fakes step
    ("cgan_mlp", {"hidden": (8,)}, {"hidden": (8,)}, jaxgan.make_d_step),
    ("acgan", {"features": (4,)}, {"body": "mlp", "hidden": (8,)}, make_acgan_step),
])
def test_label_smoothing_adds_s_times_the_mean_real_logit_to_d_loss(name, gk, dk, make):
  # -[(1 - s) log sigmoid(r) + s log sigmoid(-r)] = -log sigmoid(r) + s r: the smoothed D loss is the
  # plain one plus s * mean(real logit), on the same logits (the fakes' and class terms untouched).
  state = _state(name, (4, 4, 1), gk, dk)
  batch = {"image": _images(4, (4, 4, 1)), "label": jnp.array([0, 1, 2, 3])}
  label = batch["label"] if name == "cgan_mlp" else None
  real = state.discriminate(batch["image"], label=label)[0]
  real = real[0] if name == "acgan" else real  # ACGAN's D: (source logit, class logits)
  _, plain = make(jit=False)(state, batch)
  _, smooth = make(jit=False, label_smoothing=0.1)(state, batch)
  assert float(smooth["d_loss"]) - float(plain["d_loss"]) == pytest.approx(
      0.1 * float(jnp.mean(real)), rel=1e-4, abs=1e-6)
  for key in ("d_real_acc", "d_fake_acc", "d_class_loss_real", "d_class_loss_fake"):
    if key in plain:
      assert float(smooth[key]) == pytest.approx(float(plain[key]), rel=1e-6)


def test_sgan_test_predictions_are_the_noiseless_argmax_in_any_batching():
  state = _state("sgan", (4, 4, 1), {"hidden": (16,)}, {"hidden": (32, 16)})
  images = np.asarray(_images(7, (4, 4, 1), seed=5))
  want = np.argmax(np.asarray(state.discriminate(jnp.asarray(images), train=False)[0][0]), -1)
  for batch_size in (3, 7, 10):  # a ragged last batch, one batch, a batch larger than the set
    got = sgan_family.discriminator_predictions(state, images, batch_size=batch_size)
    np.testing.assert_array_equal(got, want)
  labels = want.copy()
  labels[:2] = (labels[:2] + 1) % 10  # two wrong labels of seven
  acc = sgan_family.discriminator_accuracy(state, images, labels, batch_size=3)
  assert acc == pytest.approx(5 / 7)
  # d_params replaces the state's parameters (all-zero logits: argmax is class 0 everywhere).
  zero = jax.tree.map(jnp.zeros_like, state.d_params)
  assert set(sgan_family.discriminator_predictions(state, images, d_params=zero)) == {0}


def test_weight_norm_dense_data_dependent_init_normalises_and_fixes_hidden_scales():
  from jaxgan.models.layers import WeightNormDense
  x = jax.random.normal(jax.random.PRNGKey(3), (64, 5)) * 3.0 + 1.0
  layer = WeightNormDense(4, train_scale=False)
  params = layer.init(jax.random.PRNGKey(0), x)["params"]
  assert set(params) == {"kernel", "scale", "bias"}
  np.testing.assert_allclose(params["scale"], 1.0)
  _, mutated = layer.apply({"params": params}, x, data_init=True, mutable=["params"])
  y = layer.apply({"params": mutated["params"]}, x)
  # Pre-activations on the init batch: zero mean, unit variance per unit (Salimans & Kingma, 2016).
  np.testing.assert_allclose(np.mean(y, 0), 0.0, atol=1e-5)
  np.testing.assert_allclose(np.std(y, 0), 1.0, rtol=1e-4)
  # By hand: y = x v g / ||v|| + b.
  v, g, b = (np.asarray(mutated["params"][k]) for k in ("kernel", "scale", "bias"))
  np.testing.assert_allclose(y, np.asarray(x) @ (v * g / np.linalg.norm(v, axis=0)) + b, rtol=1e-4, atol=1e-5)
  # A hidden layer's scale gets no gradient (fixed after the init, as their code); the output's does.
  loss = lambda m, p: jnp.sum(jnp.square(m.apply({"params": p}, x)))
  assert float(jnp.abs(jax.grad(lambda p: loss(layer, p))(params)["scale"]).max()) == 0.0
  out = WeightNormDense(4, train_scale=True)
  assert float(jnp.abs(jax.grad(lambda p: loss(out, p))(params)["scale"]).max()) > 0.0


def test_sgan_discriminator_features_are_the_last_hidden_layer_before_its_noise():
  from jaxgan.models import SGANDiscriminator
  from jaxgan.models.conditional import weight_norm_data_init
  d = SGANDiscriminator(num_classes=3, hidden=(6, 5), input_noise=0.0, hidden_noise=0.5)
  x = _images(16, (4, 4, 1))
  params = d.init(jax.random.PRNGKey(0), x, train=False)["params"]
  run = lambda p, k: d.apply({"params": p}, x, train=True, rngs={"noise": jax.random.PRNGKey(k)})
  (l1, f1), (l2, f2) = run(params, 1), run(params, 2)
  assert f1.shape == (16, 5) and l1.shape == (16, 3) and np.abs(l1 - l2).max() > 1e-3
  # The last hidden layer's own noise is not in the features: only the noise below it is.
  d1 = d.clone(hidden=(6,))
  p1 = d1.init(jax.random.PRNGKey(0), x, train=False)["params"]
  (_, a), (_, b) = (d1.apply({"params": p1}, x, train=True, rngs={"noise": jax.random.PRNGKey(k)})
                    for k in (1, 2))
  np.testing.assert_array_equal(a, b)
  assert float(jnp.min(a)) >= 0.0                    # after the ReLU
  # Data-dependent init: every layer's scale and bias move; without weight_norm nothing to do.
  new = weight_norm_data_init(d, params, x, jax.random.PRNGKey(5))
  assert jax.tree.structure(new) == jax.tree.structure(params)
  for name in params:
    assert not np.allclose(new[name]["scale"], params[name]["scale"])
    assert not np.allclose(new[name]["bias"], params[name]["bias"])
  plain = SGANDiscriminator(num_classes=3, hidden=(6,), weight_norm=False)
  pp = plain.init(jax.random.PRNGKey(0), x, train=False)["params"]
  assert weight_norm_data_init(plain, pp, x, jax.random.PRNGKey(5)) is pp
  # unit_pixels: D sees Salimans et al.'s [0, 1] pixels, x -> (x + 1) / 2 first.
  lin = SGANDiscriminator(num_classes=3, hidden=(), input_noise=0.0, weight_norm=False, unit_pixels=True)
  pl = lin.init(jax.random.PRNGKey(0), x, train=False)["params"]
  kernel, bias = pl["Dense_0"]["kernel"], pl["Dense_0"]["bias"]
  np.testing.assert_allclose(lin.apply({"params": pl}, x, train=False)[0],
                             ((x + 1) / 2).reshape(16, -1) @ kernel + bias, rtol=1e-5, atol=1e-6)
  raw = lin.clone(unit_pixels=False).apply({"params": pl}, x, train=False)[0]
  np.testing.assert_allclose(raw, x.reshape(16, -1) @ kernel + bias, rtol=1e-5, atol=1e-6)
  # Evaluation (train=False) is deterministic: no noise.
  e1 = d.apply({"params": new}, x, train=False)
  np.testing.assert_array_equal(e1[0], d.apply({"params": new}, x, train=False)[0])


def test_sgan_generator_matches_a_sigmoid_output_on_minus_one_one():
  from jaxgan.models import SGANGenerator
  g = SGANGenerator((4, 4, 1), latent_dim=8, hidden=(16,))
  z = jax.random.normal(jax.random.PRNGKey(0), (5, 8))
  v = g.init(jax.random.PRNGKey(1), z, train=False)
  assert "scale" not in v["params"]["BatchNorm_0"]   # their BatchNorm: bias, no scale
  out = g.apply(v, z, train=False)
  # 2 sigmoid(a) - 1 with a the last layer's pre-activation, i.e. their [0, 1] output rescaled.
  h = jax.nn.softplus((z @ v["params"]["Dense_0"]["kernel"] - v["batch_stats"]["BatchNorm_0"]["mean"])
                      / jnp.sqrt(v["batch_stats"]["BatchNorm_0"]["var"] + 1e-5)
                      + v["params"]["BatchNorm_0"]["bias"])
  last, scale = v["params"]["Dense_1"], v["params"]["WeightNorm_0"]["Dense_1/kernel/scale"]
  a = h @ (last["kernel"] / jnp.linalg.norm(last["kernel"], axis=0) * scale) + last["bias"]
  np.testing.assert_allclose(np.asarray(out).reshape(5, -1), 2 * jax.nn.sigmoid(a) - 1, atol=1e-5)

  # uniform_latent: the same network on Phi(z), which is U[0, 1] per coordinate.
  u = SGANGenerator((4, 4, 1), latent_dim=8, hidden=(16,), uniform_latent=True)
  np.testing.assert_allclose(np.asarray(u.apply(v, z, train=False)),
                             np.asarray(g.apply(v, jax.scipy.special.ndtr(z), train=False)), atol=1e-6)
  phi = np.asarray(jax.scipy.special.ndtr(jax.random.normal(jax.random.PRNGKey(2), (20000,))))
  assert phi.min() >= 0 and phi.max() <= 1 and abs(phi.mean() - 0.5) < 0.01 and abs(phi.var() - 1 / 12) < 0.003

def test_param_ema_is_the_debiased_average_of_the_iterates_and_rides_in_the_optimizer_state():
  from jaxgan.ema import ema_params, find_ema_state, param_ema
  tx = optax.chain(optax.sgd(1.0), param_ema(0.5))
  params = {"w": jnp.array([0.0, 10.0])}
  state = tx.init(params)
  assert find_ema_state(state) is not None and find_ema_state(optax.adam(1.0).init(params)) is None
  np.testing.assert_allclose(ema_params(state, params)["w"], [0.0, 10.0])  # no update yet: params
  iterates = []
  for g in ([1.0, 2.0], [-3.0, 0.0], [0.5, 0.5]):
    updates, state = tx.update({"w": jnp.array(g)}, state, params)
    params = optax.apply_updates(params, updates)
    iterates.append(np.asarray(params["w"]))
  np.testing.assert_allclose(params["w"], [1.5, 7.5])  # the updates pass through unchanged
  # By hand: weights (1 - d) d^(t-1-i) of the iterates, divided by 1 - d^t (d = 0.5, t = 3).
  w = np.array([0.25, 0.5, 1.0]) * 0.5 / (1 - 0.5 ** 3)
  np.testing.assert_allclose(ema_params(state, params)["w"], w @ np.stack(iterates), rtol=1e-6)
  with pytest.raises(ValueError, match="decay"):
    param_ema(1.0)


def test_adam_epsilon_options_and_d_ema_in_the_trainer_optimizer():
  from jaxgan import config as config_lib
  from jaxgan.ema import find_ema_state
  config = load_config("sgan_mnist")
  assert (config.adam_eps, config.adam_eps_root, config.d_ema) == (0.0, 1e-8, 0.999)
  g_tx, d_tx = optim.build_optimizers(config)
  params = {"w": jnp.ones(3)}
  assert find_ema_state(d_tx.init(params)) is not None and find_ema_state(g_tx.init(params)) is None
  # eps inside the root (their Adam): a gradient of 1e-6 moves by lr * 1e-6 / sqrt(1e-12 + 1e-8),
  # about lr / 100, where optax's default (eps outside) moves by about lr.
  grads = {"w": jnp.full(3, 1e-6)}
  step = lambda tx: float(tx.update(grads, tx.init(params), params)[0]["w"][0])
  # G runs at its own rate (1e-3; D at 3e-3).
  assert config.g_learning_rate == 1e-3 and config.learning_rate == 3e-3
  assert abs(step(g_tx)) == pytest.approx(1e-3 * 1e-6 / np.sqrt(1e-12 + 1e-8), rel=1e-3)
  assert abs(step(optax.adam(3e-3, b1=0.5))) == pytest.approx(3e-3, rel=1e-2)
  config.adam_eps = 0.0
  config.adam_eps_root = 0.0
  with pytest.raises(ConfigError, match="both 0"):
    config_lib.validate(config)
  config.adam_eps_root, config.d_ema = 1e-8, 1.0
  with pytest.raises(ConfigError, match="d_ema"):
    config_lib.validate(config)


def test_family_steps_refuse_options_they_do_not_support():
  with pytest.raises(ConfigError, match="gp_weight is not supported"):
    families.check(override(load_config("sgan_mnist"), {"gp_weight": 10.0}))
  with pytest.raises(TypeError, match="gp_weight"):   # the semi-supervised step has no penalty
    make_sgan_step(jit=False, gp_weight=10.0)
  with pytest.raises(ValueError, match="label_smoothing needs a cross-entropy objective"):
    jaxgan.make_train_step("hinge", label_smoothing=0.1)
  with pytest.raises(ValueError, match="label_smoothing needs a cross-entropy objective"):
    make_acgan_step("hinge", label_smoothing=0.1)
  with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 0.5\)"):
    jaxgan.make_train_step(label_smoothing=0.5)
  with pytest.raises(ValueError, match="class_weight"):
    make_acgan_step(jit=False, class_weight=-1.0)


# --- the labelled subset and its stream ---------------------------------------------------

def _labelled_data(n=200, classes=4):
  labels = (np.arange(n) * 7 % classes).astype(np.int32)
  images = np.arange(n, dtype=np.float32).reshape(n, 1, 1, 1) * np.ones((1, 2, 2, 1), np.float32)
  return ImageData(images=images, labels=labels, num_classes=classes, name="toy", split="train")


def test_labelled_subset_is_balanced_and_deterministic_per_seed():
  data = _labelled_data()
  a = labeled_subset(data.labels, 5, 4, seed=0)
  assert len(a) == 20 and len(set(a)) == 20
  assert np.bincount(data.labels[a], minlength=4).tolist() == [5, 5, 5, 5]
  np.testing.assert_array_equal(a, labeled_subset(data.labels, 5, 4, seed=0))
  assert not np.array_equal(a, labeled_subset(data.labels, 5, 4, seed=1))
  with pytest.raises(DataError, match="labels_per_class to at most 50"):
    labeled_subset(data.labels, 51, 4, seed=0)


def test_semi_supervised_stream_is_exactly_resumable_and_keeps_the_labels_apart():
  data = SemiSupervisedData(_labelled_data(), labels_per_class=3, seed=0, labeled_batch_size=16)
  assert data.num_classes == 4 and data.example_shape == (2, 2, 1)
  it = data.stream(8, seed=5)
  batches = [next(it) for _ in range(30)]
  resumed = data.stream(8, seed=5, start=17)
  for i in range(17, 30):
    b = next(resumed)
    for k in ("image", "labeled_image", "labeled_label"):
      np.testing.assert_array_equal(b[k], batches[i][k])
  b = batches[0]
  assert set(b) == {"image", "labeled_image", "labeled_label"}
  assert b["image"].shape == (8, 2, 2, 1) and b["labeled_image"].shape == (16, 2, 2, 1)
  labelled = set(data.labeled_index.tolist())
  for b in batches:
    ids = b["image"][:, 0, 0, 0].astype(int)
    assert not labelled & set(ids.tolist())               # unlabelled part: never a labelled example
    lab_ids = b["labeled_image"][:, 0, 0, 0].astype(int)
    assert set(lab_ids.tolist()) <= labelled               # labelled part: only the subset...
    np.testing.assert_array_equal(b["labeled_label"], _labelled_data().labels[lab_ids])  # ...with its labels
  # The 12 labelled examples are cycled: every one appears in the first 12 * 4 / 16 = 3 batches.
  seen = np.concatenate([b["labeled_image"][:, 0, 0, 0] for b in batches[:3]]).astype(int)
  assert set(seen.tolist()) == labelled
  assert not np.array_equal(batches[0]["image"], next(data.stream(8, seed=6))["image"])



def test_matching_batch_is_an_independent_resumable_unlabelled_batch():
  plain = SemiSupervisedData(_labelled_data(), labels_per_class=3, seed=0, labeled_batch_size=16)
  data = SemiSupervisedData(_labelled_data(), labels_per_class=3, seed=0, labeled_batch_size=16,
                            matching_batch=True)
  labelled = set(data.labeled_index.tolist())
  batches = [data.batch(8, seed=5, i=i) for i in range(30)]
  for i, b in enumerate(batches):
    assert set(b) == {"image", "labeled_image", "labeled_label", "matching_image"}
    for k in ("image", "labeled_image", "labeled_label"):  # the rest of the batch is unchanged
      np.testing.assert_array_equal(b[k], plain.batch(8, seed=5, i=i)[k])
    ids = b["matching_image"][:, 0, 0, 0].astype(int).tolist()
    assert len(set(ids)) == 8 and not labelled & set(ids)  # unlabelled, without repeats
    np.testing.assert_array_equal(b["matching_image"], data.batch(8, seed=5, i=i)["matching_image"])
  # Its own permutations: not D's batch, and every unlabelled example once per epoch (188 // 8 = 23 steps).
  assert sum(np.array_equal(b["image"], b["matching_image"]) for b in batches) == 0
  epoch = np.concatenate([b["matching_image"][:, 0, 0, 0] for b in batches[:23]]).astype(int)
  assert len(set(epoch.tolist())) == 23 * 8


def test_sgan_feature_matching_reads_the_matching_batch_and_d_ignores_it():
  state = _state("sgan", (4, 4, 1), {"hidden": (16,)}, {"hidden": (32, 16)})
  batch = _sgan_batch()
  step = make_sgan_step(jit=False)
  base, m = step(state, batch)
  same, m_same = step(state, {**batch, "matching_image": batch["image"]})
  other, m_other = step(state, {**batch, "matching_image": _images(6, (4, 4, 1), seed=9)})
  assert _leaves_equal(same.g_params, base.g_params) and float(m_same["g_loss"]) == float(m["g_loss"])
  assert _leaves_equal(other.d_params, base.d_params)  # D's update never reads it...
  assert not _leaves_equal(other.g_params, base.g_params)  # ...G's feature matching does
  assert float(m_other["g_loss"]) != pytest.approx(float(m["g_loss"]))

# --- bad input and pictures ---------------------------------------------------------------

def test_bad_label_aware_configs_are_one_clear_error():
  config = load_config("cgan_mnist")
  family = families.for_config(config)
  with pytest.raises(ConfigError, match="no class labels; use a labelled dataset"):
    family.check_data(config, types.SimpleNamespace(num_classes=0))
  family.check_data(config, types.SimpleNamespace(num_classes=10))
  config.discriminator.conditioning = "projected"
  with pytest.raises(ConfigError, match="conditioning='projected' is unknown"):
    families.check(config)
  sgan = load_config("sgan_mnist")
  sgan.sgan.labels_per_class = 0
  with pytest.raises(ConfigError, match="sgan.labels_per_class must be an integer >= 1"):
    families.check(sgan)
  sgan = load_config("sgan_mnist")
  del sgan.sgan["matching_batch"]  # a recipe's own field is typed (bool); one a user adds is not
  sgan.sgan.matching_batch = 1
  with pytest.raises(ConfigError, match="sgan.matching_batch must be True or False, got 1"):
    families.check(sgan)
  acgan = load_config("acgan_fmnist")
  acgan.n_critic = 5
  with pytest.raises(ConfigError, match="n_critic=1"):
    families.check(acgan)
  acgan = load_config("acgan_fmnist")
  acgan.acgan.fake_class_weight = -0.5
  with pytest.raises(ConfigError, match="acgan.fake_class_weight"):
    families.check(acgan)
  acgan.acgan.fake_class_weight = 1.0  # the paper's D loss, one override away
  options = lambda c: families.for_config(c).step_options(c)  # noqa: E731
  assert options(acgan) == {"n_critic": 1, "class_weight": 1.0, "fake_class_weight": 1.0,
                            "label_smoothing": 0.0}
  assert options(load_config("acgan_fmnist"))["fake_class_weight"] == 0.0
  assert options(load_config("sgan_mnist")) == {
      "n_critic": 1, "unsupervised_weight": 0.5, "feature_matching": True, "label_smoothing": 0.0}
  sgan = load_config("sgan_mnist")
  sgan.label_smoothing = 0.5
  with pytest.raises(ConfigError, match=r"label_smoothing must be in \[0, 0.5\)"):
    config_lib.validate(sgan)
  sgan.label_smoothing, sgan.loss = 0.1, "hinge"
  with pytest.raises(ConfigError, match="set it to 0 .or use --config.loss=nonsaturating"):
    config_lib.validate(sgan)
  sgan.loss = "nonsaturating"
  families.check(sgan)
  assert options(sgan)["label_smoothing"] == 0.1


def test_sample_labels_and_label_out_of_range():
  from jaxgan.sample import SampleError, generate_images, sample_labels
  s = _state("cgan_mlp", (4, 4, 1), {"hidden": (8,)}, {"hidden": (8,)})
  np.testing.assert_array_equal(sample_labels(s, 12), np.arange(12) % 10)
  np.testing.assert_array_equal(sample_labels(s, 3, 7), [7, 7, 7])
  with pytest.raises(SampleError, match=r"--label 10 is outside \[0, 10\)"):
    sample_labels(s, 3, 10)
  x7 = generate_images(s, 8, 3, seed=0, labels=np.full(3, 7))
  x1 = generate_images(s, 8, 3, seed=0, labels=np.full(3, 1))
  assert np.abs(x7 - x1).max() > 1e-3
  u = _state("sgan", (4, 4, 1), {"hidden": (8,)}, {"hidden": (8,)})
  with pytest.raises(SampleError, match="unconditional"):
    sample_labels(u, 3, 2)
  assert sample_labels(u, 3) is None


def test_class_grid_rows_are_classes_and_columns_share_the_noise():
  s = _state("cgan_mlp", (4, 4, 1), {"hidden": (8,)}, {"hidden": (8,)})
  z, y = conditional.class_rows(s, 10, 3)
  assert z.shape == (30, 8) and y.tolist() == [k for k in range(10) for _ in range(3)]
  np.testing.assert_array_equal(z[0], z[27])         # column 0: the same noise in every row
  assert not np.array_equal(z[0], z[1])
  grid = viz.class_grid(np.asarray(steps.generate(s, z, y)), 10)
  assert grid.shape == (10 * 6 + 2, 3 * 6 + 2, 1)    # 10 rows x 3 columns of 4x4 tiles, 2 px gaps
  with pytest.raises(ValueError, match="equal class rows"):
    viz.class_grid(np.zeros((7, 4, 4, 1)), 10)


# --- end to end: the real trainer on tiny versions of the recipes --------------------------

def _tiny(name):
  config = tiny(load_config(name))
  if config.model == "acgan":  # conftest.tiny shrinks MLP keys; ACGAN has DCGAN bodies
    config.generator = ml_collections.ConfigDict({"features": (8, 4), "embed_dim": 10})
    config.discriminator = ml_collections.ConfigDict({"features": (4, 8)})
    config.image_size = 16
  if config.model == "sgan":
    config.sgan.labeled_batch_size = 8
  config.num_devices = 1
  config.num_steps, config.log_every, config.sample_every, config.checkpoint_every = 4, 2, 2, 4
  config.decay_steps = min(config.decay_steps, 2)  # a recipe's decay, scaled into the 4 steps
  config.num_samples = 20
  return config


@pytest.mark.parametrize("name", ["cgan_mnist", "acgan_fmnist"])
def test_recipe_runs_end_to_end_and_writes_a_class_by_row_grid(tmp_path, mock_fmnist, name):
  import matplotlib.image
  from jaxgan import trainer
  config = _tiny(name)
  config.conditional.eval_every = 4
  config.conditional.samples_per_class = 3
  workdir = str(tmp_path / name)
  state = trainer.train_and_evaluate(config, workdir)
  assert int(state.step) == 4
  grid = matplotlib.image.imread(os.path.join(workdir, "samples", "final.png"))
  side = 28 if name == "cgan_mnist" else 16
  # 10 class rows x 2 noise columns (num_samples=20), 2 px gaps, up-scaled 3x.
  assert grid.shape[:2] == ((10 * (side + 2) + 2) * 3, (2 * (side + 2) + 2) * 3)
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    records = [json.loads(line) for line in f]
  evals = [r for r in records if "cond_acc" in r]
  assert [r["step"] for r in evals] == [4] and 0 <= evals[0]["cond_acc"] <= 1
  if name == "acgan_fmnist":
    assert all("d_class_acc_real" in r for r in records if "d_loss" in r)


def test_sgan_recipe_runs_end_to_end_with_test_accuracy(tmp_path, mock_fmnist):
  from jaxgan import trainer
  config = _tiny("sgan_mnist")
  config.sgan.eval_every = 2
  assert isinstance(families.for_config(config).data(config), SemiSupervisedData)  # its data
  workdir = str(tmp_path / "sgan")
  trainer.train_and_evaluate(config, workdir)
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    records = [json.loads(line) for line in f]
  accs = [r for r in records if "test_acc" in r]
  assert [r["step"] for r in accs] == [2, 4]
  assert all(0 <= r["test_acc"] <= 1 and r["test_error"] == pytest.approx(1 - r["test_acc"]) for r in accs)
  assert all(0 <= r["test_acc_raw"] <= 1 for r in accs)  # d_ema: the averaged D and the current one
  assert os.path.exists(os.path.join(workdir, "samples", "final.png"))
