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
from jaxgan.state import GANState

Batch = dict[str, jax.Array]
Metrics = dict[str, jax.Array]
Step = Callable[[GANState, Batch], tuple[GANState, Metrics]]

_D_STREAM, _G_STREAM = 0, 1


def step_key(state: GANState, stream: int) -> jax.Array:
  """Randomness of one step: a pure function of the run key, the step and the stream."""
  return jax.random.fold_in(jax.random.fold_in(state.key, state.step), stream)


def sample_latent(state: GANState, key: jax.Array, batch_size: int) -> jax.Array:
  return jax.random.normal(key, (batch_size, state.latent_dim), jnp.float32)


def _pmean(tree, axis_name):
  return tree if axis_name is None else lax.pmean(tree, axis_name)


def d_step_fn(state: GANState, batch: Batch, *, loss: str = "nonsaturating",
              axis_name: str | None = None) -> tuple[GANState, Metrics]:
  """One discriminator update on a real batch and as many fresh fakes.

  The generator runs in training mode (batch statistics, as in the reference
  DCGAN code) but its parameters and running statistics are left unchanged.
  Real and fake batches go through D separately, so each BatchNorm layer sees
  one kind at a time.
  """
  real = batch["image"]
  z = sample_latent(state, step_key(state, _D_STREAM), real.shape[0])
  fake, _ = state.generate(z, train=True)
  fake = lax.stop_gradient(fake)

  def loss_fn(d_params):
    real_logits, stats = state.discriminate(real, d_params=d_params)
    fake_logits, stats = state.discriminate(fake, stats, d_params=d_params)
    return losses.discriminator_loss(loss, real_logits, fake_logits), (stats, real_logits, fake_logits)

  (d_loss, (stats, real_logits, fake_logits)), grads = jax.value_and_grad(
      loss_fn, has_aux=True)(state.d_params)
  grads, stats = _pmean((grads, stats), axis_name)
  updates, d_opt_state = state.d_tx.update(grads, state.d_opt_state, state.d_params)
  real_acc, fake_acc = losses.discriminator_accuracy(real_logits, fake_logits)
  metrics = {
      "d_loss": d_loss,
      "d_real_acc": real_acc,
      "d_fake_acc": fake_acc,
      "d_real_prob": jnp.mean(jax.nn.sigmoid(real_logits)),
      "d_fake_prob": jnp.mean(jax.nn.sigmoid(fake_logits)),
  }
  new_state = state.replace(d_params=optax.apply_updates(state.d_params, updates),
                            d_opt_state=d_opt_state, d_batch_stats=stats)
  return new_state, _pmean(metrics, axis_name)


def g_step_fn(state: GANState, batch: Batch, *, loss: str = "nonsaturating",
              axis_name: str | None = None) -> tuple[GANState, Metrics]:
  """One generator update through the current discriminator; increments ``step``.

  D runs in training mode (batch statistics of the fake batch, as the
  reference code does) but its parameters and running statistics are left
  unchanged. The batch only sets the batch size.
  """
  z = sample_latent(state, step_key(state, _G_STREAM), batch["image"].shape[0])

  def loss_fn(g_params):
    fake, g_stats = state.replace(g_params=g_params).generate(z, train=True)
    fake_logits, _ = state.discriminate(fake)
    return losses.generator_loss(loss, fake_logits), g_stats

  (g_loss, g_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.g_params)
  grads, g_stats = _pmean((grads, g_stats), axis_name)
  updates, g_opt_state = state.g_tx.update(grads, state.g_opt_state, state.g_params)
  new_state = state.replace(g_params=optax.apply_updates(state.g_params, updates),
                            g_opt_state=g_opt_state, g_batch_stats=g_stats,
                            step=state.step + 1)
  return new_state, _pmean({"g_loss": g_loss}, axis_name)


def train_step_fn(state: GANState, batch: Batch, **kwargs: Any) -> tuple[GANState, Metrics]:
  """One D update then one G update (against the updated D)."""
  state, d_metrics = d_step_fn(state, batch, **kwargs)
  state, g_metrics = g_step_fn(state, batch, **kwargs)
  return state, {**d_metrics, **g_metrics}


def _make(fn, loss: str, axis_name: str | None, jit: bool, donate: bool) -> Step:
  if loss not in losses.LOSSES:
    raise ValueError(f"unknown GAN loss {loss!r}; choose one of {sorted(losses.LOSSES)}")
  step = functools.partial(fn, loss=loss, axis_name=axis_name)
  functools.update_wrapper(step, fn)
  if not jit:
    return step
  return jax.jit(step, donate_argnums=(0,) if donate else ())


def make_d_step(loss: str = "nonsaturating", *, axis_name: str | None = None,
                jit: bool = True, donate: bool = False) -> Step:
  """Jitted discriminator step ``(state, batch) -> (state, metrics)``."""
  return _make(d_step_fn, loss, axis_name, jit, donate)


def make_g_step(loss: str = "nonsaturating", *, axis_name: str | None = None,
                jit: bool = True, donate: bool = False) -> Step:
  """Jitted generator step ``(state, batch) -> (state, metrics)``."""
  return _make(g_step_fn, loss, axis_name, jit, donate)


def make_train_step(loss: str = "nonsaturating", *, axis_name: str | None = None,
                    jit: bool = True, donate: bool = False) -> Step:
  """Jitted fused D+G step ``(state, batch) -> (state, metrics)``.

  ``donate=True`` lets XLA reuse the input state's buffers (the caller must
  not use the old state afterwards), as the trainer does.
  """
  return _make(train_step_fn, loss, axis_name, jit, donate)


@jax.jit
def generate(state: GANState, z: jax.Array) -> jax.Array:
  """Samples G(z) in inference mode (BatchNorm running averages)."""
  return state.generate(z, train=False)[0]
