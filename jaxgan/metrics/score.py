"""The classifier score: the Inception Score (Salimans et al., 2016) with our classifier.

``CS = exp(E_x KL(p(y|x) || p(y)))`` with ``p(y) = E_x p(y|x)``, computed in float64
from logits through ``log_softmax``. It lies in ``[1, num_classes]``: high when each
sample is classified confidently (sharp ``p(y|x)``) and the classes are used evenly
(flat ``p(y)``). It ignores the real data beyond what the classifier learnt from it,
so it complements FID/KID rather than replacing them.
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
