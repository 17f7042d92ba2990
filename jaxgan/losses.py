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
    gp = gradient_penalty(critic_fn, real, fake, key)      # WGAN-GP
    r1 = r1_penalty(critic_fn, real)                        # R1 (weight gamma / 2)

Objectives (:data:`LOSSES`): ``"nonsaturating"``, ``"minimax"`` (Goodfellow et
al. 2014), ``"least_squares"`` (LSGAN, Mao et al. 2017), ``"wasserstein"``
(WGAN, Arjovsky et al. 2017; add weight clipping or a gradient penalty) and
``"hinge"`` (Lim & Ye 2017; Miyato et al. 2018), and ``"began"`` (Berthelot et
al. 2017), whose "logits" are a BEGAN discriminator's auto-encoder energies.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import optax
from jax import lax

Array = jax.Array


def _mean(x: Array) -> Array:
  return jnp.mean(x.astype(jnp.float32))


def bce_discriminator_loss(real_logits: Array, fake_logits: Array,
                           label_smoothing: float = 0.0) -> Array:
  r"""Binary cross-entropy discriminator loss (Goodfellow et al., 2014).

  .. math::
     L_D = -\mathbb{E}_x[\log \sigma(D(x))] - \mathbb{E}_z[\log(1 - \sigma(D(G(z))))]
         = -\mathbb{E}[\log\sigma(d_r)] - \mathbb{E}[\log\sigma(-d_f)]

  using ``1 - sigmoid(t) = sigmoid(-t)``. Shared by the minimax and the
  non-saturating game: they differ only in the generator's loss.

  ``label_smoothing`` = s > 0 is one-sided label smoothing (Salimans et al.,
  2016, sec. 3.4; TF-GAN's argument of the same name): the real examples'
  target is 1 - s, the fakes' stays 0, so D gains nothing from real logits
  beyond :math:`\log((1 - s) / s)`. The real term becomes
  :math:`-\mathbb{E}[(1 - s)\log\sigma(d_r) + s\log\sigma(-d_r)]`.
  """
  real = jax.nn.log_sigmoid(real_logits)
  if label_smoothing:
    real = (1.0 - label_smoothing) * real + label_smoothing * jax.nn.log_sigmoid(-real_logits)
  return -_mean(real) - _mean(jax.nn.log_sigmoid(-fake_logits))


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


def least_squares_discriminator_loss(real_logits: Array, fake_logits: Array) -> Array:
  r"""Least-squares discriminator loss (LSGAN; Mao et al., 2017, eq. 2).

  .. math::
     L_D = \tfrac12\,\mathbb{E}_x[(D(x) - b)^2] + \tfrac12\,\mathbb{E}_z[(D(G(z)) - a)^2]

  with the 0-1 coding of the paper's experiments, ``a = 0`` (fake), ``b = 1``
  (real). The ``1/2`` factors are the paper's (and TF-GAN's) convention; other
  implementations drop them, which scales the loss (not its minimiser) by 2.
  ``D`` is a linear output: no sigmoid. For a fixed ``G`` the optimal
  discriminator is ``D*(x) = (b p_d(x) + a p_g(x)) / (p_d(x) + p_g(x))``
  (Mao et al., eq. 4).
  """
  return 0.5 * _mean(jnp.square(real_logits - 1.0)) + 0.5 * _mean(jnp.square(fake_logits))


def least_squares_generator_loss(fake_logits: Array) -> Array:
  r"""Least-squares generator loss (LSGAN; Mao et al., 2017, eq. 2), target ``c = 1``.

  .. math:: L_G = \tfrac12\,\mathbb{E}_z[(D(G(z)) - c)^2]
  """
  return 0.5 * _mean(jnp.square(fake_logits - 1.0))


def wasserstein_discriminator_loss(real_logits: Array, fake_logits: Array) -> Array:
  r"""Wasserstein critic loss (WGAN; Arjovsky, Chintala & Bottou, 2017, eq. 3).

  .. math:: L_D = \mathbb{E}_z[D(G(z))] - \mathbb{E}_x[D(x)]

  ``-L_D`` estimates the Wasserstein-1 distance (up to the Lipschitz constant
  of ``D``) only when ``D`` is kept Lipschitz: with weight clipping (WGAN) or
  a gradient penalty (:func:`gradient_penalty`, WGAN-GP); unconstrained, the
  loss is unbounded below.
  """
  return _mean(fake_logits) - _mean(real_logits)


def wasserstein_generator_loss(fake_logits: Array) -> Array:
  r"""Wasserstein generator loss (Arjovsky et al., 2017): :math:`L_G = -\mathbb{E}_z[D(G(z))]`."""
  return -_mean(fake_logits)


def hinge_discriminator_loss(real_logits: Array, fake_logits: Array) -> Array:
  r"""Hinge discriminator loss (Geometric GAN, Lim & Ye, 2017; SNGAN, Miyato et al., 2018, eq. 16).

  .. math::
     L_D = \mathbb{E}_x[\max(0, 1 - D(x))] + \mathbb{E}_z[\max(0, 1 + D(G(z)))]

  For fixed ``G`` a pointwise optimum is ``D*(x) = sign(p_d(x) - p_g(x))``,
  where the loss equals ``2 (1 - TV(p_d, p_g))``.
  """
  return _mean(jax.nn.relu(1.0 - real_logits)) + _mean(jax.nn.relu(1.0 + fake_logits))


def hinge_generator_loss(fake_logits: Array) -> Array:
  r"""Hinge-GAN generator loss (Lim & Ye, 2017; Miyato et al., 2018): :math:`L_G = -\mathbb{E}_z[D(G(z))]`."""
  return -_mean(fake_logits)


def began_discriminator_loss(real_energy: Array, fake_energy: Array, k: Array | float = 0.0) -> Array:
  r"""BEGAN discriminator loss (Berthelot, Schumm & Metz, 2017, eq. 4).

  .. math:: L_D = \mathbb{E}[\mathcal{L}(x)] - k_t\, \mathbb{E}[\mathcal{L}(G(z))]

  on the auto-encoder energies :math:`\mathcal{L}(v) = |v - D(v)|` (what a
  BEGAN discriminator returns, one per example), with the equilibrium control
  variable ``k`` (:func:`began_k_update`; a constant here, no gradient).
  """
  return _mean(real_energy) - lax.stop_gradient(jnp.asarray(k, jnp.float32)) * _mean(fake_energy)


def began_generator_loss(fake_energy: Array) -> Array:
  r"""BEGAN generator loss (Berthelot et al., 2017, eq. 4): :math:`L_G = \mathbb{E}[\mathcal{L}(G(z))]`."""
  return _mean(fake_energy)


def began_k_update(k: Array, real_energy: Array, fake_energy: Array, *, gamma: float,
                   lambda_k: float) -> Array:
  r"""BEGAN's proportional control of ``k`` (Berthelot et al., 2017, eq. 4), kept in [0, 1].

  .. math:: k_{t+1} = \mathrm{clip}_{[0,1]}\big(k_t + \lambda_k (\gamma\, \mathcal{L}(x) - \mathcal{L}(G(z)))\big)

  ``gamma = E[L(G(z))] / E[L(x)]`` is the diversity ratio the control steers
  to: when the fakes are reconstructed too well (``L(G(z)) < gamma L(x)``),
  ``k`` grows and D pushes the fakes' energy up harder; otherwise it shrinks.
  """
  balance = gamma * _mean(real_energy) - _mean(fake_energy)
  return jnp.clip(jnp.asarray(k, jnp.float32) + lambda_k * balance, 0.0, 1.0)


def began_convergence(real_energy: Array, fake_energy: Array, *, gamma: float) -> Array:
  r"""BEGAN's global convergence measure (Berthelot et al., 2017, sec. 3.4.1).

  .. math:: \mathcal{M}_{global} = \mathcal{L}(x) + |\gamma\, \mathcal{L}(x) - \mathcal{L}(G(z))|
  """
  real = _mean(real_energy)
  return real + jnp.abs(gamma * real - _mean(fake_energy))


# kind -> (discriminator loss, generator loss). Later objectives register here.
LOSSES: dict[str, tuple[Callable[[Array, Array], Array], Callable[[Array], Array]]] = {
    "nonsaturating": (bce_discriminator_loss, nonsaturating_generator_loss),
    "minimax": (bce_discriminator_loss, minimax_generator_loss),
    "least_squares": (least_squares_discriminator_loss, least_squares_generator_loss),
    "wasserstein": (wasserstein_discriminator_loss, wasserstein_generator_loss),
    "hinge": (hinge_discriminator_loss, hinge_generator_loss),
    "began": (began_discriminator_loss, began_generator_loss),   # on auto-encoder energies
}

# The objectives on a pair of real / fake logits (BEGAN's, on auto-encoder energies with its
# control variable k_t, is trained by its own family step).
PAIR_LOSSES = tuple(k for k, (d_loss, _) in LOSSES.items() if d_loss is not began_discriminator_loss)

# The objectives whose D loss is the cross-entropy (the ones ``label_smoothing`` applies to).
CROSS_ENTROPY_LOSSES = tuple(k for k, (d_loss, _) in LOSSES.items() if d_loss is bce_discriminator_loss)


def _lookup(kind: str):
  try:
    return LOSSES[kind]
  except KeyError:
    raise ValueError(
        f"unknown GAN loss {kind!r}; choose one of {sorted(LOSSES)}") from None


def discriminator_loss(kind: str, real_logits: Array, fake_logits: Array, **kwargs) -> Array:
  """Discriminator loss of the objective ``kind`` (see :data:`LOSSES`).

  ``kwargs`` go to the loss: ``k`` for ``"began"``, ``label_smoothing`` for
  the cross-entropy objectives (``"nonsaturating"``, ``"minimax"``).
  """
  return _lookup(kind)[0](real_logits, fake_logits, **kwargs)


def generator_loss(kind: str, fake_logits: Array) -> Array:
  """Generator loss of the objective ``kind`` (see :data:`LOSSES`)."""
  return _lookup(kind)[1](fake_logits)


def discriminator_accuracy(real_logits: Array, fake_logits: Array) -> tuple[Array, Array]:
  """Share of real samples classified real (logit > 0) and of fakes classified fake.

  For the BCE objectives the threshold is probability 1/2; for the hinge and
  Wasserstein objectives it is the sign of the critic's output (their decision
  boundary); for least squares (targets 0 and 1) a threshold of 1/2 would be
  the natural one, so read its accuracy as "sign of D", nothing more.
  """
  return _mean(real_logits > 0), _mean(fake_logits < 0)


# ----------------------------------------------------------------------------------------
# Penalties on the critic's input gradient. ``critic_fn(x) -> [N] logits`` must treat the
# examples independently (no BatchNorm in training mode), since the per-example gradients
# are taken as the gradient of ``sum_i critic_fn(x)_i``.

def interpolates(real: Array, fake: Array, key: Array | None, eps: Array | None = None) -> Array:
  r"""Random points on the lines between paired real and fake examples (Gulrajani et al., 2017).

  :math:`\hat x_i = \epsilon_i x_i + (1 - \epsilon_i) \tilde x_i` with one
  :math:`\epsilon_i \sim U[0, 1]` per example (drawn from ``key``, or given
  as ``eps`` of shape ``[N]``), broadcast over its pixels.
  """
  if real.shape != fake.shape:
    raise ValueError(f"real and fake batches differ in shape: {real.shape} vs {fake.shape}")
  shape = (real.shape[0],) + (1,) * (real.ndim - 1)
  eps = (jax.random.uniform(key, shape, jnp.float32) if eps is None
         else jnp.reshape(eps, shape).astype(jnp.float32))
  return (eps * real + (1.0 - eps) * fake).astype(real.dtype)


def critic_input_gradients(critic_fn: Callable[[Array], Array], x: Array) -> Array:
  """Per-example gradients ``grad_x critic_fn(x)_i`` (same shape as ``x``)."""
  return jax.grad(lambda x_: jnp.sum(critic_fn(x_).astype(jnp.float32)))(x)


def safe_norm(g: Array) -> Array:
  r"""Per-example L2 norm :math:`\|g_i\|_2` over all but the first axis, safe at zero.

  ``sqrt`` has an infinite derivative at 0, so a naive ``sqrt(sum(g**2))``
  turns into NaN gradients (``0 * inf``) wherever the critic is flat, e.g. a
  dead ReLU critic or a constant one. Here the norm is exact for ``g != 0``
  and, at ``g == 0``, its value is 0 and its gradient 0 (a valid subgradient):
  ``sqrt`` only ever sees a positive argument (the double-``where`` trick).
  """
  sq = jnp.sum(jnp.square(g.astype(jnp.float32)).reshape(g.shape[0], -1), axis=1)
  positive = sq > 0
  return jnp.where(positive, jnp.sqrt(jnp.where(positive, sq, 1.0)), 0.0)


def gradient_penalty_from_norms(norms: Array, *, one_sided: bool = False) -> Array:
  r"""``mean((norm - 1)^2)``, or ``mean(max(0, norm - 1)^2)`` when ``one_sided``."""
  excess = norms - 1.0
  if one_sided:
    excess = jax.nn.relu(excess)
  return _mean(jnp.square(excess))


def gradient_penalty(critic_fn: Callable[[Array], Array], real: Array, fake: Array, key: Array,
                     *, one_sided: bool = False) -> Array:
  r"""The WGAN-GP gradient penalty (Gulrajani et al., 2017, eq. 3), without its weight.

  .. math::
     GP = \mathbb{E}_{\hat x}\big[(\|\nabla_{\hat x} D(\hat x)\|_2 - 1)^2\big],\qquad
     \hat x = \epsilon x + (1 - \epsilon) \tilde x,\ \epsilon \sim U[0, 1]

  per example (:func:`interpolates`); the critic loss is
  ``wasserstein_discriminator_loss + lambda * GP`` with ``lambda = 10`` in the
  paper. ``one_sided=True`` penalises only norms above 1,
  :math:`\mathbb{E}[\max(0, \|\nabla D\| - 1)^2]` (the variant the paper
  mentions; Petzka et al., 2018 argue for it). The norm is :func:`safe_norm`:
  finite, with a finite gradient, where the critic's input gradient is zero.
  The gradient is taken with :func:`jax.grad`, so the penalty can itself be
  differentiated with respect to the critic's parameters (double backward).
  """
  x_hat = interpolates(real, fake, key)
  norms = safe_norm(critic_input_gradients(critic_fn, x_hat))
  return gradient_penalty_from_norms(norms, one_sided=one_sided)


def r1_penalty(critic_fn: Callable[[Array], Array], real: Array) -> Array:
  r"""The R1 regulariser (Mescheder, Geiger & Nowozin, 2018, eq. 9), without its weight.

  .. math:: R_1 = \mathbb{E}_{x \sim p_d}\big[\|\nabla_x D(x)\|_2^2\big]

  The paper adds :math:`\frac{\gamma}{2} R_1` to the discriminator loss; the
  caller applies the ``gamma / 2`` (``jaxgan.steps`` takes ``r1_weight = gamma``).
  No square root, hence no trouble at zero gradient.
  """
  g = critic_input_gradients(critic_fn, real)
  return _mean(jnp.sum(jnp.square(g.astype(jnp.float32)).reshape(g.shape[0], -1), axis=1))


# ----------------------------------------------------------------------------------------
# Image-to-image translation (CycleGAN, StarGAN): L1 terms and the domain classification
# loss. Each returns the term without its weight (lambda); the steps apply the weights.

def l1_loss(x: Array, y: Array) -> Array:
  r"""Mean absolute error over every element, :math:`\mathrm{mean}|x - y|` (PyTorch's ``L1Loss``)."""
  if x.shape != y.shape:
    raise ValueError(f"L1 loss of arrays of different shapes: {x.shape} vs {y.shape}")
  return _mean(jnp.abs(x.astype(jnp.float32) - y.astype(jnp.float32)))


def cycle_consistency_loss(real: Array, reconstructed: Array) -> Array:
  r"""Cycle-consistency loss of one direction (CycleGAN; Zhu et al., 2017, eq. 2), without lambda.

  .. math:: L_{cyc} = \mathbb{E}_x\big[\|F(G(x)) - x\|_1\big]

  as a mean over pixels (the reference's ``L1Loss``); the full loss adds the
  other direction, :math:`\mathbb{E}_y\|G(F(y)) - y\|_1`, and is weighted by
  ``lambda = 10``.
  """
  return l1_loss(reconstructed, real)


def identity_loss(real: Array, mapped: Array) -> Array:
  r"""Identity-mapping loss (Zhu et al., 2017, sec. 5.2, after Taigman et al., 2017), without weight.

  .. math:: L_{idt} = \mathbb{E}_y\big[\|G(y) - y\|_1\big]

  for ``G: X -> Y`` applied to a real ``y`` of its own target domain; the
  reference code weights it ``0.5 * lambda``.
  """
  return l1_loss(mapped, real)


def reconstruction_loss(real: Array, reconstructed: Array) -> Array:
  r"""StarGAN's reconstruction loss (Choi et al., 2018, eq. 4), without ``lambda_rec``.

  .. math:: L_{rec} = \mathbb{E}_{x, c, c'}\big[\|x - G(G(x, c), c')\|_1\big]

  with ``c`` the target and ``c'`` the original domain label.
  """
  return l1_loss(reconstructed, real)


CLASSIFICATION_LOSSES = ("softmax", "bce")


def domain_classification_losses(logits: Array, labels: Array, kind: str = "softmax") -> Array:
  r"""Per-example domain classification loss :math:`-\log D_{cls}(c \mid x)` (Choi et al., 2018, eq. 2-3).

  * ``"softmax"`` (single-label datasets, e.g. RaFD's expressions): softmax
    cross-entropy :math:`-\sum_k y_k \log \mathrm{softmax}(l)_k` with
    ``labels`` one-hot (or probabilities) ``[N, K]``, or class indices ``[N]``.
  * ``"bce"`` (multi-attribute labels, e.g. CelebA's hair colour, gender,
    age): binary cross-entropy per attribute, summed over the ``K``
    attributes, :math:`-\sum_k [y_k \log\sigma(l_k) + (1 - y_k)\log\sigma(-l_k)]`.

  Returns ``[N]``; :func:`domain_classification_loss` averages it over the
  batch (for ``"bce"`` that is the reference's sum over attributes divided
  by the batch size).
  """
  logits = logits.astype(jnp.float32)
  if kind == "softmax":
    if labels.ndim == logits.ndim - 1 and jnp.issubdtype(labels.dtype, jnp.integer):
      return optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    _check_label_shape(logits, labels)
    return optax.softmax_cross_entropy(logits, labels.astype(jnp.float32))
  if kind == "bce":
    _check_label_shape(logits, labels)
    return jnp.sum(optax.sigmoid_binary_cross_entropy(logits, labels.astype(jnp.float32)), axis=-1)
  raise ValueError(f"unknown domain classification loss {kind!r}; choose one of "
                   f"{list(CLASSIFICATION_LOSSES)}")


def _check_label_shape(logits: Array, labels: Array) -> None:
  if labels.shape != logits.shape:
    raise ValueError(f"domain labels of shape {tuple(labels.shape)} do not match the classifier's "
                     f"logits {tuple(logits.shape)}: give one label entry per domain logit")


def domain_classification_loss(logits: Array, labels: Array, kind: str = "softmax") -> Array:
  r"""Batch mean of :func:`domain_classification_losses` (StarGAN's :math:`L_{cls}`, without ``lambda_cls``).

  For D on real images, :math:`L^r_{cls} = \mathbb{E}_{x,c'}[-\log D_{cls}(c'|x)]`
  (eq. 2); for G on translated images, :math:`L^f_{cls} =
  \mathbb{E}_{x,c}[-\log D_{cls}(c|G(x, c))]` (eq. 3).
  """
  return _mean(domain_classification_losses(logits, labels, kind))


def masked_domain_classification_loss(logits: Array, labels: Array, mask: Array,
                                      sizes, kinds="softmax") -> Array:
  r"""StarGAN's multi-dataset classification loss with the mask vector (Choi et al., 2018, sec. 3.2).

  Several datasets, each with its own label set of ``sizes[d]`` entries, are
  trained together: the label vector is the concatenation
  :math:`\tilde c = [c_1, \ldots, c_n]` (the unknown datasets' parts are
  zeros) and ``mask`` ``[N, n]`` is the one-hot vector :math:`m` saying which
  dataset's labels are known. The classifier outputs ``sum(sizes)`` logits;
  only the known part counts:

  .. math:: L_{cls} = \frac1N \sum_i \sum_d m_{id}\, \ell_{d}\big(l_{i, S_d}, \tilde c_{i, S_d}\big)

  with :math:`S_d` dataset ``d``'s slice and :math:`\ell_d` its per-example
  loss (``kinds[d]``: ``"softmax"`` or ``"bce"``, or one kind for all), so the
  unknown datasets' logits get no loss and no gradient.
  """
  sizes = tuple(int(s) for s in sizes)
  kinds = (kinds,) * len(sizes) if isinstance(kinds, str) else tuple(kinds)
  if len(sizes) < 2:
    raise ValueError(f"the mask vector needs at least two datasets, got label sizes {sizes}; "
                     f"use domain_classification_loss for one dataset")
  if len(kinds) != len(sizes):
    raise ValueError(f"{len(kinds)} loss kinds for {len(sizes)} datasets; give one per dataset")
  if logits.shape[-1] != sum(sizes) or labels.shape != logits.shape:
    raise ValueError(f"logits {tuple(logits.shape)} and labels {tuple(labels.shape)} must both have "
                     f"sum(sizes) = {sum(sizes)} entries per example (label sizes {sizes})")
  if mask.shape != logits.shape[:-1] + (len(sizes),):
    raise ValueError(f"the mask has shape {tuple(mask.shape)}; expected "
                     f"{tuple(logits.shape[:-1]) + (len(sizes),)} (one entry per dataset)")
  total, start = jnp.zeros(logits.shape[:-1], jnp.float32), 0
  for d, (size, kind) in enumerate(zip(sizes, kinds)):
    part = domain_classification_losses(logits[..., start:start + size],
                                        labels[..., start:start + size], kind)
    # where, not a product: an unknown part's loss (even inf/nan) never leaks into the sum.
    total = total + jnp.where(mask[..., d] > 0, mask[..., d].astype(jnp.float32) * part, 0.0)
    start += size
  return _mean(total)


def domain_classification_accuracy(logits: Array, labels: Array, kind: str = "softmax") -> Array:
  """Share of correct domain predictions: argmax for ``"softmax"``, the sign of each attribute's logit for ``"bce"``."""
  if kind == "softmax":
    target = labels if labels.ndim == logits.ndim - 1 else jnp.argmax(labels, axis=-1)
    return _mean(jnp.argmax(logits, axis=-1) == target)
  return _mean((logits > 0) == (labels > 0.5))


# ----------------------------------------------------------------------------------------
# Label-aware GANs (ACGAN, semi-supervised GAN). Class logits are ``[N, K]``, labels int ``[N]``.

def class_cross_entropy(class_logits: Array, labels: Array) -> Array:
  r"""Mean softmax cross-entropy :math:`-\mathbb{E}[\log \mathrm{softmax}(l)_y]` of integer labels ``y``."""
  return _mean(optax.softmax_cross_entropy_with_integer_labels(
      class_logits.astype(jnp.float32), jnp.asarray(labels, jnp.int32)))


def class_accuracy(class_logits: Array, labels: Array) -> Array:
  """Share of examples whose arg-max class is the label."""
  return _mean(jnp.argmax(class_logits, axis=-1) == labels)


def acgan_discriminator_loss(kind: str, real_source: Array, fake_source: Array,
                             real_class_logits: Array, fake_class_logits: Array,
                             real_labels: Array, fake_labels: Array,
                             class_weight: float = 1.0, fake_class_weight: float = 1.0,
                             **kwargs) -> Array:
  r"""ACGAN discriminator loss (Odena, Olah & Shlens, 2017, eq. 2-3), to minimise.

  .. math::
     L_D = L^{adv}_D + w\,\big(\mathbb{E}[-\log P(C = c \mid x)] + w_f\,\mathbb{E}[-\log P(C = c \mid G(z, c))]\big)

  D maximises :math:`L_S + L_C` in the paper; :math:`L^{adv}_D` is the
  adversarial (source) loss of the objective ``kind`` (:data:`LOSSES`; the
  paper's is ``"nonsaturating"``'s :math:`-L_S`) on the source logits, and
  the class term is the cross-entropy of the class head on the real images
  with their labels and on the fakes with the labels they were generated
  for. ``w = class_weight`` (1 in the paper). ``w_f = fake_class_weight``
  (1 in the paper; 0 trains D's class head on real images only, as the Keras
  ACGAN example does: D then cannot learn to read the labels from the fakes'
  own quirks, which G could satisfy without drawing the class). ``kwargs`` go to the
  adversarial loss (:func:`discriminator_loss`), e.g. ``label_smoothing``.
  """
  adv = discriminator_loss(kind, real_source, fake_source, **kwargs)
  return adv + class_weight * (class_cross_entropy(real_class_logits, real_labels)
                               + fake_class_weight * class_cross_entropy(fake_class_logits, fake_labels))


def acgan_generator_loss(kind: str, fake_source: Array, fake_class_logits: Array,
                         fake_labels: Array, class_weight: float = 1.0) -> Array:
  r"""ACGAN generator loss (Odena et al., 2017): G maximises :math:`L_C - L_S`; here, to minimise,

  .. math:: L_G = L^{adv}_G + w\,\mathbb{E}[-\log P(C = c \mid G(z, c))]

  with the adversarial generator loss of ``kind`` (the non-saturating form
  in practice, as in the reference implementations).
  """
  return generator_loss(kind, fake_source) + class_weight * class_cross_entropy(
      fake_class_logits, fake_labels)


def sgan_log_z(class_logits: Array) -> Array:
  r""":math:`\log Z(x) = \log\sum_k \exp l_k(x)`: the semi-supervised discriminator's real-vs-fake logit.

  With K logits and the fake class's logit fixed at 0 (Salimans et al.,
  2016, sec. 5), :math:`p(\text{real} \mid x) = Z / (Z + 1) = \sigma(\log Z)`.
  """
  return jax.nn.logsumexp(class_logits.astype(jnp.float32), axis=-1)


def sgan_real_probability(class_logits: Array) -> Array:
  r""":math:`D(x) = Z(x) / (Z(x) + 1)`, :math:`Z = \sum_k \exp l_k`, computed stably as :math:`\sigma(\log Z)`."""
  return jax.nn.sigmoid(sgan_log_z(class_logits))


def sgan_supervised_loss(class_logits: Array, labels: Array) -> Array:
  r"""Supervised term of the semi-supervised GAN (Salimans et al., 2016, eq. 5): :math:`-\mathbb{E}[\log p(y \mid x, y < K+1)]`.

  The K-way softmax cross-entropy on labelled examples (the implicit fake
  class does not enter: it is conditioned away).
  """
  return class_cross_entropy(class_logits, labels)


def sgan_unsupervised_loss(real_logits: Array, fake_logits: Array) -> Array:
  r"""Unsupervised term of the semi-supervised GAN (Salimans et al., 2016, eq. 5), on class logits.

  .. math::
     L_{unsup} = -\mathbb{E}_x[\log D(x)] - \mathbb{E}_z[\log(1 - D(G(z)))],\qquad
     D = \frac{Z}{Z + 1} = \sigma(\log Z)

  i.e. :func:`bce_discriminator_loss` on the logits :math:`\log Z`
  (:func:`sgan_log_z`); unlabelled real images on the left, fakes on the
  right. Salimans et al.'s code weights it 1/2 relative to the supervised
  term (the trainer's ``unsupervised_weight``).
  """
  return bce_discriminator_loss(sgan_log_z(real_logits), sgan_log_z(fake_logits))


def sgan_generator_loss(fake_logits: Array) -> Array:
  r"""Non-saturating generator loss of the semi-supervised GAN: :math:`-\mathbb{E}_z[\log D(G(z))]`, :math:`D = \sigma(\log Z)`."""
  return nonsaturating_generator_loss(sgan_log_z(fake_logits))


def feature_matching_loss(real_features: Array, fake_features: Array) -> Array:
  r"""Feature matching (Salimans et al., 2016, sec. 3.1), as a mean over the F features.

  .. math:: L_G = \frac1F\big\|\mathbb{E}_x f(x) - \mathbb{E}_z f(G(z))\big\|_2^2

  with :math:`f` an intermediate layer of D (``[N, F]`` activations; the
  batch means are the expectations). The real statistics are a target:
  no gradient flows into them. Salimans et al.'s code takes the same mean of
  squared differences of the last hidden layer.
  """
  real = lax.stop_gradient(jnp.mean(real_features.astype(jnp.float32), axis=0))
  fake = jnp.mean(fake_features.astype(jnp.float32), axis=0)
  return jnp.mean(jnp.square(real - fake))
