"""Mode-collapse metrics of 2-D Gaussian mixtures: the VEEGAN / PacGAN protocol.

Srivastava et al., 2017 (VEEGAN) and Lin et al., 2018 (PacGAN, Table 1). For
generated samples ``x_1..x_N`` and a mixture with centres ``c_1..c_M`` of equal
weight and common isotropic std ``sigma``:

* nearest mode ``a_i = argmin_j ||x_i - c_j||_2``, distance ``d_i = min_j ||x_i - c_j||_2``;
* ``x_i`` is **high quality** iff ``d_i <= 3 sigma``;
* ``n_j = #{i : x_i high quality and a_i = j}``; mode ``j`` is **covered** iff ``n_j >= 1``;
* ``modes = #{j : n_j >= 1}``;
* ``high_quality = 100 * #{i : x_i high quality} / N`` (a percentage);
* ``reverse_kl = KL(p || u) = sum_j p_j log(M p_j)``, with ``p_j = n_j / sum_k n_k``
  the distribution of the high-quality samples over the modes and ``u`` the
  uniform distribution over the ``M`` modes (the target's own mode
  distribution). "Reverse" because the model's distribution comes first.
  Empty modes contribute ``0 log 0 = 0`` (the limit), so the value is finite,
  between 0 (all modes equally filled) and ``log M`` (every sample on one
  mode); if no sample at all is high quality, ``p`` is undefined and the
  value is defined as ``log M``, the worst case.

For exact samples of the target, ``high_quality`` is ``100 (1 - e^{-4.5})
= 98.89 %`` in expectation (the mass of a 2-D isotropic Gaussian within 3
standard deviations, the chi distribution with 2 degrees of freedom), every
mode is covered and ``reverse_kl`` is ``~(M - 1) / (2 N)`` (the sampling
noise of the histogram).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np


def nearest_mode(samples: jax.Array, centers: jax.Array) -> tuple[jax.Array, jax.Array]:
  """``(index [N] int32, distance [N])`` of every sample's nearest centre (Euclidean)."""
  d2 = jnp.sum(jnp.square(samples[:, None, :] - centers[None, :, :]), axis=-1)
  idx = jnp.argmin(d2, axis=1).astype(jnp.int32)
  return idx, jnp.sqrt(jnp.take_along_axis(d2, idx[:, None], axis=1)[:, 0])


@jax.jit
def mode_counts(samples: jax.Array, centers: jax.Array, std: float | jax.Array) -> jax.Array:
  """``n_j``: the number of high-quality samples (within ``3 std``) whose nearest mode is ``j``."""
  idx, dist = nearest_mode(samples, centers)
  high = (dist <= 3.0 * std).astype(jnp.int32)
  return jnp.zeros((centers.shape[0],), jnp.int32).at[idx].add(high)


@jax.jit
def mode_metrics(samples: jax.Array, centers: jax.Array,
                 std: float | jax.Array) -> dict[str, jax.Array]:
  """``{"modes", "high_quality", "reverse_kl"}`` of ``samples [N, 2]`` (see the module docstring).

  ``centers``: ``[M, 2]``, ``std``: the mixture's common standard deviation
  (e.g. :func:`jaxgan.data.toy.modes`). ``modes`` is int32, ``high_quality`` a
  percentage in [0, 100], ``reverse_kl`` in ``[0, log M]``. Jitted; vmap it over
  stacked sample sets for many runs at once.
  """
  samples = jnp.asarray(samples, jnp.float32)
  centers = jnp.asarray(centers, jnp.float32)
  counts = mode_counts(samples, centers, std)
  total = jnp.sum(counts)
  num_modes = centers.shape[0]
  p = counts / jnp.maximum(total, 1)
  kl = jnp.sum(jax.scipy.special.xlogy(p, p * num_modes))  # 0 log 0 = 0
  kl = jnp.where(total > 0, kl, math.log(num_modes))
  return {"modes": jnp.sum(counts > 0).astype(jnp.int32),
          "high_quality": 100.0 * total / samples.shape[0],
          "reverse_kl": kl}


def mode_metrics_np(samples, centers, std) -> dict[str, float]:
  """:func:`mode_metrics` as Python numbers (for logs and tables)."""
  out = jax.device_get(mode_metrics(jnp.asarray(samples), jnp.asarray(centers), std))
  return {"modes": int(out["modes"]), "high_quality": float(out["high_quality"]),
          "reverse_kl": float(np.asarray(out["reverse_kl"]))}
