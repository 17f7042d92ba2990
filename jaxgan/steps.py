"""Pure GAN train steps: ``step(state, batch) -> (state, metrics)``.

The bodies (``d_step_fn``, ``g_step_fn``, ``train_step_fn``) are plain functions
of pytrees; the ``make_*`` factories bind the objective and return jitted
steps. When ``axis_name`` is given, gradients are averaged over that mapped
axis with ``lax.pmean`` (for ``pmap`` / ``shard_map`` wrappers).

A batch is a dict with at least ``"image"`` (``[N, H, W, C]`` in [-1, 1]);
later families read more keys (``"label"``, ...) from the same dict.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax
from jax import lax

from jaxgan import augment as augment_lib
from jaxgan import losses
from jaxgan.state import DROPOUT_STREAM, GANState, takes_label

Batch = dict[str, jax.Array]
Metrics = dict[str, jax.Array]
Step = Callable[[GANState, Batch], tuple[GANState, Metrics]]

D_STREAM, G_STREAM, GP_STREAM = 0, 1, 2
NOISE_STREAM = 3      # stochastic layers of D (the semi-supervised GAN's Gaussian noise)
_LABEL_TAG = 0x1AB     # fold_in tag of the fake labels within a stream (z keeps the stream key)
_AUGMENT_TAG = 0xA06   # fold_in tag of DiffAugment's draws within a stream

BATCHNORM_PENALTY_ERROR = ("gradient penalty is per example; BatchNorm mixes examples: "
                           "use discriminator norm 'layer' or 'none'")


def penalty_refusal(discriminator, x, label=None) -> str | None:
  """Why a gradient penalty (WGAN-GP, R1) cannot train ``discriminator``, or None if it can.

  The one rule: a penalty is per example, so a critic with BatchNorm layers
  (whose output for one example depends on the others) is refused. The layers
  are found by tracing ``discriminator`` on ``x`` (and ``label`` for a
  conditional one) shape-only, so other layers that keep state in
  ``batch_stats`` (spectral normalisation's power-iteration vectors) are
  accepted. ``x``: an example batch (its values are not used).
  """
  args = (jax.ShapeDtypeStruct(x.shape, x.dtype),)
  if label is not None and takes_label(discriminator):
    args += (jax.ShapeDtypeStruct(label.shape, label.dtype),)
  return _refusal(discriminator, args)


@functools.lru_cache(maxsize=64)
def _refusal(discriminator, args) -> str | None:
  from jaxgan.models.layers import uses_batchnorm
  return BATCHNORM_PENALTY_ERROR if uses_batchnorm(discriminator, *args) else None


def step_key(state: GANState, stream: int) -> jax.Array:
  """Randomness of one step: a pure function of the run key, the step and the stream."""
  return jax.random.fold_in(jax.random.fold_in(state.key, state.step), stream)


def dropout_rngs(key: jax.Array, tag: int, axis_name: str | None = None) -> dict[str, jax.Array]:
  """``{"dropout": ...}`` for one network pass of a step: the pass's stream ``key`` folded with
  the dropout stream and ``tag``, and over a mapped axis with the device's index (each device
  masks its own examples). Unused by networks without dropout."""
  key = jax.random.fold_in(jax.random.fold_in(key, DROPOUT_STREAM), tag)
  return {"dropout": key if axis_name is None else jax.random.fold_in(key, lax.axis_index(axis_name))}


def local_draw(sampler, key: jax.Array, shape: tuple[int, ...],
               axis_name: str | None = None) -> jax.Array:
  """``sampler(key, shape)`` for this device's share of a batch drawn over all devices.

  Without ``axis_name`` it is ``sampler(key, shape)``. Over a mapped axis of
  ``n`` devices, every device draws the global ``[n * shape[0], ...]`` array
  from the same key and keeps its own contiguous block, so device ``i`` gets
  rows ``i*b:(i+1)*b``: per-device randomness is distinct and the union is
  exactly what one device would draw for the global batch (which is what makes
  ``n`` devices equal one device). The extra draws are a few thousand numbers.
  """
  if axis_name is None:
    return sampler(key, shape)
  full = sampler(key, (lax.psum(1, axis_name) * shape[0],) + tuple(shape[1:]))
  return local_block(full, shape[0], axis_name)


def gather_batch(x: jax.Array, axis_name: str | None) -> jax.Array:
  """The global batch (the devices' blocks in device order) of a per-device array; ``x`` itself
  without ``axis_name``. For what needs other devices' examples: a history pool, a shuffle, a
  pairing of each example with another's (the inverse is :func:`local_block`)."""
  return x if axis_name is None else lax.all_gather(x, axis_name, tiled=True)


def local_block(x: jax.Array, b: int, axis_name: str | None) -> jax.Array:
  """This device's block of ``b`` rows of a global-batch array (rows ``i*b:(i+1)*b`` on device
  ``i``); ``x`` itself without ``axis_name``."""
  if axis_name is None:
    return x
  return lax.dynamic_slice_in_dim(x, lax.axis_index(axis_name) * b, b)


def augment_images(x: jax.Array, key: jax.Array, policy: tuple[str, ...],
                   axis_name: str | None = None) -> jax.Array:
  """DiffAugment (:mod:`jaxgan.augment`) of a (per-device) batch with ``policy``; ``x`` itself when
  the policy is empty. The per-example draws come from ``fold_in(key, _AUGMENT_TAG)`` for the
  global batch (:func:`local_draw`), so n devices augment exactly as one device does."""
  if not policy:
    return x
  uniform = lambda k, shape: jax.random.uniform(k, shape, jnp.float32)
  u = local_draw(uniform, jax.random.fold_in(key, _AUGMENT_TAG),
                 (x.shape[0], augment_lib.NUM_UNIFORMS), axis_name)
  return augment_lib.augment_with(x, u, policy)


def sample_latent(state: GANState, key: jax.Array, batch_size: int,
                  axis_name: str | None = None) -> jax.Array:
  """Latent noise ``z ~ N(0, I)`` for a (per-device) batch; see :func:`local_draw`."""
  normal = lambda k, shape: jax.random.normal(k, shape, jnp.float32)
  return local_draw(normal, key, (batch_size, state.latent_dim), axis_name)


def sample_labels(state: GANState, key: jax.Array, batch_size: int,
                  axis_name: str | None = None) -> jax.Array:
  """Fake labels ``y ~ U{0, ..., K-1}`` (int32 ``[batch_size]``) for a conditional ``G(z, y)``.

  Drawn from ``fold_in(key, _LABEL_TAG)``, so the latent noise of the same
  stream is unchanged; per device as :func:`local_draw` (n devices == 1 device).
  ``K`` is the generator's ``num_classes``.
  """
  k = int(state.generator.num_classes)
  randint = lambda key_, shape: jax.random.randint(key_, shape, 0, k, jnp.int32)
  return local_draw(randint, jax.random.fold_in(key, _LABEL_TAG), (batch_size,), axis_name)


def _fake_labels(state: GANState, key: jax.Array, batch_size: int, axis_name) -> jax.Array | None:
  """Labels for the fakes if the generator is conditional, else None (G called as today)."""
  return sample_labels(state, key, batch_size, axis_name) if takes_label(state.generator) else None


def _d_label(state: GANState, label: jax.Array | None) -> jax.Array | None:
  """``label`` if the discriminator is conditional (``D(x, y)``), else None."""
  return label if takes_label(state.discriminator) else None


def _real_labels(state: GANState, batch: Batch) -> jax.Array | None:
  if not takes_label(state.discriminator):
    return None
  if "label" not in batch:
    raise ValueError(f"a conditional discriminator needs the real labels: the batch has keys "
                     f"{sorted(batch)}, no 'label'")
  return batch["label"]


def pmean(tree, axis_name: str | None):
  """``lax.pmean`` over ``axis_name``, or ``tree`` itself without one."""
  return tree if axis_name is None else lax.pmean(tree, axis_name)


def clip_params(params, clip: float):
  """Every leaf clipped to ``[-clip, clip]`` (WGAN weight clipping, Arjovsky et al., 2017)."""
  return jax.tree.map(lambda p: jnp.clip(p, -clip, clip), params)


def d_step_fn(state: GANState, batch: Batch, *, loss: str = "nonsaturating",
              axis_name: str | None = None, gp_weight: float = 0.0, gp_one_sided: bool = False,
              r1_weight: float = 0.0, clip: float | None = None,
              label_smoothing: float = 0.0,
              critic_index: jax.Array | int | None = None,
              fake: jax.Array | None = None,
              fake_label: jax.Array | None = None,
              augment: tuple[str, ...] = ()) -> tuple[GANState, Metrics]:
  """One discriminator update on a real batch and as many fresh fakes.

  The generator runs in training mode (batch statistics, as in the reference
  DCGAN code) but its parameters and running statistics are left unchanged.
  Real and fake batches go through D separately, so each BatchNorm layer sees
  one kind at a time.

  Options (all off by default):

  * ``gp_weight`` (WGAN-GP's lambda) adds ``gp_weight * GP`` with GP from
    :func:`jaxgan.losses.gradient_penalty` on per-example interpolates
    (``gp_one_sided`` for the one-sided variant); metrics ``gp`` and
    ``grad_norm`` (mean input-gradient norm of the critic at the interpolates).
  * ``r1_weight`` is R1's gamma: adds ``gamma / 2 * R1`` (Mescheder et al.,
    2018; :func:`jaxgan.losses.r1_penalty`); metric ``r1``.
  * ``clip`` clips every discriminator parameter to ``[-clip, clip]`` right
    after the update (WGAN), so the state a step returns always satisfies the
    constraint, and the generator update that follows sees the clipped critic.
  * ``label_smoothing`` = s (cross-entropy objectives): one-sided label
    smoothing (Salimans et al., 2016, sec. 3.4), real target 1 - s
    (:func:`jaxgan.losses.bce_discriminator_loss`).
  * ``augment`` (names of :data:`jaxgan.augment.POLICIES`): DiffAugment (Zhao et al., 2020):
    D sees the real and the fake batch through independent random draws of the same
    differentiable transforms (penalties too, on the augmented images).

  Penalties use D in training mode with the parameters being differentiated;
  a discriminator with BatchNorm is refused (its output for one example
  depends on the others, so per-example input gradients are meaningless).
  ``d_loss`` is the whole objective D minimises (loss + penalties).
  ``critic_index`` (the i-th of ``n_critic`` updates) selects fresh noise.
  ``fake`` (optional) is a batch of generated images to use instead of
  sampling G here (the fused step passes the fakes it reuses for G).

  Conditional GAN (a generator / discriminator with ``takes_label``): the
  fakes are ``G(z, y)`` with ``y`` drawn uniformly (:func:`sample_labels`;
  ``fake_label`` goes with a given ``fake``), D sees ``D(x, batch["label"])``
  and ``D(G(z, y), y)``; penalties differentiate ``D(., batch["label"])``.
  """
  d_key, gp_key = step_key(state, D_STREAM), step_key(state, GP_STREAM)
  if critic_index is not None:
    d_key, gp_key = jax.random.fold_in(d_key, critic_index), jax.random.fold_in(gp_key, critic_index)
  real = batch["image"]
  real_label = _real_labels(state, batch)
  if gp_weight or r1_weight:
    refusal = penalty_refusal(state.discriminator, real[:2],
                              None if real_label is None else real_label[:2])
    if refusal:
      raise ValueError(refusal)
  if fake is None:
    fake_label = _fake_labels(state, d_key, real.shape[0], axis_name)
    fake, _ = state.generate(sample_latent(state, d_key, real.shape[0], axis_name), train=True,
                             label=fake_label, rngs=dropout_rngs(d_key, 0, axis_name))
  fake = lax.stop_gradient(fake)
  fake_label = _d_label(state, fake_label)
  real = augment_images(real, jax.random.fold_in(d_key, 1), augment, axis_name)
  fake = augment_images(fake, jax.random.fold_in(d_key, 2), augment, axis_name)

  def loss_fn(d_params):
    real_logits, stats = state.discriminate(real, d_params=d_params, label=real_label,
                                            rngs=dropout_rngs(d_key, 1, axis_name))
    fake_logits, stats = state.discriminate(fake, stats, d_params=d_params, label=fake_label,
                                            rngs=dropout_rngs(d_key, 2, axis_name))
    d_loss = losses.discriminator_loss(loss, real_logits, fake_logits, **smoothing_kwargs(label_smoothing))
    extra = {}
    critic = lambda x: state.discriminate(x, d_params=d_params, label=real_label,
                                          rngs=dropout_rngs(d_key, 3, axis_name))[0]
    if gp_weight:
      uniform = lambda k, shape: jax.random.uniform(k, shape, jnp.float32)
      eps = local_draw(uniform, gp_key, (real.shape[0],), axis_name)
      x_hat = losses.interpolates(real, fake, None, eps=eps)
      norms = losses.safe_norm(losses.critic_input_gradients(critic, x_hat))
      extra["gp"] = losses.gradient_penalty_from_norms(norms, one_sided=gp_one_sided)
      extra["grad_norm"] = jnp.mean(norms)
      d_loss = d_loss + gp_weight * extra["gp"]
    if r1_weight:
      extra["r1"] = losses.r1_penalty(critic, real)
      d_loss = d_loss + 0.5 * r1_weight * extra["r1"]
    return d_loss, (stats, real_logits, fake_logits, extra)

  (d_loss, (stats, real_logits, fake_logits, extra)), grads = jax.value_and_grad(
      loss_fn, has_aux=True)(state.d_params)
  new_state = apply_d_update(state, grads, stats, axis_name, clip)
  real_acc, fake_acc = losses.discriminator_accuracy(real_logits, fake_logits)
  metrics = {
      "d_loss": d_loss,
      "d_real_acc": real_acc,
      "d_fake_acc": fake_acc,
  }
  if loss in ("nonsaturating", "minimax"):
    metrics["d_real_prob"] = jnp.mean(jax.nn.sigmoid(real_logits))
    metrics["d_fake_prob"] = jnp.mean(jax.nn.sigmoid(fake_logits))
  else:
    metrics["d_real"] = jnp.mean(real_logits)
    metrics["d_fake"] = jnp.mean(fake_logits)
  if loss in ("wasserstein", "hinge"):
    metrics["wasserstein"] = jnp.mean(real_logits) - jnp.mean(fake_logits)
  metrics.update(extra)
  return new_state, pmean(metrics, axis_name)


def g_step_fn(state: GANState, batch: Batch, *, loss: str = "nonsaturating",
              axis_name: str | None = None, augment: tuple[str, ...] = ()
              ) -> tuple[GANState, Metrics]:
  """One generator update through the current discriminator; increments ``step``.

  D runs in training mode (batch statistics of the fake batch, as the
  reference code does) but its parameters and running statistics are left
  unchanged. The batch only sets the batch size. A conditional G gets
  uniformly drawn labels (:func:`sample_labels`), which a conditional D sees too.
  ``augment``: D sees the fakes through DiffAugment, G's gradient flows through it.
  """
  g_key = step_key(state, G_STREAM)
  z = sample_latent(state, g_key, batch["image"].shape[0], axis_name)
  y = _fake_labels(state, g_key, batch["image"].shape[0], axis_name)

  def loss_fn(g_params):
    fake, g_stats = state.replace(g_params=g_params).generate(
        z, train=True, label=y, rngs=dropout_rngs(g_key, 0, axis_name))
    fake = augment_images(fake, g_key, augment, axis_name)
    fake_logits, _ = state.discriminate(fake, label=_d_label(state, y),
                                        rngs=dropout_rngs(g_key, 1, axis_name))
    return losses.generator_loss(loss, fake_logits), g_stats

  (g_loss, g_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.g_params)
  return apply_g_update(state, grads, g_stats, g_loss, axis_name)


def apply_d_update(state: GANState, grads, d_stats, axis_name: str | None = None,
                   clip: float | None = None) -> GANState:
  """D's optimizer step: gradients and BatchNorm statistics averaged over ``axis_name``, the
  update applied (then every parameter clipped to ``[-clip, clip]`` when ``clip`` is set)."""
  grads, d_stats = pmean((grads, d_stats), axis_name)
  updates, d_opt_state = state.d_tx.update(grads, state.d_opt_state, state.d_params)
  d_params = optax.apply_updates(state.d_params, updates)
  if clip is not None:
    d_params = clip_params(d_params, clip)
  return state.replace(d_params=d_params, d_opt_state=d_opt_state, d_batch_stats=d_stats)


def apply_g_update(state: GANState, grads, g_stats, g_loss, axis_name: str | None = None
                   ) -> tuple[GANState, Metrics]:
  """G's optimizer step (gradients and statistics averaged over ``axis_name``); ``step + 1``;
  returns the state and ``{"g_loss": g_loss}`` (averaged)."""
  grads, g_stats = pmean((grads, g_stats), axis_name)
  updates, g_opt_state = state.g_tx.update(grads, state.g_opt_state, state.g_params)
  new_state = state.replace(g_params=optax.apply_updates(state.g_params, updates),
                            g_opt_state=g_opt_state, g_batch_stats=g_stats,
                            step=state.step + 1)
  return new_state, pmean({"g_loss": g_loss}, axis_name)


def reused_fakes_step_fn(state: GANState, batch: Batch, *, loss: str = "nonsaturating",
                         axis_name: str | None = None, augment: tuple[str, ...] = (),
                         **d_options: Any) -> tuple[GANState, Metrics]:
  """One D update then one G update on the *same* fakes, G run once (``n_critic == 1``).

  This is the update of the reference DCGAN code (PyTorch's ``examples/dcgan``):
  ``fake = G(z)`` once in training mode; D is updated on the real batch and
  ``fake``; G is updated through the *updated* D on that same ``fake``, its
  gradient pulled back through the forward pass already done (``jax.vjp``).
  It saves one generator forward pass per step against :func:`d_step_fn`
  followed by :func:`g_step_fn` (which draws fresh noise for G), and G's
  BatchNorm statistics come from that one pass. The noise is the D stream's.
  """
  d_key = step_key(state, D_STREAM)
  z = sample_latent(state, d_key, batch["image"].shape[0], axis_name)
  y = _fake_labels(state, d_key, batch["image"].shape[0], axis_name)
  fake, pull_back, g_stats = jax.vjp(
      lambda g_params: state.replace(g_params=g_params).generate(
          z, train=True, label=y, rngs=dropout_rngs(d_key, 0, axis_name)),
      state.g_params, has_aux=True)
  state, d_metrics = d_step_fn(state, batch, loss=loss, axis_name=axis_name, fake=fake,
                               fake_label=y, augment=augment, **d_options)
  g_loss, fake_grad = jax.value_and_grad(
      lambda x: losses.generator_loss(loss, state.discriminate(
          augment_images(x, jax.random.fold_in(d_key, 3), augment, axis_name),
          label=_d_label(state, y), rngs=dropout_rngs(d_key, 4, axis_name))[0]))(fake)
  (grads,) = pull_back(fake_grad)
  state, g_metrics = apply_g_update(state, grads, g_stats, g_loss, axis_name)
  return state, {**d_metrics, **g_metrics}


def scan_unroll(n: int) -> int:
  """How far to unroll a scan over ``n`` train (or critic) steps: fully on CPU, not elsewhere.

  XLA:CPU compiles the kernel gradient of a strided convolution inside a
  ``while`` loop body to a slow generic loop: a rolled 5-step critic scan of
  the DCGAN-32 critic ran ~25x slower than the same 5 steps unrolled (51 s vs
  2.0 s per WGAN-GP step at batch 64 on 2 cores; one stride-2 conv's dW alone:
  11.6 s vs 93 ms for 5 iterations). Unrolled, the scan is straight-line code
  with the same semantics; GPU/TPU keep the loop (smaller programs).
  """
  return n if jax.default_backend() == "cpu" else 1


def train_step_fn(state: GANState, batch: Batch, *, loss: str = "nonsaturating",
                  axis_name: str | None = None, n_critic: int = 1, reuse_fakes: bool = True,
                  augment: tuple[str, ...] = (), **d_options: Any) -> tuple[GANState, Metrics]:
  """``n_critic`` D updates, then one G update (against the updated D).

  With ``n_critic == 1`` and ``reuse_fakes`` (the default) G's update reuses
  the fakes of D's update (:func:`reused_fakes_step_fn`, the reference DCGAN
  update); with ``reuse_fakes=False`` the step is exactly :func:`d_step_fn`
  then :func:`g_step_fn` (fresh noise for G).

  With ``n_critic == 1`` the batch is an ordinary ``[B, ...]`` batch. With
  ``n_critic = k > 1`` every array of the batch has a leading axis ``k``
  (``batch["image"]``: ``[k, B, H, W, C]``): D update ``i`` reads slice ``i``
  and draws its own noise (``critic_index=i``); the updates run in one
  ``lax.scan``. The G update uses the last slice's batch size. D metrics are
  means over the ``k`` updates. ``d_options`` are :func:`d_step_fn`'s
  (``gp_weight``, ``gp_one_sided``, ``r1_weight``, ``clip``, ``label_smoothing``);
  ``augment`` (DiffAugment's transforms) reaches every D and G update.

  A conditional GAN (networks with ``takes_label``) runs this same step with
  labels (see :func:`d_step_fn`). Families whose discriminator is not one logit
  per example bring their own step (:mod:`jaxgan.families`).
  """
  if n_critic == 1 and reuse_fakes:
    return reused_fakes_step_fn(state, batch, loss=loss, axis_name=axis_name, augment=augment,
                                **d_options)
  if n_critic == 1:
    state, d_metrics = d_step_fn(state, batch, loss=loss, axis_name=axis_name, augment=augment,
                                 **d_options)
    g_batch = batch
  else:
    image = batch["image"]
    if image.ndim < 3 or image.shape[0] != n_critic:  # [k, B, ...example]
      raise ValueError(
          f"with n_critic={n_critic} the batch must stack {n_critic} batches on a leading axis "
          f"(image [n_critic, B, H, W, C], or [n_critic, B, 2] for 2-D points); got image of "
          f"shape {tuple(image.shape)}")

    def critic_update(state, xs):
      i, b = xs
      return d_step_fn(state, b, loss=loss, axis_name=axis_name, critic_index=i, augment=augment,
                       **d_options)

    state, d_metrics = lax.scan(critic_update, state, (jnp.arange(n_critic), batch),
                                unroll=scan_unroll(n_critic))
    d_metrics = jax.tree.map(lambda m: jnp.mean(m, axis=0), d_metrics)
    g_batch = jax.tree.map(lambda x: x[-1], batch)
  state, g_metrics = g_step_fn(state, g_batch, loss=loss, axis_name=axis_name, augment=augment)
  return state, {**d_metrics, **g_metrics}


def smoothing_kwargs(label_smoothing: float) -> dict[str, float]:
  """The cross-entropy loss's keyword for ``label_smoothing`` (none when 0: every loss takes that)."""
  return {"label_smoothing": label_smoothing} if label_smoothing else {}


def _d_options(gp_weight: float, gp_one_sided: bool, r1_weight: float,
               clip: float | None, label_smoothing: float) -> dict[str, Any]:
  for name, value in (("gp_weight", gp_weight), ("r1_weight", r1_weight)):
    if not value >= 0:
      raise ValueError(f"{name} must be >= 0, got {value!r}")
  if clip is not None and not clip > 0:
    raise ValueError(f"clip must be positive (or None for no clipping), got {clip!r}")
  if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, (int, float)) \
      or not 0 <= label_smoothing < 0.5:
    raise ValueError(f"label_smoothing must be in [0, 0.5) (0 = none), got {label_smoothing!r}")
  return {"gp_weight": float(gp_weight), "gp_one_sided": bool(gp_one_sided),
          "r1_weight": float(r1_weight), "clip": None if clip is None else float(clip),
          "label_smoothing": float(label_smoothing)}


def check_objective(loss: str, label_smoothing: float = 0.0) -> None:
  """Raises ``ValueError`` unless ``loss`` is a pairwise objective that ``label_smoothing`` (when
  set) can smooth (a cross-entropy one)."""
  if loss not in losses.PAIR_LOSSES:
    raise ValueError(f"{loss!r} is not an objective on real / fake logits that this step trains; "
                     f"choose one of {list(losses.PAIR_LOSSES)}")
  if label_smoothing and loss not in losses.CROSS_ENTROPY_LOSSES:
    raise ValueError(f"label_smoothing needs a cross-entropy objective "
                     f"{losses.CROSS_ENTROPY_LOSSES}, not {loss!r}")


def bind(fn, *, jit: bool = True, donate: bool = False, **options) -> Step:
  """``fn`` (a step body) with its keyword ``options`` bound: jitted (``donate``: the input
  state's buffers reused) unless ``jit=False``. What every ``make_*_step`` returns."""
  step = functools.partial(fn, **options)
  functools.update_wrapper(step, fn)
  if not jit:
    return step
  return jax.jit(step, donate_argnums=(0,) if donate else ())


def _make(fn, loss: str, axis_name: str | None, jit: bool, donate: bool, **options) -> Step:
  check_objective(loss, options.get("label_smoothing", 0.0))
  return bind(fn, jit=jit, donate=donate, loss=loss, axis_name=axis_name, **options)


def make_d_step(loss: str = "nonsaturating", *, axis_name: str | None = None,
                jit: bool = True, donate: bool = False, gp_weight: float = 0.0,
                gp_one_sided: bool = False, r1_weight: float = 0.0,
                clip: float | None = None, label_smoothing: float = 0.0,
                augment: str | tuple[str, ...] = ()) -> Step:
  """Jitted discriminator step ``(state, batch) -> (state, metrics)``.

  ``gp_weight``, ``gp_one_sided``, ``r1_weight`` (R1's gamma), ``clip``,
  ``label_smoothing`` and ``augment`` are described in :func:`d_step_fn`.
  """
  return _make(d_step_fn, loss, axis_name, jit, donate, augment=augment_lib.parse_policy(augment),
               **_d_options(gp_weight, gp_one_sided, r1_weight, clip, label_smoothing))


def make_g_step(loss: str = "nonsaturating", *, axis_name: str | None = None,
                jit: bool = True, donate: bool = False, augment: str | tuple[str, ...] = ()) -> Step:
  """Jitted generator step ``(state, batch) -> (state, metrics)`` (``augment``: DiffAugment's
  transforms between G and D)."""
  return _make(g_step_fn, loss, axis_name, jit, donate, augment=augment_lib.parse_policy(augment))


def make_train_step(loss: str = "nonsaturating", *, axis_name: str | None = None,
                    jit: bool = True, donate: bool = False, n_critic: int = 1,
                    reuse_fakes: bool = True, gp_weight: float = 0.0,
                    gp_one_sided: bool = False, r1_weight: float = 0.0,
                    clip: float | None = None, label_smoothing: float = 0.0,
                    augment: str | tuple[str, ...] = ()) -> Step:
  """Jitted fused step: ``n_critic`` D updates then one G update.

  ``donate=True`` lets XLA reuse the input state's buffers (the caller must
  not use the old state afterwards), as the trainer does. ``reuse_fakes``
  (``n_critic == 1``): G's update reuses D's fakes, one G forward pass per
  step (see :func:`train_step_fn`). With
  ``n_critic > 1`` the batch stacks ``n_critic`` batches on a leading axis
  (see :func:`train_step_fn`). The D options are :func:`d_step_fn`'s, e.g.
  WGAN: ``make_train_step("wasserstein", n_critic=5, clip=0.01)``; WGAN-GP:
  ``make_train_step("wasserstein", n_critic=5, gp_weight=10.0)``.
  ``label_smoothing`` (one-sided, cross-entropy objectives) smooths D's real target:
  ``make_train_step(label_smoothing=0.1)``. ``augment`` (DiffAugment, Zhao et al., 2020):
  ``make_train_step("hinge", augment="color,translation,cutout")``.
  """
  if isinstance(n_critic, bool) or not isinstance(n_critic, int) or n_critic < 1:
    raise ValueError(f"n_critic must be a positive integer, got {n_critic!r}")
  return _make(train_step_fn, loss, axis_name, jit, donate, n_critic=n_critic,
               reuse_fakes=bool(reuse_fakes), augment=augment_lib.parse_policy(augment),
               **_d_options(gp_weight, gp_one_sided, r1_weight, clip, label_smoothing))


@jax.jit
def generate(state: GANState, z: jax.Array, label: jax.Array | None = None) -> jax.Array:
  """Samples G(z) (G(z, y) for a conditional G and int ``label``) in inference mode (BatchNorm running averages)."""
  return state.generate(z, train=False, label=label)[0]
