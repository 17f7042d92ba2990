"""Improved precision and recall (Kynkäänniemi et al., 2019, "Improved Precision and
Recall Metric for Assessing Generative Models").

Each set of features approximates its manifold by the union of balls around its
points, the radius of the ball at ``phi`` being the distance to its k-th nearest
neighbour within the same set (itself excluded; the paper uses k = 3)::

  f(phi, Phi) = 1  if  ||phi - phi'||_2 <= NN_k(phi', Phi)  for some phi' in Phi, else 0
  precision   = mean over generated phi_g of f(phi_g, Phi_real)
  recall      = mean over real phi_r      of f(phi_r, Phi_gen)

Precision is the fraction of samples that fall on the real manifold (quality);
recall the fraction of real data the samples cover (diversity). Pairwise distances
are computed in jitted row blocks (``||a||^2 - 2 a.b + ||b||^2`` in float32), so
memory stays at ``block x n``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np


@jax.jit
def _sq_dists(a: jax.Array, b: jax.Array) -> jax.Array:
  """Squared Euclidean distances ``[len(a), len(b)]`` (clipped at 0)."""
  d = (jnp.sum(a * a, 1)[:, None] - 2.0 * (a @ b.T) + jnp.sum(b * b, 1)[None, :])
  return jnp.maximum(d, 0.0)


@functools.partial(jax.jit, static_argnames="k")
def _kth_block(a: jax.Array, b: jax.Array, k: int) -> jax.Array:
  """Squared distance of each row of ``a`` to its (k+1)-th nearest row of ``b`` (the first
  being itself when ``a`` is a block of ``b``)."""
  neg_top, _ = jax.lax.top_k(-_sq_dists(a, b), k + 1)
  return -neg_top[:, k]


@jax.jit
def _inside_block(a: jax.Array, b: jax.Array, b_radii2: jax.Array) -> jax.Array:
  """Per row of ``a``: inside some ball of ``b``. Per row of ``b``: whether ``a`` hits its ball."""
  inside = _sq_dists(a, b) <= b_radii2[None, :]
  return jnp.any(inside, axis=1), jnp.any(inside, axis=0)


def _blocks(x: np.ndarray, block: int):
  """Row blocks of ``x``, the last zero-padded to ``block`` rows: ``(padded, valid_rows)``."""
  for s in range(0, len(x), block):
    rows = x[s:s + block]
    valid = len(rows)
    if valid < block and len(x) > block:
      rows = np.concatenate([rows, np.zeros((block - valid, x.shape[1]), x.dtype)])
    yield rows, valid


def knn_radii(features: np.ndarray, k: int = 3, block: int = 1000) -> np.ndarray:
  """Distance of each point to its k-th nearest neighbour in the same set (itself excluded)."""
  x = np.asarray(features, np.float32)
  if len(x) <= k:
    raise ValueError(f"k={k} nearest neighbours need more than {k} points, got {len(x)}")
  xj = jnp.asarray(x)
  out = [np.asarray(_kth_block(jnp.asarray(rows), xj, k))[:valid] for rows, valid in _blocks(x, block)]
  return np.sqrt(np.concatenate(out))


def precision_recall(real_features: np.ndarray, fake_features: np.ndarray, k: int = 3,
                     block: int = 1000) -> tuple[float, float]:
  """Improved ``(precision, recall)`` of generated features against real ones, k-NN balls."""
  real = np.asarray(real_features, np.float32)
  fake = np.asarray(fake_features, np.float32)
  if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
    raise ValueError(f"features must be [n, d] with the same d, got {real.shape} and {fake.shape}")
  real_r2 = jnp.asarray(knn_radii(real, k, block) ** 2)
  fake_r2 = knn_radii(fake, k, block) ** 2
  real_j = jnp.asarray(real)
  # One pass over blocks of fakes: each fake in a real ball (precision), and the fake
  # balls that contain each real point (recall) through the transposed test.
  in_real = []
  real_covered = np.zeros(len(real), bool)
  for s, (rows, valid) in zip(range(0, len(fake), block), _blocks(fake, block)):
    fake_in, _ = _inside_block(jnp.asarray(rows), real_j, real_r2)
    in_real.append(np.asarray(fake_in)[:valid])
    radii = np.full(len(rows), -1.0, np.float32)  # padded rows: no ball
    radii[:valid] = fake_r2[s:s + valid]
    real_in, _ = _inside_block(real_j, jnp.asarray(rows), jnp.asarray(radii))
    real_covered |= np.asarray(real_in)
  return float(np.mean(np.concatenate(in_real))), float(np.mean(real_covered))
