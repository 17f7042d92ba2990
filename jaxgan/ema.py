"""Polyak (exponential moving) averages of parameters, carried in the optimizer state.

:func:`param_ema` is an optax transformation that leaves the updates alone and
keeps ``ema <- decay * ema + (1 - decay) * (params + updates)``: put last in an
``optax.chain``, it tracks the parameters *after* every update. The average
lives in the optimizer state, so it is checkpointed, resumed and replicated
with it, and the train steps need not know about it. :func:`ema_params` reads
the debiased average (``ema / (1 - decay^t)`` from a zero start: the weighted
mean of the iterates so far, as Adam debiases its moments).

Salimans et al. (2016) evaluate their semi-supervised classifier with such an
average of the discriminator's parameters (rate 1e-4 per step, no debiasing).

:func:`generator_ema` is the same average for the generator, from a start step on (Karras et
al., 2018 and BigGAN sample and evaluate such an average of G): before ``start`` updates it is
the current parameters, then the debiased mean of the iterates since. :func:`averaged`
swaps it into a state for sampling and evaluation.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax


class ParamEmaState(NamedTuple):
  count: jax.Array
  ema: Any
  decay: jax.Array


def param_ema(decay: float) -> optax.GradientTransformation:
  """Tracks the debiasable average of the parameters after each update (``0 < decay < 1``)."""
  if not 0.0 < decay < 1.0:
    raise ValueError(f"the parameter average's decay must be in (0, 1), got {decay!r}")

  def init(params):
    return ParamEmaState(count=jnp.zeros((), jnp.int32),
                         ema=jax.tree.map(lambda p: jnp.zeros_like(p, jnp.float32), params),
                         decay=jnp.asarray(decay, jnp.float32))

  def update(updates, state, params=None):
    if params is None:
      raise ValueError("param_ema needs the parameters: call tx.update(grads, state, params)")
    new = optax.apply_updates(params, updates)
    ema = jax.tree.map(lambda a, p: decay * a + (1.0 - decay) * p.astype(jnp.float32), state.ema, new)
    return updates, ParamEmaState(count=state.count + 1, ema=ema, decay=state.decay)

  return optax.GradientTransformation(init, update)


class StartedEmaState(NamedTuple):
  """:func:`generator_ema`'s state: ``count`` updates seen, averaging from update ``start`` on."""
  count: jax.Array
  ema: Any
  decay: jax.Array
  start: jax.Array


WARMUP = 9.0   # the n-th averaged update decays by min(decay, n / (n + WARMUP))


def generator_ema(decay: float, start: int = 0) -> optax.GradientTransformation:
  r"""An exponential moving average of the parameters from update ``start`` on, with a warm-up
  (``0 < decay < 1``): the ``n``-th averaged update (``n = 0, 1, ...``) is

  .. math:: \bar\theta \leftarrow d_n \bar\theta + (1 - d_n)\, \theta, \qquad
            d_n = \min\!\big(\text{decay},\; n / (n + 9)\big)

  (TensorFlow's ``ExponentialMovingAverage`` with ``num_updates``): the first copies the
  parameters, and the average spans about the last ``n / 9`` updates until that reaches
  ``1 / (1 - decay)`` (after ``9 decay / (1 - decay)`` updates: 8,991 for 0.999). Without the
  warm-up a 0.999 average of a run a few thousand steps old still holds its first, poor
  generators (measured in ``docs/toolkit.md``)."""
  if not 0.0 < decay < 1.0:
    raise ValueError(f"the generator average's decay must be in (0, 1), got {decay!r}")
  if start < 0:
    raise ValueError(f"the generator average's start must be >= 0, got {start!r}")

  def init(params):
    return StartedEmaState(count=jnp.zeros((), jnp.int32),
                           ema=jax.tree.map(lambda p: jnp.zeros_like(p, jnp.float32), params),
                           decay=jnp.asarray(decay, jnp.float32), start=jnp.asarray(start, jnp.int32))

  def update(updates, state, params=None):
    if params is None:
      raise ValueError("generator_ema needs the parameters: call tx.update(grads, state, params)")
    new = optax.apply_updates(params, updates)
    on = state.count >= state.start
    n = (state.count - state.start).astype(jnp.float32)
    d = jnp.minimum(state.decay, n / (n + WARMUP))
    ema = jax.tree.map(lambda a, p: jnp.where(on, d * a + (1.0 - d) * p.astype(jnp.float32), a),
                       state.ema, new)
    return updates, state._replace(count=state.count + 1, ema=ema)

  return optax.GradientTransformation(init, update)


_EMA_STATES = (ParamEmaState, StartedEmaState)


def find_ema_state(opt_state) -> ParamEmaState | StartedEmaState | None:
  """The parameter average's state inside an optimizer state (e.g. an ``optax.chain``'s), or None."""
  found = [s for s in jax.tree.leaves(opt_state, is_leaf=lambda s: isinstance(s, _EMA_STATES))
           if isinstance(s, _EMA_STATES)]
  return found[0] if found else None


def ema_params(opt_state, params):
  """The parameter average held in ``opt_state`` (cast to ``params``' dtypes; :func:`param_ema`'s
  debiased), or None when the optimizer keeps none. Before any averaged update it is ``params``
  itself."""
  s = find_ema_state(opt_state)
  if s is None:
    return None
  if isinstance(s, StartedEmaState):   # the warm-up's first update copies: nothing to debias
    on = s.count > s.start
    return jax.tree.map(lambda a, p: jnp.where(on, a, p).astype(p.dtype), s.ema, params)
  n = s.count
  correction = 1.0 - jnp.power(s.decay, n.astype(jnp.float32))
  safe = jnp.where(n > 0, correction, 1.0)
  return jax.tree.map(lambda a, p: jnp.where(n > 0, a / safe, p).astype(p.dtype), s.ema, params)


def averaged(state):
  """``state`` with the generator's parameter average (:func:`generator_ema`) in place of its
  current parameters, for sampling and evaluation; ``state`` itself when G keeps none."""
  if not has_average(state):
    return state
  return state.replace(g_params=ema_params(state.g_opt_state, state.g_params))


def has_average(state) -> bool:
  """Whether the state's generator optimizer keeps a parameter average."""
  opt_state = getattr(state, "g_opt_state", None)
  return opt_state is not None and find_ema_state(opt_state) is not None
