"""The classifier score: the Inception Score (Salimans et al., 2016) with our classifier.

``CS = exp(E_x KL(p(y|x) || p(y)))`` with ``p(y) = E_x p(y|x)``, computed in float64
from logits through ``log_softmax``. It lies in ``[1, num_classes]``: high when each
sample is classified confidently (sharp ``p(y|x)``) and the classes are used evenly
(flat ``p(y)``). It ignores the real data beyond what the classifier learnt from it,
so it complements FID/KID rather than replacing them.

The class balance: :func:`class_shares` is the share of samples the classifier
puts in each class (its argmax), and :func:`class_tv` the total variation
``1/2 sum_k |p_k - q_k|`` between the generated and the real shares: 0 when the
generator draws the classes in the real proportions, ``1 - q_k`` when every
sample falls in class k (0.9 for a balanced 10-class split). It names *which*
classes a collapsed generator dropped, which FID and recall cannot.
"""

from __future__ import annotations

import numpy as np


def log_softmax(logits: np.ndarray) -> np.ndarray:
  z = np.asarray(logits, np.float64)
  z = z - z.max(axis=-1, keepdims=True)
  return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def classifier_score(logits: np.ndarray) -> float:
  """``exp(mean_x sum_y p(y|x) (log p(y|x) - log p(y)))`` of ``logits [n, classes]``."""
  logits = np.asarray(logits)
  if logits.ndim != 2 or len(logits) == 0:
    raise ValueError(f"logits must be [n >= 1, classes], got shape {logits.shape}")
  log_p = log_softmax(logits)
  p = np.exp(log_p)
  log_py = np.log(p.mean(axis=0))
  kl = np.sum(np.where(p > 0, p * (log_p - log_py[None, :]), 0.0), axis=1)
  return float(np.exp(kl.mean()))


def class_shares(logits: np.ndarray, num_classes: int | None = None) -> np.ndarray:
  """Share of the rows of ``logits [n, classes]`` whose argmax is each class (float64, sum 1)."""
  logits = np.asarray(logits)
  if logits.ndim != 2 or len(logits) == 0:
    raise ValueError(f"logits must be [n >= 1, classes], got shape {logits.shape}")
  k = int(num_classes or logits.shape[1])
  counts = np.bincount(np.argmax(logits, axis=1), minlength=k).astype(np.float64)
  return counts / counts.sum()


def class_tv(shares: np.ndarray, reference_shares: np.ndarray) -> float:
  """Total variation ``1/2 sum_k |p_k - q_k|`` between two class distributions, in [0, 1]."""
  p, q = np.asarray(shares, np.float64), np.asarray(reference_shares, np.float64)
  if p.shape != q.shape or p.ndim != 1:
    raise ValueError(f"class shares must be two vectors of one length, got {p.shape} and {q.shape}")
  return float(0.5 * np.abs(p - q).sum())
