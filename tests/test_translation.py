"""Image-to-image translation: CycleGAN / StarGAN models, losses, history pool, steps and domain data."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxgan import losses
from jaxgan import translation as tr
from jaxgan.data import domains
from jaxgan.errors import ConfigError
from jaxgan.models.translation import (PatchGANDiscriminator, ResNetGenerator, StarGANDiscriminator,
                                       count_params, cyclegan_upsample)


def _tree_equal(a, b):
  return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def _tree_close(a, b):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


def _n_params(module, *args):
  variables = jax.eval_shape(lambda: module.init(jax.random.PRNGKey(0), *args))
  return count_params(variables["params"]), jax.eval_shape(lambda v: module.apply(v, *args), variables)


# ------------------------------------------------------------------------------------ models

def conv(k, cin, cout, bias=True):
  return k * k * cin * cout + (cout if bias else 0)


def test_reference_parameter_counts_at_128_px():
  # CycleGAN resnet_6blocks (input 3, output 3, ngf 64): c7s1-64, d128, d256 (3x3 convs with bias),
  # 6 x R256 (two 3x3 convs with bias), u128, u64 (3x3 transposed convs with bias), c7s1-3.
  # Instance norm without affine parameters adds none.
  res = 2 * conv(3, 256, 256)
  cyc_g = (conv(7, 3, 64) + conv(3, 64, 128) + conv(3, 128, 256) + 6 * res
           + conv(3, 256, 128) + conv(3, 128, 64) + conv(7, 64, 3))
  assert cyc_g == 7_837_699  # the reference prints "Total number of parameters : 7.837 M"
  n, out = _n_params(ResNetGenerator(), jnp.zeros((1, 128, 128, 3)))
  assert (n, out.shape) == (cyc_g, (1, 128, 128, 3))
  n9, _ = _n_params(ResNetGenerator(num_blocks=9), jnp.zeros((1, 256, 256, 3)))
  assert n9 == cyc_g + 3 * res == 11_378_179  # resnet_9blocks: 11.378 M
  # 70x70 PatchGAN (ndf 64, n_layers 3): C64 (no norm), C128, C256 (stride 2), C512 (stride 1),
  # 4x4 conv to 1; every conv has a bias (instance norm has no affine parameters).
  patch = conv(4, 3, 64) + conv(4, 64, 128) + conv(4, 128, 256) + conv(4, 256, 512) + conv(4, 512, 1)
  assert patch == 2_764_737  # 2.765 M
  n, out = _n_params(PatchGANDiscriminator(), jnp.zeros((1, 128, 128, 3)))
  assert (n, out.shape) == (patch, (1, 14, 14))
  assert _n_params(PatchGANDiscriminator(), jnp.zeros((1, 256, 256, 3)))[1].shape == (1, 30, 30)
  # StarGAN G (c_dim 5): 7x7 conv (3 + 5 -> 64), 4x4 down convs 128, 256, 6 residual blocks,
  # 4x4 transposed convs 128, 64, 7x7 conv to 3; no biases; affine instance norm (2 per channel).
  inorm = lambda c: 2 * c
  star_res = 2 * (conv(3, 256, 256, False) + inorm(256))
  star_g = (conv(7, 8, 64, False) + inorm(64) + conv(4, 64, 128, False) + inorm(128)
            + conv(4, 128, 256, False) + inorm(256) + 6 * star_res + conv(4, 256, 128, False)
            + inorm(128) + conv(4, 128, 64, False) + inorm(64) + conv(7, 64, 3, False))
  assert star_g == 8_430_528
  g = ResNetGenerator(num_domains=5, affine=True, style="stargan")
  n, out = _n_params(g, jnp.zeros((1, 128, 128, 3)), jnp.zeros((1, 5)))
  assert (n, out.shape) == (star_g, (1, 128, 128, 3))
  # StarGAN D (repeat_num 6): 4x4 stride-2 convs with bias, 64 ... 2048; D_src 3x3 (2048 -> 1),
  # D_cls 2x2 (2048 -> 5), no biases.
  widths = [3, 64, 128, 256, 512, 1024, 2048]
  star_d = sum(conv(4, a, b) for a, b in zip(widths, widths[1:])) + conv(3, 2048, 1, False) + conv(2, 2048, 5, False)
  assert star_d == 44_762_048
  n, (src, cls) = _n_params(StarGANDiscriminator(), jnp.zeros((1, 128, 128, 3)))
  assert (n, src.shape, cls.shape) == (star_d, (1, 2, 2), (1, 5))


@pytest.mark.parametrize("side,d_layers,patch", [(16, 3, 2), (28, 2, 7)])
def test_tiny_models_shapes(side, d_layers, patch):
  x = jnp.zeros((2, side, side, 3))
  for style in ("cyclegan", "stargan"):
    g = ResNetGenerator(features=4, num_blocks=1, style=style, num_domains=3 * (style == "stargan"))
    args = (x,) if style == "cyclegan" else (x, jnp.zeros((2, 3)))
    assert _n_params(g, *args)[1].shape == x.shape
  assert _n_params(ResNetGenerator(features=4, num_blocks=1, out_channels=1), x)[1].shape == (2, side, side, 1)
  _, (src, cls) = _n_params(StarGANDiscriminator(features=4, num_layers=d_layers, num_domains=3), x)
  assert src.shape == (2, side // 2 ** d_layers, side // 2 ** d_layers) and cls.shape == (2, 3)
  assert patch == side // 2 ** d_layers


def test_cyclegan_upsampling_is_the_adjoint_of_the_stride2_conv():
  # PyTorch's ConvTranspose2d(3, s=2, p=1, output_padding=1) is the input-gradient of Conv2d(3, 2, 1).
  m = cyclegan_upsample(5, use_bias=False)
  y = jnp.asarray(np.random.default_rng(0).normal(size=(2, 4, 4, 3)), jnp.float32)
  v = {"params": tr.init_params(m, jax.random.PRNGKey(1), y)}
  down = lambda x: jax.lax.conv_general_dilated(x, v["params"]["kernel"], (2, 2), ((1, 1), (1, 1)),
                                                dimension_numbers=("NHWC", "HWIO", "NHWC"))
  both = jax.jit(lambda y: (m.apply(v, y), jax.vjp(down, jnp.zeros((2, 8, 8, 5)))[1](y)[0]))
  up, adjoint = both(y)
  np.testing.assert_allclose(up, adjoint, rtol=1e-6, atol=1e-6)


def test_patchgan_receptive_field_is_70x70():
  d = PatchGANDiscriminator(features=2, norm="none")  # instance norm would couple all pixels
  x = jnp.asarray(np.random.default_rng(0).normal(size=(1, 96, 96, 1)), jnp.float32)
  v = {"params": tr.init_params(d, jax.random.PRNGKey(1), x)}
  out, g = jax.jit(lambda x: (d.apply(v, x), jax.grad(lambda x: d.apply(v, x)[0, 5, 5])(x)))(x)
  assert out.shape == (1, 10, 10)
  g = g[0, :, :, 0]
  rows, cols = np.nonzero(np.asarray(g))
  assert rows.max() - rows.min() + 1 == 70 and cols.max() - cols.min() + 1 == 70


def test_stargan_generator_reads_the_label_and_checks_its_length():
  g = ResNetGenerator(features=4, num_blocks=1, num_domains=3, affine=True, style="stargan")
  x = _images(0, 2)
  v = {"params": tr.init_params(g, jax.random.PRNGKey(1), x, jnp.zeros((2, 3)))}
  apply = jax.jit(g.apply)
  a = apply(v, x, jax.nn.one_hot(jnp.array([0, 0]), 3))
  b = apply(v, x, jax.nn.one_hot(jnp.array([2, 2]), 3))
  assert float(jnp.max(jnp.abs(a - b))) > 1e-4
  assert float(jnp.max(jnp.abs(a))) <= 1.0
  with pytest.raises(ConfigError, match="num_domains"):
    g.apply(v, x, jnp.zeros((2, 4)))
  with pytest.raises(ConfigError, match="pass c"):
    g.apply(v, x)


def test_label_norm_starts_as_the_reference_generator_and_scales_every_norm_by_the_label():
  kw = dict(features=4, num_blocks=1, num_domains=3, affine=True, style="stargan")
  ref, cin = ResNetGenerator(**kw), ResNetGenerator(**kw, label_norm=True)
  x, c = _images(0, 2), jax.nn.one_hot(jnp.array([0, 2]), 3)
  p = tr.init_params(cin, jax.random.PRNGKey(1), x, c)
  dense = {k: v for k, v in p.items() if k.startswith("Dense_")}
  base = {k: v for k, v in p.items() if not k.startswith("Dense_")}
  # Two zero-initialised label maps (gain, shift) per instance norm: 1 + 2 + 2 x 1 block + 2 = 7
  # norms of widths 4, 8, 16, 16, 16, 8, 4; the rest is the reference network, same output.
  assert len(dense) == 14 and all(float(jnp.abs(v["kernel"]).max()) == 0.0 for v in dense.values())
  assert sum(v["kernel"].size for v in dense.values()) == 2 * 3 * (4 + 8 + 16 + 16 + 16 + 8 + 4)
  assert jax.tree.structure(base) == jax.tree.structure(tr.init_params(ref, jax.random.PRNGKey(1), x, c))
  np.testing.assert_allclose(cin.apply({"params": p}, x, c), ref.apply({"params": base}, x, c), atol=1e-6)
  # Norm i reads the label through Dense_2i (gain) and Dense_2i+1 (shift). A gain of -2 for
  # label 2 on the last norm (InstanceNorm_6) negates what follows it for that label only.
  flip = dict(p, Dense_12={"kernel": jnp.zeros_like(p["Dense_12"]["kernel"]).at[2].set(-2.0)})
  a, inter = cin.apply({"params": flip}, x, c, capture_intermediates=True)
  b, inter0 = cin.apply({"params": p}, x, c, capture_intermediates=True)
  norm_out = lambda t: t["intermediates"]["InstanceNorm_6"]["__call__"][0]
  np.testing.assert_allclose(norm_out(inter), norm_out(inter0), atol=1e-6)  # same input to it
  assert float(jnp.abs(a[0] - b[0]).max()) == 0.0    # label 0: gain 0
  assert float(jnp.abs(a[1] - b[1]).max()) > 1e-3    # label 2: the last norm's output negated
  with pytest.raises(ConfigError, match="label_norm"):
    ResNetGenerator(features=4, num_blocks=1, label_norm=True).init(jax.random.PRNGKey(0), x)


def test_image_sizes_that_cannot_round_trip_are_refused():
  with pytest.raises(ConfigError, match="multiple of 4"):
    ResNetGenerator(features=4, num_blocks=1).init(jax.random.PRNGKey(0), jnp.zeros((1, 18, 18, 3)))
  with pytest.raises(ConfigError, match="multiple of 8"):
    StarGANDiscriminator(features=4, num_layers=3).init(jax.random.PRNGKey(0), jnp.zeros((1, 28, 28, 3)))
  with pytest.raises(ConfigError, match="num_layers"):
    PatchGANDiscriminator(features=4, num_layers=3).init(jax.random.PRNGKey(0), jnp.zeros((1, 16, 16, 3)))
  tx = optax.adam(1e-3)
  with pytest.raises(ConfigError, match="image_size"):
    tr.create_cyclegan_state(ResNetGenerator(features=4, num_blocks=1), PatchGANDiscriminator(features=4),
                             tx, tx, jax.random.PRNGKey(0), (30, 30, 3))


# ------------------------------------------------------------------------------------ losses

def test_l1_losses_match_hand_values():
  x = jnp.array([[0.5, -1.0], [0.0, 1.0]])
  y = jnp.array([[0.0, -0.5], [1.0, 1.0]])
  hand = (0.5 + 0.5 + 1.0 + 0.0) / 4
  for fn in (losses.cycle_consistency_loss, losses.identity_loss, losses.reconstruction_loss):
    assert float(fn(x, y)) == pytest.approx(hand)
  with pytest.raises(ValueError, match="shapes"):
    losses.l1_loss(x, y[:1])


def test_domain_classification_losses_match_hand_values():
  logits = jnp.array([[2.0, 0.0, -1.0], [0.5, 0.5, 1.0]])
  onehot = jnp.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
  lse = lambda r: np.log(np.sum(np.exp(np.asarray(r))))
  ce = ((lse(logits[0]) - 2.0) + (lse(logits[1]) - 1.0)) / 2
  assert float(losses.domain_classification_loss(logits, onehot, "softmax")) == pytest.approx(ce, rel=1e-6)
  assert float(losses.domain_classification_loss(logits, jnp.array([0, 2]), "softmax")) == pytest.approx(ce, rel=1e-6)
  # BCE per attribute, summed over attributes, averaged over the batch (the reference's sum / N).
  attrs = jnp.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
  sp = lambda t: np.log1p(np.exp(t))  # -log sigmoid(-t)
  bce = [[sp(-2.0), sp(0.0), sp(1.0)], [sp(0.5), sp(-0.5), sp(1.0)]]
  assert float(losses.domain_classification_loss(logits, attrs, "bce")) == pytest.approx(
      np.sum(bce) / 2, rel=1e-6)
  assert float(losses.domain_classification_accuracy(logits, onehot)) == 1.0
  assert float(losses.domain_classification_accuracy(logits, attrs, "bce")) == pytest.approx(3 / 6)
  with pytest.raises(ValueError, match="one label entry per domain logit"):
    losses.domain_classification_loss(logits, onehot[:, :2], "bce")


def test_mask_vector_zeroes_the_unknown_datasets_classification_loss():
  # Two datasets: a 3-attribute one (BCE) and a 2-class one (softmax). Example 0 comes from the
  # first, example 1 from the second.
  sizes, kinds = (3, 2), ("bce", "softmax")
  logits = jnp.array([[1.0, -2.0, 0.5, 3.0, -3.0], [0.2, 0.1, -0.4, 1.0, 2.0]])
  labels = jnp.array([[1.0, 0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 1.0]])
  mask = jnp.array([[1.0, 0.0], [0.0, 1.0]])
  loss = jax.jit(lambda lg, lb: losses.masked_domain_classification_loss(lg, lb, mask, sizes, kinds))
  known0 = losses.domain_classification_losses(logits[:1, :3], labels[:1, :3], "bce")[0]
  known1 = losses.domain_classification_losses(logits[1:, 3:], labels[1:, 3:], "softmax")[0]
  assert float(loss(logits, labels)) == pytest.approx(float(known0 + known1) / 2, rel=1e-6)
  # The unknown parts (example 0's last two entries, example 1's first three) do not count...
  unknown = jnp.array([[0, 0, 0, 1, 1], [1, 1, 1, 0, 0]], bool)
  noisy_logits = jnp.where(unknown, 50.0 * np.random.default_rng(0).normal(size=logits.shape), logits)
  noisy_labels = jnp.where(unknown, 1.0, labels)
  assert float(loss(noisy_logits, noisy_labels)) == pytest.approx(float(loss(logits, labels)), rel=1e-6)
  # ...and get no gradient.
  grad = np.asarray(jax.jit(jax.grad(loss))(logits, labels))
  assert np.all(grad[np.asarray(unknown)] == 0) and np.all(grad[~np.asarray(unknown)] != 0)
  with pytest.raises(ValueError, match="at least two datasets"):
    losses.masked_domain_classification_loss(logits, labels, mask[:, :1], (5,), "bce")


# ------------------------------------------------------------------------------------ history pool

def _reference_pool(size, pool, count, images, key):
  """CycleGAN's ImagePool.query written imperatively, on the same random draws."""
  def draws(k):
    swap_key, slot_key = jax.random.split(k)
    return jax.random.uniform(swap_key), jax.random.randint(slot_key, (), 0, size)
  coins, slots = jax.jit(lambda k: jax.vmap(draws)(jax.random.split(k, len(images))))(key)
  pool, out = [np.array(p) for p in pool[:count]], []
  for image, coin, slot in zip(images, np.asarray(coins), np.asarray(slots)):
    if len(pool) < size:
      pool.append(image)
      out.append(image)
    elif coin > 0.5:
      out.append(pool[slot])
      pool[slot] = image
    else:
      out.append(image)
  return np.stack(pool), np.stack(out)


def test_history_pool_fills_then_swaps_with_probability_half():
  size = 5
  pool = tr.empty_pool(size, (1, 1, 1))
  query = jax.jit(tr.pool_query)
  images = jnp.arange(1.0, 4.0).reshape(3, 1, 1, 1)  # 3 images: the pool fills, returns them as is
  pool, out = query(pool, images, jax.random.PRNGKey(0))
  assert int(pool.count) == 3 and np.array_equal(out, images)
  np.testing.assert_array_equal(pool.images[:3], images)
  # 400 more, distinct values: the pool fills up, then each query is a coin flip.
  images = jnp.arange(4.0, 404.0).reshape(400, 1, 1, 1)
  key = jax.random.PRNGKey(1)
  new, out = query(pool, images, key)
  ref_pool, ref_out = _reference_pool(size, np.asarray(pool.images), 3, np.asarray(images), key)
  np.testing.assert_array_equal(out, ref_out)
  np.testing.assert_array_equal(new.images, ref_pool)
  assert int(new.count) == size
  out, images = np.asarray(out).ravel(), np.asarray(images).ravel()
  swapped = out != images
  assert not swapped[:2].any()  # the two free slots are filled first
  assert 0.42 < swapped[2:].mean() < 0.58
  assert np.all(out[swapped] < images[swapped])  # a returned image is always an earlier one
  # Deterministic per key.
  again, out2 = query(pool, jnp.asarray(images).reshape(400, 1, 1, 1), key)
  assert np.array_equal(out2.ravel(), out) and _tree_equal(again, new)
  _, out3 = query(pool, jnp.asarray(images).reshape(400, 1, 1, 1), jax.random.PRNGKey(2))
  assert not np.array_equal(np.asarray(out3).ravel(), out)


def test_pool_of_size_zero_returns_the_images():
  pool = tr.empty_pool(0, (2, 2, 1))
  x = jnp.ones((3, 2, 2, 1))
  new, out = tr.pool_query(pool, x, jax.random.PRNGKey(0))
  assert out is x and new is pool
  with pytest.raises(ConfigError, match="pool_size"):
    tr.empty_pool(-1, (2, 2, 1))


# ------------------------------------------------------------------------------------ schedule

def test_constant_then_linear_decay():
  sched = tr.constant_then_linear_decay(2e-4, 100, 40)
  for count, lr in [(0, 2e-4), (59, 2e-4), (60, 2e-4), (70, 1.5e-4), (80, 1e-4), (100, 0.0), (150, 0.0)]:
    assert float(sched(count)) == pytest.approx(lr, rel=1e-6, abs=1e-12)
  with pytest.raises(ConfigError, match="decay"):
    tr.constant_then_linear_decay(2e-4, 10, 20)
  # The optimiser really uses it: Adam's first step has size lr (in every coordinate).
  tx = tr.adam_linear_decay(1e-2, 10, 10)
  params = {"w": jnp.zeros(3)}
  updates, _ = tx.update({"w": jnp.array([1.0, -2.0, 3.0])}, tx.init(params), params)
  np.testing.assert_allclose(updates["w"], [-1e-2, 1e-2, -1e-2], rtol=1e-4)


# ------------------------------------------------------------------------------------ CycleGAN steps
# Few compiled programs (XLA:CPU compiles are the cost here): the D step, the G step and the
# fused step mapped over two devices, which must equal both on one device.

SIDE = 16


def _images(seed, n=4, side=SIDE):
  return jnp.asarray(np.random.default_rng(seed).uniform(-1, 1, (n, side, side, 3)), jnp.float32)


@pytest.fixture(scope="module")
def cyclegan():
  # SGD, not Adam: the biases in front of instance norm have a zero gradient (up to rounding),
  # which Adam's first step would blow up to +-lr, making device-count comparisons meaningless.
  tx = optax.sgd(0.1)
  state = tr.create_cyclegan_state(ResNetGenerator(features=4, num_blocks=0),
                                   PatchGANDiscriminator(features=4, num_layers=2),
                                   tx, tx, jax.random.PRNGKey(0), (SIDE, SIDE, 3), pool_size=3)
  batch = {"image_a": _images(1), "image_b": _images(2)}
  d_state, d_m = tr.make_cyclegan_d_step()(state, batch)
  g_state, g_m = tr.make_cyclegan_g_step()(state, batch)
  return state, batch, (d_state, d_m), (g_state, g_m)


def test_cyclegan_d_step_moves_only_the_critics_and_fills_the_pools(cyclegan):
  state, batch, (d_state, d_m), _ = cyclegan
  for k in ("d_a", "d_b"):
    assert not _tree_equal(d_state.d_params[k], state.d_params[k])
  assert _tree_equal(d_state.g_params, state.g_params) and _tree_equal(d_state.g_opt_state, state.g_opt_state)
  assert int(d_state.step) == 0 and int(d_state.pool_a.count) == int(d_state.pool_b.count) == 3
  # The pools were empty: they now hold this batch's first three fakes of the unchanged generators.

  @jax.jit
  def by_hand(state, a, b):
    fake_b, fake_a = state.translate(a, "ab"), state.translate(b, "ba")
    shown_b = tr.pool_query(state.pool_b, fake_b, tr._step_key(state, tr._POOL_B))[1]
    # D_B's loss: the reference's 0.5 * (MSE(D(real), 1) + MSE(D(fake), 0)) on the pooled fakes.
    d_b = (0.5 * jnp.mean((state.discriminate(b, "b") - 1) ** 2)
           + 0.5 * jnp.mean(state.discriminate(shown_b, "b") ** 2))
    return fake_a, fake_b, d_b

  fake_a, fake_b, d_b = by_hand(state, batch["image_a"], batch["image_b"])
  np.testing.assert_allclose(d_state.pool_b.images, fake_b[:3], atol=1e-6)
  np.testing.assert_allclose(d_state.pool_a.images, fake_a[:3], atol=1e-6)
  assert float(d_m["d_b_loss"]) == pytest.approx(float(d_b), rel=1e-5)
  assert float(d_m["d_loss"]) == pytest.approx(float(d_m["d_a_loss"] + d_m["d_b_loss"]), rel=1e-6)


def test_cyclegan_g_step_moves_only_the_generators_with_the_papers_objective(cyclegan):
  state, batch, _, (g_state, g_m) = cyclegan
  for k in ("g_ab", "g_ba"):
    assert not _tree_equal(g_state.g_params[k], state.g_params[k])
  assert _tree_equal(g_state.d_params, state.d_params) and _tree_equal(g_state.d_opt_state, state.d_opt_state)
  assert _tree_equal((g_state.pool_a, g_state.pool_b), (state.pool_a, state.pool_b))
  assert int(g_state.step) == 1
  hand = (g_m["g_adv_ab"] + g_m["g_adv_ba"] + 10 * (g_m["cycle_a"] + g_m["cycle_b"])
          + 5 * (g_m["identity_a"] + g_m["identity_b"]))
  assert float(g_m["g_loss"]) == pytest.approx(float(hand), rel=1e-5)

  @jax.jit
  def by_hand(state, a, b):
    # The reference's LSGAN generator criterion MSE(D(G(a)), 1) (no 1/2), cycle and identity L1.
    fake_b = state.translate(a, "ab")
    return (jnp.mean((state.discriminate(fake_b, "b") - 1) ** 2),
            jnp.mean(jnp.abs(state.translate(fake_b, "ba") - a)),
            jnp.mean(jnp.abs(state.translate(b, "ab") - b)))

  adv, cyc, idt = by_hand(state, batch["image_a"], batch["image_b"])
  assert float(g_m["g_adv_ab"]) == pytest.approx(float(adv), rel=1e-5)
  assert float(g_m["cycle_a"]) == pytest.approx(float(cyc), rel=1e-5)
  assert float(g_m["identity_b"]) == pytest.approx(float(idt), rel=1e-5)


def test_cyclegan_iteration_on_two_devices_is_the_g_and_d_steps_on_one(cyclegan):
  # The reference iteration updates G and D from the same state (D on the pre-update fakes):
  # its generators are the G step's, its critics and pools the D step's. Over two devices the
  # pool sees the global batch and stays one replicated pool.
  from jaxgan.parallel import DataParallel
  state, batch, (d_state, d_m), (g_state, g_m) = cyclegan
  dp = DataParallel(mode="shard_map", devices=jax.devices()[:2])
  step = dp.wrap(tr.make_cyclegan_step(jit=False))
  new, m = step(dp.replicate(state), dp.shard(batch))
  new = dp.unreplicate(new)
  _tree_close(new.g_params, g_state.g_params)
  _tree_close((new.d_params, new.pool_a, new.pool_b), (d_state.d_params, d_state.pool_a, d_state.pool_b))
  assert int(new.step) == 1
  for k in ("d_loss", "d_a_loss", "d_b_loss"):
    assert float(m[k]) == pytest.approx(float(d_m[k]), rel=1e-5)
  for k in ("g_loss", "cycle_a", "identity_b"):
    assert float(m[k]) == pytest.approx(float(g_m[k]), rel=1e-5)


def test_cyclegan_bad_input():
  with pytest.raises(ConfigError, match="least_squares"):
    tr.make_cyclegan_step(gan_loss="l2")
  with pytest.raises(ConfigError, match="image_a"):
    tr.cyclegan_generator_loss({}, None, {"image": jnp.zeros((1, 4, 4, 3))})
  with pytest.raises(ConfigError, match="lambda_cycle"):
    tr.make_cyclegan_step(lambda_cycle=-1.0)


# ------------------------------------------------------------------------------------ StarGAN steps

SIZES = (3, 2)  # multi-dataset mode: a 3-attribute dataset (BCE) and a 2-class dataset (softmax)
KINDS = ("bce", "softmax")
STAR = dict(cls_loss=KINDS, label_sizes=SIZES)


@pytest.fixture(scope="module")
def stargan():
  tx = optax.adam(1e-3, b1=0.5)
  # XLA's own convolutions (the CPU-tuned formulations compute the same function in more ops).
  g = ResNetGenerator(features=4, num_blocks=0, num_domains=sum(SIZES) + 2, affine=True,
                      style="stargan", upsample="transpose", conv_impl="xla")
  d = StarGANDiscriminator(features=4, num_layers=2, num_domains=sum(SIZES), conv_impl="xla")
  state = tr.create_stargan_state(g, d, tx, tx, jax.random.PRNGKey(0), (SIDE, SIDE, 3), label_sizes=SIZES)
  first, m1 = domains.joint_labels(np.array([[1, 0, 1], [0, 1, 1]]), 0, SIZES)
  second, m2 = domains.joint_labels(np.array([[0, 1], [1, 0]]), 1, SIZES)
  batches = [{"image": _images(5, 2), "label": jnp.asarray(first), "mask": jnp.asarray(m1)},
             {"image": _images(6, 2), "label": jnp.asarray(second), "mask": jnp.asarray(m2)}]
  # One compiled program each; the critic / target index is a traced argument.
  d_step = jax.jit(functools.partial(tr.stargan_d_step_fn, **STAR))
  g_step = jax.jit(functools.partial(tr.stargan_g_step_fn, **STAR))
  return state, batches, d_step, g_step


def test_stargan_steps_move_only_their_network_and_n_critic_is_d_d_g(stargan):
  state, (b0, b1), d_step, g_step = stargan
  zero, one = jnp.asarray(0), jnp.asarray(1)
  s1, d_m = d_step(state, b0, critic_index=zero)
  assert not _tree_equal(s1.d_params, state.d_params)
  assert _tree_equal(s1.g_params, state.g_params) and _tree_equal(s1.g_opt_state, state.g_opt_state)
  assert int(s1.step) == 0
  g_only, g_m = g_step(state, b1, target_index=one)
  assert not _tree_equal(g_only.g_params, state.g_params)
  assert _tree_equal(g_only.d_params, state.d_params) and _tree_equal(g_only.d_opt_state, state.d_opt_state)
  assert int(g_only.step) == 1
  # n_critic = 2: D on batch 0 (critic index 0), D on batch 1 (index 1), then G on batch 1 with
  # the targets of that last critic update.
  stacked = jax.tree.map(lambda *x: jnp.stack(x), b0, b1)
  fused, m = tr.make_stargan_step(n_critic=2, **STAR)(state, stacked)
  s2, d_m2 = d_step(s1, b1, critic_index=one)
  s3, g_m3 = g_step(s2, b1, target_index=one)
  _tree_close((fused.g_params, fused.d_params), (s3.g_params, s3.d_params))
  assert int(fused.step) == 1
  assert float(m["d_loss"]) == pytest.approx((float(d_m["d_loss"]) + float(d_m2["d_loss"])) / 2, rel=1e-5)
  assert float(m["g_loss"]) == pytest.approx(float(g_m3["g_loss"]), rel=1e-5)
  # The objectives: critic Wasserstein + lambda_cls cls + 10 GP; G adversarial + cls + 10 rec.
  assert float(d_m["d_loss"]) == pytest.approx(float(d_m["d_adv"] + d_m["d_cls"] + 10 * d_m["gp"]), rel=1e-5)
  assert float(g_m["g_loss"]) == pytest.approx(float(g_m["g_adv"] + g_m["g_cls"] + 10 * g_m["g_rec"]), rel=1e-5)


def test_stargan_critic_terms_are_the_library_losses(stargan):
  state, (b0, _), d_step, _ = stargan
  _, m = d_step(state, b0, critic_index=jnp.asarray(0))
  x, label, mask = b0["image"], b0["label"], b0["mask"]

  @jax.jit
  def by_hand(state):
    c_trg, m_trg = tr._targets(state, label, mask, 0, None)
    perm = jax.random.permutation(jax.random.fold_in(tr._step_key(state, tr._TARGET), 0), 2)
    fake = state.translate(x, jnp.concatenate([c_trg, m_trg], -1))
    critic = lambda v: state.discriminate(v)[0]
    gp = losses.gradient_penalty(critic, x, fake, jax.random.fold_in(tr._step_key(state, tr._GP), 0))
    src_real, cls_real = state.discriminate(x)
    return (c_trg, m_trg, perm, gp, losses.wasserstein_discriminator_loss(src_real, critic(fake)),
            losses.masked_domain_classification_loss(cls_real, label, mask, SIZES, KINDS))

  c_trg, m_trg, perm, gp, adv, cls = by_hand(state)
  # The targets: the batch's own labels and masks, in the order of the step's permutation.
  np.testing.assert_array_equal(c_trg, label[perm])
  np.testing.assert_array_equal(m_trg, mask[perm])
  assert float(m["gp"]) == pytest.approx(float(gp), rel=1e-4)
  assert float(m["d_adv"]) == pytest.approx(float(adv), rel=1e-4, abs=1e-6)
  assert float(m["d_cls"]) == pytest.approx(float(cls), rel=1e-5)


def test_stargan_identity_term_is_the_l1_of_the_own_domain_translation(stargan):
  state, (_, b1), _, g_step = stargan
  _, plain = g_step(state, b1, target_index=jnp.asarray(1))
  g_id = jax.jit(functools.partial(tr.stargan_g_step_fn, **STAR, lambda_id=5.0))
  moved, m = g_id(state, b1, target_index=jnp.asarray(1))
  x = b1["image"]
  own = state.translate(x, jnp.concatenate([b1["label"], b1["mask"]], -1))
  assert "g_id" not in plain  # the paper's objective (lambda_id = 0) leaves the term out
  assert float(m["g_id"]) == pytest.approx(float(jnp.mean(jnp.abs(own - x))), rel=1e-5)
  assert float(m["g_id"]) > 0.1   # an untrained G is far from the identity
  # The other terms are those of the paper's step; the total adds lambda_id times the new one.
  for k in ("g_adv", "g_cls", "g_rec"):
    assert float(m[k]) == pytest.approx(float(plain[k]), rel=1e-5)
  assert float(m["g_loss"]) == pytest.approx(float(plain["g_loss"]) + 5.0 * float(m["g_id"]), rel=1e-5)
  assert not _tree_equal(moved.g_params, g_step(state, b1, target_index=jnp.asarray(1))[0].g_params)
  with pytest.raises(ConfigError, match="lambda_id"):
    tr.make_stargan_step(lambda_id=-1.0)


def test_stargan_bad_input(stargan):
  state, (b0, _), d_step, _ = stargan
  with pytest.raises(ConfigError, match="label"):
    d_step(state, {**b0, "label": b0["label"][:, :4]})
  with pytest.raises(ConfigError, match="mask"):
    d_step(state, {"image": b0["image"], "label": b0["label"]})
  with pytest.raises(ConfigError, match="at least two labelled datasets"):
    tr.make_stargan_step(label_sizes=(5,))
  g = ResNetGenerator(features=4, num_blocks=1, num_domains=5)
  d = StarGANDiscriminator(features=4, num_layers=2, num_domains=5)
  with pytest.raises(ConfigError, match="num_domains"):
    tr.check_stargan_labels(g, d, SIZES)   # the generator needs 5 + 2 (mask) inputs
  with pytest.raises(ConfigError, match="n_critic"):
    tr.make_stargan_step(n_critic=0)
  with pytest.raises(ConfigError, match="softmax"):
    tr.make_stargan_step(cls_loss="hinge")


# ------------------------------------------------------------------------------------ domain data

def test_domain_transforms_match_hand_values():
  gray = np.full((1, 5, 5, 1), -1.0, np.float32)
  gray[0, 2, 2, 0] = 1.0   # one bright pixel
  gray[0, 0, 0, 0] = 0.0   # one half-bright pixel in the corner
  red = domains.transform(gray, "red")
  np.testing.assert_allclose(red[0, 2, 2], [1.0, -1.0, -1.0])
  np.testing.assert_allclose(red[0, 0, 0], [0.0, -1.0, -1.0])
  np.testing.assert_allclose(red[0, 4, 4], [-1.0, -1.0, -1.0])
  np.testing.assert_allclose(domains.transform(gray, "inverted")[0, 2, 2], [-1.0] * 3)
  np.testing.assert_allclose(domains.transform(gray, "original")[0, 1, 1], [-1.0] * 3)
  thick = domains.transform(gray, "thick")[0, :, :, 0]
  expected = np.full((5, 5), -1.0)
  expected[1:4, 1:4] = 1.0
  expected[0:2, 0:2] = np.maximum(expected[0:2, 0:2], 0.0)
  np.testing.assert_array_equal(thick, expected)


def test_multi_attribute_spec_composes_dilate_colour_invert():
  spec = domains.DomainSpec(("red", "green", "blue", "thick", "inverted"), "multi")
  assert (spec.size, spec.loss) == (5, "bce")
  gray = np.random.default_rng(0).uniform(-1, 1, (2, 6, 6, 1)).astype(np.float32)
  labels = np.array([[0, 1, 0, 1, 1], [0, 0, 1, 0, 0]], np.float32)
  out = spec.apply(gray, labels)
  np.testing.assert_allclose(out[0], -domains.colourise(domains.dilate(gray[:1]), (0, 1, 0))[0])
  np.testing.assert_allclose(out[1], domains.transform(gray[1:], "blue")[0])
  sampled = spec.sample(np.random.default_rng(1), 500)
  assert np.all(sampled[:, :3].sum(1) == 1) and 0.4 < sampled[:, 3].mean() < 0.6
  spec.apply(np.zeros((500, 2, 2, 1), np.float32) - 1, sampled)  # every sampled label is valid
  with pytest.raises(ValueError, match="exactly one colour"):
    spec.apply(gray, np.array([[1, 1, 0, 0, 0], [0, 0, 1, 0, 0]], np.float32))
  with pytest.raises(ConfigError, match="at least two domains"):
    domains.DomainSpec(("red",))


def test_domain_datasets_stream_deterministic_batches_and_the_mask():
  gray = np.random.default_rng(0).uniform(-1, 1, (40, 8, 8, 1)).astype(np.float32)
  cyc = domains.CycleGANDomains(gray, "original", "inverted")
  b = cyc.batch(4, seed=3, i=7)
  assert cyc.example_shape == (8, 8, 3) and b["image_a"].shape == (4, 8, 8, 3)
  assert np.array_equal(b["image_a"], next(cyc.stream(4, 3, start=7))["image_a"])
  assert not np.array_equal(b["image_a"], cyc.batch(4, 3, 8)["image_a"])
  # A comes from the first half, B from the second: no image appears in both.
  a_src = {x.tobytes() for x in cyc.gray_a}
  assert not any(x.tobytes() in a_src for x in cyc.gray_b)
  assert np.array_equal(cyc.paired(gray[:2])[1], -domains.to_rgb(gray[:2]))
  colours = domains.DomainSpec(("red", "green", "blue"))
  attrs = domains.DomainSpec(("thick", "inverted"), "multi")
  star = domains.StarGANDomains([(gray, colours), (gray[:20], attrs)], names=["mnist", "fashion"])
  assert star.label_sizes == (3, 2) and star.cls_loss == ("softmax", "bce")
  b0, b1 = star.batch(4, 0, 0), star.batch(4, 0, 1)
  np.testing.assert_array_equal(b0["mask"], [[1, 0]] * 4)
  np.testing.assert_array_equal(b1["mask"], [[0, 1]] * 4)
  assert np.all(b0["label"][:, 3:] == 0) and np.all(b0["label"][:, :3].sum(1) == 1)
  assert np.all(b1["label"][:, :3] == 0)
  joint, mask = domains.joint_labels(np.array([[1.0, 0.0]]), 1, (3, 2))
  np.testing.assert_array_equal(joint, [[0, 0, 0, 1, 0]])
  np.testing.assert_array_equal(mask, [[0, 1]])
  with pytest.raises(ConfigError, match="at least two labelled datasets"):
    domains.StarGANDomains([(gray, colours)], multi_dataset=True)
  with pytest.raises(ConfigError, match="at least two labelled datasets"):
    domains.joint_labels(np.zeros((1, 3)), 0, (3,))
  with pytest.raises(ConfigError, match="label entries"):
    domains.joint_labels(np.zeros((1, 2)), 0, (3, 2))
