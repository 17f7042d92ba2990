"""The ``Family`` interface: what changes between GAN kinds beyond the networks and the loss.

A family owns, for the runs whose ``config.model`` it lists in :attr:`Family.models`:

============================  =============================================================
``check_config(config)``      its config errors, before any data is read or file written
``data(config, i, n)``        the training data (process ``i`` of ``n``) and ``check_data``
``build_state(config, ...)``  the initial state (a :class:`~jaxgan.state.GANState`, or the
                              family's own pytree) and ``prepare_state`` (data-dependent init)
``model_meta(config, shape)`` what a checkpoint must agree on to be resumed
``step_options(config)``      the trainer's options (``n_critic`` stacks batches)
``step_body(config)``         the pure step ``body(state, batch, *, axis_name=None)``
                              (``phases`` / ``phase_body``: a step that changes during the run)
``hooks(config, ...)``        what the loop does besides stepping (pictures, evaluations)
``draw(state, config, ...)``  what ``python -m jaxgan.sample`` writes for a checkpoint
============================  =============================================================

The trainer, ``jaxgan.sample`` and ``jaxgan.evaluate`` look the family up once
(:func:`jaxgan.families.for_config`) and only call this interface. The defaults
here are the unconditional image GAN's (``G(z)`` against ``D(x)``, one of the
pairwise objectives of :mod:`jaxgan.losses`, a sample grid and the optional
FID/KID evaluation), so a family overrides only where it differs. See
``docs/add-a-family.md``.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

import jax
import ml_collections
import numpy as np

from jaxgan import data as data_lib
from jaxgan import augment, losses, models, optim, steps
from jaxgan.config import jsonable  # noqa: F401 - the families' checkpoint meta
from jaxgan.errors import ConfigError
from jaxgan.generation import generate_images, sample_labels
from jaxgan.hooks import Evaluate, Hook, SampleGrid
from jaxgan.state import create_state, takes_label

StepBody = Callable[..., tuple[Any, dict]]

# The objectives on a pair of real / fake logits (BEGAN's auto-encoder energies are its own family's).
PAIR_LOSSES = losses.PAIR_LOSSES


# Config keys that a family may or may not implement: key -> (default, what it is).
GENERIC_OPTIONS = {
    "augment": ("", "DiffAugment"),
    "data.fraction": (1.0, "training on a fraction of the data"),
    "dtype": ("float32", "mixed precision"),
}


@dataclasses.dataclass
class Drawing:
  """What ``python -m jaxgan.sample`` writes: ``arrays`` into the ``.npz`` (``images`` uint8 first),
  ``picture`` (float NHWC in [-1, 1]) tiled ``columns`` wide (None: square) as the PNG beside it,
  and a sentence describing them."""
  arrays: dict[str, np.ndarray]
  picture: np.ndarray
  description: str
  columns: int | None = None


def number(config, key: str, minimum: float = 0.0, default: float = 0.0) -> None:
  """Raises :class:`ConfigError` unless ``config.<key>`` (dotted; ``default`` when absent) is a
  finite number >= ``minimum``."""
  value = config_value(config, key, default)
  if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) \
      or value < minimum:
    raise ConfigError(f"config.{key} must be a number >= {minimum}, got {value!r}")


def count(config, key: str, minimum: int = 0) -> None:
  """Raises :class:`ConfigError` unless ``config.<key>`` (dotted; valid when absent) is an integer
  >= ``minimum``."""
  value = config_value(config, key, minimum)
  if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
    raise ConfigError(f"config.{key} must be an integer >= {minimum}, got {value!r}")


def config_value(config, key: str, default):
  """``config.<key>`` (dotted), or ``default`` where a part of the path is absent."""
  node = config
  for part in key.split("."):
    if part not in node:
      return default
    node = node[part]
  return node


@functools.lru_cache(maxsize=64)
def cached_body(make: Callable, options: tuple) -> StepBody:
  """``make(jit=False, **options)``, one object per set of options, so that runs of one recipe in
  a process (a resumed run, tests) reuse the compiled step."""
  return make(jit=False, **dict(options))


class Family:
  """Base class and default behaviour (the unconditional image GAN); see the module docstring."""

  name: str = ""
  models: tuple[str, ...] = ()          # the config.model values this family trains
  losses: tuple[str, ...] = PAIR_LOSSES  # the config.loss values it accepts
  # The generic options (:data:`GENERIC_OPTIONS`) its data, state and step honour; a run that sets
  # another to a value other than its default is refused (jaxgan.families.check).
  honours: frozenset[str] = frozenset({"augment", "data.fraction", "dtype"})
  # Whether ``draw`` takes ``caption=`` (text-to-image families; ``jaxgan.sample --caption``).
  takes_captions: bool = False

  # -- config -------------------------------------------------------------------------------
  def check_config(self, config: ml_collections.ConfigDict) -> None:
    """Raises :class:`ConfigError` for a value this family cannot run (generic keys are checked by
    :func:`jaxgan.config.validate` first)."""
    if config.loss not in self.losses:
      raise ConfigError(f"config.loss={config.loss!r} cannot train config.model={config.model!r} "
                        f"({self.name} family); choose one of {list(self.losses)}")
    self.check_penalties(config)

  def check_penalties(self, config: ml_collections.ConfigDict) -> None:
    """A gradient penalty needs a critic without BatchNorm (:func:`jaxgan.steps.penalty_refusal`),
    checked on the networks built at a stand-in shape (normalisation does not depend on it)."""
    penalties = [k for k in ("gp_weight", "r1_weight") if config.get(k, 0.0) > 0]
    if not penalties:
      return
    shape = self.example_shape(config)
    try:
      _, discriminator = self.build_models(config, shape)
    except (ConfigError, TypeError, ValueError):
      return  # reported with its context when the state is built
    message = steps.penalty_refusal(discriminator, np.zeros((2, *shape), np.float32),
                                    np.zeros((2,), np.int32))
    if message:
      raise ConfigError(f"config.{penalties[0]}={config[penalties[0]]}: {message} "
                        f"(--config.discriminator.norm=layer), or set config.{penalties[0]}=0")

  def example_shape(self, config: ml_collections.ConfigDict) -> tuple[int, ...]:
    """A stand-in example shape for checks before the data is read (``image_size`` square, one
    channel; 28 when ``image_size`` is 0)."""
    side = config.image_size or 28
    return (side, side, 1)

  # -- data ---------------------------------------------------------------------------------
  def data(self, config: ml_collections.ConfigDict, process_index: int = 0, process_count: int = 1):
    """``config.dataset``'s train split at ``config.image_size`` (:func:`jaxgan.data.load`).

    In a multi-process run with ``config.data.process_split == "shard"`` (the
    default) each process reads only its own even part of the split; with
    ``"full"`` every process reads all of it. A dataset object has
    ``example_shape``, ``num_classes`` (0 = no labels), ``name`` and
    ``stream(batch_size, seed, start=0)``: an endless iterator of dict batches in
    which batch ``i`` is a pure function of ``(seed, i)``. ``config.data.fraction`` < 1 keeps a
    seeded random share of the split (:func:`jaxgan.data.subset`; of each process's part).
    """
    shard = process_count > 1 and config.data.get("process_split", "shard") == "shard"
    data = data_lib.load(config.dataset, "train", config.image_size or None,
                         data_dir=config.data.data_dir or None,
                         manual_dir=config.data.manual_dir or None,
                         part=(process_index, process_count) if shard else (0, 1))
    return data_lib.subset(data, float(config.data.get("fraction", 1.0)),
                           int(config.data.get("fraction_seed", 0)))

  def check_data(self, config: ml_collections.ConfigDict, data) -> None:
    """Raises :class:`ConfigError` when the data cannot feed this family (e.g. no labels)."""

  # -- state --------------------------------------------------------------------------------
  def build_models(self, config: ml_collections.ConfigDict, image_shape, num_classes: int = 0):
    """``(generator, discriminator)`` of ``config.model`` (:func:`jaxgan.models.build_models`)."""
    return models.build_models(config.model, image_shape, config.latent_dim,
                               config.generator.to_dict(), config.discriminator.to_dict(),
                               num_classes=num_classes)

  def build_state(self, config: ml_collections.ConfigDict, image_shape, num_classes: int = 0):
    """Models and optimizers of ``config``, freshly initialised from ``PRNGKey(config.seed)``."""
    g_tx, d_tx = optim.build_optimizers(config)
    try:
      generator, discriminator = self.build_models(config, image_shape, num_classes)
      state = create_state(generator, discriminator, g_tx, d_tx, jax.random.PRNGKey(config.seed),
                           dtype=config.get("dtype", "float32"))
    except (TypeError, ValueError) as e:
      raise ConfigError(f"cannot build model {config.model!r} from config.generator / "
                        f"config.discriminator: {e}") from None
    return state

  def prepare_state(self, config: ml_collections.ConfigDict, state, data):
    """A fresh state adjusted to the data before training (default: unchanged); a resumed run
    restores its checkpoint over it."""
    return state

  def model_meta(self, config: ml_collections.ConfigDict, image_shape) -> dict:
    """What a checkpoint must agree on to be resumed by this config (JSON-able)."""
    meta = {
        "model": config.model,
        "dataset": config.dataset,
        "image_shape": [int(s) for s in image_shape],
        "latent_dim": int(config.latent_dim),
        "generator": jsonable(config.generator.to_dict()),
        "discriminator": jsonable(config.discriminator.to_dict()),
    }
    if config.get("decay_steps", 0):  # a scheduled rate adds a step count to the optimizer states
      meta["lr_schedule"] = "constant_then_linear_decay"
    if config.get("g_ema", 0.0):      # the average of G lives in G's optimizer state
      meta["g_ema"] = "warmup"       # (the warm-up rule of jaxgan.ema.generator_ema)
    return meta

  # -- step ---------------------------------------------------------------------------------
  def step_options(self, config: ml_collections.ConfigDict) -> dict[str, Any]:
    """The keyword options of :func:`jaxgan.steps.make_train_step` that ``config`` sets."""
    clip = float(config.get("clip", 0.0))
    return {"n_critic": int(config.get("n_critic", 1)),
            "reuse_fakes": bool(config.get("reuse_fakes", True)),
            "gp_weight": float(config.get("gp_weight", 0.0)),
            "gp_one_sided": bool(config.get("gp_one_sided", False)),
            "r1_weight": float(config.get("r1_weight", 0.0)),
            "clip": clip if clip > 0 else None,
            "label_smoothing": float(config.get("label_smoothing", 0.0)),
            "augment": augment.parse_policy(config.get("augment", ""))}

  def step_body(self, config: ml_collections.ConfigDict) -> StepBody:
    """The un-jitted step ``body(state, batch, *, axis_name=None) -> (state, metrics)``."""
    options = dict(self.step_options(config), loss=config.loss)
    return cached_body(steps.make_train_step, tuple(sorted(options.items())))

  def phases(self, config: ml_collections.ConfigDict) -> tuple[int, ...]:
    """The steps at which the step body changes, ascending (StackGAN's start of Stage II);
    ``()``: one body for the whole run. The trainer compiles one step per phase."""
    return ()

  def phase_body(self, config: ml_collections.ConfigDict, phase: int) -> StepBody:
    """The step body of ``phase`` (0 until the first of :meth:`phases`, 1 after it, ...);
    :meth:`step_body` for a family with one phase."""
    return self.step_body(config)

  # -- outputs ------------------------------------------------------------------------------
  def hooks(self, config: ml_collections.ConfigDict, data,
            log: Callable[[str], None] | None = None) -> list[Hook]:
    """The fixed-noise sample grid, and the FID/KID evaluation when ``config.eval_every``.
    Hooks do no I/O: they return what the run directory writes (:mod:`jaxgan.hooks`)."""
    hooks: list[Hook] = [SampleGrid(config)]
    if config.get("eval_every", 0):
      hooks.append(Evaluate(config, log))
    return hooks

  def draw(self, state, config: ml_collections.ConfigDict, num: int, seed: int = 0,
           batch_size: int = 500, label: int | None = None, truncation: float | None = None,
           interpolate: int = 0) -> Drawing:
    """``num`` samples ``G(z)`` (a conditional G: with every class in turn, or ``label``).

    ``truncation`` = psi draws ``z`` from the normal truncated to ``[-psi, psi]`` (the truncation
    trick); ``interpolate`` = N instead draws N images along the great circle between two latents
    (a conditional G: all of class ``label``, default 0), as one row.
    """
    from jaxgan import viz
    from jaxgan.generation import interpolation_latents
    latent_dim = int(config.latent_dim)
    trunc = "" if truncation is None else f", truncation psi {truncation:g}"
    if interpolate:
      z = interpolation_latents(latent_dim, interpolate, seed, truncation)
      one_class = label is not None or takes_label(state.generator)   # a conditional G: one class
      labels = sample_labels(state, interpolate, label or 0) if one_class else None
      images = generate_images(state, latent_dim, interpolate, batch_size=batch_size, labels=labels,
                               z=z)
      arrays = {"images": viz.to_uint8(images), "z": z}
      if labels is not None:
        arrays["labels"] = np.asarray(labels, np.int32)
      return Drawing(arrays, images, f"an interpolation of {interpolate} steps between two latents "
                     f"(slerp{trunc}; images under 'images', latents under 'z')", columns=interpolate)
    labels = sample_labels(state, num, label)
    images = generate_images(state, latent_dim, num, seed, batch_size, labels=labels,
                             truncation=truncation)
    arrays = {"images": viz.to_uint8(images)}
    if labels is not None:
      arrays["labels"] = np.asarray(labels, np.int32)
    return Drawing(arrays, images[:64],
                   f"{num} samples {images.shape[1:]} (key 'images', uint8"
                   + (", and their classes under 'labels'" if labels is not None else "") + f"{trunc})")

  def __repr__(self) -> str:
    return f"<family {self.name}: models {list(self.models)}>"
