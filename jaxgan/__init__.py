"""jaxgan: Generative Adversarial Networks in JAX/Flax.

What research code uses is here after ``import jaxgan``: the models (:mod:`jaxgan.models`),
objectives (:mod:`jaxgan.losses`), state and steps, data (:mod:`jaxgan.data`), sampling
(:func:`generate_images`, :func:`to_uint8`, :func:`save_images`), checkpoints
(:class:`Checkpointer`), many seeds in one program (:class:`MultiSeed`) and data parallelism.
"""

import importlib

from jaxgan import data, generation, losses, models, parallel, steps
from jaxgan.generation import generate_images, save_images, to_uint8
from jaxgan.parallel import DataParallel
from jaxgan.state import GANState, create_state
from jaxgan.steps import make_d_step, make_g_step, make_train_step

__version__ = "0.1.0"

# Imported on first use (orbax and the family registry take a while to import).
_LAZY = {"Checkpointer": ("jaxgan.checkpoint", "Checkpointer"),
         "MultiSeed": ("jaxgan.multiseed", "MultiSeed"),
         "metrics": ("jaxgan.metrics", None)}


def __getattr__(name):
  if name not in _LAZY:
    raise AttributeError(f"module 'jaxgan' has no attribute {name!r}")
  module, attr = _LAZY[name]
  value = importlib.import_module(module)
  return value if attr is None else getattr(value, attr)


__all__ = ["Checkpointer", "DataParallel", "GANState", "MultiSeed", "create_state", "data",
           "generate_images", "generation", "losses", "make_d_step", "make_g_step",
           "make_train_step", "metrics", "models", "parallel", "save_images", "steps", "to_uint8"]
