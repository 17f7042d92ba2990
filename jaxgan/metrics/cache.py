"""Where the metrics keep what they compute once (reference statistics, converted networks)."""

from __future__ import annotations

import os

CACHE_ENV = "JAXGAN_CACHE_DIR"


def default_cache_dir() -> str:
  """``$JAXGAN_CACHE_DIR``, else ``$XDG_CACHE_HOME/jaxgan``, else ``~/.cache/jaxgan``."""
  if os.environ.get(CACHE_ENV):
    return os.path.abspath(os.path.expanduser(os.environ[CACHE_ENV]))
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return os.path.join(base, "jaxgan")
