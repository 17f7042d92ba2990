"""Generators and discriminators, chosen by name.

Models know nothing of losses or optimizers: a generator maps ``z`` (and
``train``) to images in [-1, 1], a discriminator maps images to one logit per
example (for BEGAN, the auto-encoder's per-example reconstruction energy).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import flax.linen as nn

from jaxgan.models.began import BEGANDiscriminator, BEGANGenerator
from jaxgan.models.dcgan import DCGANDiscriminator, DCGANGenerator
from jaxgan.models.layers import Upsample2x
from jaxgan.models.mlp import MLPDiscriminator, MLPGenerator
from jaxgan.models.toy2d import Toy2DDiscriminator, Toy2DGenerator

# family name -> (generator class, discriminator class)
MODELS: dict[str, tuple[type[nn.Module], type[nn.Module]]] = {
    "mlp": (MLPGenerator, MLPDiscriminator),
    "dcgan": (DCGANGenerator, DCGANDiscriminator),
    "began": (BEGANGenerator, BEGANDiscriminator),
    "toy2d": (Toy2DGenerator, Toy2DDiscriminator),
}


def build_models(name: str, image_shape: Sequence[int], latent_dim: int,
                 generator_kwargs: Mapping[str, Any] | None = None,
                 discriminator_kwargs: Mapping[str, Any] | None = None):
  """Returns ``(generator, discriminator)`` modules of the family ``name``."""
  if name not in MODELS:
    raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
  g_cls, d_cls = MODELS[name]
  generator = g_cls(image_shape=tuple(image_shape), latent_dim=latent_dim, **dict(generator_kwargs or {}))
  discriminator = d_cls(**dict(discriminator_kwargs or {}))
  return generator, discriminator


__all__ = ["MODELS", "build_models", "MLPGenerator", "MLPDiscriminator",
           "DCGANGenerator", "DCGANDiscriminator", "BEGANGenerator", "BEGANDiscriminator",
           "Toy2DGenerator", "Toy2DDiscriminator", "Upsample2x"]
