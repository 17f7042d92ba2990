"""Running a jitted function over many examples, and drawing images from a generator.

:func:`batched` is the one loop of the library that feeds arrays to a compiled
function in fixed-size chunks (the last one padded, so there is one compilation
per size); :func:`generate_images` draws ``num`` samples of a state's generator
through it. Used by the evaluation hooks, ``jaxgan.sample`` / ``jaxgan.evaluate``
and the families' figures.
"""

from __future__ import annotations

from typing import Callable

import jax
import numpy as np

from jaxgan.errors import JaxganError
from jaxgan.state import takes_label
from jaxgan.steps import generate


def to_uint8(images) -> np.ndarray:
  """Images in [-1, 1] (a generator's output) as uint8 in [0, 255], rounded: the conversion
  ``jaxgan.sample`` writes and the metrics read."""
  from jaxgan import viz
  return viz.to_uint8(images)


def save_images(images, out: str, columns: int | None = None) -> tuple[str, str]:
  """Writes ``images`` ``[N, H, W, C]`` to ``out`` (``.npz``, uint8 under ``images``, as
  ``jaxgan.sample`` does) and a grid of the first 64 as a PNG beside it; returns both paths.

  ``images``: floats in [-1, 1] (what :func:`generate_images` returns) or uint8 in [0, 255];
  anything else is refused with :class:`SampleError`.
  """
  images = np.asarray(images)
  if images.ndim != 4 or images.shape[-1] not in (1, 3):
    raise SampleError(f"save_images takes images [N, H, W, C] with 1 or 3 channels; got shape "
                      f"{images.shape}")
  if images.dtype == np.uint8:
    pixels = images
  elif np.issubdtype(images.dtype, np.floating):
    low, high = float(np.min(images)), float(np.max(images))
    if low < -1.0 - 1e-3 or high > 1.0 + 1e-3:
      raise SampleError(f"save_images takes floats in [-1, 1] (a generator's tanh output); these "
                        f"span [{low:.3g}, {high:.3g}]: scale them to [-1, 1], or pass uint8")
    pixels = to_uint8(images)
  else:
    raise SampleError(f"save_images takes float images in [-1, 1] or uint8 in [0, 255], not "
                      f"{images.dtype}")
  return save_arrays(out, {"images": pixels}, pixels[:64].astype(np.float32) / 127.5 - 1.0, columns)


def save_arrays(out: str, arrays: dict, picture, columns: int | None = None) -> tuple[str, str]:
  """Writes ``arrays`` to ``out`` (``.npz``, compressed; the suffix added when missing) and
  ``picture`` (images in [-1, 1]) as a grid PNG beside it; returns both paths."""
  import os

  from jaxgan import viz
  out = os.path.abspath(out if out.endswith(".npz") else out + ".npz")
  os.makedirs(os.path.dirname(out), exist_ok=True)
  np.savez_compressed(out, **arrays)
  png = out[:-len(".npz")] + ".png"
  viz.save_grid(np.asarray(picture, np.float32), png, columns)
  return out, png


class SampleError(JaxganError):
  """The run cannot be sampled as asked (no workdir, no checkpoint, a label out of range...)."""


def batched(fn: Callable, *arrays, batch_size: int = 500, dtype=np.float32) -> np.ndarray:
  """``fn(*chunks)`` over chunks of ``batch_size`` rows of ``arrays``, concatenated.

  Every chunk has ``min(batch_size, n)`` rows: the last one is padded by
  repeating its last row and the padding's outputs are dropped, so ``fn``
  compiles once. ``fn`` must treat rows independently (inference mode).
  """
  n = len(arrays[0])
  if n == 0:
    return np.zeros((0,), dtype)
  if batch_size <= 0:
    raise ValueError(f"batch_size must be positive, got {batch_size}")
  size = min(batch_size, n)
  out = []
  for start in range(0, n, size):
    chunk = [np.asarray(a[start:start + size]) for a in arrays]
    valid = len(chunk[0])
    if valid < size:
      chunk = [np.concatenate([c, np.repeat(c[-1:], size - valid, 0)]) for c in chunk]
    out.append(np.asarray(fn(*chunk), dtype)[:valid])
  return np.concatenate(out)


def sample_labels(state, num: int, label: int | None = None) -> np.ndarray | None:
  """The class labels of ``num`` samples of a conditional generator (None for an unconditional one).

  ``label=None``: every class in turn (``i % K``, balanced); else all ``label``,
  which must lie in ``[0, K)``.
  """
  if not takes_label(state.generator):
    if label is not None:
      raise SampleError(f"--label {label}: this run's generator is unconditional (it takes no "
                        f"label); drop --label, or sample a conditional run (cgan_*, acgan)")
    return None
  k = int(state.generator.num_classes)
  if label is None:
    return (np.arange(num) % k).astype(np.int32)
  if not 0 <= int(label) < k:
    raise SampleError(f"--label {label} is outside [0, {k}): this generator has {k} classes; "
                      f"choose --label between 0 and {k - 1}")
  return np.full(num, int(label), np.int32)


def check_truncation(truncation: float | None) -> None:
  """Refuses a truncation threshold that is not a positive number (None = no truncation)."""
  if truncation is not None and (isinstance(truncation, bool) or not np.isfinite(truncation)
                                 or truncation <= 0):
    raise SampleError(f"--truncation {truncation}: the threshold psi must be a positive number "
                      f"(e.g. 0.5; smaller trades diversity for fidelity), or left out for none")


def normal_draw(key: jax.Array, shape: tuple, truncation: float | None = None) -> jax.Array:
  """``N(0, I)`` of ``shape`` from ``key``; with ``truncation`` = psi, the normal truncated to
  ``[-psi, psi]`` (every component beyond it drawn again)."""
  if truncation is None:
    return jax.random.normal(key, shape)
  return jax.random.truncated_normal(key, -float(truncation), float(truncation), shape)


def latent_noise(num: int, latent_dim: int, seed: int = 0,
                 truncation: float | None = None) -> np.ndarray:
  """``z ~ N(0, I)`` ``[num, latent_dim]`` from ``PRNGKey(seed)``; with ``truncation`` = psi, the
  truncation trick (Brock et al., 2019): every component beyond ``[-psi, psi]`` is drawn again,
  i.e. ``z`` follows the normal truncated to that interval."""
  check_truncation(truncation)
  return np.asarray(normal_draw(jax.random.PRNGKey(seed), (num, latent_dim), truncation),
                    np.float32)


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
  """Spherical interpolation from ``a`` to ``b`` (vectors ``[d]``) at fractions ``t`` ``[n]``:
  ``[n, d]``. For Gaussian latents it keeps the norm where straight lines would pass through the
  low-density centre (White, 2016); parallel vectors fall back to a straight line."""
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  t = np.asarray(t, np.float64)[:, None]
  cos = np.dot(a, b) / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12)
  omega = np.arccos(np.clip(cos, -1.0, 1.0))
  if np.sin(omega) < 1e-6:
    return ((1 - t) * a + t * b).astype(np.float32)
  return ((np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)).astype(np.float32)


def interpolation_latents(latent_dim: int, steps: int, seed: int = 0,
                          truncation: float | None = None) -> np.ndarray:
  """``steps`` latents ``[steps, latent_dim]`` on the great circle between two draws of
  :func:`latent_noise` (``seed``): the first and the last are those two draws."""
  if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
    raise SampleError(f"--interpolate {steps}: an interpolation needs at least 2 steps")
  ends = latent_noise(2, latent_dim, seed, truncation)
  return slerp(ends[0], ends[1], np.linspace(0.0, 1.0, steps))


def generate_images(state, latent_dim: int, num: int, seed: int = 0,
                    batch_size: int = 500, labels=None, z: np.ndarray | None = None,
                    truncation: float | None = None) -> np.ndarray:
  """``num`` images G(z) in [-1, 1] (float32 NHWC), ``z`` from :func:`latent_noise` (``seed``,
  ``truncation``) or the given ``z``, generated in jitted batches of ``batch_size``
  (:func:`batched`).

  A conditional generator makes ``G(z, y)`` with ``labels`` (int ``[num]``;
  default :func:`sample_labels`: every class in turn).
  """
  if num <= 0 or batch_size <= 0:
    raise ValueError(f"num and batch_size must be positive, got {num} and {batch_size}")
  if labels is None:
    labels = sample_labels(state, num)
  if z is None:
    z = latent_noise(num, latent_dim, seed, truncation)
  if labels is None:
    return batched(lambda zb: generate(state, zb), z, batch_size=batch_size)
  return batched(lambda zb, yb: generate(state, zb, yb), z, np.asarray(labels, np.int32),
                 batch_size=batch_size)
