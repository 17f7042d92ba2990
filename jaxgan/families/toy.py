"""The 2-D GAN lab: GANs on 2-D point distributions, filmed, and many seeds in one program.

The family of ``config.model == "toy2d"``: its data are the 2-D samplers of
:mod:`jaxgan.data.toy` (``ring``, ``grid``, ``spiral``, ``swissroll``), its step
the unconditional GAN's. ``toy_config(dataset)`` is what ``configs/toy_*.py``
build on. :class:`ToyFilm` is the hook a toy run gets instead of the image
sample grid: every ``film_every`` steps it renders one four-panel frame
(:mod:`jaxgan.film`) into ``film/`` and, for the Gaussian mixtures, computes
the VEEGAN / PacGAN mode metrics (:mod:`jaxgan.metrics.modes`) on 2,500
generated points, which the trainer logs (``modes``, ``high_quality``,
``reverse_kl`` in ``metrics.jsonl`` and TensorBoard). At the end it writes
``film/final.png``, assembles ``film.gif`` (and ``film.mp4`` when ffmpeg is
installed) and reports the final mode metrics in the summary.

:class:`MultiSeed` trains many seeds of a toy config at once: ``jax.vmap`` over
the whole state, data sampled inside the compiled program (see its docstring).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Iterable

import jax
import jax.numpy as jnp
import ml_collections
from jax import lax

from jaxgan import film, optim
from jaxgan import steps as steps_lib
from jaxgan import config as config_lib
from jaxgan.config import base_config
from jaxgan.data import toy
from jaxgan.errors import ConfigError
from jaxgan.families.gan import GAN
from jaxgan.hooks import EVAL_NOISE, Film, Hook, Picture
from jaxgan.metrics.modes import mode_metrics, mode_metrics_np
from jaxgan.state import GANState, create_state

EVAL_SAMPLES = 2500  # the VEEGAN / PacGAN protocol


def toy_config(dataset: str = "ring") -> ml_collections.ConfigDict:
  """A toy-lab recipe on ``base_config()``: fully connected LeakyReLU G and D on 2-D points.

  G: ``z`` (2-D) -> 3 x [Dense(128) -> LeakyReLU(0.2)] -> Dense(2), linear.
  D: 2 -> 3 x [Dense(128) -> LeakyReLU(0.2)] -> Dense(1) logit, ``pack`` 1.
  Non-saturating loss, Adam, batch 100, a film frame every 250 steps.
  """
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


def stable_config(dataset: str, num_steps: int) -> ml_collections.ConfigDict:
  """The lab's stable recipe (``configs/toy_ring_stable.py``, ``configs/toy_grid_stable.py``): the
  row ``benchmarks/bench_toy.py --stable r1_small`` measures over 10 seeds.

  The unconditional non-saturating GAN, no packing, with a light R1 penalty on D (gamma 0.01: a
  mode of std 0.01-0.05 needs a sharp D, which gamma 1 forbids). G: 2-D N(0, I) latent ->
  4 x [Dense(128) -> BatchNorm -> ReLU] -> Dense(2); D: 2 -> 3 x [Dense(128) -> LeakyReLU(0.2)]
  -> Dense(1), PacGAN's benchmark networks scaled to a CPU. Adam(1e-3, b1 0.5), batch 100; the
  rate is constant for the first half of ``num_steps`` and falls linearly to 0 over the second
  (``decay_steps = num_steps // 2``, so ``--config.num_steps=N`` alone keeps the shape).
  """
  c = toy_config(dataset)
  c.generator.hidden = (128, 128, 128, 128)
  c.generator.batchnorm = True
  c.generator.negative_slope = 0.0         # ReLU
  c.discriminator.hidden = (128, 128, 128)
  c.discriminator.maxout = 1               # LeakyReLU hidden layers (PacGAN's maxout: 5)
  c.r1_weight = 0.01
  c.learning_rate = 1e-3
  c.b1, c.b2 = 0.5, 0.999
  c.batch_size = 100
  c.num_steps = int(num_steps)
  c.decay_steps = c.get_ref("num_steps") // 2
  c.film_every = 2500
  c.checkpoint_every = 10000
  return c


def check_toy_config(config: ml_collections.ConfigDict) -> None:
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

  def __init__(self, config: ml_collections.ConfigDict):
    self.config = config
    self.every = int(config.get("film_every", 250))
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
    return mode_metrics_np(eval_points(state), *self.modes)

  def _frame(self, state: GANState, step: int, history: list[dict], name: str) -> Picture:
    return Picture(f"film/{name}", film.render_frame(state, self.view, history, step,
                                                     scores=self.last))

  def __call__(self, state: GANState, step: int, history: list[dict]) -> dict[str, Any]:
    self.last = self._metrics(state)
    frame = self._frame(state, step, history, f"frame_{step:07d}.png")
    if frame.path not in self.frames:
      self.frames.append(frame.path)
    return {**{k: float(v) for k, v in self.last.items()}, "film": frame}

  def end(self, state: GANState, step: int, history: list[dict]) -> list:
    self.last = self._metrics(state)
    out: list = [self._frame(state, step, history, "final.png")]
    if self.last:
      m = self.last
      total = len(self.modes[0])
      out.append(f"modes        {m['modes']}/{total} covered, {m['high_quality']:.1f}% high "
                 f"quality, reverse KL {m['reverse_kl']:.3f} (2500 samples)")
    if self.frames:
      out.append(Film("film.gif", tuple(sorted(set(self.frames))),
                      fps=int(self.config.get("film_fps", 8))))
    return out


class Toy2D(GAN):
  """The 2-D lab's family: the unconditional GAN on 2-D points, filmed."""

  name = "toy2d"
  honours = frozenset({"dtype"})   # 2-D points, drawn from their distribution
  models = ("toy2d",)

  def check_config(self, config: ml_collections.ConfigDict) -> None:
    check_toy_config(config)
    super().check_config(config)

  def example_shape(self, config: ml_collections.ConfigDict) -> tuple[int, ...]:
    return toy.ToyData.example_shape

  def data(self, config: ml_collections.ConfigDict, process_index: int = 0, process_count: int = 1):
    """The distribution's sampler (:class:`jaxgan.data.toy.ToyData`), the same in every process."""
    return toy.ToyData(config.dataset)

  def hooks(self, config: ml_collections.ConfigDict, data,
            log: Callable[[str], None] | None = None) -> list[Hook]:
    return [ToyFilm(config)]


TOY = Toy2D()


def eval_points(state: GANState, n: int = EVAL_SAMPLES) -> jax.Array:
  """``n`` generated points for the mode metrics: G(z) in inference mode, ``z`` fixed per run.

  ``z ~ N(0, I)`` from ``fold_in(state.key, EVAL_NOISE)`` (the evaluation
  noise of :mod:`jaxgan.hooks`), so successive evaluations of a run differ
  only by the generator.
  """
  z = jax.random.normal(jax.random.fold_in(state.key, EVAL_NOISE), (n, state.latent_dim))
  return state.generate(z, train=False)[0]


class MultiSeed:
  """``N`` runs of a toy config (one per seed), trained by one vmapped, jitted program."""

  def __init__(self, config: ml_collections.ConfigDict, seeds: Iterable[int]):
    config_lib.validate(config)
    TOY.check_config(config)
    self.config = config
    self.name = toy.check_name(config.dataset)
    self.seeds = [int(s) for s in seeds]
    if not self.seeds:
      raise ConfigError("MultiSeed needs at least one seed")
    self.options = TOY.step_options(config)
    self.n_critic = self.options["n_critic"]
    self.batch_size = int(config.batch_size)
    g_tx, d_tx = optim.build_optimizers(config)
    try:
      generator, discriminator = TOY.build_models(config, toy.ToyData.example_shape)
    except (TypeError, ValueError) as e:
      raise ConfigError(f"cannot build model {config.model!r} from config.generator / "
                        f"config.discriminator: {e}") from None
    self._parts = (generator, discriminator, g_tx, d_tx)
    self.keys = jnp.stack([jax.random.PRNGKey(s) for s in self.seeds])
    self.data_keys = jnp.stack([toy.stream_key(s) for s in self.seeds])
    modes = toy.modes(self.name)
    self.centers, self.std = (None, None) if modes is None else modes

  @property
  def num_seeds(self) -> int:
    return len(self.seeds)

  def init(self) -> GANState:
    """The ``N`` initial states, stacked on a leading axis (seed ``s``'s equals the trainer's)."""
    generator, discriminator, g_tx, d_tx = self._parts
    return jax.jit(jax.vmap(lambda k: create_state(generator, discriminator, g_tx, d_tx, k)))(self.keys)

  def batch(self, data_key: jax.Array, step: jax.Array) -> dict[str, jax.Array]:
    """The batch of train step ``step`` for one run (``[n_critic, B, 2]`` when ``n_critic > 1``)."""
    k = self.n_critic
    if k == 1:
      return {"image": toy.batch_points(self.name, data_key, step, self.batch_size)}
    points = jax.vmap(lambda c: toy.batch_points(self.name, data_key, step * k + c, self.batch_size))(
        jnp.arange(k))
    return {"image": points}

  def _one_step(self, state: GANState, data_key: jax.Array) -> tuple[GANState, dict]:
    return steps_lib.train_step_fn(state, self.batch(data_key, state.step), loss=self.config.loss,
                                   **self.options)

  @functools.partial(jax.jit, static_argnums=(0, 2), donate_argnums=(1,))
  def _run(self, states: GANState, num_steps: int) -> tuple[GANState, dict]:
    def body(states, _):
      return jax.vmap(self._one_step)(states, self.data_keys)

    states, metrics = lax.scan(body, states, None, length=num_steps)
    return states, jax.tree.map(lambda m: jnp.mean(m, axis=0), metrics)

  def run(self, states: GANState, num_steps: int) -> tuple[GANState, dict]:
    """``num_steps`` train steps of every run (one call); metrics are per-run means, ``[N]``.

    The input ``states`` are donated (do not use them afterwards).
    """
    return self._run(states, int(num_steps))

  @functools.partial(jax.jit, static_argnums=(0, 2))
  def points(self, states: GANState, n: int = EVAL_SAMPLES) -> jax.Array:
    """:func:`eval_points` of every run: ``[N, n, 2]``."""
    return jax.vmap(lambda s: eval_points(s, n))(states)

  def mode_metrics(self, states: GANState, n: int = EVAL_SAMPLES) -> dict[str, jax.Array]:
    """:func:`jaxgan.metrics.modes.mode_metrics` of every run on ``n`` samples: each ``[N]``."""
    if self.centers is None:
      raise ConfigError(f"{self.name!r} has no discrete modes; mode metrics need 'ring' or 'grid'")
    points = self.points(states, n)
    return jax.vmap(lambda x: mode_metrics(x, self.centers, self.std))(points)

  def __hash__(self):
    return id(self)

  def __eq__(self, other):
    return self is other


def unstack(states: GANState, i: int) -> GANState:
  """Run ``i``'s plain state from a stacked multi-seed state."""
  return jax.tree.map(lambda x: x[i], states)
