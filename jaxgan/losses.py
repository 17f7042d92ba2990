"""Pure GAN losses on discriminator logits.

Every loss takes raw logits ``D(x)`` (no sigmoid applied) and returns a scalar
to be *minimised* by the network it belongs to. Probabilities are never formed:
``log sigmoid`` is evaluated with :func:`jax.nn.log_sigmoid`, which stays finite
and accurate for logits of any magnitude (``log(sigmoid(-100))`` is ``-100``,
not ``-inf``).

Conventions: the discriminator loss is the *sum* of the real and fake terms,
as in Goodfellow et al. (2014) and the DCGAN reference code; each term is a
mean over the batch.

Public API (research code)::

    d_loss = discriminator_loss("nonsaturating", real_logits, fake_logits)
    g_loss = generator_loss("nonsaturating", fake_logits)
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

Array = jax.Array


def _mean(x: Array) -> Array:
  return jnp.mean(x.astype(jnp.float32))


def bce_discriminator_loss(real_logits: Array, fake_logits: Array) -> Array:
  r"""Binary cross-entropy discriminator loss (Goodfellow et al., 2014).

  .. math::
     L_D = -\mathbb{E}_x[\log \sigma(D(x))] - \mathbb{E}_z[\log(1 - \sigma(D(G(z))))]
         = -\mathbb{E}[\log\sigma(d_r)] - \mathbb{E}[\log\sigma(-d_f)]

  using ``1 - sigmoid(t) = sigmoid(-t)``. Shared by the minimax and the
  non-saturating game: they differ only in the generator's loss.
  """
  return -_mean(jax.nn.log_sigmoid(real_logits)) - _mean(jax.nn.log_sigmoid(-fake_logits))


def minimax_generator_loss(fake_logits: Array) -> Array:
  r"""The original minimax generator loss (Goodfellow et al., 2014, eq. 1).

  .. math:: L_G = \mathbb{E}_z[\log(1 - \sigma(D(G(z))))] = \mathbb{E}[\log\sigma(-d_f)]

  Minimising it saturates early in training (its gradient vanishes when D
  confidently rejects the fakes); kept for faithfulness and comparisons.
  """
  return _mean(jax.nn.log_sigmoid(-fake_logits))


def nonsaturating_generator_loss(fake_logits: Array) -> Array:
  r"""The non-saturating generator loss (Goodfellow et al., 2014, sec. 3).

  .. math:: L_G = -\mathbb{E}_z[\log \sigma(D(G(z)))] = -\mathbb{E}[\log\sigma(d_f)]

  Same fixed point as the minimax game, strong gradients early on. This is the
  "BCE with real labels for the fakes" loss of most DCGAN implementations.
  """
  return -_mean(jax.nn.log_sigmoid(fake_logits))


# kind -> (discriminator loss, generator loss). Later objectives register here.
LOSSES: dict[str, tuple[Callable[[Array, Array], Array], Callable[[Array], Array]]] = {
    "nonsaturating": (bce_discriminator_loss, nonsaturating_generator_loss),
    "minimax": (bce_discriminator_loss, minimax_generator_loss),
}


def _lookup(kind: str):
  try:
    return LOSSES[kind]
  except KeyError:
    raise ValueError(
        f"unknown GAN loss {kind!r}; choose one of {sorted(LOSSES)}") from None


def discriminator_loss(kind: str, real_logits: Array, fake_logits: Array) -> Array:
  """Discriminator loss of the objective ``kind`` (see :data:`LOSSES`)."""
  return _lookup(kind)[0](real_logits, fake_logits)


def generator_loss(kind: str, fake_logits: Array) -> Array:
  """Generator loss of the objective ``kind`` (see :data:`LOSSES`)."""
  return _lookup(kind)[1](fake_logits)


def discriminator_accuracy(real_logits: Array, fake_logits: Array) -> tuple[Array, Array]:
  """Share of real samples classified real (logit > 0) and of fakes classified fake."""
  return _mean(real_logits > 0), _mean(fake_logits < 0)
