"""The unconditional GAN: ``G(z)`` against ``D(x)`` under one of the pairwise objectives.

Vanilla GAN (minimax / non-saturating), DCGAN, LSGAN, WGAN (weight clipping),
WGAN-GP and R1 (gradient penalties), hinge, SNGAN (the ResNets with spectral normalisation): one family whose step is
:func:`jaxgan.steps.train_step_fn`; the objective and the training mechanics
(``n_critic``, ``clip``, ``gp_weight``, ...) are config keys. Everything it does
is the :class:`~jaxgan.families.base.Family` default.
"""

from __future__ import annotations

from jaxgan.families.base import Family


class GAN(Family):
  name = "gan"
  models = ("mlp", "dcgan", "resnet")
