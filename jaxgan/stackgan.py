"""StackGAN's training state and step (Zhang et al., 2017): text to a small image, then refined.

One run trains both stages, as the paper's schedule: the first iterations train Stage I (``G_0``,
``D_0``; :func:`make_stackgan_step` ``(stage=1)``) on the real images reduced to Stage I's size;
the iterations after them train Stage II (``G``, ``D``; ``stage=2``) at the full size, with Stage I
frozen (its generator runs in
inference mode and gets no gradient). The state holds both stages, so a checkpoint taken in either
resumes exactly. A batch is ``{"image": [B, S, S, C] in [-1, 1], "embedding": [B, E]}``: the
images at Stage II's size ``S`` and the sentence embeddings of one of their captions.

Each iteration (one stage, as the reference trainer):

- ``z ~ N(0, I)``; ``(fake, mu, log sigma^2) = G(z, text)``, ``c = mu + sigma * eps`` inside G
  (``z`` and ``eps`` drawn for the global batch, each device keeping its rows, so ``n`` devices
  train as one device does); Stage II's ``eps`` a draw of its own (the paper) or, with
  ``stage2_noise="stage1"``, the one that made its Stage-I image;
- D update on the binary cross-entropies of the *matching-aware* discriminator, conditioned on
  the text embedding (a critic with ``text_dim``, the paper's) or on ``mu`` (no gradient to G;
  the released PyTorch code): real image with its text -> 1, real image with mismatched text
  (the global batch's texts rolled by one) -> 0, fake -> 0. Stage I:
  ``L_D = L_real + (L_wrong + L_fake) / 2``; Stage II, whose D also has an unconditional head:
  ``L_D = (L_real + L_real^u) / 2 + (L_fake + L_wrong + L_fake^u) / 3``;
- G update on the same fakes through the updated D: ``L_G = BCE(D(fake, condition), 1)`` (+ the
  unconditional head's, Stage II) ``+ kl_weight * KL(N(mu, sigma^2) || N(0, I))``, with
  ``KL = 0.5 * mean(mu^2 + sigma^2 - 1 - log sigma^2)`` and ``kl_weight = 2`` (the reference's
  ``TRAIN.COEFF.KL``);
- with ``mode_seeking > 0`` (Stage I), the mode-seeking term of Mao et al. (2019, MSGAN, whose
  text-to-image runs used StackGAN++): Stage I also draws ``G_0(z', text)`` with the same
  caption and conditioning noise and adds ``mode_seeking / (d_img / d_z + 1e-5)``, ``d_img`` the
  mean absolute difference of the two images and ``d_z`` of the two latents (over the global
  batch), so that ``z`` keeps mattering once the caption decides the image.

Optimisers: Adam(2e-4, b1 0.5, b2 0.999) for each network, the rate halved every
``lr_decay_steps`` updates of that network (the reference halves it every ``LR_DECAY_EPOCH``
epochs); Stage II's optimisers start when it does.
"""

from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct
from jax import lax

from jaxgan.generation import normal_draw
from jaxgan.state import run_once
from jaxgan.steps import gather_batch, local_block, local_draw, pmean

PyTree = Any
STAGES = ("stage1", "stage2")
# Stage II's conditioning-augmentation noise: a draw of its own (the paper) or the draw that made
# its Stage-I image (as StackGAN++, whose stages share one conditioning code).
STAGE2_NOISE = ("own", "stage1")
# Random streams of one step: fold_in(fold_in(key, step), stream).
_Z, _CA1, _CA2, _Z2 = 0, 1, 2, 3
MODE_SEEKING_EPS = 1e-5                 # MSGAN's


@struct.dataclass
class StackGANState:
  """Both stages' parameters, BatchNorm statistics and optimiser states (dicts keyed by
  :data:`STAGES`), the step (iterations of either stage) and the run key."""
  step: jax.Array
  key: jax.Array
  g_params: PyTree
  d_params: PyTree
  g_batch_stats: PyTree
  d_batch_stats: PyTree
  g_opt_state: PyTree
  d_opt_state: PyTree
  generator: nn.Module = struct.field(pytree_node=False)       # Stage I's G_0
  discriminator: nn.Module = struct.field(pytree_node=False)   # Stage I's D_0
  generator2: nn.Module = struct.field(pytree_node=False)      # Stage II's G
  discriminator2: nn.Module = struct.field(pytree_node=False)  # Stage II's D
  g_tx: optax.GradientTransformation = struct.field(pytree_node=False)
  d_tx: optax.GradientTransformation = struct.field(pytree_node=False)
  stage2_noise: str = struct.field(pytree_node=False, default="own")   # one of STAGE2_NOISE

  @property
  def latent_dim(self) -> int:
    return int(self.generator.latent_dim)

  @property
  def noise_streams(self) -> tuple[int, int]:
    """The random streams of Stage I's and Stage II's conditioning noise (one stream twice when
    Stage II reuses Stage I's draw)."""
    return (_CA1, _CA1 if self.stage2_noise == "stage1" else _CA2)

  @property
  def stage1_size(self) -> int:
    return int(self.generator.size)

  @property
  def stage2_size(self) -> int:
    return int(self.generator2.size)

  def generate(self, z: jax.Array, embedding: jax.Array, key: jax.Array,
               stage2: bool = True, sample_condition: bool = True,
               truncation: float | None = None) -> tuple[jax.Array, jax.Array | None]:
    """``(Stage-I images, Stage-II images)`` for latents ``z`` and text embeddings (inference
    mode; ``key`` draws the conditioning-augmentation noise, ``sample_condition=False`` uses
    ``c = mu``, ``truncation`` = psi draws it from the normal truncated to ``[-psi, psi]``);
    Stage II is None with ``stage2=False``."""
    shape = (z.shape[0], int(self.generator.condition_dim))
    eps1, eps2 = (normal_draw(jax.random.fold_in(key, stream), shape, truncation)
                  for stream in self.noise_streams)
    img1 = _stage1(self, self.g_params["stage1"], z, embedding, eps1, train=False,
                   sample_condition=sample_condition)[0][0]
    if not stage2:
      return img1, None
    img2 = _stage2(self, self.g_params["stage2"], img1, embedding, eps2, train=False,
                   sample_condition=sample_condition)[0][0]
    return img1, img2


def _apply_g(module, variables, x, embedding, eps, train: bool, sample_condition: bool = True):
  """``((image, mu, log sigma^2), batch_stats)`` of a stage's generator with the
  conditioning-augmentation noise ``eps``; in training mode the statistics are the updated ones."""
  if train:
    out, mutated = module.apply(variables, x, embedding, train=True, eps=eps,
                                mutable=["batch_stats"])
    return out, mutated["batch_stats"]
  return module.apply(variables, x, embedding, train=False, eps=eps,
                      sample_condition=sample_condition), variables["batch_stats"]


def _stage1(state, params, z, embedding, eps, train: bool, sample_condition=True):
  """``G_0(z, text)`` of ``params`` with Stage I's statistics."""
  return _apply_g(state.generator, {"params": params, "batch_stats": state.g_batch_stats["stage1"]},
                  z, embedding, eps, train, sample_condition)


def _stage2(state, params, image1, embedding, eps, train: bool, sample_condition=True):
  """``G(stage-I image, text)`` of ``params`` with Stage II's statistics."""
  return _apply_g(state.generator2, {"params": params, "batch_stats": state.g_batch_stats["stage2"]},
                  image1, embedding, eps, train, sample_condition)


def stackgan_optimizer(learning_rate: float = 2e-4, lr_decay_steps: int = 0, b1: float = 0.5,
                       b2: float = 0.999) -> optax.GradientTransformation:
  """Adam with the rate halved every ``lr_decay_steps`` updates (0: constant)."""
  rate = learning_rate if lr_decay_steps <= 0 else optax.exponential_decay(
      learning_rate, lr_decay_steps, 0.5, staircase=True)
  return optax.adam(rate, b1=b1, b2=b2)


def create_stackgan_state(generator: nn.Module, discriminator: nn.Module, generator2: nn.Module,
                          discriminator2: nn.Module, g_tx: optax.GradientTransformation,
                          d_tx: optax.GradientTransformation, key: jax.Array,
                          embedding_dim: int, stage2_noise: str = "own") -> StackGANState:
  """Initialises both stages (independent keys from ``key``) and their optimisers;
  ``stage2_noise`` (one of :data:`STAGE2_NOISE`): whether Stage II's conditioning augmentation
  draws noise of its own (the paper) or reuses the draw that made its Stage-I image."""
  if stage2_noise not in STAGE2_NOISE:
    raise ValueError(f"stage2_noise={stage2_noise!r}: one of {STAGE2_NOISE}")
  key = jnp.asarray(key)
  if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
    key = jax.random.key_data(key)
  s1, s2, ch = int(generator.size), int(generator2.size), int(generator.channels)

  def init(key):
    kg1, kd1, kg2, kd2, kc = jax.random.split(jax.random.fold_in(key, 0x57AC), 5)
    rngs = lambda k: {"params": k, "condition": kc}
    z = jnp.zeros((2, int(generator.latent_dim)))
    e = jnp.zeros((2, embedding_dim))
    c = jnp.zeros((2, int(generator.condition_dim)))
    e1 = e if discriminator.text_dim else c
    e2 = e if discriminator2.text_dim else c
    x1, x2 = jnp.zeros((2, s1, s1, ch)), jnp.zeros((2, s2, s2, ch))
    v = {"g1": generator.init(rngs(kg1), z, e, train=False),
         "d1": discriminator.init(kd1, x1, e1, e1, train=False),
         "g2": generator2.init(rngs(kg2), x1, e, train=False),
         "d2": discriminator2.init(kd2, x2, e2, e2, train=False)}
    g = {"stage1": v["g1"]["params"], "stage2": v["g2"]["params"]}
    d = {"stage1": v["d1"]["params"], "stage2": v["d2"]["params"]}
    stats = lambda name: v[name].get("batch_stats", {})
    return (g, d, {"stage1": stats("g1"), "stage2": stats("g2")},
            {"stage1": stats("d1"), "stage2": stats("d2")},
            {k: g_tx.init(p) for k, p in g.items()}, {k: d_tx.init(p) for k, p in d.items()})

  g, d, gs, ds, gopt, dopt = run_once(init, key)
  return StackGANState(step=jnp.zeros((), jnp.int32), key=key, g_params=g, d_params=d,
                       g_batch_stats=gs, d_batch_stats=ds, g_opt_state=gopt, d_opt_state=dopt,
                       generator=generator, discriminator=discriminator, generator2=generator2,
                       discriminator2=discriminator2, g_tx=g_tx, d_tx=d_tx,
                       stage2_noise=stage2_noise)


def kl_divergence(mu: jax.Array, logvar: jax.Array) -> jax.Array:
  r"""``KL(N(mu, sigma^2) || N(0, I))`` averaged over the elements (the reference's ``KL_loss``):
  ``0.5 * mean(mu^2 + sigma^2 - 1 - log sigma^2)``."""
  return 0.5 * jnp.mean(jnp.square(mu) + jnp.exp(logvar) - 1.0 - logvar)


def _inverse_ratio(d_img: jax.Array, d_z: jax.Array, axis_name: str | None) -> jax.Array:
  """``1 / (D_img / D_z + eps)`` of the global batch's means ``D`` (this device's means
  ``d_img``, ``d_z`` over equal shares), written so that the devices' gradients, averaged, are
  the global term's: its value, plus ``f'(R) * d_img / D_z`` less that same number held
  constant (``R`` the global ratio, ``f(r) = 1 / (r + eps)``)."""
  big_img, big_z = pmean(d_img, axis_name), pmean(d_z, axis_name)
  ratio = lax.stop_gradient(big_img / big_z)
  slope = -1.0 / jnp.square(ratio + MODE_SEEKING_EPS)
  local = slope * d_img / lax.stop_gradient(big_z)
  return lax.stop_gradient(1.0 / (ratio + MODE_SEEKING_EPS)) + local - lax.stop_gradient(local)


def _bce(logits: jax.Array, target: float) -> jax.Array:
  return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, jnp.full_like(logits, target)))


def downsample(images: jax.Array, size: int) -> jax.Array:
  """``images`` reduced to ``size`` square by averaging ``k x k`` blocks (``k`` = the ratio)."""
  n, h, w, c = images.shape
  k = h // size
  if k == 1:
    return images
  return images.reshape(n, size, k, size, k, c).mean(axis=(2, 4))


def _stage_step(state: StackGANState, batch: dict, stage: str, kl_weight: float,
                mode_seeking: float, axis_name: str | None):
  """One iteration of ``stage``: the D update, then the G update on the same fakes."""
  two = stage == "stage2"
  d_module = state.discriminator2 if two else state.discriminator
  key = jax.random.fold_in(state.key, state.step)
  embedding = batch["embedding"].astype(jnp.float32)
  real = batch["image"] if two else downsample(batch["image"], state.stage1_size)
  # This device's rows of the global batch's draws (n devices compute what one device does).
  b, normal = real.shape[0], lambda k, shape: jax.random.normal(k, shape)
  z = local_draw(normal, jax.random.fold_in(key, _Z), (b, state.latent_dim), axis_name)
  eps1, eps2 = (local_draw(normal, jax.random.fold_in(key, stream),
                           (b, int(state.generator.condition_dim)), axis_name)
                for stream in state.noise_streams)
  if two:
    image1 = lax.stop_gradient(_stage1(state, state.g_params["stage1"], z, embedding, eps1,
                                       train=False)[0][0])
    forward = lambda p: _stage2(state, p, image1, embedding, eps2, train=True)
  elif mode_seeking:
    # One pass over both latents with the same captions and noise (BatchNorm sees them together).
    z2 = local_draw(normal, jax.random.fold_in(key, _Z2), (b, state.latent_dim), axis_name)
    twice = lambda x: jnp.concatenate([x, x])
    forward = lambda p: _stage1(state, p, jnp.concatenate([z, z2]), twice(embedding), twice(eps1),
                                train=True)
  else:
    forward = lambda p: _stage1(state, p, z, embedding, eps1, train=True)
  (fake_all, mu, logvar), g_vjp, g_stats = jax.vjp(forward, state.g_params[stage], has_aux=True)
  fake, mu_b = fake_all[:b], mu[:b]
  cond = embedding if d_module.text_dim else lax.stop_gradient(mu_b)
  # Each real image with the next example's text, the next across the global batch.
  wrong_cond = local_block(jnp.roll(gather_batch(cond, axis_name), 1, axis=0), b, axis_name)

  def discriminate(d_params, stats, x, c, c_wrong=None):
    out, mutated = d_module.apply({"params": d_params, "batch_stats": stats}, x, c, c_wrong,
                                  train=True, mutable=["batch_stats"])
    return out, mutated["batch_stats"]

  def d_loss_fn(d_params):
    out_real, stats = discriminate(d_params, state.d_batch_stats[stage], real, cond, wrong_cond)
    out_fake, stats = discriminate(d_params, stats, lax.stop_gradient(fake), cond)
    terms = {"d_real": _bce(out_real["cond"], 1.0), "d_wrong": _bce(out_real["wrong"], 0.0),
             "d_fake": _bce(out_fake["cond"], 0.0), "d_real_uncond": jnp.float32(0.0),
             "d_fake_uncond": jnp.float32(0.0)}
    if out_real["uncond"] is not None:
      terms["d_real_uncond"] = _bce(out_real["uncond"], 1.0)
      terms["d_fake_uncond"] = _bce(out_fake["uncond"], 0.0)
      loss = ((terms["d_real"] + terms["d_real_uncond"]) / 2
              + (terms["d_fake"] + terms["d_wrong"] + terms["d_fake_uncond"]) / 3)
    else:
      loss = terms["d_real"] + (terms["d_wrong"] + terms["d_fake"]) / 2
    return loss, (stats, terms)

  (d_loss, (d_stats, terms)), d_grads = jax.value_and_grad(
      d_loss_fn, has_aux=True)(state.d_params[stage])
  d_grads, d_stats = pmean(d_grads, axis_name), pmean(d_stats, axis_name)
  d_updates, d_opt = state.d_tx.update(d_grads, state.d_opt_state[stage], state.d_params[stage])
  d_params = optax.apply_updates(state.d_params[stage], d_updates)

  def g_loss_fn(fake_all, mu, logvar):
    out, _ = discriminate(d_params, d_stats, fake_all[:b], cond)
    adversarial = _bce(out["cond"], 1.0)
    if out["uncond"] is not None:
      adversarial = adversarial + _bce(out["uncond"], 1.0)
    kl = kl_divergence(mu, logvar)
    loss = adversarial + kl_weight * kl
    if mode_seeking:
      loss = loss + mode_seeking * _inverse_ratio(jnp.mean(jnp.abs(fake_all[:b] - fake_all[b:])),
                                                  jnp.mean(jnp.abs(z - z2)), axis_name)
    return loss, kl

  (g_loss, kl), cotangents = jax.value_and_grad(g_loss_fn, argnums=(0, 1, 2), has_aux=True)(
      fake_all, mu, logvar)
  (g_grads,) = g_vjp(cotangents)
  g_grads, g_stats = pmean(g_grads, axis_name), pmean(g_stats, axis_name)
  g_updates, g_opt = state.g_tx.update(g_grads, state.g_opt_state[stage], state.g_params[stage])
  g_params = optax.apply_updates(state.g_params[stage], g_updates)

  put = lambda tree, value: {**tree, stage: value}
  new = state.replace(step=state.step + 1,
                      g_params=put(state.g_params, g_params), d_params=put(state.d_params, d_params),
                      g_batch_stats=put(state.g_batch_stats, g_stats),
                      d_batch_stats=put(state.d_batch_stats, d_stats),
                      g_opt_state=put(state.g_opt_state, g_opt),
                      d_opt_state=put(state.d_opt_state, d_opt))
  metrics = {"d_loss": d_loss, "g_loss": g_loss, "kl": kl, **terms,
             "stage": jnp.float32(2.0 if two else 1.0)}
  return new, pmean(metrics, axis_name)


def stackgan_step_fn(state: StackGANState, batch: dict, *, stage: int, kl_weight: float = 2.0,
                     mode_seeking: float = 0.0, axis_name: str | None = None):
  """One StackGAN iteration of ``stage`` (1 or 2; Stage I's parameters are only read by 2).

  The two stages are two compiled steps, not one step with a ``lax.cond`` on the step count:
  XLA:CPU ran convolutions inside a conditional about 50x slower (12.8 s against 0.25 s per
  Stage-I step of ``configs/stackgan_mnist.py`` on a 2-core CPU). The trainer switches steps at
  the stage boundary (:meth:`jaxgan.families.Family.phases`).
  """
  if stage not in (1, 2):
    raise ValueError(f"StackGAN has stages 1 and 2, not {stage!r}")
  return _stage_step(state, batch, STAGES[stage - 1], kl_weight,
                     mode_seeking if stage == 1 else 0.0, axis_name)


def make_stackgan_step(*, stage: int, kl_weight: float = 2.0, mode_seeking: float = 0.0,
                       jit: bool = True) -> Callable:
  """``step(state, batch, *, axis_name=None) -> (state, metrics)`` of ``stage`` (jitted unless
  ``jit=False``)."""

  def step(state, batch, *, axis_name=None):
    return stackgan_step_fn(state, batch, stage=stage, kl_weight=kl_weight,
                            mode_seeking=mode_seeking, axis_name=axis_name)

  return jax.jit(step, static_argnames=("axis_name",)) if jit else step
