"""Kernel Inception Distance (KID; Bińkowski et al., 2018, "Demystifying MMD GANs").

KID is the squared maximum mean discrepancy between feature distributions with the
cubic polynomial kernel ``k(x, y) = (x.y / d + 1)^3`` (``d`` = feature dimension),
estimated without bias (Gretton et al., 2012, eq. 3) on ``m`` real features ``x_i``
and ``m`` generated features ``y_j``::

  MMD_u^2 = 1/(m(m-1)) sum_{i != j} k(x_i, x_j) + 1/(m(m-1)) sum_{i != j} k(y_i, y_j)
            - 2/m^2 sum_{i, j} k(x_i, y_j)

Unlike FID it has an unbiased estimator: its expectation is 0 when both sets come
from the same distribution (so it can come out slightly negative). As in the
paper's code, it is averaged over ``num_subsets`` random subsets of ``subset_size``
drawn without replacement; the standard deviation over subsets is reported too.
Computed in float64 numpy: the three terms are large and nearly cancel.
"""

from __future__ import annotations

import numpy as np


def polynomial_kernel(x: np.ndarray, y: np.ndarray, degree: int = 3, gamma: float | None = None,
                      coef0: float = 1.0) -> np.ndarray:
  """``(gamma x.y + coef0)^degree``, ``gamma = 1 / d`` by default."""
  gamma = 1.0 / x.shape[1] if gamma is None else gamma
  return (gamma * (x @ y.T) + coef0) ** degree


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
  """Unbiased MMD^2 of ``x [m, d]`` and ``y [n, d]`` (m, n >= 2) with the cubic kernel."""
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  m, n = len(x), len(y)
  if m < 2 or n < 2:
    raise ValueError(f"MMD needs at least 2 samples per set, got {m} and {n}")
  kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
  return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1))
               + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
               - 2.0 * kxy.mean())


def kid(features1: np.ndarray, features2: np.ndarray, num_subsets: int = 50,
        subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
  """KID ``(mean, std)`` over ``num_subsets`` subset pairs of ``min(subset_size, n1, n2)``
  (one value, std 0, when that is both whole sets)."""
  f1, f2 = np.asarray(features1, np.float64), np.asarray(features2, np.float64)
  if f1.ndim != 2 or f2.ndim != 2 or f1.shape[1] != f2.shape[1]:
    raise ValueError(f"features must be [n, d] with the same d, got {f1.shape} and {f2.shape}")
  m = min(subset_size, len(f1), len(f2))
  if m == len(f1) == len(f2):  # every subset is the whole of both sets: one value
    return mmd2_unbiased(f1, f2), 0.0
  rng = np.random.default_rng(seed)
  values = np.array([mmd2_unbiased(f1[rng.choice(len(f1), m, replace=False)],
                                   f2[rng.choice(len(f2), m, replace=False)])
                     for _ in range(num_subsets)])
  return float(values.mean()), float(values.std())
