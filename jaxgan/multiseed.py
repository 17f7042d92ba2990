"""Many seeds of a toy GAN in one compiled program: ``jax.vmap`` over the whole GANState.

A toy run is a pure function of its seed: the state is initialised from
``PRNGKey(seed)``, the data are :func:`jaxgan.data.toy.batch_points` of the
seed's stream and the noise is derived from the state's key and step. So
``N`` independent runs are the vmap of one run over ``N`` keys::

    ms = MultiSeed(config, seeds=range(10))
    states = ms.init()                              # GANState, every leaf [10, ...]
    states, metrics = ms.run(states, 1000)          # 1000 steps of all 10 runs, one call
    scores = ms.mode_metrics(states)                # {"modes": [10], ...}

The data are sampled inside the program with the same jitted sampler
:class:`jaxgan.data.toy.ToyData` streams to the trainer (batch ``i`` of seed
``s`` is ``batch_points(name, stream_key(s), i, B)``; with ``n_critic = k``,
step ``j`` reads batches ``j k .. j k + k - 1``, as the trainer does), and the
step is :func:`jaxgan.steps.train_step_fn` with the config's options. Seed
``s`` of a multi-seed run therefore follows the trajectory of
``train.py --config.seed=s`` on one device (up to float reassociation of
batched matrix products).
"""

from __future__ import annotations

import functools
from typing import Iterable

import jax
import jax.numpy as jnp
import ml_collections
from jax import lax

from jaxgan import config as config_lib
from jaxgan import steps as steps_lib
from jaxgan.data import toy
from jaxgan.errors import ConfigError
from jaxgan.metrics.modes import mode_metrics
from jaxgan.models import build_models
from jaxgan.state import GANState, create_state

EVAL_SAMPLES = 2500  # the VEEGAN / PacGAN protocol


def build_optimizers(config: ml_collections.ConfigDict):
  """``(g_tx, d_tx)`` of ``config`` through the trainer (``g_learning_rate`` / ``d_learning_rate``)."""
  from jaxgan import trainer
  if hasattr(trainer, "build_optimizers"):
    return trainer.build_optimizers(config)
  tx = trainer.build_optimizer(config)
  return tx, tx


def eval_points(state: GANState, n: int = EVAL_SAMPLES) -> jax.Array:
  """``n`` generated points for the mode metrics: G(z) in inference mode, ``z`` fixed per run.

  ``z ~ N(0, I)`` from ``fold_in(state.key, EVAL_NOISE)`` (the evaluation
  noise of :mod:`jaxgan.hooks`), so successive evaluations of a run differ
  only by the generator.
  """
  from jaxgan.hooks import EVAL_NOISE
  z = jax.random.normal(jax.random.fold_in(state.key, EVAL_NOISE), (n, state.latent_dim))
  return state.generate(z, train=False)[0]


class MultiSeed:
  """``N`` runs of a toy config (one per seed), trained by one vmapped, jitted program."""

  def __init__(self, config: ml_collections.ConfigDict, seeds: Iterable[int]):
    config_lib.validate(config)
    self.config = config
    self.name = toy.check_name(config.dataset)
    self.seeds = [int(s) for s in seeds]
    if not self.seeds:
      raise ConfigError("MultiSeed needs at least one seed")
    self.options = config_lib.step_options(config)
    self.n_critic = self.options["n_critic"]
    self.batch_size = int(config.batch_size)
    g_tx, d_tx = build_optimizers(config)
    try:
      generator, discriminator = build_models(
          config.model, toy.ToyData.example_shape, config.latent_dim,
          config.generator.to_dict(), config.discriminator.to_dict())
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
