"""The SNGAN residual networks (Miyato, Kataoka, Koyama & Yoshida, 2018, appendix B).

The generator and discriminator of the paper's CIFAR-10 / STL-10 experiments, themselves
the residual networks of Gulrajani et al. (2017, WGAN-GP):

* G: ``z`` (128) -> Dense to 4x4x256 -> 3 x ResBlock up (256) -> BN -> ReLU -> 3x3 conv
  -> tanh. A block is ``BN -> ReLU -> nearest 2x up -> 3x3 conv -> BN -> ReLU -> 3x3 conv``
  plus a shortcut ``nearest 2x up -> 1x1 conv``.
* D: optimised first block (``3x3 conv -> ReLU -> 3x3 conv -> 2x2 avg pool``, shortcut
  ``avg pool -> 1x1 conv``) -> ResBlock down -> 2 x ResBlock (all 128 channels) -> ReLU ->
  global *sum* pooling -> Dense to one logit. A block is ``ReLU -> 3x3 conv -> ReLU -> 3x3
  conv (-> avg pool)`` plus a ``1x1 conv (-> avg pool)`` shortcut where the shape changes.
  Every layer is spectrally normalised (``spectral=False`` turns it off, e.g. for a
  gradient-penalty critic).

Conditional versions (Miyato & Koyama, 2018, with BigGAN's shared class embedding; Brock et
al., 2019): G's BatchNorms become conditional (:class:`ConditionalBatchNorm`: the gain and
bias of every BatchNorm are linear functions of one shared class embedding), and D gets a
projection head, ``logit = psi(h) + <embed(y), h>`` with a spectrally normalised embedding.
An optional self-attention block (SAGAN; Zhang et al., 2019) follows the block that makes a
chosen resolution (``attention``, the side in pixels; 0 = none) in G and in D.

Initialisation follows the reference code: Glorot-uniform with gain sqrt(2) for the
residual branches' convolutions, gain 1 for shortcuts, the first Dense, the last layers.
``widths`` and ``downsample`` give the other sizes (a narrower network for CPU runs, or more
blocks for 64x64); the defaults are the paper's 32x32 networks (4,276,739 generator and
1,053,825 discriminator parameters for 3-channel images).
"""

from __future__ import annotations

from typing import ClassVar, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgan.models import layers
from jaxgan.models.layers import batch_norm, maybe_spectral_norm

residual_init = nn.initializers.variance_scaling(2.0, "fan_avg", "uniform")  # Glorot, gain sqrt(2)
glorot_init = nn.initializers.xavier_uniform()


def conv(features: int, size: int, kernel_init, **kwargs) -> nn.Conv:
  """A ``size`` x ``size`` stride-1 convolution with "same" padding, computed with the
  backend's fastest formulation (``layers.resolve_conv_impl("auto")``: on XLA:CPU, weight
  gradients summed over batch chunks; the parameters are ``nn.Conv``'s either way)."""
  return layers.conv(features, (size, size), padding=(size - 1) // 2, kernel_init=kernel_init,
                     **kwargs)


def upsample_nearest(x: jax.Array) -> jax.Array:
  """2x nearest-neighbour up-sampling of NHWC ``x``."""
  return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def avg_pool(x: jax.Array) -> jax.Array:
  """2x2 average pooling with stride 2."""
  return nn.avg_pool(x, (2, 2), strides=(2, 2))


class ConditionalBatchNorm(nn.Module):
  """BatchNorm whose gain and bias come from a class embedding ``e`` (Miyato & Koyama's
  conditional BatchNorm with BigGAN's shared embedding): ``(1 + W_g e) * x_hat + W_b e``.
  ``W_g``, ``W_b`` start at zero, so the layer starts as a plain BatchNorm."""
  bn_axis_name: str | None = None

  @nn.compact
  def __call__(self, x: jax.Array, embedding: jax.Array, train: bool = True) -> jax.Array:
    x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, use_scale=False,
                     use_bias=False, axis_name=self.bn_axis_name)(x)
    gain = nn.Dense(x.shape[-1], kernel_init=nn.initializers.zeros, name="gain")(embedding)
    bias = nn.Dense(x.shape[-1], kernel_init=nn.initializers.zeros, name="bias")(embedding)
    return x * (1.0 + gain[:, None, None, :]).astype(x.dtype) + bias[:, None, None, :].astype(x.dtype)


def normalizer(train: bool, axis_name: str | None, embedding: jax.Array | None):
  """G's BatchNorm: plain, or conditional on ``embedding`` when one is given."""
  if embedding is None:
    return batch_norm(train, axis_name=axis_name)
  cbn = ConditionalBatchNorm(bn_axis_name=axis_name)
  return lambda x: cbn(x, embedding, train)


class SelfAttention(nn.Module):
  r"""Self-attention over the image plane (SAGAN; Zhang, Goodfellow, Metaxas & Odena, 2019):
  ``x + gamma * o`` with ``o = v(softmax(theta(x) phi(x)^T) g(x))``, 1x1 convolutions
  ``theta``, ``phi`` (C/8 channels), ``g`` (C/2) and ``v`` (C), ``phi`` and ``g`` max-pooled
  2x2 (BigGAN's memory saving), ``gamma`` a learned scalar starting at 0; the convolutions are
  spectrally normalised (in G and in D, as SAGAN)."""
  spectral: bool = True

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    n, h, w, c = x.shape
    if c < 8 or h % 2 or w % 2:
      raise ValueError(f"self-attention needs >= 8 channels and an even side, got {h}x{w}x{c}")

    def project(features, name):
      layer = conv(features, 1, glorot_init, use_bias=False, name=name)
      return maybe_spectral_norm(layer, train, self.spectral)

    pool = lambda t: nn.max_pool(t, (2, 2), strides=(2, 2))
    theta = project(c // 8, "theta")(x).reshape(n, h * w, c // 8)
    phi = pool(project(c // 8, "phi")(x)).reshape(n, h * w // 4, c // 8)
    g = pool(project(c // 2, "g")(x)).reshape(n, h * w // 4, c // 2)
    attention = jax.nn.softmax(jnp.einsum("nqc,nkc->nqk", theta, phi), axis=-1)
    o = project(c, "v")(jnp.einsum("nqk,nkc->nqc", attention, g).reshape(n, h, w, c // 2))
    gamma = self.param("gamma", nn.initializers.zeros, ())
    return x + gamma.astype(x.dtype) * o


class GeneratorBlock(nn.Module):
  """Pre-activation residual block of G: ``BN -> ReLU -> up -> conv3 -> BN -> ReLU -> conv3``,
  plus ``up -> conv1`` (a learned shortcut where the block up-samples or changes width); the
  BatchNorms conditional when the block gets a class ``embedding``."""
  features: int
  upsample: bool = True
  bn_axis_name: str | None = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True, embedding: jax.Array | None = None
               ) -> jax.Array:
    bn = lambda: normalizer(train, self.bn_axis_name, embedding)
    up = upsample_nearest if self.upsample else (lambda t: t)
    h = up(nn.relu(bn()(x)))
    h = conv(self.features, 3, residual_init)(h)
    h = conv(self.features, 3, residual_init)(nn.relu(bn()(h)))
    shortcut = up(x)
    if self.upsample or x.shape[-1] != self.features:
      shortcut = conv(self.features, 1, glorot_init)(shortcut)
    return h + shortcut


class DiscriminatorBlock(nn.Module):
  """Residual block of D: ``ReLU -> conv3 -> ReLU -> conv3 (-> avg pool)`` plus a ``conv1
  (-> avg pool)`` shortcut where the shape changes. ``optimized`` is the first block of the
  paper's D (no leading ReLU on the image; the shortcut pools first, then convolves)."""
  features: int
  downsample: bool = True
  optimized: bool = False
  spectral: bool = True

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    def sn_conv(size, init):
      return maybe_spectral_norm(conv(self.features, size, init), train, self.spectral)

    down = avg_pool if self.downsample else (lambda t: t)
    h = x if self.optimized else nn.relu(x)
    h = sn_conv(3, residual_init)(h)
    h = down(sn_conv(3, residual_init)(nn.relu(h)))
    if self.optimized:
      return h + sn_conv(1, glorot_init)(avg_pool(x))
    if self.downsample or x.shape[-1] != self.features:
      return h + down(sn_conv(1, glorot_init)(x))
    return h + x


def _generate(g, z: jax.Array, embedding: jax.Array | None, train: bool) -> jax.Array:
  """The ResNet generator's body in ``g``'s scope (``embedding``: conditional BatchNorms)."""
  h, w, c = g.image_shape
  side = g.bottom * 2 ** (len(g.widths) - 1)
  if h != w or h != side:
    raise ValueError(f"ResNet generator with widths {tuple(g.widths)} from {g.bottom}x"
                     f"{g.bottom} makes {side}x{side} images, not {h}x{w}: set image_size to "
                     f"{side} or give one width per 2x up-sampling (plus the first)")
  _check_attention(g.attention, [g.bottom * 2 ** (i + 1) for i in range(len(g.widths) - 1)])
  x = nn.Dense(g.bottom * g.bottom * g.widths[0], kernel_init=glorot_init)(z)
  x = x.reshape(z.shape[0], g.bottom, g.bottom, g.widths[0])
  for f in g.widths[1:]:
    x = GeneratorBlock(f, bn_axis_name=g.bn_axis_name)(x, train, embedding)
    if x.shape[1] == g.attention:
      x = SelfAttention()(x, train)
  x = nn.relu(normalizer(train, g.bn_axis_name, embedding)(x))
  x = conv(c, 3, glorot_init)(x)
  return jnp.tanh(x)


def _check_attention(attention: int, sides: Sequence[int]) -> None:
  if attention and attention not in sides:
    raise ValueError(f"attention={attention}: a self-attention block goes after a block, at one "
                     f"of the sides {sorted(set(sides))} (0 = none)")


class ResNetGenerator(nn.Module):
  """SNGAN's ResNet generator: ``z -> Dense to bottom x bottom x widths[0] ->`` one up-sampling
  block per later width ``-> BN -> ReLU -> 3x3 conv -> tanh``. The image side must be
  ``bottom * 2 ** (len(widths) - 1)``. ``attention``: the side after whose block a
  self-attention block runs (0 = none)."""
  image_shape: Sequence[int]
  latent_dim: int = 128
  widths: Sequence[int] = (256, 256, 256, 256)
  bottom: int = 4
  attention: int = 0
  bn_axis_name: str | None = None  # set by jaxgan.parallel: sync BatchNorm across devices

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = True) -> jax.Array:
    return _generate(self, z, None, train)


class ConditionalResNetGenerator(nn.Module):
  """``G(z, y)``: :class:`ResNetGenerator` with conditional BatchNorms on a shared class
  embedding of ``embed_dim`` (BigGAN's; SNGAN-projection's cBN when ``embed_dim`` is large)."""
  image_shape: Sequence[int]
  latent_dim: int = 128
  num_classes: int = 10
  embed_dim: int = 128
  widths: Sequence[int] = (256, 256, 256, 256)
  bottom: int = 4
  attention: int = 0
  bn_axis_name: str | None = None
  takes_label: ClassVar[bool] = True

  @nn.compact
  def __call__(self, z: jax.Array, label: jax.Array, train: bool = True) -> jax.Array:
    embedding = nn.Embed(self.num_classes, self.embed_dim, name="shared_embedding",
                         embedding_init=nn.initializers.normal(1.0))(jnp.asarray(label, jnp.int32))
    return _generate(self, z, embedding, train)


def _features(d, x: jax.Array, train: bool) -> jax.Array:
  """The ResNet discriminator's trunk in ``d``'s scope: blocks, ReLU, global sum pooling ->
  ``[N, widths[-1]]``."""
  down = (tuple(d.downsample) if d.downsample is not None
          else tuple(i < 2 for i in range(len(d.widths))))
  if len(down) != len(d.widths) or not down[0]:
    raise ValueError(f"ResNet discriminator: downsample needs one flag per width "
                     f"({len(d.widths)}) and the first block down-samples, got {down}")
  if x.shape[1] % 2 ** sum(down):
    raise ValueError(f"ResNet discriminator halves the image {sum(down)} times: its side "
                     f"must be a multiple of {2 ** sum(down)}, got {x.shape[1]}")
  sides = [x.shape[1] // 2 ** sum(down[:i + 1]) for i in range(len(down))]
  _check_attention(d.attention, sides)
  h = DiscriminatorBlock(d.widths[0], optimized=True, spectral=d.spectral)(x, train)
  for f, dn in zip(d.widths[1:], down[1:]):
    if h.shape[1] == d.attention:   # SAGAN's D: attention before the block that leaves this side
      h = SelfAttention(spectral=d.spectral)(h, train)
    h = DiscriminatorBlock(f, downsample=dn, spectral=d.spectral)(h, train)
  return jnp.sum(nn.relu(h), axis=(1, 2))


class ResNetDiscriminator(nn.Module):
  """SNGAN's ResNet discriminator: the optimised block, then one block per later width
  (``downsample[i]`` for block ``i``; default: the first two blocks halve the image, as the
  paper's 32x32 D), ReLU, global sum pooling, Dense to one logit; spectrally normalised.
  ``attention``: a self-attention block while the features are that side (0 = none)."""
  widths: Sequence[int] = (128, 128, 128, 128)
  downsample: Sequence[bool] | None = None
  spectral: bool = True
  attention: int = 0

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
    h = _features(self, x, train)
    logit = maybe_spectral_norm(nn.Dense(1, kernel_init=glorot_init), train, self.spectral)
    return logit(h).reshape(x.shape[0])


class ConditionalResNetDiscriminator(nn.Module):
  """``D(x, y)``: :class:`ResNetDiscriminator` with a projection head (Miyato & Koyama, 2018,
  eq. 3): ``psi(h) + <embed(y), h>``, the class embedding spectrally normalised too."""
  num_classes: int = 10
  widths: Sequence[int] = (128, 128, 128, 128)
  downsample: Sequence[bool] | None = None
  spectral: bool = True
  attention: int = 0
  takes_label: ClassVar[bool] = True

  @nn.compact
  def __call__(self, x: jax.Array, label: jax.Array, train: bool = True) -> jax.Array:
    h = _features(self, x, train)
    psi = maybe_spectral_norm(nn.Dense(1, kernel_init=glorot_init), train,
                              self.spectral)(h)[:, 0]
    embed = maybe_spectral_norm(
        nn.Embed(self.num_classes, h.shape[-1], embedding_init=glorot_init), train,
        self.spectral)(jnp.asarray(label, jnp.int32))
    return psi + jnp.sum(embed * h, axis=-1)
