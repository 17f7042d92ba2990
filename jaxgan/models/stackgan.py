"""StackGAN's networks (Zhang, Xu, Li, Zhang, Wang, Huang & Metaxas, 2017, "StackGAN: Text to
Photo-realistic Image Synthesis with Stacked Generative Adversarial Networks").

Text in, a low-resolution image first (Stage I), then a stage that reads that image and the
text again and refines it to four (or two) times the size (Stage II). The layers follow the
paper's released code:

- :class:`ConditioningAugmentation` (sec. 3.1): a fully connected layer and a ReLU give
  ``[mu, log sigma^2]`` of the text embedding; the condition is ``c = mu + sigma * eps`` with
  ``eps ~ N(0, I)`` given or drawn from the ``"condition"`` PRNG stream, so that a caption stands for a
  neighbourhood of conditions (the KL term that keeps it near ``N(0, I)`` is the step's).
- :class:`Stage1Generator`: ``[z, c]`` -> fully connected to ``4 x 4 x 8w`` (BatchNorm, ReLU),
  then blocks of nearest-neighbour 2x up-sampling + 3x3 convolution + BatchNorm + ReLU, halving the
  channels, up to ``size``; a 3x3 convolution and tanh give the image.
- :class:`Stage2Generator`: encodes the Stage-I image (3x3 conv + ReLU, then ``encoder_steps``
  stride-2 4x4 convs with BatchNorm: the paper's 2, down 4x), joins its own CA code tiled over the
  grid (3x3 conv, BatchNorm, ReLU), ``residual_blocks`` residual blocks, then up-sampling blocks
  to ``size``.
- :class:`StackDiscriminator` (both stages): stride-2 4x4 convolutions (BatchNorm after the first,
  LeakyReLU 0.2) down to 4x4, widths doubling from ``width``; past ``8 * width`` 3x3 convolutions
  bring the width back to ``8 * width`` (the Stage-II critic at 256x256). Its *conditional* head
  joins the condition tiled over the 4x4 grid (3x3 conv, BatchNorm, LeakyReLU, then a 4x4 conv to
  one logit); Stage II adds an *unconditional* head (a 4x4 conv on the image code alone).
  Mismatched (image, text) pairs go through the conditional head of the same pass. The condition
  is the sentence embedding, compressed by the critic's own fully connected layer and a
  LeakyReLU (``text_dim > 0``: the paper's sec. 3.2 and its TensorFlow code), or the generator's
  conditioning-augmentation mean ``mu`` as given (``text_dim = 0``: the released PyTorch code).

Widths: the reference's ``GF_DIM`` / ``DF_DIM`` are ``width`` here; Stage I's generator starts at
``8 * width`` channels (the reference's ``ngf = GF_DIM * 8``). Weights ~ N(0, 0.02), BatchNorm
scales ~ N(1, 0.02) (the reference's ``weights_init``).
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgan.models import layers
from jaxgan.models.layers import batch_norm, dcgan_kernel_init, dcgan_scale_init


def _conv(features: int, kernel: int = 3, stride: int = 1, bias: bool = False,
          name: str | None = None) -> nn.Conv:
  """A PyTorch-padded convolution: 3x3 stride 1 keeps the size, 4x4 stride 2 halves it."""
  pad = 1
  return layers.conv(features, (kernel, kernel), strides=(stride, stride),
                     padding=((pad, pad), (pad, pad)), use_bias=bias,
                     kernel_init=dcgan_kernel_init, name=name)


def _bn(train: bool, axis_name: str | None) -> nn.BatchNorm:
  return batch_norm(train, scale_init=dcgan_scale_init, axis_name=axis_name)


def _upsample(x: jax.Array) -> jax.Array:
  """Nearest-neighbour 2x up-sampling (``nn.Upsample(scale_factor=2, mode="nearest")``)."""
  return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def _steps(ratio: float, what: str) -> int:
  """``log2(ratio)`` for a power of two >= 1, else a ``ValueError`` naming ``what``."""
  n = math.log2(ratio) if ratio > 0 else -1
  if n < 0 or n != int(n):
    raise ValueError(f"{what} must be a power of two times the smaller size (got a ratio {ratio:g})")
  return int(n)


class ConditioningAugmentation(nn.Module):
  """``(c, mu, log sigma^2)`` of a text embedding (StackGAN sec. 3.1; ``c = mu + sigma * eps``).

  ``max_sigma`` > 0 bounds sigma (``log sigma^2 <= 2 log max_sigma``): with a
  light KL term the generator otherwise blows up one or two dimensions' sigma (to 4-34) and reads
  them as one more latent, which redraws the caption's colour and class.

  ``activation``: ``"relu"`` on the fully connected layer's output (StackGAN's released code,
  which keeps ``log sigma^2 >= 0``) or ``"glu"`` (a layer twice as wide, gated; StackGAN++ and
  AttnGAN, which let sigma fall below 1). The embedding is first multiplied by ``input_scale``
  (default ``sqrt(dim)``: a unit-norm sentence embedding gets entries of unit variance, the
  scale the layer's N(0, 0.02) weights were set for). ``sample=False`` returns ``c = mu``
  (no ``"condition"`` stream needed); ``eps`` given (``[N, condition_dim]``) is used instead of a
  draw from the stream (the train step draws it for the global batch, so that ``n`` devices
  equal one)."""
  condition_dim: int = 128
  activation: str = "relu"
  input_scale: float | None = None
  max_sigma: float = 0.0      # > 0: the largest sigma (0: unbounded, the paper)

  @nn.compact
  def __call__(self, embedding: jax.Array, sample: bool = True, eps: jax.Array | None = None):
    if self.activation not in ("relu", "glu"):
      raise ValueError(f"conditioning augmentation activation {self.activation!r} is not 'relu' "
                       f"or 'glu'")
    scale = self.input_scale if self.input_scale is not None else math.sqrt(embedding.shape[-1])
    width = 2 * self.condition_dim * (2 if self.activation == "glu" else 1)
    x = nn.Dense(width, kernel_init=dcgan_kernel_init, name="fc")(embedding * scale)
    x = nn.relu(x) if self.activation == "relu" else nn.glu(x)
    mu, logvar = x[:, :self.condition_dim], x[:, self.condition_dim:]
    if self.max_sigma > 0:
      logvar = jnp.minimum(logvar, 2.0 * math.log(self.max_sigma))
    if not sample:
      return mu, mu, logvar
    if eps is None:
      eps = jax.random.normal(self.make_rng("condition"), mu.shape, mu.dtype)
    return mu + jnp.exp(0.5 * logvar) * eps.astype(mu.dtype), mu, logvar


def _up_block(x: jax.Array, features: int, train: bool, axis_name: str | None) -> jax.Array:
  x = _conv(features)(_upsample(x))
  return nn.relu(_bn(train, axis_name)(x))


class Stage1Generator(nn.Module):
  """``G_0(z, text) -> (image [N, size, size, channels], mu, log sigma^2)``."""
  size: int = 64
  channels: int = 3
  width: int = 128            # the reference's GF_DIM (Stage I starts at 8 * width channels)
  latent_dim: int = 100
  condition_dim: int = 128
  ca_activation: str = "relu"  # ConditioningAugmentation's
  ca_max_sigma: float = 0.0    # ConditioningAugmentation's max_sigma
  bn_axis_name: str | None = None

  @nn.compact
  def __call__(self, z: jax.Array, embedding: jax.Array, train: bool = True,
               sample_condition: bool = True, eps: jax.Array | None = None):
    c, mu, logvar = ConditioningAugmentation(self.condition_dim, self.ca_activation,
                                             max_sigma=self.ca_max_sigma, name="ca")(
        embedding, sample_condition, eps)
    n_up = _steps(self.size / 4, "Stage I's image size (a multiple of 4)")
    ngf = 8 * self.width
    h = nn.Dense(4 * 4 * ngf, use_bias=False, kernel_init=dcgan_kernel_init)(
        jnp.concatenate([z.astype(c.dtype), c], axis=-1))
    h = nn.relu(_bn(train, self.bn_axis_name)(h)).reshape(-1, 4, 4, ngf)
    for i in range(n_up):
      h = _up_block(h, max(ngf // 2 ** (i + 1), 1), train, self.bn_axis_name)
    return jnp.tanh(_conv(self.channels)(h)), mu, logvar


class _ResBlock(nn.Module):
  bn_axis_name: str | None = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    h = nn.relu(_bn(train, self.bn_axis_name)(_conv(x.shape[-1])(x)))
    h = _bn(train, self.bn_axis_name)(_conv(x.shape[-1])(h))
    return nn.relu(h + x)


class Stage2Generator(nn.Module):
  """``G(stage-I image, text) -> (image [N, size, size, channels], mu, log sigma^2)``; the
  Stage-I image (``in_size`` square) is an input: the family holds Stage I fixed."""
  size: int = 256
  in_size: int = 64
  channels: int = 3
  width: int = 128            # the reference's GF_DIM
  condition_dim: int = 128
  residual_blocks: int = 4    # the reference's R_NUM
  encoder_steps: int = 2      # stride-2 convolutions of the encoder (the paper's 2: 64 -> 16)
  ca_activation: str = "relu"  # ConditioningAugmentation's
  ca_max_sigma: float = 0.0      # ConditioningAugmentation's max_sigma
  bn_axis_name: str | None = None

  @nn.compact
  def __call__(self, image: jax.Array, embedding: jax.Array, train: bool = True,
               sample_condition: bool = True, eps: jax.Array | None = None):
    down = 2 ** self.encoder_steps
    if self.encoder_steps < 1 or self.in_size % down:
      raise ValueError(f"Stage II's encoder halves the Stage-I image {self.encoder_steps} times: "
                       f"its size {self.in_size} must divide by {down} (encoder_steps >= 1)")
    n_up = _steps(self.size / (self.in_size // down), "Stage II's image size")
    ngf, ax = self.width, self.bn_axis_name
    h = nn.relu(_conv(ngf)(image))
    for i in range(self.encoder_steps):
      h = nn.relu(_bn(train, ax)(_conv(ngf * 2 ** (i + 1), 4, 2)(h)))
    code = h.shape[-1]
    c, mu, logvar = ConditioningAugmentation(self.condition_dim, self.ca_activation,
                                             max_sigma=self.ca_max_sigma, name="ca")(
        embedding, sample_condition, eps)
    tiled = jnp.broadcast_to(c[:, None, None, :], (*h.shape[:3], c.shape[-1])).astype(h.dtype)
    h = nn.relu(_bn(train, ax)(_conv(code)(jnp.concatenate([h, tiled], axis=-1))))
    for _ in range(self.residual_blocks):
      h = _ResBlock(ax)(h, train)
    for i in range(n_up):
      h = _up_block(h, max(code // 2 ** (i + 1), 1), train, ax)
    return jnp.tanh(_conv(self.channels)(h)), mu, logvar


class StackDiscriminator(nn.Module):
  """``D(x, c, c_wrong=None) -> {"cond", "wrong", "uncond"}`` logits ``[N]`` (StackGAN's D_0 / D).

  ``c``: sentence embeddings when ``text_dim > 0`` (compressed here to ``text_dim``, the
  embedding first scaled by ``sqrt(dim)`` as in :class:`ConditioningAugmentation`), else the
  generator's ``mu``.

  ``cond``: the image with its condition ``c``; ``wrong``: the same images with the conditions
  ``c_wrong`` (mismatched text; None when not given); ``uncond`` (``unconditional=True``, Stage
  II): the image alone (None otherwise).

  ``head``: how the conditional logit joins the image code and the condition. ``"concat"`` (the
  paper): the condition tiled over the 4x4 code, a 3x3 conv, BatchNorm, LeakyReLU, a 4x4 conv.
  ``"projection"`` (Miyato & Koyama, 2018): ``psi(phi) + <phi, V c>`` with ``phi`` the code
  summed over the grid: a realism term plus a matching term, so the match keeps its own gradient
  however fake the image looks."""
  width: int = 64             # the reference's DF_DIM
  unconditional: bool = False
  text_dim: int = 0           # > 0: c is a sentence embedding, compressed to this many dims
  head: str = "concat"        # the conditional head: "concat" (the paper) or "projection"
  bn_axis_name: str | None = None

  @nn.compact
  def __call__(self, x: jax.Array, c: jax.Array, c_wrong: jax.Array | None = None,
               train: bool = True) -> dict:
    n_down = _steps(x.shape[1] / 4, "the discriminator's image size (a multiple of 4)")
    ax = self.bn_axis_name
    h = x
    for i in range(n_down):
      h = _conv(self.width * 2 ** i, 4, 2)(h)
      if i:
        h = _bn(train, ax)(h)
      h = nn.leaky_relu(h, 0.2)
    feats = h.shape[-1]
    while feats > 8 * self.width:
      feats //= 2
      h = nn.leaky_relu(_bn(train, ax)(_conv(feats)(h)), 0.2)
    out = {"cond": None, "wrong": None, "uncond": None}
    conds = c if c_wrong is None else jnp.concatenate([c, c_wrong])
    if self.text_dim:
      conds = nn.Dense(self.text_dim, kernel_init=dcgan_kernel_init, name="text_fc")(
          conds * math.sqrt(conds.shape[-1]))
      conds = nn.leaky_relu(conds, 0.2)
    twice = (lambda a: a) if c_wrong is None else (lambda a: jnp.concatenate([a, a]))
    if self.head == "projection":
      # The realism term once per image; the matching term once per (image, text) pair.
      phi = jnp.sum(h, axis=(1, 2))
      self.sow("intermediates", "phi", phi)
      psi = nn.Dense(1, kernel_init=dcgan_kernel_init, name="proj_psi")(phi)[:, 0]
      embed = nn.Dense(feats, use_bias=False, kernel_init=dcgan_kernel_init,
                       name="proj_embed")(conds).astype(phi.dtype)
      logits = twice(psi) + jnp.sum(twice(phi) * embed, axis=-1)
    elif self.head == "concat":
      pairs = twice(h)
      tiled = jnp.broadcast_to(conds[:, None, None, :], (*pairs.shape[:3], conds.shape[-1]))
      g = _conv(feats, name="cond_conv")(jnp.concatenate([pairs, tiled.astype(h.dtype)], axis=-1))
      g = nn.leaky_relu(_bn(train, ax)(g), 0.2)
      logits = nn.Conv(1, (4, 4), (4, 4), padding="VALID", kernel_init=dcgan_kernel_init,
                       name="cond_logits")(g).reshape(-1)
    else:
      raise ValueError(f"StackDiscriminator head={self.head!r}: 'concat' or 'projection'")
    out["cond"] = logits[:x.shape[0]]
    if c_wrong is not None:
      out["wrong"] = logits[x.shape[0]:]
    if self.unconditional:
      out["uncond"] = nn.Conv(1, (4, 4), (4, 4), padding="VALID", kernel_init=dcgan_kernel_init,
                              name="uncond_logits")(h).reshape(-1)
    return out
