"""Many seeds of one recipe in one program: ``jax.vmap`` of the family's step over stacked states.

A GAN's result varies from seed to seed, so a claim about a recipe needs several seeds. On a
device that one small run leaves mostly idle (an MLP GAN, a DCGAN at a small batch), the seeds
train faster as one vmapped, jitted program than one after another::

    runs = jaxgan.MultiSeed(config, seeds=range(8))   # any recipe whose family's step is pure
    states = runs.init()                              # seed s's state == train.py's with seed s
    states, metrics = runs.run(states, 1000)          # metrics: per-seed means, [8]
    state_3 = runs.state(states, 3)                   # one seed's state: sample, evaluate, save

Seed ``s`` of a :class:`MultiSeed` is the run ``train.py`` makes with ``--config.seed=s``: the
same initial state (:meth:`jaxgan.families.Family.build_state` and ``prepare_state``), the same
batches (its data stream of seed ``s``) and the same step body, vmapped (equal up to float
rounding). Each step gathers every seed's batch on the host and runs one program.
"""

from __future__ import annotations

from typing import Iterable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxgan import families
from jaxgan.errors import ConfigError
from jaxgan.state import GANState


class MultiSeed:
  """``N`` runs of ``config``, one per seed, trained together by one vmapped program."""

  def __init__(self, config: ml_collections.ConfigDict, seeds: Iterable[int], data=None):
    self.family = families.check(config)
    self.config = config
    self.seeds = [int(s) for s in seeds]
    if not self.seeds:
      raise ConfigError("MultiSeed needs at least one seed")
    if len(set(self.seeds)) != len(self.seeds):
      raise ConfigError(f"MultiSeed seeds must differ; got {self.seeds}")
    self.data = self.family.data(config) if data is None else data
    self.family.check_data(config, self.data)
    self.n_critic = self.family.step_options(config)["n_critic"]
    body = self.family.step_body(config)
    self._step = jax.jit(jax.vmap(body), donate_argnums=(0,))
    self._streams: dict[int, tuple[int, Iterable]] = {}

  @property
  def num_seeds(self) -> int:
    return len(self.seeds)

  def _config(self, seed: int) -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict(self.config.to_dict())
    config.seed = seed
    return config

  def init(self) -> GANState:
    """The ``N`` initial states stacked on a leading axis (seed ``s``'s is ``train.py``'s)."""
    shape, classes = self.data.example_shape, self.data.num_classes
    states = []
    for seed in self.seeds:
      config = self._config(seed)
      state = self.family.build_state(config, shape, classes)
      states.append(self.family.prepare_state(config, state, self.data))
    # One program for all: the seeds' optimizers are equal transformations built N times.
    states = [s.replace(g_tx=states[0].g_tx, d_tx=states[0].d_tx) for s in states]
    return jax.tree.map(lambda *xs: jnp.stack(xs), *states)

  def _batch(self, seed: int, i: int) -> dict[str, np.ndarray]:
    """Step ``i``'s batch of seed ``seed`` (``n_critic`` batches stacked when it is > 1), read
    from that seed's stream as the trainer reads it."""
    start, stream = self._streams.get(seed, (None, None))
    if start != i:  # a new run, or a jump: (re)open the stream at step i
      stream = iter(self.data.stream(int(self.config.batch_size), seed, start=i * self.n_critic))
    group = [next(stream) for _ in range(self.n_critic)]
    self._streams[seed] = (i + 1, stream)
    if self.n_critic == 1:
      return group[0]
    return {k: np.stack([b[k] for b in group]) for k in group[0]}

  def run(self, states: GANState, num_steps: int) -> tuple[GANState, dict]:
    """``num_steps`` train steps of every seed; returns the states and each metric's mean over
    the steps per seed (``[N]``). The input ``states`` are donated (do not use them again)."""
    start = int(np.asarray(jax.device_get(states.step))[0])
    sums: dict[str, jax.Array] = {}
    for i in range(start, start + int(num_steps)):
      batches = [self._batch(seed, i) for seed in self.seeds]
      batch = {k: np.stack([b[k] for b in batches]) for k in batches[0]}
      states, metrics = self._step(states, batch)
      sums = metrics if not sums else jax.tree.map(jnp.add, sums, metrics)
    means = {k: np.asarray(v) / max(int(num_steps), 1) for k, v in sums.items()}
    return states, means

  @staticmethod
  def state(states: GANState, i: int) -> GANState:
    """The ``i``-th seed's state (by position in ``seeds``) of stacked ``states``."""
    return jax.tree.map(lambda x: x[i], states)
