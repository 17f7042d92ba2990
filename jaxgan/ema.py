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


def find_ema_state(opt_state) -> ParamEmaState | None:
  """The :class:`ParamEmaState` inside an optimizer state (e.g. an ``optax.chain``'s), or None."""
  found = [s for s in jax.tree.leaves(opt_state, is_leaf=lambda s: isinstance(s, ParamEmaState))
           if isinstance(s, ParamEmaState)]
  return found[0] if found else None


def ema_params(opt_state, params):
  """The debiased parameter average held in ``opt_state`` (cast to ``params``' dtypes), or None
  when the optimizer keeps none. Before any update it is ``params`` itself."""
  s = find_ema_state(opt_state)
  if s is None:
    return None
  correction = 1.0 - jnp.power(s.decay, s.count.astype(jnp.float32))
  safe = jnp.where(s.count > 0, correction, 1.0)
  return jax.tree.map(lambda a, p: jnp.where(s.count > 0, a / safe, p).astype(p.dtype), s.ema, params)
