"""Differentiable augmentation (DiffAugment; Zhao, Liu, Lin, Zhu & Han, 2020).

D sees every image, real or generated, through the same random, differentiable transform
``T``: ``D(T(x))`` and ``D(T(G(z)))`` in D's update, ``D(T(G(z)))`` in G's, whose gradient
flows back through ``T`` to G. With a small training set this keeps D from memorising the
real images without leaking the augmentation into G's samples. The three transforms of the
paper, on NHWC images in [-1, 1], each with its own per-example randomness:

* ``"color"``: brightness ``x + (r - 1/2)``, saturation ``(x - mean_c x) * 2r + mean_c x``
  (per pixel over channels; nothing for one channel), contrast ``(x - mean x) * (r + 1/2) +
  mean x`` (over the image), with ``r ~ U[0, 1)`` for each;
* ``"translation"``: a shift by up to 1/8 of the side in each direction (integer pixels,
  uniform over ``[-s, s]``), the uncovered pixels zero;
* ``"cutout"``: a square of half the side, centred anywhere in the image, set to zero.

The transforms read their random numbers from a ``[N, NUM_UNIFORMS]`` array of ``U[0, 1)``
draws (:func:`augment_with`), so the train steps can draw them for the global batch and give
each device its own rows: n devices then augment exactly as one device does
(:func:`jaxgan.steps.local_draw`). :func:`diff_augment` draws them from a key.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp

POLICIES = ("color", "translation", "cutout")
NUM_UNIFORMS = 7   # brightness, saturation, contrast, 2 shifts, 2 cutout offsets
TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5


def parse_policy(policy: str | Sequence[str]) -> tuple[str, ...]:
  """``"color,translation"`` (or a sequence of names) -> ``("color", "translation")``; ``""`` ->
  ``()``. An unknown or repeated name is a ``ValueError`` naming the known ones."""
  names = [p.strip() for p in policy.split(",")] if isinstance(policy, str) else list(policy)
  names = [n for n in names if n]
  unknown = [n for n in names if n not in POLICIES]
  if unknown:
    raise ValueError(f"unknown augmentation {unknown[0]!r}; choose from {', '.join(POLICIES)} "
                     f"(comma-separated, e.g. 'color,translation,cutout')")
  if len(set(names)) != len(names):
    raise ValueError(f"augmentation {names} names a transform twice")
  return tuple(names)


def brightness(x, r):
  return x + (r[:, None, None, None] - 0.5)


def saturation(x, r):
  mean = jnp.mean(x, axis=3, keepdims=True)
  return (x - mean) * (2.0 * r[:, None, None, None]) + mean


def contrast(x, r):
  mean = jnp.mean(x, axis=(1, 2, 3), keepdims=True)
  return (x - mean) * (r[:, None, None, None] + 0.5) + mean


def _index(u, n):
  """floor(u * n) as an int in [0, n): a uniform integer from a uniform float."""
  return jnp.minimum(jnp.floor(u * n).astype(jnp.int32), n - 1)


def translation(x, u_y, u_x, ratio: float = TRANSLATION_RATIO):
  """Shifts each image by ``(dy, dx)``, uniform integers in ``[-s, s]``, ``s = round(side * ratio)``;
  zeros come in at the edges."""
  h, w = x.shape[1], x.shape[2]
  sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
  dy, dx = _index(u_y, 2 * sy + 1) - sy, _index(u_x, 2 * sx + 1) - sx
  padded = jnp.pad(x, ((0, 0), (sy, sy), (sx, sx), (0, 0)))

  def shift(image, oy, ox):
    return jax.lax.dynamic_slice(image, (oy, ox, 0), (h, w, x.shape[3]))

  return jax.vmap(shift)(padded, dy + sy, dx + sx)


def cutout(x, u_y, u_x, ratio: float = CUTOUT_RATIO):
  """Zeroes a ``round(side * ratio)`` square per image whose centre is uniform over the image
  (the square clipped at the edges)."""
  h, w = x.shape[1], x.shape[2]
  ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
  top = _index(u_y, h + (1 - ch % 2)) - ch // 2
  left = _index(u_x, w + (1 - cw % 2)) - cw // 2
  rows, cols = jnp.arange(h), jnp.arange(w)
  in_rows = (rows[None, :] >= top[:, None]) & (rows[None, :] < top[:, None] + ch)
  in_cols = (cols[None, :] >= left[:, None]) & (cols[None, :] < left[:, None] + cw)
  keep = ~(in_rows[:, :, None] & in_cols[:, None, :])
  return x * keep[..., None].astype(x.dtype)


def augment_with(x: jax.Array, uniforms: jax.Array, policy: Sequence[str]) -> jax.Array:
  """``policy``'s transforms, in the order color, translation, cutout (the paper's), applied to
  ``x`` ([N, H, W, C]) with the random numbers ``uniforms`` ([N, NUM_UNIFORMS] in [0, 1))."""
  u = uniforms.astype(x.dtype)
  if "color" in policy:
    x = contrast(saturation(brightness(x, u[:, 0]), u[:, 1]), u[:, 2])
  if "translation" in policy:
    x = translation(x, u[:, 3], u[:, 4])
  if "cutout" in policy:
    x = cutout(x, u[:, 5], u[:, 6])
  return x


def diff_augment(x: jax.Array, key: jax.Array, policy: str | Sequence[str] = POLICIES) -> jax.Array:
  """DiffAugment of the batch ``x`` with the randomness of ``key``: ``policy`` is a
  comma-separated string or a sequence of :data:`POLICIES` names."""
  uniforms = jax.random.uniform(key, (x.shape[0], NUM_UNIFORMS))
  return augment_with(x, uniforms, parse_policy(policy))
