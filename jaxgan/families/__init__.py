"""The registry of GAN families: which family trains a run is decided here, from ``config.model``.

``for_config(config)`` is the one place that answers "which family is this
run?"; the trainer, ``jaxgan.sample`` and ``jaxgan.evaluate`` ask it once and
then only call the :class:`~jaxgan.families.base.Family` interface. Adding a
family is a family module and one line in :data:`FAMILIES` (see
``docs/add-a-family.md``).
"""

from __future__ import annotations

import ml_collections

from jaxgan import config as config_lib
from jaxgan.errors import ConfigError
from jaxgan.families.base import GENERIC_OPTIONS, Drawing, Family, config_value
from jaxgan.families.began import BEGAN
from jaxgan.families.conditional import ACGAN, CGAN
from jaxgan.families.gan import GAN
from jaxgan.families.sgan import SGAN
from jaxgan.families.stackgan import StackGAN
from jaxgan.families.toy import Toy2D
from jaxgan.families.translation import CycleGAN, StarGAN

# One instance per family; its ``models`` are the config.model values it trains.
FAMILIES: dict[str, Family] = {f.name: f for f in (
    GAN(), BEGAN(), CGAN(), ACGAN(), SGAN(), CycleGAN(), StarGAN(), Toy2D(), StackGAN(),
)}

MODELS: dict[str, Family] = {m: f for f in FAMILIES.values() for m in f.models}


def for_model(model: str) -> Family:
  """The family that trains ``config.model == model``; :class:`ConfigError` for an unknown one."""
  try:
    return MODELS[model]
  except KeyError:
    raise ConfigError(f"config.model={model!r} is unknown; choose one of {sorted(MODELS)}") from None


def for_config(config: ml_collections.ConfigDict) -> Family:
  """The family of the run ``config`` describes (by ``config.model``)."""
  return for_model(config.get("model", ""))


def check(config: ml_collections.ConfigDict) -> Family:
  """All config checks of a run, before any data is read: the generic keys
  (:func:`jaxgan.config.validate`), then its family's; returns the family."""
  config_lib.validate(config)
  family = for_config(config)
  for key, (default, what) in GENERIC_OPTIONS.items():
    value = config_value(config, key, default)
    if value != default and key not in family.honours:
      takers = sorted(f.name for f in FAMILIES.values() if key in f.honours)
      raise ConfigError(f"config.{key}={value!r}: the {family.name} family has no {what}; set "
                        f"config.{key}={default!r} (the families with it: {', '.join(takers)})")
  family.check_config(config)
  return family


__all__ = ["FAMILIES", "MODELS", "Drawing", "Family", "check", "for_config", "for_model"]
