"""Toy 2-D distributions, sampled in JAX (no files): the GAN lab's data.

* ``"ring"``: a mixture of 8 Gaussians, equal weights, centred on the unit
  circle at angles ``2 pi k / 8``, isotropic std 0.01 (the VEEGAN / PacGAN
  2D-ring).
* ``"grid"``: a mixture of 25 Gaussians, equal weights, centred on
  ``{-4, -2, 0, 2, 4}^2``, std 0.05 (the PacGAN 2D-grid).
* ``"spiral"``: an Archimedean spiral of 1.5 turns, ``x = t (cos 3 pi t, sin 3 pi t)``
  with ``t = sqrt(u)``, ``u ~ U(0, 1)`` (uniform mass per unit area swept, so
  the outer arms are not starved), plus N(0, 0.02^2 I) noise: a curve with a
  little width, two degrees of freedom (the classic 2-D-latent experiment).
* ``"swissroll"``: the 2-D Swiss roll (the ``x``/``z`` slice of the 3-D one):
  ``t = 1.5 pi (1 + 2 u)``, ``x = t (cos t, sin t) / (4.5 pi)`` plus
  N(0, 0.03^2 I) noise; uniform in ``t``, so denser near the centre.

:func:`sample` is pure and jittable (``name`` and ``n`` static).
:class:`ToyData` is the dataset object the trainer reads (see
:meth:`jaxgan.families.Family.data`): batch ``i`` of ``stream(B, seed)`` is
``sample(name, fold_in(stream_key(seed), i), B)``, computed by the same jitted
function :class:`jaxgan.families.toy.MultiSeed` calls inside its vmapped trainer (the base key
is ``fold_in(PRNGKey(seed), DATA_TAG)``, see :func:`stream_key`). The batch
key is ``"image"`` so every train step works unchanged: for toy data an
"image" is a point ``[B, 2]``.
"""

from __future__ import annotations

import functools
import math
from typing import Iterator

import jax
import jax.numpy as jnp
import numpy as np

from jaxgan.errors import ConfigError

DISTRIBUTIONS = ("ring", "grid", "spiral", "swissroll")

RING_MODES, RING_RADIUS, RING_STD = 8, 1.0, 0.01
GRID_VALUES, GRID_STD = (-4.0, -2.0, 0.0, 2.0, 4.0), 0.05
SPIRAL_TURNS, SPIRAL_NOISE = 1.5, 0.02
SWISSROLL_NOISE = 0.03


def check_name(name: str) -> str:
  """``name`` if it is a toy distribution, else a :class:`ConfigError` naming the choices."""
  if name not in DISTRIBUTIONS:
    raise ConfigError(f"unknown toy distribution {name!r}; choose one of {list(DISTRIBUTIONS)} "
                      f"(--config.dataset=ring)")
  return name


def modes(name: str) -> tuple[np.ndarray, float] | None:
  """``(centers [M, 2], std)`` of a Gaussian-mixture distribution; ``None`` for the curves.

  ``ring``: 8 centres ``(cos 2 pi k/8, sin 2 pi k/8)``, std 0.01. ``grid``: the
  25 points of ``{-4, -2, 0, 2, 4}^2`` (row-major in ``(x, y)``), std 0.05.
  ``spiral`` / ``swissroll`` have no discrete modes.
  """
  check_name(name)
  if name == "ring":
    angles = 2 * np.pi * np.arange(RING_MODES) / RING_MODES
    return RING_RADIUS * np.stack([np.cos(angles), np.sin(angles)], 1).astype(np.float32), RING_STD
  if name == "grid":
    xs, ys = np.meshgrid(GRID_VALUES, GRID_VALUES, indexing="ij")
    return np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float32), GRID_STD
  return None


def _mixture(key: jax.Array, n: int, centers: np.ndarray, std: float) -> jax.Array:
  k_mode, k_noise = jax.random.split(key)
  idx = jax.random.randint(k_mode, (n,), 0, len(centers))
  return jnp.asarray(centers)[idx] + std * jax.random.normal(k_noise, (n, 2), jnp.float32)


def _curve(key: jax.Array, n: int, name: str) -> jax.Array:
  k_t, k_noise = jax.random.split(key)
  u = jax.random.uniform(k_t, (n,), jnp.float32)
  if name == "spiral":
    t = jnp.sqrt(u)
    angle, radius, noise = 2 * math.pi * SPIRAL_TURNS * t, t, SPIRAL_NOISE
  else:  # swissroll
    angle = 1.5 * math.pi * (1 + 2 * u)
    radius, noise = angle / (4.5 * math.pi), SWISSROLL_NOISE
  points = radius[:, None] * jnp.stack([jnp.cos(angle), jnp.sin(angle)], 1)
  return points + noise * jax.random.normal(k_noise, (n, 2), jnp.float32)


def sample(name: str, key: jax.Array, n: int) -> jax.Array:
  """``n`` float32 points ``[n, 2]`` of the distribution ``name``.

  Pure; jit it with ``name`` and ``n`` static.
  """
  check_name(name)
  found = modes(name)
  if found is not None:
    return _mixture(key, n, *found)
  return _curve(key, n, name)


DATA_TAG = 2**31 - 3  # fold_in tag of the data stream (jaxgan.hooks uses 2**31 - 1 and 2**31 - 2)


def stream_key(seed: int | jax.Array) -> jax.Array:
  """The base key of the data stream of ``seed``: ``fold_in(PRNGKey(seed), DATA_TAG)``.

  Not ``PRNGKey(seed)`` itself: the run's state key is ``PRNGKey(seed)`` too and
  a step's noise key is ``fold_in(fold_in(key, step), stream)``; since
  ``split(k) == [fold_in(k, 0), fold_in(k, 1)]`` for threefry, batch ``i`` keyed
  ``fold_in(key, i)`` would draw its modes from the very key of step ``i``'s
  latent noise. The tag moves the data to its own branch of the key tree.
  """
  return jax.random.fold_in(jax.random.PRNGKey(seed), DATA_TAG)


# The one compiled sampler: ToyData's stream and the vmapped multi-seed trainer both call it.
@functools.partial(jax.jit, static_argnames=("name", "n"))
def batch_points(name: str, key: jax.Array, i: jax.Array | int, n: int) -> jax.Array:
  """Batch ``i`` of the stream with base key ``key`` (:func:`stream_key`).

  ``sample(name, fold_in(key, i), n)``; ``i`` may be traced (the multi-seed
  trainer passes the step).
  """
  return sample(name, jax.random.fold_in(key, i), n)


class ToyData:
  """The dataset object of a toy run: ``example_shape == (2,)``, no labels.

  ``stream(batch_size, seed, start)`` yields ``{"image": float32 [B, 2]}`` (a
  point per row, under the key ``"image"`` the train steps read); batch ``i``
  is :func:`batch_points` ``(name, stream_key(seed), i, B)``, so a resumed run at
  ``start`` reads exactly the batches of an uninterrupted one.
  """

  num_classes = 0
  example_shape = (2,)

  def __init__(self, name: str):
    self.name = check_name(name)
    self.split = "train"

  def modes(self) -> tuple[np.ndarray, float] | None:
    return modes(self.name)

  def batch(self, batch_size: int, seed: int, i: int) -> dict[str, np.ndarray]:
    """Batch ``i`` of ``stream(batch_size, seed)``."""
    points = batch_points(self.name, stream_key(seed), i, batch_size)
    return {"image": np.asarray(points)}

  def stream(self, batch_size: int, seed: int, start: int = 0) -> Iterator[dict[str, np.ndarray]]:
    """Endless batches ``start, start + 1, ...`` (see the class docstring)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
      raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
    key = stream_key(seed)
    i = start
    while True:
      yield {"image": np.asarray(batch_points(self.name, key, i, batch_size))}
      i += 1

  def __repr__(self) -> str:
    return f"ToyData({self.name!r})"
