"""Generators and discriminators, chosen by name.

Models know nothing of losses or optimizers: a generator maps ``z`` (and
``train``) to images in [-1, 1], a discriminator maps images to one logit per
example (for BEGAN, the auto-encoder's per-example reconstruction energy).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import flax.linen as nn

from jaxgan.models.began import BEGANDiscriminator, BEGANGenerator
from jaxgan.models.conditional import (ACGANDiscriminator, ConditionalDCGANDiscriminator,
                                       ConditionalDCGANGenerator, ConditionalMLPDiscriminator,
                                       ConditionalMLPGenerator, SGANDiscriminator, SGANGenerator)
from jaxgan.models.dcgan import DCGANDiscriminator, DCGANGenerator
from jaxgan.models.layers import Upsample2x
from jaxgan.models.mlp import MLPDiscriminator, MLPGenerator
from jaxgan.models.resnet import (ConditionalResNetDiscriminator, ConditionalResNetGenerator,
                                  ResNetDiscriminator, ResNetGenerator)
from jaxgan.models.toy2d import Toy2DDiscriminator, Toy2DGenerator

# model name -> (generator class, discriminator class); each name is trained by one family
# (jaxgan.families)
MODELS: dict[str, tuple[type[nn.Module], type[nn.Module]]] = {
    "mlp": (MLPGenerator, MLPDiscriminator),
    "dcgan": (DCGANGenerator, DCGANDiscriminator),
    "resnet": (ResNetGenerator, ResNetDiscriminator),   # SNGAN's (Miyato et al., 2018)
    "began": (BEGANGenerator, BEGANDiscriminator),
    "toy2d": (Toy2DGenerator, Toy2DDiscriminator),
    # Label-aware families (jaxgan.models.conditional): they need a dataset with labels.
    "cgan_mlp": (ConditionalMLPGenerator, ConditionalMLPDiscriminator),
    "cgan_dcgan": (ConditionalDCGANGenerator, ConditionalDCGANDiscriminator),
    "cgan_resnet": (ConditionalResNetGenerator, ConditionalResNetDiscriminator),  # cBN + projection
    "acgan": (ConditionalDCGANGenerator, ACGANDiscriminator),
    "sgan": (SGANGenerator, SGANDiscriminator),
}


def build_models(name: str, image_shape: Sequence[int], latent_dim: int,
                 generator_kwargs: Mapping[str, Any] | None = None,
                 discriminator_kwargs: Mapping[str, Any] | None = None, num_classes: int = 0):
  """Returns ``(generator, discriminator)`` modules of the model ``name``.

  ``num_classes`` (the dataset's; 0 = keep the modules' default) reaches the
  label-aware modules (those with a ``num_classes`` field) unless their kwargs set it.
  """
  if name not in MODELS:
    raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
  g_cls, d_cls = MODELS[name]
  g_kwargs, d_kwargs = dict(generator_kwargs or {}), dict(discriminator_kwargs or {})
  for cls, kwargs in ((g_cls, g_kwargs), (d_cls, d_kwargs)):
    if num_classes and "num_classes" in getattr(cls, "__dataclass_fields__", {}):
      kwargs.setdefault("num_classes", int(num_classes))
  generator = g_cls(image_shape=tuple(image_shape), latent_dim=latent_dim, **g_kwargs)
  discriminator = d_cls(**d_kwargs)
  return generator, discriminator


__all__ = ["MODELS", "build_models", "MLPGenerator", "MLPDiscriminator",
           "DCGANGenerator", "DCGANDiscriminator", "ResNetGenerator", "ResNetDiscriminator", "BEGANGenerator", "BEGANDiscriminator",
           "Toy2DGenerator", "Toy2DDiscriminator", "Upsample2x",
           "ConditionalMLPGenerator", "ConditionalMLPDiscriminator", "ConditionalDCGANGenerator",
           "ConditionalDCGANDiscriminator", "ConditionalResNetGenerator", "ConditionalResNetDiscriminator", "ACGANDiscriminator", "SGANGenerator", "SGANDiscriminator"]
