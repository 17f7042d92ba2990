"""Fréchet distance between Gaussian fits of features (FID; Heusel et al., 2017).

For features ``X`` (real) and ``Y`` (generated) with means ``mu_x, mu_y`` and
covariances ``S_x, S_y``::

  FID = ||mu_x - mu_y||^2 + tr(S_x) + tr(S_y) - 2 tr((S_x^1/2 S_y S_x^1/2)^1/2)

which is the squared 2-Wasserstein distance between ``N(mu_x, S_x)`` and
``N(mu_y, S_y)`` (Dowson & Landau, 1982). ``tr((S_x S_y)^1/2)`` of the usual
formula equals the trace term above: ``S_x S_y`` is similar to the symmetric
positive semi-definite ``S_x^1/2 S_y S_x^1/2``. Computing that symmetric matrix
and its eigenvalues with ``numpy.linalg.eigh`` in float64 gives a real result
with no complex leftovers (``scipy.linalg.sqrtm`` of the non-symmetric product
returns complex parts and fails on singular covariances), and it stays finite
when covariances are rank deficient (fewer samples than feature dimensions):
eigenvalues that rounding makes slightly negative are clipped to 0.
"""

from __future__ import annotations

import numpy as np


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """``(mu [d], sigma [d, d])`` of ``features [n, d]`` in float64 (unbiased covariance, n >= 2)."""
  x = np.asarray(features, np.float64)
  if x.ndim != 2 or len(x) < 2:
    raise ValueError(f"features must be [n >= 2, d], got shape {x.shape}")
  mu = x.mean(axis=0)
  xc = x - mu
  return mu, (xc.T @ xc) / (len(x) - 1)


def _psd_sqrt(sigma: np.ndarray) -> np.ndarray:
  """Symmetric PSD square root through ``eigh`` (negative rounding eigenvalues -> 0)."""
  sigma = (sigma + sigma.T) / 2
  w, v = np.linalg.eigh(sigma)
  return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
  """``tr((sigma1^1/2 sigma2 sigma1^1/2)^1/2)`` = ``tr((sigma1 sigma2)^1/2)``, real, float64."""
  s1 = _psd_sqrt(np.asarray(sigma1, np.float64))
  m = s1 @ np.asarray(sigma2, np.float64) @ s1
  w = np.linalg.eigvalsh((m + m.T) / 2)
  return float(np.sum(np.sqrt(np.clip(w, 0.0, None))))


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray,
                     sigma2: np.ndarray) -> float:
  """Fréchet (2-Wasserstein squared) distance between ``N(mu1, sigma1)`` and ``N(mu2, sigma2)``.

  ``||mu1 - mu2||^2 + tr(sigma1) + tr(sigma2) - 2 tr((sigma1^1/2 sigma2 sigma1^1/2)^1/2)``,
  in float64; rounding below 0 is returned as 0 (the distance is non-negative).
  """
  mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
  sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
  if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
    raise ValueError(f"shapes differ: mu {mu1.shape} vs {mu2.shape}, sigma {sigma1.shape} vs "
                     f"{sigma2.shape}")
  for name, a in (("mu1", mu1), ("sigma1", sigma1), ("mu2", mu2), ("sigma2", sigma2)):
    if not np.all(np.isfinite(a)):
      raise ValueError(f"{name} has non-finite entries")
  diff = mu1 - mu2
  d = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2)
            - 2.0 * trace_sqrt_product(sigma1, sigma2))
  return max(d, 0.0)


def fid_from_features(features1: np.ndarray, features2: np.ndarray) -> float:
  """FID between two feature sets ``[n1, d]`` and ``[n2, d]`` (Gaussian fits, then
  :func:`frechet_distance`)."""
  return frechet_distance(*gaussian_stats(features1), *gaussian_stats(features2))
