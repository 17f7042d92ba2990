"""Label-aware networks: conditional GAN, ACGAN and the semi-supervised GAN's classifier.

* **Conditional GAN** (Mirza & Osindero, 2014): ``G(z, y)`` joins a learned
  label embedding to ``z``; ``D(x, y)`` sees the label either by concatenation
  (the embedding joined to the flattened image for an MLP, broadcast to extra
  input channels for a convolutional D) or as a **projection discriminator**
  (Miyato & Koyama, 2018): ``D(x, y) = psi(phi(x)) + <embed(y), phi(x)>``.
  Modules that take a label have ``takes_label = True`` and are called
  ``module(x, label, train=...)`` (see :func:`jaxgan.state.apply_model`).
* **ACGAN** (Odena, Olah & Shlens, 2017): the generator is the conditional
  one; the discriminator sees the image only and has two heads,
  ``D(x) -> (source logit [N], class logits [N, K])``.
* **Semi-supervised GAN** (Odena, 2016; Salimans et al., 2016): the
  discriminator is a K-way classifier ``D(x) -> (class logits [N, K],
  features [N, F])``; the fake class is implicit (its logit fixed at 0), so
  ``p(real | x) = Z / (Z + 1)`` with ``Z = sum_k exp(l_k)``
  (:func:`jaxgan.losses.sgan_real_probability`). ``features`` (the last hidden
  layer) serve the feature-matching generator loss.

Which step trains them is their family's business (:mod:`jaxgan.families`).
Models know nothing of losses: they only declare the shape of what they return.
"""

from __future__ import annotations

from typing import ClassVar, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxgan.models.dcgan import DCGANGenerator, dcgan_trunk
from jaxgan.models.layers import WeightNormDense, dcgan_kernel_init, maybe_spectral_norm
from jaxgan.models.mlp import MLPGenerator

CONDITIONINGS = ("concat", "projection")


def _check_classes(num_classes: int) -> None:
  if not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
    raise ValueError(f"a label-aware model needs num_classes >= 2 (the dataset's classes), got "
                     f"{num_classes!r}; use a dataset with labels")


def _embed(label: jax.Array, num_classes: int, features: int, name: str | None = None) -> jax.Array:
  """Learned label embedding ``[N] int -> [N, features]`` (init N(0, 1), as ``torch.nn.Embedding``)."""
  return nn.Embed(num_classes, features, embedding_init=nn.initializers.normal(1.0), name=name)(
      jnp.asarray(label, jnp.int32))


LABEL_JOINS = ("concat", "multiply")


def _joint_input(z: jax.Array, label: jax.Array, num_classes: int, embed_dim: int,
                 join: str = "concat") -> jax.Array:
  """The conditional generator's input: ``[z, embed(y)]`` (``join="concat"``; ``embed_dim`` 0 =
  ``num_classes``) or ``z * embed(y)`` (``"multiply"``, the PyTorch-GAN / Keras ACGAN generators':
  every latent dimension scaled by a learned per-class factor; ``embed_dim`` must be 0 or
  ``z``'s size)."""
  _check_classes(num_classes)
  if join == "multiply":
    if embed_dim not in (0, z.shape[-1]):
      raise ValueError(f"label_join='multiply' scales z elementwise: embed_dim must be 0 or the "
                       f"latent size {z.shape[-1]}, got {embed_dim}")
    return z * _embed(label, num_classes, z.shape[-1], name="label_embedding").astype(z.dtype)
  if join != "concat":
    raise ValueError(f"unknown label_join {join!r}; choose one of {list(LABEL_JOINS)}")
  e = _embed(label, num_classes, embed_dim or num_classes, name="label_embedding")
  return jnp.concatenate([z, e.astype(z.dtype)], axis=-1)


class ConditionalMLPGenerator(nn.Module):
  """``G(z, y)``: ``[z, embed(y)]`` -> :class:`~jaxgan.models.mlp.MLPGenerator`'s body.

  The cGAN generator of the classic tutorial (PyTorch-GAN ``cgan``: a
  ``num_classes``-wide embedding concatenated to ``z``; Mirza & Osindero, 2014,
  join the one-hot label to ``z``, which a learned embedding generalises).
  """
  image_shape: Sequence[int]
  latent_dim: int = 100
  num_classes: int = 10
  embed_dim: int = 0                  # 0 = num_classes
  label_join: str = "concat"          # or "multiply": z * embed(y)
  hidden: Sequence[int] = (128, 256, 512, 1024)
  batchnorm: bool = True
  negative_slope: float = 0.2
  bn_axis_name: str | None = None
  takes_label: ClassVar[bool] = True

  @nn.compact
  def __call__(self, z: jax.Array, label: jax.Array, train: bool = True) -> jax.Array:
    h = _joint_input(z, label, self.num_classes, self.embed_dim, self.label_join)
    return MLPGenerator(self.image_shape, latent_dim=h.shape[-1], hidden=tuple(self.hidden),
                        batchnorm=self.batchnorm, negative_slope=self.negative_slope,
                        bn_axis_name=self.bn_axis_name, name="body")(h, train)


class ConditionalDCGANGenerator(nn.Module):
  """``G(z, y)``: ``[z, embed(y)]`` (or ``z * embed(y)``, ``label_join``) ->
  :class:`~jaxgan.models.dcgan.DCGANGenerator`'s body."""
  image_shape: Sequence[int]
  latent_dim: int = 100
  num_classes: int = 10
  embed_dim: int = 0                  # 0 = num_classes
  label_join: str = "concat"          # or "multiply": z * embed(y)
  features: Sequence[int] = (256, 128, 64)
  upsample: str = "auto"
  bn_axis_name: str | None = None
  takes_label: ClassVar[bool] = True

  @nn.compact
  def __call__(self, z: jax.Array, label: jax.Array, train: bool = True) -> jax.Array:
    h = _joint_input(z, label, self.num_classes, self.embed_dim, self.label_join)
    return DCGANGenerator(self.image_shape, latent_dim=h.shape[-1], features=tuple(self.features),
                          upsample=self.upsample, bn_axis_name=self.bn_axis_name, name="body")(h, train)


# --- discriminator trunks: image -> features ---------------------------------------------

def _mlp_trunk(x: jax.Array, hidden: Sequence[int], negative_slope: float) -> jax.Array:
  x = x.reshape((x.shape[0], -1))
  for width in hidden:
    x = nn.leaky_relu(nn.Dense(width)(x), negative_slope)
  return x


def _dcgan_trunk(x: jax.Array, features: Sequence[int], negative_slope: float, norm: str,
                 conv_impl: str, bn_axis_name: str | None, train: bool) -> jax.Array:
  """:func:`~jaxgan.models.dcgan.dcgan_trunk`, flattened: ``[N, s * s * features[-1]]``."""
  x = dcgan_trunk(x, features, negative_slope=negative_slope, norm=norm, conv_impl=conv_impl,
                  bn_axis_name=bn_axis_name, train=train)
  return x.reshape((x.shape[0], -1))


def _label_channels(x: jax.Array, label: jax.Array, num_classes: int, embed_dim: int) -> jax.Array:
  """The label embedding broadcast over the image plane, joined as extra channels."""
  e = _embed(label, num_classes, embed_dim or num_classes, name="label_embedding").astype(x.dtype)
  return jnp.concatenate([x, jnp.broadcast_to(e[:, None, None, :], x.shape[:3] + e.shape[-1:])], -1)


def _projection_logit(phi: jax.Array, label: jax.Array, num_classes: int,
                      spectral: bool = False, train: bool = True) -> jax.Array:
  """``psi(phi) + <embed(y), phi>`` (Miyato & Koyama, 2018, eq. 3); ``spectral``: both layers
  spectrally normalised (the critic's ``norm="spectral"``)."""
  sn = lambda layer: maybe_spectral_norm(layer, train, spectral)
  e = sn(nn.Embed(num_classes, phi.shape[-1], embedding_init=nn.initializers.normal(0.02),
                  name="label_projection"))(jnp.asarray(label, jnp.int32))
  return sn(nn.Dense(1, kernel_init=dcgan_kernel_init, name="logit"))(phi)[:, 0] + jnp.sum(e * phi, -1)


class ConditionalMLPDiscriminator(nn.Module):
  """``D(x, y)``: MLP on ``[flatten(x), embed(y)]`` (``"concat"``) or a projection head (``"projection"``)."""
  num_classes: int = 10
  conditioning: str = "concat"
  embed_dim: int = 0                  # concat: label embedding width (0 = num_classes)
  hidden: Sequence[int] = (512, 256)
  negative_slope: float = 0.2
  takes_label: ClassVar[bool] = True

  @nn.compact
  def __call__(self, x: jax.Array, label: jax.Array, train: bool = True) -> jax.Array:
    del train
    _check_classes(self.num_classes)
    if self.conditioning not in CONDITIONINGS:
      raise ValueError(f"unknown conditioning {self.conditioning!r}; choose one of {list(CONDITIONINGS)}")
    x = x.reshape((x.shape[0], -1))
    if self.conditioning == "concat":
      e = _embed(label, self.num_classes, self.embed_dim or self.num_classes, name="label_embedding")
      phi = _mlp_trunk(jnp.concatenate([x, e.astype(x.dtype)], -1), self.hidden, self.negative_slope)
      return nn.Dense(1, name="logit")(phi)[:, 0]
    return _projection_logit(_mlp_trunk(x, self.hidden, self.negative_slope), label, self.num_classes)


class ConditionalDCGANDiscriminator(nn.Module):
  """``D(x, y)`` on DCGAN's convolution stack.

  ``"concat"``: the label embedding joins the image as ``embed_dim`` constant
  channels, then the DCGAN critic. ``"projection"``: the flattened last feature
  map ``phi(x)`` gives ``w^T phi(x) + <embed(y), phi(x)>`` (``w^T phi`` is
  DCGAN's final 4x4 convolution written as a dense layer).
  """
  num_classes: int = 10
  conditioning: str = "projection"
  embed_dim: int = 0
  features: Sequence[int] = (64, 128, 256)
  negative_slope: float = 0.2
  norm: str = "batch"
  conv_impl: str = "auto"
  bn_axis_name: str | None = None
  takes_label: ClassVar[bool] = True

  @nn.compact
  def __call__(self, x: jax.Array, label: jax.Array, train: bool = True) -> jax.Array:
    _check_classes(self.num_classes)
    if self.conditioning not in CONDITIONINGS:
      raise ValueError(f"unknown conditioning {self.conditioning!r}; choose one of {list(CONDITIONINGS)}")
    if self.conditioning == "concat":
      x = _label_channels(x, label, self.num_classes, self.embed_dim)
    phi = _dcgan_trunk(x, self.features, self.negative_slope, self.norm, self.conv_impl,
                       self.bn_axis_name, train)
    spectral = self.norm == "spectral"
    if self.conditioning == "concat":
      logit = nn.Dense(1, kernel_init=dcgan_kernel_init, name="logit")
      return maybe_spectral_norm(logit, train, spectral)(phi)[:, 0]
    return _projection_logit(phi, label, self.num_classes, spectral, train)


class ACGANDiscriminator(nn.Module):
  """``D(x) -> (source logit [N], class logits [N, K])`` (Odena et al., 2017): one trunk, two heads.

  ``body="dcgan"`` (DCGAN's convolution stack, ``features``/``norm``) or
  ``"mlp"`` (``hidden``). The image only: the label enters through the class
  head's loss, not the input.
  """
  num_classes: int = 10
  body: str = "dcgan"
  features: Sequence[int] = (64, 128, 256)
  hidden: Sequence[int] = (512, 256)
  negative_slope: float = 0.2
  norm: str = "batch"
  conv_impl: str = "auto"
  bn_axis_name: str | None = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> tuple[jax.Array, jax.Array]:
    _check_classes(self.num_classes)
    phi = _trunk(self, x, train)
    # norm="spectral" normalises the heads as well as the trunk.
    sn = lambda layer: maybe_spectral_norm(layer, train, self.norm == "spectral")
    source = sn(nn.Dense(1, kernel_init=dcgan_kernel_init, name="source"))(phi)[:, 0]
    classes = sn(nn.Dense(self.num_classes, kernel_init=dcgan_kernel_init, name="classes"))(phi)
    return source, classes


def _trunk(m: nn.Module, x: jax.Array, train: bool) -> jax.Array:
  if m.body == "dcgan":
    return _dcgan_trunk(x, m.features, m.negative_slope, m.norm, m.conv_impl, m.bn_axis_name, train)
  if m.body == "mlp":
    return _mlp_trunk(x, m.hidden, m.negative_slope)
  raise ValueError(f"unknown discriminator body {m.body!r}; choose 'dcgan' or 'mlp'")


class SGANGenerator(nn.Module):
  """z -> [Dense -> BatchNorm -> softplus] * n -> Dense -> tanh: Salimans et al.'s (2016) MNIST generator.

  Defaults: 100 -> 500 -> 500 -> 784. As their code, the BatchNorm layers
  have a bias but no scale, and the last layer is weight-normalised; it ends
  in a sigmoid for [0, 1] pixels, here ``tanh(a / 2) = 2 sigmoid(a) - 1`` for
  jaxgan's [-1, 1] (the same function of the pre-activation ``a``).

  ``uniform_latent``: their noise is ``U[0, 1]^100``; jaxgan draws
  ``z ~ N(0, I)`` everywhere (training, fixed grids, ``jaxgan.sample``), so
  the generator first maps ``z`` to ``Phi(z)`` (the normal CDF), which is
  exactly ``U[0, 1]`` per coordinate.
  """
  image_shape: Sequence[int]
  latent_dim: int = 100
  hidden: Sequence[int] = (500, 500)
  uniform_latent: bool = False
  bn_axis_name: str | None = None

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = True) -> jax.Array:
    x = jax.scipy.special.ndtr(z) if self.uniform_latent else z
    for width in self.hidden:
      x = nn.Dense(width, use_bias=False)(x)
      x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, use_scale=False,
                       axis_name=self.bn_axis_name)(x)
      x = nn.softplus(x)
    x = nn.WeightNorm(nn.Dense(int(np.prod(self.image_shape))))(x)
    # Their sigmoid(a) in [0, 1] is (1 + tanh(a / 2)) / 2: the same function in [-1, 1].
    return jnp.tanh(0.5 * x).reshape((z.shape[0], *self.image_shape))


class SGANDiscriminator(nn.Module):
  """K-way classifier ``D(x) -> (class logits [N, K], features [N, F])``; the fake class is implicit.

  Salimans et al.'s (2016) MNIST discriminator with the defaults: an MLP
  1000-500-250-250-250 (ReLU), Gaussian noise of std ``input_noise`` on the
  input and ``hidden_noise`` after every hidden layer (training mode only; the
  PRNG stream ``"noise"``), then K logits. With ``weight_norm`` every layer is
  a :class:`~jaxgan.models.layers.WeightNormDense` as in their code: the hidden
  layers' scales are fixed after the data-dependent initialisation
  (:func:`weight_norm_data_init`, which the trainer runs on 500 training
  images before the first step), the output layer's scale trains.
  ``features`` is the last hidden layer's activation *before* its noise
  (their ``layers[-3]``), the statistic the feature-matching generator
  matches. ``body="dcgan"`` uses DCGAN's convolution stack (``features_conv``,
  ``norm``) instead of the MLP.

  Pixels: jaxgan images live in [-1, 1], Salimans et al.'s in [0, 1]. With
  ``unit_pixels`` (``configs/sgan_mnist.py`` sets it; off by default, so runs
  made before it rebuild unchanged) D first maps ``x -> (x + 1) / 2``, so it sees
  their inputs and their noise (``input_noise`` in [0, 1] units). It is not
  only a matter of scale: on [-1, 1] the black background is -1, so every
  background pixel feeds a non-zero gradient to the first layer's weights,
  which Adam turns into full-size updates of ~600 background coordinates
  per unit; on [0, 1] they get none, as in the paper.
  """
  num_classes: int = 10
  body: str = "mlp"
  hidden: Sequence[int] = (1000, 500, 250, 250, 250)
  unit_pixels: bool = False
  input_noise: float = 0.3
  hidden_noise: float = 0.5
  weight_norm: bool = True
  features: Sequence[int] = (64, 128, 256)
  negative_slope: float = 0.2
  norm: str = "none"
  conv_impl: str = "auto"
  bn_axis_name: str | None = None

  def _noise(self, x: jax.Array, std: float, train: bool) -> jax.Array:
    if not train or std <= 0:
      return x
    return x + std * jax.random.normal(self.make_rng("noise"), x.shape, x.dtype)

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True,
               data_init: bool = False) -> tuple[jax.Array, jax.Array]:
    _check_classes(self.num_classes)

    def dense(width: int, last: bool = False):
      if self.weight_norm:
        layer = WeightNormDense(width, train_scale=last)
        return lambda h: layer(h, data_init=data_init)
      return nn.Dense(width)

    if self.unit_pixels:
      x = (x + 1.0) * 0.5
    x = self._noise(x, self.input_noise, train)
    if self.body == "mlp":
      h = x.reshape((x.shape[0], -1))
      features = h
      for i, width in enumerate(self.hidden):
        if i:
          h = self._noise(features, self.hidden_noise, train)
        features = nn.relu(dense(width)(h))
      h = self._noise(features, self.hidden_noise, train) if self.hidden else features
    elif self.body == "dcgan":
      h = features = _dcgan_trunk(x, self.features, self.negative_slope, self.norm, self.conv_impl,
                                  self.bn_axis_name, train)
    else:
      raise ValueError(f"unknown discriminator body {self.body!r}; choose 'mlp' or 'dcgan'")
    return dense(self.num_classes, last=True)(h), features


def weight_norm_data_init(discriminator: nn.Module, params, images: jax.Array, key: jax.Array):
  """Data-dependent initialisation of a discriminator's weight-normalised layers (Salimans & Kingma, 2016).

  One forward pass over ``images`` (training mode: the Gaussian noise on, as
  Salimans et al.'s ``init=True`` pass) in which every
  :class:`~jaxgan.models.layers.WeightNormDense` sets its scale and bias so
  that its pre-activations have zero mean and unit variance on the batch.
  Returns the new parameters (the same tree); a discriminator without
  ``weight_norm`` gets ``params`` back unchanged. Pure: ``images`` and ``key``
  fix the result.
  """
  if not getattr(discriminator, "weight_norm", False):
    return params
  _, mutated = discriminator.apply({"params": params}, images, train=True, data_init=True,
                                   rngs={"noise": key}, mutable=["params"])
  return mutated["params"]
