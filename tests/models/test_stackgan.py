"""StackGAN's networks and step (jaxgan.models.stackgan, jaxgan.stackgan) against the paper's
definitions, on tiny widths."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import stackgan as sg
from jaxgan.models.stackgan import (ConditioningAugmentation, Stage1Generator, Stage2Generator,
                                    StackDiscriminator)

E, Z, C = 24, 10, 16


def _state(s1=16, s2=32, text_dim=0, stage2_noise="own"):
  g1 = Stage1Generator(size=s1, channels=3, width=4, latent_dim=Z, condition_dim=C)
  g2 = Stage2Generator(size=s2, in_size=s1, channels=3, width=4, condition_dim=C, residual_blocks=1)
  tx = sg.stackgan_optimizer()
  return sg.create_stackgan_state(g1, StackDiscriminator(width=4, text_dim=text_dim), g2,
                                  StackDiscriminator(width=4, unconditional=True, text_dim=text_dim),
                                  tx, tx, jax.random.PRNGKey(0), E, stage2_noise)


def _batch(n=8, size=32, seed=0):
  rng = np.random.default_rng(seed)
  return {"image": jnp.asarray(rng.uniform(-1, 1, (n, size, size, 3)), jnp.float32),
          "embedding": jnp.asarray(rng.normal(size=(n, E)), jnp.float32)}


def test_conditioning_augmentation_is_mu_plus_sigma_eps():
  ca = ConditioningAugmentation(condition_dim=C)
  emb = jnp.asarray(np.random.default_rng(1).normal(size=(5, E)), jnp.float32)
  v = ca.init({"params": jax.random.PRNGKey(0), "condition": jax.random.PRNGKey(1)}, emb)
  key = jax.random.PRNGKey(7)
  c, mu, logvar = ca.apply(v, emb, rngs={"condition": key})
  w, b = v["params"]["fc"]["kernel"], v["params"]["fc"]["bias"]
  # FC + ReLU of the embedding scaled to unit-variance entries (x sqrt(dim))
  x = np.maximum(np.sqrt(E) * np.asarray(emb) @ np.asarray(w) + np.asarray(b), 0)
  np.testing.assert_allclose(mu, x[:, :C], atol=1e-5)
  np.testing.assert_allclose(logvar, x[:, C:], atol=1e-5)
  # c = mu + sigma * eps: the same eps for another text under the same key, eps ~ N(0, I).
  eps = (np.asarray(c) - x[:, :C]) / np.exp(0.5 * x[:, C:])
  c2, mu2, logvar2 = ca.apply(v, 3 * emb, rngs={"condition": key})
  np.testing.assert_allclose((c2 - mu2) / jnp.exp(0.5 * logvar2), eps, atol=1e-4)
  big = jnp.asarray(np.random.default_rng(2).normal(size=(4000, E)), jnp.float32)
  cb, mub, lvb = ca.apply(v, big, rngs={"condition": key})
  draws = np.asarray((cb - mub) / jnp.exp(0.5 * lvb))
  assert abs(draws.mean()) < 0.02 and abs(draws.std() - 1) < 0.02
  c0, mu0, _ = ca.apply(v, emb, sample=False)
  np.testing.assert_allclose(c0, mu0)
  # A given eps replaces the stream's draw (the train step draws it for the global batch).
  given = jnp.asarray(np.random.default_rng(3).normal(size=(5, C)), jnp.float32)
  cg, mug, lvg = ca.apply(v, emb, eps=given)
  np.testing.assert_allclose(cg, mug + jnp.exp(0.5 * lvg) * given, atol=1e-6)


def test_glu_conditioning_augmentation_gates_half_of_a_wider_layer():
  ca = ConditioningAugmentation(condition_dim=C, activation="glu", input_scale=1.0)
  emb = jnp.asarray(np.random.default_rng(1).normal(size=(5, E)), jnp.float32)
  v = ca.init(jax.random.PRNGKey(0), emb, sample=False)
  _, mu, logvar = ca.apply(v, emb, sample=False)
  y = np.asarray(emb) @ np.asarray(v["params"]["fc"]["kernel"]) + np.asarray(v["params"]["fc"]["bias"])
  gated = y[:, :2 * C] / (1 + np.exp(-y[:, 2 * C:]))
  np.testing.assert_allclose(np.concatenate([mu, logvar], 1), gated, atol=1e-5)
  assert (np.asarray(logvar) < 0).any()          # sigma may fall below 1, unlike with "relu"
  with pytest.raises(ValueError, match="'relu' or 'glu'"):
    ConditioningAugmentation(activation="tanh").init(jax.random.PRNGKey(0), emb, sample=False)


def test_conditioning_augmentation_bounds_sigma():
  """max_sigma caps sigma (log sigma^2 <= 2 log max_sigma; the rest of the layer as without)."""
  emb = jnp.asarray(4 * np.random.default_rng(1).normal(size=(64, E)), jnp.float32)
  free = ConditioningAugmentation(condition_dim=C)   # ReLU: sigma >= 1, above 1 on most rows
  v = free.init(jax.random.PRNGKey(0), emb, sample=False)
  eps = jnp.asarray(np.random.default_rng(3).normal(size=(64, C)), jnp.float32)
  _, mu, logvar = free.apply(v, emb, eps=eps)
  assert float(jnp.max(logvar)) > 2 * np.log(1.5)
  c, mu_b, logvar_b = ConditioningAugmentation(condition_dim=C, max_sigma=1.5).apply(v, emb, eps=eps)
  np.testing.assert_allclose(mu_b, mu)
  np.testing.assert_allclose(logvar_b, np.minimum(logvar, 2 * np.log(1.5)), atol=1e-6)
  np.testing.assert_allclose(c, mu + np.exp(0.5 * np.asarray(logvar_b)) * eps, atol=1e-5)


def test_kl_divergence_matches_the_gaussian_formula():
  rng = np.random.default_rng(0)
  mu, logvar = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
  # KL(N(mu, s^2) || N(0, 1)) per element = log(1/s) + (s^2 + mu^2) / 2 - 1/2
  per = -0.5 * logvar + (np.exp(logvar) + mu ** 2) / 2 - 0.5
  np.testing.assert_allclose(sg.kl_divergence(jnp.asarray(mu), jnp.asarray(logvar)), per.mean(),
                             rtol=1e-5)
  assert float(sg.kl_divergence(jnp.zeros(3), jnp.zeros(3))) == 0.0


@pytest.mark.parametrize("s1,s2,ups", [(16, 32, 3), (64, 256, 4)])
def test_generators_reach_their_sizes(s1, s2, ups):
  g1 = Stage1Generator(size=s1, width=2, latent_dim=Z, condition_dim=C)
  g2 = Stage2Generator(size=s2, in_size=s1, width=4, condition_dim=C, residual_blocks=2)
  rngs = {"params": jax.random.PRNGKey(0), "condition": jax.random.PRNGKey(1)}
  e = jnp.zeros((2, E))
  (img1, mu, logvar), _ = g1.init_with_output(rngs, jnp.zeros((2, Z)), e, train=False)
  assert img1.shape == (2, s1, s1, 3) and mu.shape == logvar.shape == (2, C)
  assert float(jnp.max(jnp.abs(img1))) <= 1.0
  (img2, _, _), v2 = g2.init_with_output(rngs, img1, e, train=False)
  assert img2.shape == (2, s2, s2, 3)
  # The paper's layout: an encoder to a quarter of the size (two stride-2 convs), residual blocks
  # at 4 * width channels, then ``ups`` up-sampling blocks halving the channels.
  convs = {k: v["kernel"].shape for k, v in v2["params"].items() if k.startswith("Conv_")}
  assert convs["Conv_1"][-2:] == (4, 8) and convs["Conv_2"][-2:] == (8, 16)
  widths = [convs[f"Conv_{i}"][-1] for i in range(4, 4 + ups)]
  assert widths == [16 // 2 ** (i + 1) for i in range(ups)]


def test_stage2_encoder_depth_sets_the_residual_grid():
  # One stride-2 convolution: a 16x16 Stage-I image is refined on an 8x8 grid at 2 * width
  # channels, then up-sampled twice to 32x32.
  g2 = Stage2Generator(size=32, in_size=16, width=4, condition_dim=C, residual_blocks=1,
                       encoder_steps=1)
  rngs = {"params": jax.random.PRNGKey(0), "condition": jax.random.PRNGKey(1)}
  (img, _, _), v = g2.init_with_output(rngs, jnp.zeros((2, 16, 16, 3)), jnp.zeros((2, E)),
                                       train=False, capture_intermediates=True)
  assert img.shape == (2, 32, 32, 3)
  assert v["intermediates"]["_ResBlock_0"]["__call__"][0].shape == (2, 8, 8, 8)
  with pytest.raises(ValueError, match="must divide by 8"):
    Stage2Generator(size=32, in_size=12, width=4, condition_dim=C, encoder_steps=3).init(
        rngs, jnp.zeros((2, 12, 12, 3)), jnp.zeros((2, E)), train=False)


@pytest.mark.parametrize("size,unconditional,feats", [(64, False, 64), (256, True, 64)])
def test_discriminator_code_is_4x4_at_8_widths(size, unconditional, feats):
  d = StackDiscriminator(width=8, unconditional=unconditional)
  x, c = jnp.zeros((2, size, size, 3)), jnp.zeros((2, C))
  out, v = d.init_with_output(jax.random.PRNGKey(0), x, c, c, train=False)
  assert out["cond"].shape == out["wrong"].shape == (2,)
  assert (out["uncond"] is not None) == unconditional
  # The conditional head reads the 4x4 code (8 * width channels) joined with the condition.
  assert v["params"]["cond_conv"]["kernel"].shape == (3, 3, feats + C, feats)


@pytest.mark.parametrize("head", ["concat", "projection"])
def test_mismatched_pairs_are_the_conditional_head_on_other_texts(head):
  d = StackDiscriminator(width=4, unconditional=True, head=head)
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.uniform(-1, 1, (4, 32, 32, 3)), jnp.float32)
  c = jnp.asarray(rng.normal(size=(4, C)), jnp.float32)
  v = d.init(jax.random.PRNGKey(0), x, c, c, train=False)
  wrong = jnp.roll(c, 1, axis=0)
  both = d.apply(v, x, c, wrong, train=False)
  alone = d.apply(v, x, wrong, train=False)
  np.testing.assert_allclose(both["wrong"], alone["cond"], atol=1e-5)
  np.testing.assert_allclose(both["uncond"], alone["uncond"], atol=1e-5)
  assert not np.allclose(both["cond"], both["wrong"])


def test_text_reading_critic_compresses_the_sentence_embedding_itself():
  # The paper's D: the text embedding -> FC to text_dim -> LeakyReLU(0.2), tiled over the 4x4 code.
  d = StackDiscriminator(width=4, text_dim=C)
  rng = np.random.default_rng(2)
  x = jnp.asarray(rng.uniform(-1, 1, (3, 16, 16, 3)), jnp.float32)
  e = jnp.asarray(rng.normal(size=(3, E)), jnp.float32)
  v = d.init(jax.random.PRNGKey(0), x, e, train=False)
  w, b = v["params"]["text_fc"]["kernel"], v["params"]["text_fc"]["bias"]
  assert w.shape == (E, C) and v["params"]["cond_conv"]["kernel"].shape[2] == 8 + C
  _, inner = d.apply(v, x, e, train=False, capture_intermediates=True)
  np.testing.assert_allclose(inner["intermediates"]["text_fc"]["__call__"][0],
                             np.sqrt(E) * np.asarray(e) @ np.asarray(w) + np.asarray(b), atol=1e-4)
  other = d.apply(v, x, jnp.roll(e, 1, axis=0), train=False)
  assert not np.allclose(d.apply(v, x, e, train=False)["cond"], other["cond"])


def test_projection_head_is_realism_plus_the_match_of_code_and_text():
  """Miyato & Koyama's head: ``psi . phi + b + <phi, V t>``, ``phi`` the 4x4 code summed over the
  grid, ``t`` the critic's compressed text (LeakyReLU of its text layer)."""
  d = StackDiscriminator(width=4, text_dim=C, head="projection")
  rng = np.random.default_rng(3)
  x = jnp.asarray(rng.uniform(-1, 1, (3, 16, 16, 3)), jnp.float32)
  e = jnp.asarray(rng.normal(size=(3, E)), jnp.float32)
  wrong = jnp.roll(e, 1, axis=0)
  v = d.init(jax.random.PRNGKey(0), x, e, wrong, train=False)
  p = v["params"]
  assert "cond_conv" not in p and p["proj_embed"]["kernel"].shape == (C, 8)
  out, inner = d.apply(v, x, e, wrong, train=False, mutable=["intermediates"])
  phi = np.asarray(inner["intermediates"]["phi"][0])                 # [N, 8]
  assert phi.shape == (3, 8)
  phi = np.concatenate([phi, phi])                                   # the pairs: real, then wrong
  t = np.sqrt(E) * np.concatenate([e, wrong]) @ np.asarray(p["text_fc"]["kernel"])
  t = t + np.asarray(p["text_fc"]["bias"])
  t = np.where(t > 0, t, 0.2 * t)
  expect = (phi @ np.asarray(p["proj_psi"]["kernel"])[:, 0] + np.asarray(p["proj_psi"]["bias"])
            + np.sum(phi * (t @ np.asarray(p["proj_embed"]["kernel"])), axis=-1))
  np.testing.assert_allclose(np.concatenate([out["cond"], out["wrong"]]), expect, rtol=1e-4,
                             atol=1e-5)


@pytest.mark.parametrize("text_dim", [0, C])
def test_critic_condition_is_the_text_or_the_generators_mean(text_dim):
  """A text-reading critic's real / mismatched terms do not depend on the generator; one that
  reads G's conditioning-augmentation mean (the released code) does."""
  state, batch = _state(text_dim=text_dim), _batch()
  step = sg.make_stackgan_step(stage=1)
  ca = state.g_params["stage1"]["ca"]
  moved = {**state.g_params["stage1"], "ca": jax.tree.map(lambda a: a + 0.5, ca)}
  other = state.replace(g_params={**state.g_params, "stage1": moved})
  m1, m2 = step(state, batch)[1], step(other, batch)[1]
  same = [np.isclose(float(m1[k]), float(m2[k]), rtol=1e-6) for k in ("d_real", "d_wrong")]
  assert all(same) if text_dim else not any(same)
  assert not np.isclose(float(m1["kl"]), float(m2["kl"]))


def _changed(a, b):
  return {k: any(bool(jnp.any(x != y)) for x, y in zip(jax.tree.leaves(a[k]), jax.tree.leaves(b[k])))
          for k in a}


def test_stage1_then_stage2_each_trains_only_its_networks():
  state = _state()
  steps = {1: sg.make_stackgan_step(stage=1), 2: sg.make_stackgan_step(stage=2)}
  batch = _batch()
  seen = []
  for _ in range(4):
    new, m = steps[1 if int(state.step) < 2 else 2](state, batch)
    stage = int(m["stage"])
    seen.append(stage)
    other = "stage2" if stage == 1 else "stage1"
    assert _changed(state.g_params, new.g_params) == {f"stage{stage}": True, other: False}
    assert _changed(state.d_params, new.d_params) == {f"stage{stage}": True, other: False}
    assert _changed(state.g_opt_state, new.g_opt_state)[other] is False
    m = {k: float(v) for k, v in m.items()}
    if stage == 1:   # L_D = real + (wrong + fake) / 2
      assert m["d_loss"] == pytest.approx(m["d_real"] + (m["d_wrong"] + m["d_fake"]) / 2, rel=1e-5)
      assert m["d_real_uncond"] == 0.0
    else:            # with the unconditional head: (real + real_u) / 2 + (fake + wrong + fake_u) / 3
      want = ((m["d_real"] + m["d_real_uncond"]) / 2
              + (m["d_fake"] + m["d_wrong"] + m["d_fake_uncond"]) / 3)
      assert m["d_loss"] == pytest.approx(want, rel=1e-5)
    assert m["kl"] > 0
    state = new
  assert seen == [1, 1, 2, 2] and int(state.step) == 4


def test_stage1_sees_the_real_images_reduced_to_its_size():
  x = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)), jnp.float32)
  small = sg.downsample(x, 16)
  np.testing.assert_allclose(small[0, 3, 5], x[0, 6:8, 10:12].mean(axis=(0, 1)), atol=1e-6)
  assert sg.downsample(x, 32) is x


def test_generate_is_deterministic_for_a_key_and_follows_the_text():
  state = _state()
  z = jax.random.normal(jax.random.PRNGKey(3), (4, Z))
  emb = _batch(4)["embedding"]
  a1, a2 = state.generate(z, emb, jax.random.PRNGKey(5))
  b1, b2 = state.generate(z, emb, jax.random.PRNGKey(5))
  np.testing.assert_array_equal(a2, b2)
  assert a1.shape == (4, 16, 16, 3) and a2.shape == (4, 32, 32, 3)
  c1, c2 = state.generate(z, -emb, jax.random.PRNGKey(5), sample_condition=False)
  assert not np.allclose(a2, c2)


def test_stage2_reuses_stage1s_conditioning_noise_when_asked():
  """stage2_noise="stage1": Stage II's CA applies the noise that made its Stage-I image (its own
  mu and sigma); "own" (the paper): an independent draw. Stage I's step is the same either way,
  Stage II's is not."""
  own, shared = _state(), _state(stage2_noise="stage1")
  z = jax.random.normal(jax.random.PRNGKey(3), (4, Z))
  emb, key = _batch(4)["embedding"], jax.random.PRNGKey(5)
  img1, img2 = shared.generate(z, emb, key)
  eps = {s: jax.random.normal(jax.random.fold_in(key, s), (4, C)) for s in (sg._CA1, sg._CA2)}
  with_noise = lambda e: sg._stage2(shared, shared.g_params["stage2"], img1, emb, e, train=False)[0][0]
  scale = float(jnp.max(jnp.abs(img2)))      # a fresh generator's images are tiny
  np.testing.assert_allclose(img2, with_noise(eps[sg._CA1]), atol=1e-4 * scale)
  own1, own2 = own.generate(z, emb, key)
  np.testing.assert_array_equal(own1, img1)
  np.testing.assert_allclose(own2, with_noise(eps[sg._CA2]), atol=1e-4 * scale)
  assert float(jnp.max(jnp.abs(own2 - img2))) > 0.1 * scale
  batch = _batch()
  for stage, same in ((1, True), (2, False)):
    step = sg.make_stackgan_step(stage=stage)
    a, b = step(own, batch)[1]["g_loss"], step(shared, batch)[1]["g_loss"]
    assert bool(a == b) is same
  with pytest.raises(ValueError, match="stage2_noise='both'"):
    _state(stage2_noise="both")


def test_truncated_conditioning_noise_tends_to_the_mean_condition():
  """generate(truncation=psi) draws the CA noise from [-psi, psi]: as psi -> 0 both stages draw
  what c = mu draws; psi = 3 is still a draw."""
  state = _state()
  z = jax.random.normal(jax.random.PRNGKey(3), (4, Z))
  emb = _batch(4)["embedding"]
  mean = state.generate(z, emb, jax.random.PRNGKey(5), sample_condition=False)
  full = state.generate(z, emb, jax.random.PRNGKey(5))
  tiny = state.generate(z, emb, jax.random.PRNGKey(5), truncation=1e-6)
  wide = state.generate(z, emb, jax.random.PRNGKey(5), truncation=3.0)
  off = lambda a, b: float(jnp.max(jnp.abs(a - b)))
  for m, f, t, w in zip(mean, full, tiny, wide):
    assert off(t, m) < 1e-3 * off(f, m)
    assert off(w, m) > 0.1 * off(f, m)


def test_mode_seeking_term_is_msgans_inverse_ratio_with_its_gradient():
  """sg._inverse_ratio(d_img, d_z) = 1 / (d_img / d_z + 1e-5) in value and in gradient (one
  device; tests/test_parallel.py checks the several-device form through the step)."""
  d_z = jnp.float32(1.13)
  direct = lambda d: 1.0 / (d / d_z + sg.MODE_SEEKING_EPS)
  for d in (0.05, 0.3, 1.2):
    d = jnp.float32(d)
    np.testing.assert_allclose(sg._inverse_ratio(d, d_z, None), direct(d), rtol=1e-6)
    np.testing.assert_allclose(jax.grad(sg._inverse_ratio)(d, d_z, None), jax.grad(direct)(d),
                               rtol=1e-5)


def test_mode_seeking_adds_the_term_to_stage1s_generator_loss_only():
  """mode_seeking > 0: Stage I's generator loss grows by about the weight over the image-to-latent
  distance ratio (a second latent, same captions and noise); Stage II's step is unchanged."""
  state, batch = _state(), _batch(8)
  plain = sg.make_stackgan_step(stage=1)(state, batch)[1]
  seeking = sg.make_stackgan_step(stage=1, mode_seeking=1.0)(state, batch)[1]
  # A fresh generator's images barely move with z: the inverse ratio is large.
  assert float(seeking["g_loss"]) > float(plain["g_loss"]) + 10.0
  two = [sg.make_stackgan_step(stage=2, mode_seeking=w)(state, batch)[1]["g_loss"] for w in (0.0, 1.0)]
  np.testing.assert_array_equal(*two)
