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

from jaxgan import losses
from jaxgan.state import GANState, takes_label

Batch = dict[str, jax.Array]
Metrics = dict[str, jax.Array]
Step = Callable[[GANState, Batch], tuple[GANState, Metrics]]

_D_STREAM, _G_STREAM, _GP_STREAM = 0, 1, 2
_NOISE_STREAM = 3      # stochastic layers of D (the semi-supervised GAN's Gaussian noise)
_LABEL_TAG = 0x1AB     # fold_in tag of the fake labels within a stream (z keeps the stream key)

BATCHNORM_PENALTY_ERROR = ("gradient penalty is per example; BatchNorm mixes examples: "
                           "use discriminator norm 'layer' or 'none'")


def step_key(state: GANState, stream: int) -> jax.Array:
  """Randomness of one step: a pure function of the run key, the step and the stream."""
  return jax.random.fold_in(jax.random.fold_in(state.key, state.step), stream)


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
  n, i = lax.psum(1, axis_name), lax.axis_index(axis_name)
  full = sampler(key, (n * shape[0],) + tuple(shape[1:]))
  return lax.dynamic_slice_in_dim(full, i * shape[0], shape[0])


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


def _pmean(tree, axis_name):
  return tree if axis_name is None else lax.pmean(tree, axis_name)


def clip_params(params, clip: float):
  """Every leaf clipped to ``[-clip, clip]`` (WGAN weight clipping, Arjovsky et al., 2017)."""
  return jax.tree.map(lambda p: jnp.clip(p, -clip, clip), params)


def d_step_fn(state: GANState, batch: Batch, *, loss: str = "nonsaturating",
              axis_name: str | None = None, gp_weight: float = 0.0, gp_one_sided: bool = False,
              r1_weight: float = 0.0, clip: float | None = None,
              began_gamma: float = 0.5, began_lambda_k: float = 0.001,
              label_smoothing: float = 0.0,
              critic_index: jax.Array | int | None = None,
              fake: jax.Array | None = None,
              fake_label: jax.Array | None = None) -> tuple[GANState, Metrics]:
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
  * ``loss="began"``: D's outputs are auto-encoder energies; the loss uses
    ``state.k_t``, and the step then sets ``k_t`` by BEGAN's control law with
    ``began_gamma`` and ``began_lambda_k`` (:func:`jaxgan.losses.began_k_update`),
    on this step's real and fake energies under the pre-update D (the paper
    updates D, G and k simultaneously from the same measurements); metrics
    ``k_t`` (the new value) and ``m_global`` (the convergence measure).
  * ``label_smoothing`` = s (cross-entropy objectives): one-sided label
    smoothing (Salimans et al., 2016, sec. 3.4), real target 1 - s
    (:func:`jaxgan.losses.bce_discriminator_loss`).

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
  if (gp_weight or r1_weight) and jax.tree.leaves(state.d_batch_stats):
    raise ValueError(BATCHNORM_PENALTY_ERROR)
  d_key, gp_key = step_key(state, _D_STREAM), step_key(state, _GP_STREAM)
  if critic_index is not None:
    d_key, gp_key = jax.random.fold_in(d_key, critic_index), jax.random.fold_in(gp_key, critic_index)
  real = batch["image"]
  real_label = _real_labels(state, batch)
  if fake is None:
    fake_label = _fake_labels(state, d_key, real.shape[0], axis_name)
    fake, _ = state.generate(sample_latent(state, d_key, real.shape[0], axis_name), train=True,
                             label=fake_label)
  fake = lax.stop_gradient(fake)
  fake_label = _d_label(state, fake_label)

  def loss_fn(d_params):
    real_logits, stats = state.discriminate(real, d_params=d_params, label=real_label)
    fake_logits, stats = state.discriminate(fake, stats, d_params=d_params, label=fake_label)
    kw = {"k": state.k_t} if loss == "began" else _smoothing(label_smoothing)
    d_loss = losses.discriminator_loss(loss, real_logits, fake_logits, **kw)
    extra = {}
    critic = lambda x: state.discriminate(x, d_params=d_params, label=real_label)[0]
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
  grads, stats = _pmean((grads, stats), axis_name)
  updates, d_opt_state = state.d_tx.update(grads, state.d_opt_state, state.d_params)
  d_params = optax.apply_updates(state.d_params, updates)
  if clip is not None:
    d_params = clip_params(d_params, clip)
  new_state = state.replace(d_params=d_params, d_opt_state=d_opt_state, d_batch_stats=stats)
  if loss == "began":
    # Energies, not logits: a real "passes" below the fakes' mean energy and vice versa.
    real_acc = jnp.mean(real_logits < jnp.mean(fake_logits))
    fake_acc = jnp.mean(fake_logits > jnp.mean(real_logits))
    real_e, fake_e = _pmean((jnp.mean(real_logits), jnp.mean(fake_logits)), axis_name)
    k_t = losses.began_k_update(state.k_t, real_e, fake_e, gamma=began_gamma, lambda_k=began_lambda_k)
    new_state = new_state.replace(k_t=k_t)
    extra = {**extra, "k_t": k_t,
             "m_global": losses.began_convergence(real_e, fake_e, gamma=began_gamma)}
  else:
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
  return new_state, _pmean(metrics, axis_name)


def g_step_fn(state: GANState, batch: Batch, *, loss: str = "nonsaturating",
              axis_name: str | None = None) -> tuple[GANState, Metrics]:
  """One generator update through the current discriminator; increments ``step``.

  D runs in training mode (batch statistics of the fake batch, as the
  reference code does) but its parameters and running statistics are left
  unchanged. The batch only sets the batch size. A conditional G gets
  uniformly drawn labels (:func:`sample_labels`), which a conditional D sees too.
  """
  g_key = step_key(state, _G_STREAM)
  z = sample_latent(state, g_key, batch["image"].shape[0], axis_name)
  y = _fake_labels(state, g_key, batch["image"].shape[0], axis_name)

  def loss_fn(g_params):
    fake, g_stats = state.replace(g_params=g_params).generate(z, train=True, label=y)
    fake_logits, _ = state.discriminate(fake, label=_d_label(state, y))
    return losses.generator_loss(loss, fake_logits), g_stats

  (g_loss, g_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.g_params)
  return _apply_g_update(state, grads, g_stats, g_loss, axis_name)


def _apply_g_update(state: GANState, grads, g_stats, g_loss, axis_name) -> tuple[GANState, Metrics]:
  grads, g_stats = _pmean((grads, g_stats), axis_name)
  updates, g_opt_state = state.g_tx.update(grads, state.g_opt_state, state.g_params)
  new_state = state.replace(g_params=optax.apply_updates(state.g_params, updates),
                            g_opt_state=g_opt_state, g_batch_stats=g_stats,
                            step=state.step + 1)
  return new_state, _pmean({"g_loss": g_loss}, axis_name)


def reused_fakes_step_fn(state: GANState, batch: Batch, *, loss: str = "nonsaturating",
                         axis_name: str | None = None, **d_options: Any) -> tuple[GANState, Metrics]:
  """One D update then one G update on the *same* fakes, G run once (``n_critic == 1``).

  This is the update of the reference DCGAN code (PyTorch's ``examples/dcgan``):
  ``fake = G(z)`` once in training mode; D is updated on the real batch and
  ``fake``; G is updated through the *updated* D on that same ``fake``, its
  gradient pulled back through the forward pass already done (``jax.vjp``).
  It saves one generator forward pass per step against :func:`d_step_fn`
  followed by :func:`g_step_fn` (which draws fresh noise for G), and G's
  BatchNorm statistics come from that one pass. The noise is the D stream's.
  """
  d_key = step_key(state, _D_STREAM)
  z = sample_latent(state, d_key, batch["image"].shape[0], axis_name)
  y = _fake_labels(state, d_key, batch["image"].shape[0], axis_name)
  fake, pull_back, g_stats = jax.vjp(
      lambda g_params: state.replace(g_params=g_params).generate(z, train=True, label=y),
      state.g_params, has_aux=True)
  state, d_metrics = d_step_fn(state, batch, loss=loss, axis_name=axis_name, fake=fake,
                               fake_label=y, **d_options)
  g_loss, fake_grad = jax.value_and_grad(
      lambda x: losses.generator_loss(loss, state.discriminate(x, label=_d_label(state, y))[0]))(fake)
  (grads,) = pull_back(fake_grad)
  state, g_metrics = _apply_g_update(state, grads, g_stats, g_loss, axis_name)
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
                  class_weight: float = 1.0, fake_class_weight: float = 1.0,
                  unsupervised_weight: float = 0.5, feature_matching: bool = True,
                  **d_options: Any) -> tuple[GANState, Metrics]:
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
  (``gp_weight``, ``gp_one_sided``, ``r1_weight``, ``clip``, ``began_gamma``,
  ``began_lambda_k``, ``label_smoothing``).

  Label-aware families (the discriminator's ``family``, :func:`family_of`):
  a conditional GAN runs this same step with labels (see :func:`d_step_fn`);
  ACGAN runs :func:`acgan_step_fn` (``class_weight``, ``fake_class_weight``) and the semi-supervised
  GAN :func:`sgan_step_fn` (``unsupervised_weight``, ``feature_matching``); both take
  ``label_smoothing`` too.
  """
  family = family_of(state)
  if family in FAMILY_STEPS:
    return _family_step(state, batch, family, loss=loss, axis_name=axis_name, n_critic=n_critic,
                        class_weight=class_weight, fake_class_weight=fake_class_weight,
                        unsupervised_weight=unsupervised_weight,
                        feature_matching=feature_matching, d_options=d_options)
  if n_critic == 1 and reuse_fakes:
    return reused_fakes_step_fn(state, batch, loss=loss, axis_name=axis_name, **d_options)
  if n_critic == 1:
    state, d_metrics = d_step_fn(state, batch, loss=loss, axis_name=axis_name, **d_options)
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
      return d_step_fn(state, b, loss=loss, axis_name=axis_name, critic_index=i, **d_options)

    state, d_metrics = lax.scan(critic_update, state, (jnp.arange(n_critic), batch),
                                unroll=scan_unroll(n_critic))
    d_metrics = jax.tree.map(lambda m: jnp.mean(m, axis=0), d_metrics)
    g_batch = jax.tree.map(lambda x: x[-1], batch)
  state, g_metrics = g_step_fn(state, g_batch, loss=loss, axis_name=axis_name)
  return state, {**d_metrics, **g_metrics}


# ----------------------------------------------------------------------------------------
# Label-aware families whose discriminator is not a single logit: ACGAN and the
# semi-supervised GAN. train_step_fn dispatches on the discriminator's ``family``
# (see jaxgan.models.conditional); the conditional GAN ("cgan") is the ordinary step
# with labels threaded through (d_step_fn / g_step_fn / reused_fakes_step_fn).

FAMILY_STEPS = ("acgan", "sgan")


def family_of(state: GANState) -> str:
  """``"gan"``, ``"cgan"``, ``"acgan"`` or ``"sgan"``: how the state's discriminator uses labels."""
  return getattr(state.discriminator, "family", "gan")


def acgan_step_fn(state: GANState, batch: Batch, *, loss: str = "nonsaturating",
                  axis_name: str | None = None, class_weight: float = 1.0,
                  fake_class_weight: float = 1.0,
                  label_smoothing: float = 0.0) -> tuple[GANState, Metrics]:
  """One ACGAN update (Odena et al., 2017): D then G on the same fakes ``G(z, c)``.

  ``c`` is drawn uniformly (:func:`sample_labels`), ``z`` and ``c`` from the D
  stream. D (source and class heads, ``D(x) -> (s, l)``) minimises
  :func:`jaxgan.losses.acgan_discriminator_loss` on ``batch["image"]`` /
  ``batch["label"]`` and the fakes; G then minimises
  :func:`jaxgan.losses.acgan_generator_loss` through the *updated* D on the
  same fakes, its gradient pulled back through the one forward pass (as
  :func:`reused_fakes_step_fn`). Metrics add ``d_class_acc_real`` /
  ``d_class_acc_fake`` (D's class head accuracy on the real batch and on the
  fakes w.r.t. the labels they were generated for) and the class losses.
  ``label_smoothing`` smooths the source term's real target (as :func:`d_step_fn`).
  """
  real, real_label = batch["image"], batch["label"]
  key = step_key(state, _D_STREAM)
  z = sample_latent(state, key, real.shape[0], axis_name)
  fake_label = sample_labels(state, key, real.shape[0], axis_name)
  fake, pull_back, g_stats = jax.vjp(
      lambda g_params: state.replace(g_params=g_params).generate(z, train=True, label=fake_label),
      state.g_params, has_aux=True)
  fake_d = lax.stop_gradient(fake)

  def d_loss_fn(d_params):
    (real_s, real_c), stats = state.discriminate(real, d_params=d_params)
    (fake_s, fake_c), stats = state.discriminate(fake_d, stats, d_params=d_params)
    d_loss = losses.acgan_discriminator_loss(loss, real_s, fake_s, real_c, fake_c, real_label,
                                             fake_label, class_weight, fake_class_weight,
                                             **_smoothing(label_smoothing))
    return d_loss, (stats, real_s, fake_s, real_c, fake_c)

  (d_loss, (stats, real_s, fake_s, real_c, fake_c)), grads = jax.value_and_grad(
      d_loss_fn, has_aux=True)(state.d_params)
  grads, stats = _pmean((grads, stats), axis_name)
  updates, d_opt_state = state.d_tx.update(grads, state.d_opt_state, state.d_params)
  state = state.replace(d_params=optax.apply_updates(state.d_params, updates),
                        d_opt_state=d_opt_state, d_batch_stats=stats)

  def g_loss_fn(x):
    (s, c), _ = state.discriminate(x)
    return losses.acgan_generator_loss(loss, s, c, fake_label, class_weight), c

  (g_loss, g_class_logits), fake_grad = jax.value_and_grad(g_loss_fn, has_aux=True)(fake)
  (grads,) = pull_back(fake_grad)
  state, g_metrics = _apply_g_update(state, grads, g_stats, g_loss, axis_name)
  real_acc, fake_acc = losses.discriminator_accuracy(real_s, fake_s)
  metrics = {
      "d_loss": d_loss, "d_real_acc": real_acc, "d_fake_acc": fake_acc,
      "d_class_acc_real": losses.class_accuracy(real_c, real_label),
      "d_class_acc_fake": losses.class_accuracy(fake_c, fake_label),
      "d_class_loss_real": losses.class_cross_entropy(real_c, real_label),
      "d_class_loss_fake": losses.class_cross_entropy(fake_c, fake_label),
      "g_class_loss": losses.class_cross_entropy(g_class_logits, fake_label),
  }
  return state, {**_pmean(metrics, axis_name), **g_metrics}


def _noise_rngs(state: GANState, axis_name: str | None):
  """``i -> {"noise": key}`` for D's stochastic layers; per device, the key is folded with its index."""
  key = step_key(state, _NOISE_STREAM)
  if axis_name is not None:
    key = jax.random.fold_in(key, lax.axis_index(axis_name))
  return lambda i: {"noise": jax.random.fold_in(key, i)}


def sgan_step_fn(state: GANState, batch: Batch, *, loss: str = "nonsaturating",
                 axis_name: str | None = None, unsupervised_weight: float = 0.5,
                 feature_matching: bool = True, label_smoothing: float = 0.0) -> tuple[GANState, Metrics]:
  """One semi-supervised GAN update (Salimans et al., 2016, sec. 5): D, then G with fresh noise.

  The batch holds unlabelled images ``image`` ``[B, ...]`` and a labelled
  minibatch ``labeled_image`` ``[Bl, ...]`` / ``labeled_label`` ``[Bl]``.
  D is a K-way classifier with the fake class implicit (``D(x) -> (logits,
  features)``, real-vs-fake logit ``log Z``, :func:`jaxgan.losses.sgan_log_z`);
  it minimises

  ``L_D = CE(labelled) + unsupervised_weight * L_unsup(log Z(unlabelled), log Z(G(z)))``

  with ``L_unsup`` the GAN objective ``loss`` on the ``log Z`` logits (for
  ``"nonsaturating"`` exactly :func:`jaxgan.losses.sgan_unsupervised_loss`;
  Salimans et al.'s code has the weight 1/2). ``unsupervised_weight = 0`` is
  the supervised-only baseline (D never sees a fake). ``label_smoothing`` = s
  sets the unlabelled real images' target to 1 - s (one-sided label
  smoothing, Salimans et al., 2016, sec. 3.4;
  :func:`jaxgan.losses.bce_discriminator_loss`; cross-entropy objectives only). G (fresh noise from the
  G stream) then minimises, through the updated D, the feature-matching loss
  (:func:`jaxgan.losses.feature_matching_loss`, D's last hidden layer on the
  unlabelled batch, or on ``matching_image`` when the batch holds one, vs the
  fakes) or, with ``feature_matching=False``, the objective's generator loss on ``log Z``. D's stochastic layers draw from
  the noise stream; with several devices each device folds in its index,
  and feature matching uses each device's batch statistics, so n devices
  are not bit-identical to one here.
  """
  unlabeled, labeled, label = batch["image"], batch["labeled_image"], batch["labeled_label"]
  rngs = _noise_rngs(state, axis_name)
  z = sample_latent(state, step_key(state, _D_STREAM), unlabeled.shape[0], axis_name)
  fake = lax.stop_gradient(state.generate(z, train=True)[0])

  def d_loss_fn(d_params):
    (lab_logits, _), stats = state.discriminate(labeled, d_params=d_params, rngs=rngs(0))
    (unl_logits, _), stats = state.discriminate(unlabeled, stats, d_params=d_params, rngs=rngs(1))
    (fake_logits, _), stats = state.discriminate(fake, stats, d_params=d_params, rngs=rngs(2))
    sup = losses.sgan_supervised_loss(lab_logits, label)
    unsup = losses.discriminator_loss(loss, losses.sgan_log_z(unl_logits), losses.sgan_log_z(fake_logits),
                                      **_smoothing(label_smoothing))
    return sup + unsupervised_weight * unsup, (stats, lab_logits, unl_logits, fake_logits, sup, unsup)

  (d_loss, (stats, lab_logits, unl_logits, fake_logits, sup, unsup)), grads = jax.value_and_grad(
      d_loss_fn, has_aux=True)(state.d_params)
  grads, stats = _pmean((grads, stats), axis_name)
  updates, d_opt_state = state.d_tx.update(grads, state.d_opt_state, state.d_params)
  state = state.replace(d_params=optax.apply_updates(state.d_params, updates),
                        d_opt_state=d_opt_state, d_batch_stats=stats)

  z_g = sample_latent(state, step_key(state, _G_STREAM), unlabeled.shape[0], axis_name)
  real_features = None
  if feature_matching:  # the real statistics: D's unlabelled batch, or an independent one if given
    matching = batch.get("matching_image", unlabeled)
    (_, real_features), _ = state.discriminate(matching, rngs=rngs(3))

  def g_loss_fn(g_params):
    fake, g_stats = state.replace(g_params=g_params).generate(z_g, train=True)
    (logits, features), _ = state.discriminate(fake, rngs=rngs(4))
    if feature_matching:
      return losses.feature_matching_loss(real_features, features), g_stats
    return losses.generator_loss(loss, losses.sgan_log_z(logits)), g_stats

  (g_loss, g_stats), grads = jax.value_and_grad(g_loss_fn, has_aux=True)(state.g_params)
  state, g_metrics = _apply_g_update(state, grads, g_stats, g_loss, axis_name)
  real_z, fake_z = losses.sgan_log_z(unl_logits), losses.sgan_log_z(fake_logits)
  real_acc, fake_acc = losses.discriminator_accuracy(real_z, fake_z)
  metrics = {
      "d_loss": d_loss, "d_sup_loss": sup, "d_unsup_loss": unsup,
      "d_labeled_acc": losses.class_accuracy(lab_logits, label),
      "d_real_acc": real_acc, "d_fake_acc": fake_acc,
      "d_real_prob": jnp.mean(jax.nn.sigmoid(real_z)), "d_fake_prob": jnp.mean(jax.nn.sigmoid(fake_z)),
  }
  return state, {**_pmean(metrics, axis_name), **g_metrics}


def _family_step(state: GANState, batch: Batch, family: str, *, loss: str, axis_name, n_critic: int,
                 class_weight: float, fake_class_weight: float, unsupervised_weight: float,
                 feature_matching: bool, d_options: dict[str, Any]) -> tuple[GANState, Metrics]:
  if n_critic != 1:
    raise ValueError(f"the {family} step makes one D and one G update; set n_critic=1")
  unsupported = [k for k in ("gp_weight", "r1_weight", "clip") if d_options.get(k)]
  if unsupported:
    raise ValueError(f"{unsupported[0]} is not supported by the {family} step; set it to 0")
  label_smoothing = d_options.get("label_smoothing", 0.0)
  if family == "acgan":
    return acgan_step_fn(state, batch, loss=loss, axis_name=axis_name, class_weight=class_weight,
                         fake_class_weight=fake_class_weight, label_smoothing=label_smoothing)
  return sgan_step_fn(state, batch, loss=loss, axis_name=axis_name,
                      unsupervised_weight=unsupervised_weight, feature_matching=feature_matching,
                      label_smoothing=label_smoothing)


def _smoothing(label_smoothing: float) -> dict[str, float]:
  """The cross-entropy loss's keyword for ``label_smoothing`` (none when 0: every loss takes that)."""
  return {"label_smoothing": label_smoothing} if label_smoothing else {}


def _d_options(gp_weight: float, gp_one_sided: bool, r1_weight: float,
               clip: float | None, began_gamma: float, began_lambda_k: float,
               label_smoothing: float) -> dict[str, Any]:
  for name, value in (("gp_weight", gp_weight), ("r1_weight", r1_weight)):
    if not value >= 0:
      raise ValueError(f"{name} must be >= 0, got {value!r}")
  if clip is not None and not clip > 0:
    raise ValueError(f"clip must be positive (or None for no clipping), got {clip!r}")
  if not 0 <= began_gamma <= 1 or not began_lambda_k >= 0:
    raise ValueError(f"began_gamma must be in [0, 1] and began_lambda_k >= 0, got "
                     f"{began_gamma!r}, {began_lambda_k!r}")
  if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, (int, float)) \
      or not 0 <= label_smoothing < 0.5:
    raise ValueError(f"label_smoothing must be in [0, 0.5) (0 = none), got {label_smoothing!r}")
  return {"gp_weight": float(gp_weight), "gp_one_sided": bool(gp_one_sided),
          "r1_weight": float(r1_weight), "clip": None if clip is None else float(clip),
          "began_gamma": float(began_gamma), "began_lambda_k": float(began_lambda_k),
          "label_smoothing": float(label_smoothing)}


def _make(fn, loss: str, axis_name: str | None, jit: bool, donate: bool, **options) -> Step:
  if loss not in losses.LOSSES:
    raise ValueError(f"unknown GAN loss {loss!r}; choose one of {sorted(losses.LOSSES)}")
  if options.get("label_smoothing") and loss not in losses.CROSS_ENTROPY_LOSSES:
    raise ValueError(f"label_smoothing needs a cross-entropy objective "
                     f"{losses.CROSS_ENTROPY_LOSSES}, not {loss!r}")
  step = functools.partial(fn, loss=loss, axis_name=axis_name, **options)
  functools.update_wrapper(step, fn)
  if not jit:
    return step
  return jax.jit(step, donate_argnums=(0,) if donate else ())


def make_d_step(loss: str = "nonsaturating", *, axis_name: str | None = None,
                jit: bool = True, donate: bool = False, gp_weight: float = 0.0,
                gp_one_sided: bool = False, r1_weight: float = 0.0,
                clip: float | None = None, began_gamma: float = 0.5,
                began_lambda_k: float = 0.001, label_smoothing: float = 0.0) -> Step:
  """Jitted discriminator step ``(state, batch) -> (state, metrics)``.

  ``gp_weight``, ``gp_one_sided``, ``r1_weight`` (R1's gamma), ``clip``, the
  BEGAN controls and ``label_smoothing`` are described in :func:`d_step_fn`.
  """
  return _make(d_step_fn, loss, axis_name, jit, donate,
               **_d_options(gp_weight, gp_one_sided, r1_weight, clip, began_gamma, began_lambda_k,
                            label_smoothing))


def make_g_step(loss: str = "nonsaturating", *, axis_name: str | None = None,
                jit: bool = True, donate: bool = False) -> Step:
  """Jitted generator step ``(state, batch) -> (state, metrics)``."""
  return _make(g_step_fn, loss, axis_name, jit, donate)


def make_train_step(loss: str = "nonsaturating", *, axis_name: str | None = None,
                    jit: bool = True, donate: bool = False, n_critic: int = 1,
                    reuse_fakes: bool = True, gp_weight: float = 0.0,
                    gp_one_sided: bool = False, r1_weight: float = 0.0,
                    clip: float | None = None, began_gamma: float = 0.5,
                    began_lambda_k: float = 0.001, class_weight: float = 1.0,
                    fake_class_weight: float = 1.0, unsupervised_weight: float = 0.5,
                    feature_matching: bool = True, label_smoothing: float = 0.0) -> Step:
  """Jitted fused step: ``n_critic`` D updates then one G update.

  ``donate=True`` lets XLA reuse the input state's buffers (the caller must
  not use the old state afterwards), as the trainer does. ``reuse_fakes``
  (``n_critic == 1``): G's update reuses D's fakes, one G forward pass per
  step (see :func:`train_step_fn`). With
  ``n_critic > 1`` the batch stacks ``n_critic`` batches on a leading axis
  (see :func:`train_step_fn`). The D options are :func:`d_step_fn`'s, e.g.
  WGAN: ``make_train_step("wasserstein", n_critic=5, clip=0.01)``; WGAN-GP:
  ``make_train_step("wasserstein", n_critic=5, gp_weight=10.0)``.
  The family is read from the state's discriminator (:func:`family_of`);
  ``class_weight`` and ``fake_class_weight`` (ACGAN), ``unsupervised_weight`` and
  ``feature_matching`` (semi-supervised GAN) are described in :func:`acgan_step_fn` and
  :func:`sgan_step_fn`; ``label_smoothing`` (one-sided, cross-entropy objectives) smooths D's real
  target in every family: ``make_train_step(label_smoothing=0.1)``.
  """
  if isinstance(n_critic, bool) or not isinstance(n_critic, int) or n_critic < 1:
    raise ValueError(f"n_critic must be a positive integer, got {n_critic!r}")
  for name, value in (("class_weight", class_weight), ("fake_class_weight", fake_class_weight),
                      ("unsupervised_weight", unsupervised_weight)):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
      raise ValueError(f"{name} must be a number >= 0, got {value!r}")
  return _make(train_step_fn, loss, axis_name, jit, donate, n_critic=n_critic,
               reuse_fakes=bool(reuse_fakes), class_weight=float(class_weight),
               fake_class_weight=float(fake_class_weight),
               unsupervised_weight=float(unsupervised_weight),
               feature_matching=bool(feature_matching),
               **_d_options(gp_weight, gp_one_sided, r1_weight, clip, began_gamma, began_lambda_k,
                            label_smoothing))


@jax.jit
def generate(state: GANState, z: jax.Array, label: jax.Array | None = None) -> jax.Array:
  """Samples G(z) (G(z, y) for a conditional G and int ``label``) in inference mode (BatchNorm running averages)."""
  return state.generate(z, train=False, label=label)[0]
