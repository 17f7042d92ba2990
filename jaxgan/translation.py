"""Image-to-image translation: CycleGAN and StarGAN states, the history pool, and their train steps.

Two families, each with an immutable state pytree and pure steps
``step(state, batch) -> (state, metrics)`` in the style of :mod:`jaxgan.steps`:

* **CycleGAN** (Zhu et al., 2017): generators ``G: A -> B`` and ``F: B -> A``,
  critics ``D_A``, ``D_B`` (PatchGAN), least-squares adversarial loss,
  cycle-consistency L1 (``lambda = 10``), identity L1 (``0.5 * lambda``), and
  a history pool of 50 earlier fakes per domain for the critics' update
  (Shrivastava et al., 2017), carried in the state and updated inside the
  jitted step. Batch: ``{"image_a": [B, H, W, C], "image_b": [B, H, W, C]}``
  (unpaired).
* **StarGAN** (Choi et al., 2018): one generator ``G(x, c)`` conditioned on
  the target label ``c``, a critic with a patch head ``D_src`` and a domain
  classifier ``D_cls``; WGAN-GP (``lambda_gp = 10``) through
  :mod:`jaxgan.losses`; domain classification (``lambda_cls = 1``);
  reconstruction L1 ``G(G(x, c), c')`` vs ``x`` (``lambda_rec = 10``);
  ``n_critic = 5``. Target labels are the batch's labels shuffled, as the
  reference code does. Batch: ``{"image": [B, H, W, C], "label": [B, K]}``
  (one-hot for single-label datasets, 0/1 attributes for multi-attribute
  ones), plus ``"mask": [B, n]`` in multi-dataset mode (the mask vector; the
  label is then the concatenation of every dataset's label vector, zeros for
  the unknown ones).

Randomness (pool decisions, target shuffles, interpolates) is a pure function
of the state's key and step. With ``axis_name`` (the step mapped over devices
by :class:`jaxgan.parallel.DataParallel`), gradients and metrics are averaged
with ``lax.pmean``, and the pool, the target shuffle and the interpolation
weights act on the *global* batch (all-gathered), so ``n`` devices compute
what one device computes on the whole batch and the pool stays replicated.

Optimisers: Adam with a constant learning rate, then a linear decay to 0
(:func:`adam_linear_decay` on :func:`jaxgan.schedules.constant_then_linear_decay`;
CycleGAN 2e-4, StarGAN 1e-4, both ``b1 = 0.5``).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct
from jax import lax

from jaxgan import losses
from jaxgan.errors import ConfigError
from jaxgan.schedules import constant_then_linear_decay
from jaxgan.state import run_once
from jaxgan.steps import gather_batch, local_block, local_draw, pmean, scan_unroll

PyTree = Any
Batch = dict[str, jax.Array]
Metrics = dict[str, jax.Array]
Step = Callable[[Any, Batch], tuple[Any, Metrics]]

# Random streams of one step (fold_in(fold_in(key, step), stream)).
_POOL_A, _POOL_B, _TARGET, _GP = 10, 11, 12, 13


def _raw_key(key: jax.Array) -> jax.Array:
  key = jnp.asarray(key)
  if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
    key = jax.random.key_data(key)  # raw uint32 keys checkpoint everywhere
  return key


def init_params(module: nn.Module, key: jax.Array, *args) -> PyTree:
  """``module.init(key, *args)["params"]`` through :func:`run_once`."""
  return run_once(lambda k, *a: module.init(k, *a)["params"], key, *args)


def _step_key(state, stream: int) -> jax.Array:
  return jax.random.fold_in(jax.random.fold_in(state.key, state.step), stream)


def _apply_update(tx, params, opt_state, grads):
  updates, opt_state = tx.update(grads, opt_state, params)
  return optax.apply_updates(params, updates), opt_state


# ---------------------------------------------------------------------------------------
# Optimisers

def adam_linear_decay(learning_rate: float, num_updates: int, decay_updates: int, *,
                      b1: float = 0.5, b2: float = 0.999) -> optax.GradientTransformation:
  """Adam(``b1``, ``b2``) on :func:`constant_then_linear_decay` (both papers' optimiser)."""
  return optax.adam(constant_then_linear_decay(learning_rate, num_updates, decay_updates),
                    b1=b1, b2=b2)


# ---------------------------------------------------------------------------------------
# The history pool (Shrivastava et al., 2017; CycleGAN's ImagePool), functional.

@struct.dataclass
class HistoryPool:
  """Up to ``size`` earlier generated images; ``count`` slots are filled (0 ... size)."""
  images: jax.Array   # [size, H, W, C]
  count: jax.Array    # int32 scalar

  @property
  def size(self) -> int:
    return self.images.shape[0]


def empty_pool(size: int, image_shape: Sequence[int], dtype=jnp.float32) -> HistoryPool:
  """A pool of ``size`` slots for images of ``image_shape`` (``size = 0``: no pool)."""
  if isinstance(size, bool) or not isinstance(size, int) or size < 0:
    raise ConfigError(f"pool_size must be a non-negative integer (50 in CycleGAN, 0 = no pool), "
                      f"got {size!r}")
  return HistoryPool(images=jnp.zeros((size, *image_shape), dtype), count=jnp.zeros((), jnp.int32))


def pool_query(pool: HistoryPool, images: jax.Array, key: jax.Array) -> tuple[HistoryPool, jax.Array]:
  """CycleGAN's ``ImagePool.query``: the images to show the critic, and the updated pool.

  The images are taken in order. While the pool has free slots, an image is
  stored and returned itself. Once the pool is full, with probability 1/2 a
  uniformly chosen stored image is returned and the new image takes its
  slot; otherwise the new image is returned and the pool is unchanged. Image
  ``i``'s draws come from ``jax.random.split(key, n)[i]``, so the result is a
  pure function of ``(pool, images, key)``. A pool of size 0 returns the
  images unchanged.
  """
  if pool.size == 0:
    return pool, images
  if images.shape[1:] != pool.images.shape[1:]:
    raise ValueError(f"images of shape {images.shape[1:]} for a pool of {pool.images.shape[1:]}")

  def one(pool: HistoryPool, xs):
    image, key = xs
    swap_key, slot_key = jax.random.split(key)
    full = pool.count >= pool.size
    swap = full & (jax.random.uniform(swap_key) > 0.5)
    slot = jnp.where(full, jax.random.randint(slot_key, (), 0, pool.size), pool.count)
    old = pool.images[slot]
    stored = jnp.where(full & ~swap, old, image)
    pool = HistoryPool(images=pool.images.at[slot].set(stored),
                       count=pool.count + (~full).astype(jnp.int32))
    return pool, jnp.where(swap, old, image)

  keys = jax.random.split(key, images.shape[0])
  pool, out = lax.scan(one, pool, (images.astype(pool.images.dtype), keys))
  return pool, out.astype(images.dtype)


def _global_pool_query(pool: HistoryPool, images: jax.Array, key: jax.Array,
                       axis_name: str | None) -> tuple[HistoryPool, jax.Array]:
  """:func:`pool_query` on the global batch: every device holds the same pool."""
  pool, out = pool_query(pool, gather_batch(images, axis_name), key)
  return pool, local_block(out, images.shape[0], axis_name)


# ---------------------------------------------------------------------------------------
# CycleGAN

@struct.dataclass
class CycleGANState:
  """Parameters and optimiser states of CycleGAN's four networks, the two pools, step and key.

  ``g_params = {"g_ab": G, "g_ba": F}`` share the ``generator`` module and one
  optimiser (the reference chains both generators' parameters into one
  Adam); ``d_params = {"d_a": D_A, "d_b": D_B}`` likewise, where ``d_a``
  judges domain A (real ``a`` vs ``F(b)``) and ``d_b`` domain B.
  ``pool_a`` holds earlier fakes of domain A (``F(b)``), ``pool_b`` of B.
  ``step`` counts iterations (generator updates).
  """
  step: jax.Array
  key: jax.Array
  g_params: PyTree
  d_params: PyTree
  g_opt_state: optax.OptState
  d_opt_state: optax.OptState
  pool_a: HistoryPool
  pool_b: HistoryPool
  generator: nn.Module = struct.field(pytree_node=False)
  discriminator: nn.Module = struct.field(pytree_node=False)
  g_tx: optax.GradientTransformation = struct.field(pytree_node=False)
  d_tx: optax.GradientTransformation = struct.field(pytree_node=False)

  def translate(self, x: jax.Array, direction: str = "ab", g_params: PyTree | None = None) -> jax.Array:
    """``G(x)`` (``direction="ab"``, A -> B) or ``F(x)`` (``"ba"``)."""
    params = self.g_params if g_params is None else g_params
    return self.generator.apply({"params": params["g_" + direction]}, x)

  def discriminate(self, x: jax.Array, domain: str, d_params: PyTree | None = None) -> jax.Array:
    """The patch logits of ``D_A`` (``domain="a"``) or ``D_B`` (``"b"``)."""
    params = self.d_params if d_params is None else d_params
    return self.discriminator.apply({"params": params["d_" + domain]}, x)


def create_cyclegan_state(generator: nn.Module, discriminator: nn.Module,
                          g_tx: optax.GradientTransformation, d_tx: optax.GradientTransformation,
                          key: jax.Array, image_shape: Sequence[int],
                          pool_size: int = 50) -> CycleGANState:
  """Initialises G, F, D_A, D_B (independent keys), both optimisers and two empty pools.

  Both domains have images of ``image_shape`` ``(H, W, C)``; a size the
  generator cannot round-trip raises :class:`ConfigError`.
  """
  image_shape = _image_shape(image_shape)
  key = _raw_key(key)
  x = jnp.zeros((1, *image_shape), jnp.float32)
  fake = jax.eval_shape(lambda k: generator.init_with_output(k, x)[0], key)
  if fake.shape != x.shape:
    raise ConfigError(f"CycleGAN's generators map {image_shape} to {fake.shape[1:]}; both domains "
                      f"must have the same shape (generator out_channels = image channels)")

  def init(key, x):
    k_ab, k_ba, k_a, k_b = jax.random.split(jax.random.fold_in(key, 0x5EED), 4)
    g = {"g_ab": generator.init(k_ab, x)["params"], "g_ba": generator.init(k_ba, x)["params"]}
    d = {"d_a": discriminator.init(k_a, x)["params"], "d_b": discriminator.init(k_b, x)["params"]}
    return g, d, g_tx.init(g), d_tx.init(d)

  g_params, d_params, g_opt_state, d_opt_state = run_once(init, key, x)
  return CycleGANState(
      step=jnp.zeros((), jnp.int32), key=key, g_params=g_params, d_params=d_params,
      g_opt_state=g_opt_state, d_opt_state=d_opt_state,
      pool_a=empty_pool(pool_size, image_shape), pool_b=empty_pool(pool_size, image_shape),
      generator=generator, discriminator=discriminator, g_tx=g_tx, d_tx=d_tx)


def _image_shape(image_shape) -> tuple[int, int, int]:
  shape = tuple(int(s) for s in image_shape)
  if len(shape) != 3 or min(shape) < 1:
    raise ConfigError(f"image_shape must be (height, width, channels), got {tuple(image_shape)}")
  return shape


# The reference's criteria vs the library's losses (jaxgan.losses, which follow the papers):
# its D loss is 0.5 * (crit(D(real), 1) + crit(D(fake), 0)), its G loss crit(D(fake), 1).
# lsgan (MSE): D = the library's least_squares D loss; G = 2 x the library's (which has 1/2).
# vanilla (BCE): D = 0.5 x the library's nonsaturating D loss; G = the library's.
_CYCLEGAN_SCALES = {"least_squares": (1.0, 2.0), "nonsaturating": (0.5, 1.0)}


def _cyclegan_adversarial(gan_loss: str):
  d_scale, g_scale = _CYCLEGAN_SCALES.get(gan_loss, (1.0, 1.0))
  d_loss = lambda real, fake: d_scale * losses.discriminator_loss(gan_loss, real, fake)
  g_loss = lambda fake: g_scale * losses.generator_loss(gan_loss, fake)
  return d_loss, g_loss


def _check_cyclegan_batch(batch: Batch) -> tuple[jax.Array, jax.Array]:
  if "image_a" not in batch or "image_b" not in batch:
    raise ConfigError(f"a CycleGAN batch holds 'image_a' and 'image_b' (unpaired images of the two "
                      f"domains); got keys {sorted(batch)}")
  a, b = batch["image_a"], batch["image_b"]
  if a.shape != b.shape or a.ndim != 4:
    raise ConfigError(f"CycleGAN's domains need batches of equal shape [B, H, W, C]; got image_a "
                      f"{tuple(a.shape)} and image_b {tuple(b.shape)}")
  return a, b


def cyclegan_generator_loss(g_params: PyTree, state: CycleGANState, batch: Batch, *,
                            gan_loss: str = "least_squares", lambda_cycle: float = 10.0,
                            lambda_identity: float = 0.5) -> tuple[jax.Array, tuple[tuple, Metrics]]:
  r"""The generators' objective of one CycleGAN iteration (Zhu et al., 2017, eq. 3 plus identity).

  .. math::
     L = L_{GAN}(G, D_B) + L_{GAN}(F, D_A)
       + \lambda (\|F(G(a)) - a\|_1 + \|G(F(b)) - b\|_1)
       + \lambda \lambda_{idt} (\|G(b) - b\|_1 + \|F(a) - a\|_1)

  with the reference's least-squares generator criterion
  :math:`\mathbb{E}[(D(G(a)) - 1)^2]`. Returns ``(loss, ((fake_a, fake_b),
  metrics))``; the fakes are those of this (pre-update) generator, which the
  critics' update of the same iteration uses.
  """
  a, b = _check_cyclegan_batch(batch)
  _, adv = _cyclegan_adversarial(gan_loss)
  g = lambda direction, x: state.translate(x, direction, g_params)
  fake_b, fake_a = g("ab", a), g("ba", b)
  rec_a, rec_b = g("ba", fake_b), g("ab", fake_a)
  m = {"g_adv_ab": adv(state.discriminate(fake_b, "b")),
       "g_adv_ba": adv(state.discriminate(fake_a, "a")),
       "cycle_a": losses.cycle_consistency_loss(a, rec_a),
       "cycle_b": losses.cycle_consistency_loss(b, rec_b)}
  total = m["g_adv_ab"] + m["g_adv_ba"] + lambda_cycle * (m["cycle_a"] + m["cycle_b"])
  if lambda_identity:
    m["identity_a"] = losses.identity_loss(a, g("ba", a))
    m["identity_b"] = losses.identity_loss(b, g("ab", b))
    total = total + lambda_cycle * lambda_identity * (m["identity_a"] + m["identity_b"])
  return total, ((fake_a, fake_b), {"g_loss": total, **m})


def _cyclegan_d_update(state: CycleGANState, batch: Batch, fake_a: jax.Array, fake_b: jax.Array,
                       gan_loss: str, axis_name: str | None) -> tuple[CycleGANState, Metrics]:
  """The critics' update on real images and pooled fakes; both pools updated."""
  a, b = _check_cyclegan_batch(batch)
  pool_a, shown_a = _global_pool_query(state.pool_a, lax.stop_gradient(fake_a),
                                       _step_key(state, _POOL_A), axis_name)
  pool_b, shown_b = _global_pool_query(state.pool_b, lax.stop_gradient(fake_b),
                                       _step_key(state, _POOL_B), axis_name)
  d_loss_fn, _ = _cyclegan_adversarial(gan_loss)

  def loss_fn(d_params):
    real_a, fake_a_ = (state.discriminate(x, "a", d_params) for x in (a, shown_a))
    real_b, fake_b_ = (state.discriminate(x, "b", d_params) for x in (b, shown_b))
    m = {"d_a_loss": d_loss_fn(real_a, fake_a_), "d_b_loss": d_loss_fn(real_b, fake_b_),
         "d_a_real": jnp.mean(real_a), "d_a_fake": jnp.mean(fake_a_),
         "d_b_real": jnp.mean(real_b), "d_b_fake": jnp.mean(fake_b_)}
    return m["d_a_loss"] + m["d_b_loss"], m

  (d_loss, m), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.d_params)
  d_params, d_opt_state = _apply_update(state.d_tx, state.d_params, state.d_opt_state,
                                        pmean(grads, axis_name))
  new = state.replace(d_params=d_params, d_opt_state=d_opt_state, pool_a=pool_a, pool_b=pool_b)
  return new, pmean({"d_loss": d_loss, **m}, axis_name)


def cyclegan_d_step_fn(state: CycleGANState, batch: Batch, *, gan_loss: str = "least_squares",
                       axis_name: str | None = None) -> tuple[CycleGANState, Metrics]:
  """Critics only: fakes of the current generators, through the pools, one update of D_A and D_B.

  The generators and ``step`` are unchanged; the pools are updated.
  """
  a, b = _check_cyclegan_batch(batch)
  fake_a, fake_b = state.translate(b, "ba"), state.translate(a, "ab")
  return _cyclegan_d_update(state, batch, fake_a, fake_b, gan_loss, axis_name)


def cyclegan_g_step_fn(state: CycleGANState, batch: Batch, *, gan_loss: str = "least_squares",
                       lambda_cycle: float = 10.0, lambda_identity: float = 0.5,
                       axis_name: str | None = None) -> tuple[CycleGANState, Metrics]:
  """Generators only: one update of G and F on :func:`cyclegan_generator_loss`; increments ``step``."""
  (_, (_, m)), grads = jax.value_and_grad(cyclegan_generator_loss, has_aux=True)(
      state.g_params, state, batch, gan_loss=gan_loss, lambda_cycle=lambda_cycle,
      lambda_identity=lambda_identity)
  g_params, g_opt_state = _apply_update(state.g_tx, state.g_params, state.g_opt_state,
                                        pmean(grads, axis_name))
  return (state.replace(g_params=g_params, g_opt_state=g_opt_state, step=state.step + 1),
          pmean(m, axis_name))


def cyclegan_step_fn(state: CycleGANState, batch: Batch, *, gan_loss: str = "least_squares",
                     lambda_cycle: float = 10.0, lambda_identity: float = 0.5,
                     axis_name: str | None = None) -> tuple[CycleGANState, Metrics]:
  """One reference CycleGAN iteration: the generators' and the critics' update from the same state.

  As ``optimize_parameters`` of the reference code: the generators run once;
  G and F are updated against the current critics; the critics are updated
  on this iteration's fakes (of the pre-update generators), passed through
  the pools. So the result equals :func:`cyclegan_g_step_fn`'s generators
  and :func:`cyclegan_d_step_fn`'s critics and pools, both from ``state``,
  with one generator forward pass. Increments ``step``.
  """
  (_, ((fake_a, fake_b), g_metrics)), grads = jax.value_and_grad(
      cyclegan_generator_loss, has_aux=True)(
          state.g_params, state, batch, gan_loss=gan_loss, lambda_cycle=lambda_cycle,
          lambda_identity=lambda_identity)
  new, d_metrics = _cyclegan_d_update(state, batch, fake_a, fake_b, gan_loss, axis_name)
  g_params, g_opt_state = _apply_update(state.g_tx, state.g_params, state.g_opt_state,
                                        pmean(grads, axis_name))
  new = new.replace(g_params=g_params, g_opt_state=g_opt_state, step=state.step + 1)
  return new, {**d_metrics, **pmean(g_metrics, axis_name)}


def _cyclegan_options(gan_loss: str, lambda_cycle: float, lambda_identity: float) -> dict:
  if gan_loss not in losses.LOSSES or gan_loss == "began":
    raise ConfigError(f"unknown CycleGAN adversarial loss {gan_loss!r}; choose one of "
                      f"{sorted(set(losses.LOSSES) - {'began'})} (the paper: 'least_squares')")
  for name, v in (("lambda_cycle", lambda_cycle), ("lambda_identity", lambda_identity)):
    if not v >= 0:
      raise ConfigError(f"{name} must be >= 0, got {v!r}")
  return {"gan_loss": gan_loss, "lambda_cycle": float(lambda_cycle),
          "lambda_identity": float(lambda_identity)}


def _make(fn, jit: bool, donate: bool, **options) -> Step:
  step = functools.partial(fn, **options)
  functools.update_wrapper(step, fn)
  if not jit:
    return step
  return jax.jit(step, donate_argnums=(0,) if donate else ())


def make_cyclegan_step(*, gan_loss: str = "least_squares", lambda_cycle: float = 10.0,
                       lambda_identity: float = 0.5, axis_name: str | None = None,
                       jit: bool = True, donate: bool = False) -> Step:
  """Jitted :func:`cyclegan_step_fn` (one full iteration). ``jit=False``: the plain body."""
  return _make(cyclegan_step_fn, jit, donate, axis_name=axis_name,
               **_cyclegan_options(gan_loss, lambda_cycle, lambda_identity))


def make_cyclegan_d_step(*, gan_loss: str = "least_squares", axis_name: str | None = None,
                         jit: bool = True, donate: bool = False) -> Step:
  """Jitted :func:`cyclegan_d_step_fn` (critics only)."""
  return _make(cyclegan_d_step_fn, jit, donate, axis_name=axis_name,
               gan_loss=_cyclegan_options(gan_loss, 0.0, 0.0)["gan_loss"])


def make_cyclegan_g_step(*, gan_loss: str = "least_squares", lambda_cycle: float = 10.0,
                         lambda_identity: float = 0.5, axis_name: str | None = None,
                         jit: bool = True, donate: bool = False) -> Step:
  """Jitted :func:`cyclegan_g_step_fn` (generators only)."""
  return _make(cyclegan_g_step_fn, jit, donate, axis_name=axis_name,
               **_cyclegan_options(gan_loss, lambda_cycle, lambda_identity))


# ---------------------------------------------------------------------------------------
# StarGAN

@struct.dataclass
class StarGANState:
  """StarGAN's generator and critic parameters, optimiser states, step (G updates) and key."""
  step: jax.Array
  key: jax.Array
  g_params: PyTree
  d_params: PyTree
  g_opt_state: optax.OptState
  d_opt_state: optax.OptState
  generator: nn.Module = struct.field(pytree_node=False)
  discriminator: nn.Module = struct.field(pytree_node=False)
  g_tx: optax.GradientTransformation = struct.field(pytree_node=False)
  d_tx: optax.GradientTransformation = struct.field(pytree_node=False)

  def translate(self, x: jax.Array, c: jax.Array, g_params: PyTree | None = None) -> jax.Array:
    """``G(x, c)``: ``x`` translated to the domain of the label vector ``c`` (with the mask, if any)."""
    return self.generator.apply({"params": self.g_params if g_params is None else g_params}, x, c)

  def discriminate(self, x: jax.Array, d_params: PyTree | None = None) -> tuple[jax.Array, jax.Array]:
    """``(D_src(x), D_cls(x))``: the patch map of critic values and the domain logits."""
    return self.discriminator.apply({"params": self.d_params if d_params is None else d_params}, x)


def check_stargan_labels(generator: nn.Module, discriminator: nn.Module,
                         label_sizes: Sequence[int] | None = None) -> None:
  """The generator's label input and the critic's classifier agree with the label layout.

  One dataset (``label_sizes`` None): both have ``K`` domains. Multi-dataset
  mode: ``label_sizes`` lists each dataset's label length (at least two);
  the critic classifies ``sum(label_sizes)`` logits and the generator takes
  those plus the mask vector, ``sum + len(label_sizes)``.
  """
  k_d, k_g = getattr(discriminator, "num_domains", None), getattr(generator, "num_domains", None)
  if not k_d or not k_g:
    raise ConfigError("StarGAN needs a generator and a critic with num_domains > 0 (the label length)")
  if label_sizes is None:
    if k_g != k_d:
      raise ConfigError(f"the generator takes {k_g} label entries but the critic classifies {k_d} "
                        f"domains; give both the same num_domains")
    return
  sizes = _label_sizes(label_sizes)
  if k_d != sum(sizes) or k_g != sum(sizes) + len(sizes):
    raise ConfigError(
        f"multi-dataset StarGAN with label sizes {sizes}: the critic needs num_domains = "
        f"{sum(sizes)} and the generator {sum(sizes) + len(sizes)} (labels + mask vector); got "
        f"{k_d} and {k_g}")


def _label_sizes(label_sizes) -> tuple[int, ...]:
  sizes = tuple(int(s) for s in label_sizes)
  if len(sizes) < 2:
    raise ConfigError(f"multi-dataset mode (the mask vector) needs at least two labelled datasets, "
                      f"got label sizes {sizes}; add a second dataset or turn multi-dataset mode off "
                      f"(--config.multi_dataset=False)")
  if min(sizes) < 1:
    raise ConfigError(f"every dataset needs at least one label entry, got label sizes {sizes}")
  return sizes


def create_stargan_state(generator: nn.Module, discriminator: nn.Module,
                         g_tx: optax.GradientTransformation, d_tx: optax.GradientTransformation,
                         key: jax.Array, image_shape: Sequence[int],
                         label_sizes: Sequence[int] | None = None) -> StarGANState:
  """Initialises StarGAN's G and D and both optimisers (``label_sizes``: multi-dataset mode)."""
  image_shape = _image_shape(image_shape)
  check_stargan_labels(generator, discriminator, label_sizes)
  key = _raw_key(key)

  def init(key, x):
    g_key, d_key = jax.random.split(jax.random.fold_in(key, 0x5EED))
    g = generator.init(g_key, x, jnp.zeros((1, generator.num_domains)))["params"]
    d = discriminator.init(d_key, x)["params"]
    return g, d, g_tx.init(g), d_tx.init(d)

  g_params, d_params, g_opt_state, d_opt_state = run_once(init, key, jnp.zeros((1, *image_shape)))
  return StarGANState(
      step=jnp.zeros((), jnp.int32), key=key, g_params=g_params, d_params=d_params,
      g_opt_state=g_opt_state, d_opt_state=d_opt_state,
      generator=generator, discriminator=discriminator, g_tx=g_tx, d_tx=d_tx)


def _stargan_labels(state: StarGANState, batch: Batch, label_sizes) -> tuple[jax.Array, jax.Array | None]:
  """The batch's labels (and mask), checked against the networks (ConfigError naming the fix)."""
  if "image" not in batch or "label" not in batch:
    raise ConfigError(f"a StarGAN batch holds 'image' and 'label' (plus 'mask' in multi-dataset "
                      f"mode); got keys {sorted(batch)}")
  label, mask = batch["label"], batch.get("mask")
  k = state.discriminator.num_domains
  if label.ndim != 2 or label.shape[0] != batch["image"].shape[0] or label.shape[1] != k:
    raise ConfigError(f"the label vectors have shape {tuple(label.shape)}, the critic classifies "
                      f"{k} domains: give labels of shape [B, {k}] (one-hot or 0/1 attributes) or "
                      f"set the models' num_domains to the label length")
  if (mask is None) != (label_sizes is None):
    raise ConfigError("the batch has a mask vector but the step has no label_sizes" if mask is not None
                      else "multi-dataset mode needs the batch's 'mask' (which dataset's labels "
                           "are known)")
  if mask is not None and mask.shape != (label.shape[0], len(label_sizes)):
    raise ConfigError(f"the mask vector has shape {tuple(mask.shape)}; expected "
                      f"[{label.shape[0]}, {len(label_sizes)}] (one entry per dataset)")
  return label.astype(jnp.float32), None if mask is None else mask.astype(jnp.float32)


def _g_label(label: jax.Array, mask: jax.Array | None) -> jax.Array:
  """The generator's condition: the label vector, followed by the mask vector if any."""
  return label if mask is None else jnp.concatenate([label, mask], axis=-1)


def _targets(state: StarGANState, label, mask, index, axis_name):
  """Target labels (and masks): the batch's labels in a random order (the reference's ``randperm``).

  The permutation is of the global batch, drawn from the step's target
  stream and the critic ``index``.
  """
  key = jax.random.fold_in(_step_key(state, _TARGET), index)
  b = label.shape[0]
  perm = jax.random.permutation(key, b if axis_name is None else b * lax.psum(1, axis_name))
  shuffle = lambda x: None if x is None else local_block(gather_batch(x, axis_name)[perm], b, axis_name)
  return shuffle(label), shuffle(mask)


def _cls_loss(logits, label, mask, cls_loss, label_sizes):
  if label_sizes is None:
    return losses.domain_classification_loss(logits, label, cls_loss)
  return losses.masked_domain_classification_loss(logits, label, mask, label_sizes, cls_loss)


def _cls_accuracy(logits, label, mask, cls_loss, label_sizes):
  if label_sizes is None:
    return losses.domain_classification_accuracy(logits, label, cls_loss)
  # Multi-dataset: accuracy of each example on its known dataset's part.
  kinds = (cls_loss,) * len(label_sizes) if isinstance(cls_loss, str) else tuple(cls_loss)
  start, acc = 0, jnp.zeros(())
  for d, (size, kind) in enumerate(zip(label_sizes, kinds)):
    s = slice(start, start + size)
    if kind == "softmax":
      hit = jnp.argmax(logits[:, s], -1) == jnp.argmax(label[:, s], -1)
    else:
      hit = jnp.mean((logits[:, s] > 0) == (label[:, s] > 0.5), axis=-1)
    acc = acc + jnp.sum(mask[:, d] * hit)
    start += size
  return acc / jnp.maximum(jnp.sum(mask), 1.0)


def stargan_d_step_fn(state: StarGANState, batch: Batch, *, lambda_cls: float = 1.0,
                      lambda_gp: float = 10.0, cls_loss="softmax",
                      label_sizes: Sequence[int] | None = None, axis_name: str | None = None,
                      critic_index: jax.Array | int = 0) -> tuple[StarGANState, Metrics]:
  r"""One critic update (Choi et al., 2018, eq. 5; Gulrajani et al., 2017).

  .. math::
     L_D = \mathbb{E}[D_{src}(G(x, c))] - \mathbb{E}[D_{src}(x)]
         + \lambda_{cls} L^r_{cls} + \lambda_{gp}\, GP

  The adversarial part is :func:`jaxgan.losses.wasserstein_discriminator_loss`
  on the patch maps; GP is :func:`jaxgan.losses.gradient_penalty` of the
  ``D_src`` map (the gradient of the sum of a patch map, per example) at
  interpolates between ``x`` and ``G(x, c)``, with the interpolation weights
  drawn by :func:`jaxgan.steps.local_draw` so that ``n`` devices draw the
  global batch's weights; :math:`L^r_{cls}` classifies the real images by
  their own labels (:func:`jaxgan.losses.domain_classification_loss`, or the
  masked version with ``label_sizes``). ``c``: the labels shuffled
  (``critic_index`` selects this update's shuffle and weights). ``step`` is
  unchanged.
  """
  label, mask = _stargan_labels(state, batch, label_sizes)
  x = batch["image"]
  c_trg, m_trg = _targets(state, label, mask, critic_index, axis_name)
  fake = lax.stop_gradient(state.translate(x, _g_label(c_trg, m_trg)))
  gp_key = jax.random.fold_in(_step_key(state, _GP), critic_index)
  eps = local_draw(lambda k, s: jax.random.uniform(k, s, jnp.float32), gp_key, (x.shape[0],), axis_name)

  def loss_fn(d_params):
    src_real, cls_real = state.discriminate(x, d_params)
    src_fake, _ = state.discriminate(fake, d_params)
    critic = lambda v: state.discriminate(v, d_params)[0]
    x_hat = losses.interpolates(x, fake, None, eps=eps)
    norms = losses.safe_norm(losses.critic_input_gradients(critic, x_hat))
    m = {"d_adv": losses.discriminator_loss("wasserstein", src_real, src_fake),
         "d_cls": _cls_loss(cls_real, label, mask, cls_loss, label_sizes),
         "gp": losses.gradient_penalty_from_norms(norms),
         "grad_norm": jnp.mean(norms),
         "wasserstein": jnp.mean(src_real) - jnp.mean(src_fake),
         "d_cls_acc": _cls_accuracy(cls_real, label, mask, cls_loss, label_sizes)}
    return m["d_adv"] + lambda_cls * m["d_cls"] + lambda_gp * m["gp"], m

  (d_loss, m), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.d_params)
  d_params, d_opt_state = _apply_update(state.d_tx, state.d_params, state.d_opt_state,
                                        pmean(grads, axis_name))
  return (state.replace(d_params=d_params, d_opt_state=d_opt_state),
          pmean({"d_loss": d_loss, **m}, axis_name))


def stargan_g_step_fn(state: StarGANState, batch: Batch, *, lambda_cls: float = 1.0,
                      lambda_rec: float = 10.0, lambda_id: float = 0.0, cls_loss="softmax",
                      label_sizes: Sequence[int] | None = None, axis_name: str | None = None,
                      target_index: jax.Array | int = 0) -> tuple[StarGANState, Metrics]:
  r"""One generator update (Choi et al., 2018, eq. 6); increments ``step``.

  .. math::
     L_G = -\mathbb{E}[D_{src}(G(x, c))] + \lambda_{cls} L^f_{cls}
         + \lambda_{rec} \|x - G(G(x, c), c')\|_1
         + \lambda_{id} \|x - G(x, c')\|_1

  with ``c`` the shuffled labels of the critic update ``target_index`` of
  this step (the reference reuses that iteration's targets) and ``c'`` the
  original labels; :math:`L^f_{cls}` asks the (fixed) critic to classify
  ``G(x, c)`` as ``c``. The last term is not in StarGAN's objective
  (``lambda_id = 0``, the default, leaves it out and skips its forward pass):
  it is CycleGAN's identity loss (Zhu et al., 2017, sec. 5.2; Taigman et
  al., 2017) carried over: translated to its own domain an image must not
  change, which keeps G near a content-preserving map.
  """
  label, mask = _stargan_labels(state, batch, label_sizes)
  x = batch["image"]
  c_trg, m_trg = _targets(state, label, mask, target_index, axis_name)

  def loss_fn(g_params):
    fake = state.translate(x, _g_label(c_trg, m_trg), g_params)
    src, cls = state.discriminate(fake)
    rec = state.translate(fake, _g_label(label, mask), g_params)
    m = {"g_adv": losses.generator_loss("wasserstein", src),
         "g_cls": _cls_loss(cls, c_trg, m_trg, cls_loss, label_sizes),
         "g_rec": losses.reconstruction_loss(x, rec)}
    total = m["g_adv"] + lambda_cls * m["g_cls"] + lambda_rec * m["g_rec"]
    if lambda_id:
      m["g_id"] = losses.l1_loss(state.translate(x, _g_label(label, mask), g_params), x)
      total = total + lambda_id * m["g_id"]
    return total, m

  (g_loss, m), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.g_params)
  g_params, g_opt_state = _apply_update(state.g_tx, state.g_params, state.g_opt_state,
                                        pmean(grads, axis_name))
  return (state.replace(g_params=g_params, g_opt_state=g_opt_state, step=state.step + 1),
          pmean({"g_loss": g_loss, **m}, axis_name))


def stargan_step_fn(state: StarGANState, batch: Batch, *, n_critic: int = 5, lambda_cls: float = 1.0,
                    lambda_gp: float = 10.0, lambda_rec: float = 10.0, lambda_id: float = 0.0,
                    cls_loss="softmax",
                    label_sizes: Sequence[int] | None = None,
                    axis_name: str | None = None) -> tuple[StarGANState, Metrics]:
  """``n_critic`` critic updates, each on its own batch, then one generator update.

  As the reference's loop: every iteration updates D on a fresh batch; every
  ``n_critic``-th also updates G, on that iteration's batch and targets. With
  ``n_critic == 1`` the batch is ``[B, ...]``; with ``n_critic = k > 1`` every
  array has a leading axis ``k`` (as :func:`jaxgan.steps.train_step_fn`);
  the critic updates run in one ``lax.scan`` and D metrics are their means.
  """
  options = dict(lambda_cls=lambda_cls, cls_loss=cls_loss, label_sizes=label_sizes,
                 axis_name=axis_name)
  if n_critic == 1:
    state, d_metrics = stargan_d_step_fn(state, batch, lambda_gp=lambda_gp, **options)
    g_batch = batch
  else:
    image = batch["image"]
    if image.ndim != 5 or image.shape[0] != n_critic:
      raise ConfigError(
          f"with n_critic={n_critic} the batch must stack {n_critic} batches on a leading axis "
          f"(image [n_critic, B, H, W, C]); got image of shape {tuple(image.shape)}")

    def critic_update(state, xs):
      i, b = xs
      return stargan_d_step_fn(state, b, lambda_gp=lambda_gp, critic_index=i, **options)

    state, d_metrics = lax.scan(critic_update, state, (jnp.arange(n_critic), batch),
                                unroll=scan_unroll(n_critic))
    d_metrics = jax.tree.map(lambda v: jnp.mean(v, axis=0), d_metrics)
    g_batch = jax.tree.map(lambda v: v[-1], batch)
  state, g_metrics = stargan_g_step_fn(state, g_batch, lambda_rec=lambda_rec, lambda_id=lambda_id,
                                       target_index=n_critic - 1, **options)
  return state, {**d_metrics, **g_metrics}


def _stargan_options(lambda_cls, lambda_gp, lambda_rec, cls_loss, label_sizes, lambda_id=0.0) -> dict:
  for name, v in (("lambda_cls", lambda_cls), ("lambda_gp", lambda_gp), ("lambda_rec", lambda_rec),
                  ("lambda_id", lambda_id)):
    if not v >= 0:
      raise ConfigError(f"{name} must be >= 0, got {v!r}")
  sizes = None if label_sizes is None else _label_sizes(label_sizes)
  kinds = (cls_loss,) if isinstance(cls_loss, str) else tuple(cls_loss)
  if any(k not in losses.CLASSIFICATION_LOSSES for k in kinds):
    raise ConfigError(f"unknown domain classification loss {cls_loss!r}; choose "
                      f"{list(losses.CLASSIFICATION_LOSSES)}: 'softmax' for single-label datasets, "
                      f"'bce' for multi-attribute labels")
  if not isinstance(cls_loss, str) and (sizes is None or len(kinds) != len(sizes)):
    raise ConfigError(f"one classification loss per dataset: got {len(kinds)} kinds for label sizes "
                      f"{sizes}")
  return {"lambda_cls": float(lambda_cls), "lambda_gp": float(lambda_gp),
          "lambda_rec": float(lambda_rec), "lambda_id": float(lambda_id),
          "cls_loss": cls_loss if isinstance(cls_loss, str) else kinds,
          "label_sizes": sizes}


def make_stargan_step(*, n_critic: int = 5, lambda_cls: float = 1.0, lambda_gp: float = 10.0,
                      lambda_rec: float = 10.0, lambda_id: float = 0.0, cls_loss="softmax",
                      label_sizes: Sequence[int] | None = None, axis_name: str | None = None,
                      jit: bool = True, donate: bool = False) -> Step:
  """Jitted :func:`stargan_step_fn`. ``cls_loss``: ``"softmax"`` (single-label), ``"bce"``
  (multi-attribute), or one per dataset; ``label_sizes``: multi-dataset mode (mask vector);
  ``lambda_id`` > 0 adds the identity term of :func:`stargan_g_step_fn`."""
  if isinstance(n_critic, bool) or not isinstance(n_critic, int) or n_critic < 1:
    raise ConfigError(f"n_critic must be a positive integer (5 in StarGAN), got {n_critic!r}")
  options = _stargan_options(lambda_cls, lambda_gp, lambda_rec, cls_loss, label_sizes, lambda_id)
  return _make(stargan_step_fn, jit, donate, n_critic=n_critic, axis_name=axis_name, **options)


def make_stargan_d_step(*, lambda_cls: float = 1.0, lambda_gp: float = 10.0, cls_loss="softmax",
                        label_sizes: Sequence[int] | None = None, axis_name: str | None = None,
                        jit: bool = True, donate: bool = False) -> Step:
  """Jitted :func:`stargan_d_step_fn` (one critic update)."""
  options = _stargan_options(lambda_cls, lambda_gp, 0.0, cls_loss, label_sizes)
  del options["lambda_rec"], options["lambda_id"]
  return _make(stargan_d_step_fn, jit, donate, axis_name=axis_name, **options)


def make_stargan_g_step(*, lambda_cls: float = 1.0, lambda_rec: float = 10.0, lambda_id: float = 0.0,
                        cls_loss="softmax", label_sizes: Sequence[int] | None = None,
                        axis_name: str | None = None, jit: bool = True, donate: bool = False) -> Step:
  """Jitted :func:`stargan_g_step_fn` (one generator update)."""
  options = _stargan_options(lambda_cls, 0.0, lambda_rec, cls_loss, label_sizes, lambda_id)
  del options["lambda_gp"]
  return _make(stargan_g_step_fn, jit, donate, axis_name=axis_name, **options)


@jax.jit
def translate_stargan(state: StarGANState, x: jax.Array, c: jax.Array) -> jax.Array:
  """``G(x, c)`` (``c`` with the mask vector appended in multi-dataset mode)."""
  return state.translate(x, c)


@functools.partial(jax.jit, static_argnames="direction")
def translate_cyclegan(state: CycleGANState, x: jax.Array, direction: str = "ab") -> jax.Array:
  """``G(x)`` (``"ab"``) or ``F(x)`` (``"ba"``)."""
  return state.translate(x, direction)
