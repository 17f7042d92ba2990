"""The optimizers of a run, from its config: ``(g_tx, d_tx)`` for the two networks."""

from __future__ import annotations

import ml_collections
import optax

from jaxgan import ema, schedules
from jaxgan.errors import ConfigError

OPTIMIZERS = ("adam", "rmsprop")


def build_optimizer(config: ml_collections.ConfigDict, learning_rate: float | None = None,
                    updates_per_step: int = 1) -> optax.GradientTransformation:
  """``config.optimizer`` at ``learning_rate`` (default ``config.learning_rate``).

  ``"adam"``: Adam(``b1``, ``b2``; ``adam_eps`` added to the root of the second
  moment, ``adam_eps_root`` inside it: Salimans et al.'s 2016 code has 0 and 1e-8). ``"rmsprop"``: RMSProp as in PyTorch's
  ``optim.RMSprop`` defaults that the WGAN reference code uses (squared-gradient
  decay 0.99, eps 1e-8 added outside the square root, no momentum).
  With ``decay_steps`` > 0 the rate is constant, then falls linearly to 0 over
  the last ``decay_steps`` of the ``num_steps`` training steps
  (:func:`jaxgan.schedules.constant_then_linear_decay`); an optimizer making
  ``updates_per_step`` updates per step (a critic with ``n_critic``) counts them all.
  """
  name = config.get("optimizer", "adam")
  lr = learning_rate or config.learning_rate
  decay = int(config.get("decay_steps", 0))
  if decay:
    lr = schedules.constant_then_linear_decay(float(lr), config.num_steps * updates_per_step,
                                              decay * updates_per_step)
  if name == "adam":
    return optax.adam(lr, b1=config.b1, b2=config.b2, eps=float(config.get("adam_eps", 1e-8)),
                      eps_root=float(config.get("adam_eps_root", 0.0)))
  if name == "rmsprop":
    return optax.rmsprop(lr, decay=0.99, eps=1e-8, eps_in_sqrt=False)
  raise ConfigError(f"config.optimizer={name!r} is unknown; choose one of {list(OPTIMIZERS)}")


def build_optimizers(config: ml_collections.ConfigDict) -> tuple[optax.GradientTransformation,
                                                                  optax.GradientTransformation]:
  """``(g_tx, d_tx)``: the same optimizer for both networks (each with its own state), at
  ``g_learning_rate`` / ``d_learning_rate`` where set (non-zero), else ``learning_rate``.
  ``d_ema`` (a decay, 0 = off) makes D's optimizer also keep a Polyak average of D's
  parameters (:mod:`jaxgan.ema`), which the semi-supervised test accuracy reads; ``g_ema``
  (from update ``g_ema_start``) keeps G's, which sampling and evaluation use.
  ``decay_steps`` decays both rates to 0 at ``num_steps`` (:func:`build_optimizer`)."""
  d_tx = build_optimizer(config, config.get("d_learning_rate", 0.0),
                         updates_per_step=int(config.get("n_critic", 1)))
  if config.get("d_ema", 0.0):
    d_tx = optax.chain(d_tx, ema.param_ema(float(config.d_ema)))
  g_tx = build_optimizer(config, config.get("g_learning_rate", 0.0))
  if config.get("g_ema", 0.0):
    g_tx = optax.chain(g_tx, ema.generator_ema(float(config.g_ema), int(config.get("g_ema_start", 0))))
  return g_tx, d_tx
