"""What the training loop does besides stepping: pictures and evaluations, as hooks.

The trainer (:func:`jaxgan.trainer.train_and_evaluate`) runs the list that the
run's family returns (:meth:`jaxgan.families.Family.hooks`). A hook is called with the
plain (single-copy) :class:`~jaxgan.state.GANState` whenever the step crosses a
multiple of its ``every`` (and once more at the final step if it did not just
run), and its :meth:`Hook.end` once after training.

Hooks do no I/O: they return what to keep, and the run directory
(:class:`jaxgan.workdir.RunDir`) writes it. A call returns a dict: floats go to
``metrics.jsonl`` (a record ``{"step": step, **scalars}``) and TensorBoard, a
:class:`Picture` is written as a PNG in the run directory and shown in
TensorBoard under its key. :meth:`Hook.end` returns summary lines, pictures and
:class:`Film` s. Hooks run in every process of a multi-process run (so collective
work such as a best-checkpoint save stays in step); only the main process writes.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Union

import jax
import ml_collections
import numpy as np

from jaxgan import viz
from jaxgan.errors import ConfigError
from jaxgan.generation import generate_images
from jaxgan.state import GANState
from jaxgan.steps import generate

FIXED_NOISE = 2**31 - 1  # fold_in tag of the fixed sample-grid noise
EVAL_NOISE = 2**31 - 2   # fold_in tag of the evaluation noise

History = list[dict[str, Any]]


@dataclasses.dataclass(frozen=True)
class Picture:
  """A picture for the run directory: ``image`` (uint8 ``[H, W, C]``) written to ``path`` (PNG,
  relative to the workdir) up-scaled ``scale`` times (nearest neighbour)."""
  path: str
  image: np.ndarray
  scale: int = 1


@dataclasses.dataclass(frozen=True)
class Film:
  """An animation the run directory assembles from PNG ``frames`` it wrote (paths relative to the
  workdir) into ``path`` (a GIF; an MP4 beside it when ffmpeg is installed) at ``fps``."""
  path: str
  frames: tuple[str, ...]
  fps: int = 8


Output = dict[str, Union[float, Picture]]
Artefact = Union[str, Picture, Film]   # what Hook.end returns: summary lines and files


class Hook:
  """Base class: override ``__call__`` and/or ``end``."""

  every: int = 0  # run when the step crosses a multiple of ``every`` (0 = only ``end``)

  def __call__(self, state: GANState, step: int, history: History) -> Output:
    return {}

  def end(self, state: GANState, step: int, history: History) -> list[Artefact]:
    """Lines for the run's final summary (paths relative to the run directory), and the pictures
    and films to keep."""
    return []


def fixed_noise(state: GANState, num: int) -> jax.Array:
  """The run's fixed latent batch (a function of the run key only): one grid shows one ``z`` over time."""
  return jax.random.normal(jax.random.fold_in(state.key, FIXED_NOISE), (num, state.latent_dim))


class SampleGrid(Hook):
  """``samples/step_XXXXXXX.png`` from the fixed noise every ``sample_every`` steps, ``final.png`` at the end."""

  def __init__(self, config: ml_collections.ConfigDict):
    self.every = int(config.sample_every)
    self.num = int(config.num_samples)
    self.ncols = int(np.ceil(np.sqrt(self.num)))

  def _grid(self, state: GANState, name: str) -> Picture:
    images = np.asarray(generate(state, fixed_noise(state, self.num)))
    return Picture(f"samples/{name}", viz.make_grid(images, self.ncols), scale=3)

  def __call__(self, state, step, history):
    return {"samples": self._grid(state, f"step_{step:07d}.png")}

  def end(self, state, step, history):
    return [self._grid(state, "final.png"), "samples      samples/  (final: samples/final.png)"]


class Evaluate(Hook):
  """FID, KID, precision/recall and classifier score every ``eval_every`` steps (:mod:`jaxgan.metrics`).

  ``eval_samples`` images from one fixed noise batch (so successive numbers
  differ only by the generator) against the cached statistics of the real test
  split. The trainer keeps the checkpoint with the lowest FID in ``best/``.
  """

  def __init__(self, config: ml_collections.ConfigDict, log: Callable[[str], None] | None = None):
    from jaxgan.metrics import Evaluator, WeightsError
    from jaxgan.metrics.inception import InceptionError
    self.every = int(config.eval_every)
    self.num = int(config.eval_samples)
    try:
      self.evaluator = Evaluator(
          config.dataset, config.image_size or None, num_samples=self.num,
          data_dir=config.data.data_dir or None, manual_dir=config.data.manual_dir or None,
          cache_dir=config.get("eval_cache_dir", "") or None, log=log,
          features=config.get("eval_features", "classifier"))
    except InceptionError as e:
      raise ConfigError(f"config.eval_features='inception': {e}") from None
    except WeightsError as e:
      raise ConfigError(f"config.eval_every={self.every}: {e} (or set --config.eval_every=0)") from None
    self.last: dict[str, float] = {}

  def __call__(self, state, step, history):
    seed = int(jax.random.randint(jax.random.fold_in(state.key, EVAL_NOISE), (), 0, 2**31 - 1))
    images = generate_images(state, state.latent_dim, self.num, seed=seed)
    result = self.evaluator.evaluate(images)
    self.last = {k: float(v) for k, v in result.items() if k != "num_samples"}
    return dict(self.last)

  def end(self, state, step, history):
    if not self.last:
      return []
    m = self.last
    classifier = (f"classifier score {m['classifier_score']:.2f}  class TV {m['class_tv']:.3f}  "
                  if "classifier_score" in m else "")
    return [f"quality      FID {m['fid']:.2f}  KID {m['kid']:.4f} ± {m['kid_std']:.4f}  "
            f"precision {m['precision']:.3f}  recall {m['recall']:.3f}  {classifier}"
            f"({self.num} samples, "
            f"{self.evaluator.dataset}/{self.evaluator.split})"]
