"""The 2-D GAN lab: the toy recipes' shared body and the trainer hook that films a run.

``toy_config(dataset)`` is what ``configs/toy_*.py`` build on. :class:`ToyFilm`
is the hook :func:`jaxgan.hooks.build_hooks` gives a toy run instead of the
image sample grid: every ``film_every`` steps it renders one four-panel frame
(:mod:`jaxgan.film`) into ``film/`` and, for the Gaussian mixtures, computes
the VEEGAN / PacGAN mode metrics (:mod:`jaxgan.metrics.modes`) on 2,500
generated points, which the trainer logs (``modes``, ``high_quality``,
``reverse_kl`` in ``metrics.jsonl`` and TensorBoard). At the end it writes
``film/final.png``, assembles ``film.gif`` (and ``film.mp4`` when ffmpeg is
installed) and reports the final mode metrics in the summary.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import ml_collections
import numpy as np

from jaxgan.data import toy
from jaxgan.errors import ConfigError
from jaxgan.hooks import Hook
from jaxgan.state import GANState


def toy_config(dataset: str = "ring") -> ml_collections.ConfigDict:
  """A toy-lab recipe on ``base_config()``: fully connected LeakyReLU G and D on 2-D points.

  G: ``z`` (2-D) -> 3 x [Dense(128) -> LeakyReLU(0.2)] -> Dense(2), linear.
  D: 2 -> 3 x [Dense(128) -> LeakyReLU(0.2)] -> Dense(1) logit, ``pack`` 1.
  Non-saturating loss, Adam, batch 100, a film frame every 250 steps.
  """
  from jaxgan.config import base_config
  c = base_config()
  c.model = "toy2d"
  c.dataset = toy.check_name(dataset)
  c.image_size = 0                  # no images: a point has shape (2,)
  c.latent_dim = 2
  c.generator.hidden = (128, 128, 128)
  c.generator.negative_slope = 0.2
  c.discriminator.hidden = (128, 128, 128)
  c.discriminator.negative_slope = 0.2
  c.discriminator.pack = 1          # PacGAN: D judges `pack` samples at once
  c.loss = "nonsaturating"
  c.optimizer = "adam"
  c.learning_rate = 1e-4
  c.b1, c.b2 = 0.5, 0.999
  c.batch_size = 100
  c.num_steps = 10000
  c.log_every = 100
  c.sample_every = 1000             # unused by toy runs (the film replaces the sample grid)
  c.checkpoint_every = 2500
  c.num_samples = 64
  c.num_devices = 1                 # tiny steps: one device beats splitting 100 points
  c.film_every = 250                # one four-panel frame (+ mode metrics) every film_every steps
  c.film_points = 512               # real and generated points drawn per frame
  c.film_grid = 128                 # resolution of the sample- and latent-space heat maps
  c.film_fps = 8                    # frames per second of film.gif / film.mp4
  return c


def check_config(config: ml_collections.ConfigDict) -> None:
  """Raises :class:`ConfigError` for wrong toy-lab keys."""
  toy.check_name(config.dataset)
  for key, low in (("film_every", 0), ("film_points", 1), ("film_grid", 8), ("film_fps", 1)):
    value = config.get(key, low)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
      raise ConfigError(f"config.{key} must be an integer >= {low}, got {value!r}")
  pack = config.discriminator.get("pack", 1)
  n = int(config.get("num_devices", 0)) or jax.local_device_count()
  per_device = config.batch_size // n if config.batch_size % n == 0 else None
  if isinstance(pack, int) and pack > 0 and per_device and per_device % pack:
    raise ConfigError(
        f"config.discriminator.pack={pack} does not divide the per-device batch "
        f"{config.batch_size // n} (batch_size {config.batch_size} over {n} device(s)); use a "
        f"batch_size that is a multiple of {pack * n}, or --config.num_devices=1")


class ToyFilm(Hook):
  """Trainer hook of a toy run: film frames and mode metrics (see the module docstring)."""

  def __init__(self, config: ml_collections.ConfigDict, workdir: str, write: bool = True):
    check_config(config)
    from jaxgan import film
    self.config = config
    self.every = int(config.get("film_every", 250))
    self.write = write
    self.directory = os.path.join(workdir, "film")
    self.gif = os.path.join(workdir, "film.gif")
    self.name = config.dataset
    self.modes = toy.modes(self.name)
    self.frames: list[str] = []
    self.last: dict[str, float] = {}
    self.view = film.FilmView.for_dataset(self.name, config.get("film_grid", 128),
                                          config.get("film_points", 512), seed=config.seed,
                                          loss=config.loss)

  def _metrics(self, state: GANState) -> dict[str, float]:
    if self.modes is None:
      return {}
    from jaxgan.metrics.modes import mode_metrics_np
    from jaxgan.multiseed import eval_points
    return mode_metrics_np(eval_points(state), *self.modes)

  def _frame(self, state: GANState, step: int, history: list[dict], name: str) -> np.ndarray:
    from jaxgan import film
    path = os.path.join(self.directory, name) if self.write else None
    if path:
      os.makedirs(self.directory, exist_ok=True)
    return film.render_frame(state, self.view, history, step, path=path, scores=self.last)

  def __call__(self, state: GANState, step: int, history: list[dict]) -> dict[str, Any]:
    self.last = self._metrics(state)
    name = f"frame_{step:07d}.png"
    image = self._frame(state, step, history, name)
    if self.write and name not in self.frames:
      self.frames.append(name)
    return {**{k: float(v) for k, v in self.last.items()}, "film": image}

  def end(self, state: GANState, step: int, history: list[dict]) -> list[str]:
    from jaxgan import film
    self.last = self._metrics(state)
    lines = []
    if self.last:
      m = self.last
      total = len(self.modes[0])
      lines.append(f"modes        {m['modes']}/{total} covered, {m['high_quality']:.1f}% high quality, "
                   f"reverse KL {m['reverse_kl']:.3f} (2500 samples)")
    if not self.write:
      return lines
    self._frame(state, step, history, "final.png")
    paths = [os.path.join(self.directory, f) for f in sorted(set(self.frames))
             if os.path.exists(os.path.join(self.directory, f))]
    if paths:
      made = film.assemble(paths, self.gif, fps=int(self.config.get("film_fps", 8)))
      lines.append(f"film         {'  '.join(made)}  ({len(paths)} frames in {self.directory})")
    return lines
