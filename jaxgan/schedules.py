"""Learning-rate schedules shared by every trainer.

:func:`constant_then_linear_decay` is the schedule of CycleGAN and StarGAN
(their second half decays linearly to 0) and of Salimans et al.'s (2016)
CIFAR-10 semi-supervised GAN (the last 400 of its 1,200 epochs; their MNIST
code keeps its rate constant). In a config it is
``decay_steps``: the last ``decay_steps`` generator updates decay, and a
discriminator making ``n_critic`` updates per generator update decays over its
last ``n_critic * decay_steps`` updates, so both reach 0 at ``num_steps``.
"""

from __future__ import annotations

import optax

from jaxgan.errors import ConfigError


def constant_then_linear_decay(learning_rate: float, num_updates: int,
                               decay_updates: int) -> optax.Schedule:
  """``learning_rate`` for ``num_updates - decay_updates`` updates, then linearly to 0.

  CycleGAN: 100 epochs constant, 100 epochs decaying; StarGAN: 200k
  iterations, the last 100k decaying. Counts are in updates of the optimizer
  that uses the schedule (StarGAN's critic makes ``n_critic`` updates per
  generator update).
  """
  for name, v in (("num_updates", num_updates), ("decay_updates", decay_updates)):
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
      raise ConfigError(f"{name} must be a non-negative integer, got {v!r}")
  if decay_updates > num_updates:
    raise ConfigError(f"decay_updates={decay_updates} exceeds num_updates={num_updates}; the decay "
                      f"is the last part of training: lower the decay steps or train longer")
  if not learning_rate > 0:
    raise ConfigError(f"learning_rate must be positive, got {learning_rate!r}")
  constant = optax.constant_schedule(learning_rate)
  if decay_updates == 0:
    return constant
  decay = optax.linear_schedule(learning_rate, 0.0, decay_updates)
  return optax.join_schedules([constant, decay], [num_updates - decay_updates])
