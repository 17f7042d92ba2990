"""Config defaults shared by the recipes in ``configs/``, and their validation.

Every recipe is ``get_config() -> ml_collections.ConfigDict`` built on
:func:`base_config`; any key can be overridden on the command line
(``--config.batch_size=128``). :func:`validate` turns a wrong value into one
:class:`~jaxgan.errors.ConfigError` that names the key and the fix.
"""

from __future__ import annotations

import math

import ml_collections

from jaxgan import losses, models
from jaxgan.errors import ConfigError


def base_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  # What to train.
  c.model = "dcgan"                 # family in jaxgan.models.MODELS
  c.dataset = "fashion_mnist"       # a tfds image dataset
  c.image_size = 32                 # resize to image_size x image_size (0 = keep)
  c.latent_dim = 100
  c.loss = "nonsaturating"          # jaxgan.losses.LOSSES
  c.generator = ml_collections.ConfigDict()      # extra kwargs of the generator
  c.discriminator = ml_collections.ConfigDict()  # extra kwargs of the discriminator
  # Optimisation (Adam for both networks).
  c.learning_rate = 2e-4
  c.b1 = 0.5
  c.b2 = 0.999
  c.batch_size = 64
  c.num_steps = 5000                # generator updates
  c.seed = 0
  # Outputs.
  c.log_every = 50                  # metrics.jsonl / TensorBoard / progress bar
  c.sample_every = 500              # sample grid + plots
  c.checkpoint_every = 1000
  c.keep_checkpoints = 3
  c.num_samples = 64                # images in a sample grid (8x8)
  c.progress = True                 # tqdm progress bar
  # Data: tfds data_dir ('' = tfds default) and a directory of raw files for
  # offline machines ('' = $JAXGAN_MANUAL_DIR, else download).
  c.data = ml_collections.ConfigDict({"data_dir": "", "manual_dir": ""})
  return c


_POSITIVE_INTS = ("num_steps", "batch_size", "log_every", "sample_every", "checkpoint_every",
                  "keep_checkpoints", "num_samples", "latent_dim")


def validate(config: ml_collections.ConfigDict) -> None:
  """Raises :class:`ConfigError` for the first wrong value found."""
  missing = [k for k in ("model", "dataset", "image_size", "loss", "learning_rate", "b1", "b2",
                         "seed", *_POSITIVE_INTS) if k not in config]
  if missing:
    raise ConfigError(f"config is missing key(s) {missing}; build recipes on jaxgan.config.base_config()")
  for key in _POSITIVE_INTS:
    value = config[key]
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
      raise ConfigError(f"config.{key} must be a positive integer, got {value!r}")
  if isinstance(config.seed, bool) or not isinstance(config.seed, int):
    raise ConfigError(f"config.seed must be an integer, got {config.seed!r}")
  if not isinstance(config.image_size, int) or config.image_size < 0:
    raise ConfigError(f"config.image_size must be a non-negative integer, got {config.image_size!r}")
  lr = config.learning_rate
  if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
    raise ConfigError(f"config.learning_rate must be a positive number, got {lr!r}")
  for key in ("b1", "b2"):
    b = config[key]
    if isinstance(b, bool) or not isinstance(b, (int, float)) or not 0 <= b < 1:
      raise ConfigError(f"config.{key} must be in [0, 1), got {b!r}")
  if config.model not in models.MODELS:
    raise ConfigError(f"config.model={config.model!r} is unknown; choose one of {sorted(models.MODELS)}")
  if config.loss not in losses.LOSSES:
    raise ConfigError(f"config.loss={config.loss!r} is unknown; choose one of {sorted(losses.LOSSES)}")


def model_meta(config: ml_collections.ConfigDict, image_shape) -> dict:
  """What a checkpoint must agree on to be resumed by this config (JSON-able)."""
  return {
      "model": config.model,
      "dataset": config.dataset,
      "image_shape": [int(s) for s in image_shape],
      "latent_dim": int(config.latent_dim),
      "generator": _jsonable(config.generator.to_dict()),
      "discriminator": _jsonable(config.discriminator.to_dict()),
  }


def _jsonable(x):
  if isinstance(x, dict):
    return {k: _jsonable(v) for k, v in sorted(x.items())}
  if isinstance(x, (list, tuple)):
    return [_jsonable(v) for v in x]
  return x
