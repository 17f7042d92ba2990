"""Pictures: sample grids and training curves (matplotlib, no display needed)."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import textwrap
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


CAPTION_WIDTH = 36   # characters per line of a caption beside its row (the 300-pixel margin)


def to_uint8(images: np.ndarray) -> np.ndarray:
  """[-1, 1] floats -> [0, 255] uint8."""
  return np.clip(np.round((np.asarray(images, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def make_grid(images: np.ndarray, ncols: int | None = None, pad: int = 2) -> np.ndarray:
  """Tiles ``[N, H, W, C]`` images in [-1, 1] into one uint8 ``[H', W', C]`` picture."""
  images = to_uint8(images)
  n, h, w, c = images.shape
  ncols = ncols or int(math.ceil(math.sqrt(n)))
  nrows = int(math.ceil(n / ncols))
  grid = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad, c), 255, np.uint8)
  for i in range(n):
    r, col = divmod(i, ncols)
    y, x = pad + r * (h + pad), pad + col * (w + pad)
    grid[y:y + h, x:x + w] = images[i]
  return grid


def captioned_rows(rows: Sequence[np.ndarray], captions: Sequence[str],
                   headers: Sequence[str] = (), scale: int = 3) -> np.ndarray:
  """One uint8 RGB picture: each uint8 ``[H, W, C]`` row picture (all of one size) up-scaled
  ``scale`` times, its caption written to its left; ``headers`` above equal parts of the rows
  (e.g. "Stage I", "Stage II")."""
  rows = [np.asarray(r).repeat(scale, 0).repeat(scale, 1) for r in rows]
  rows = [np.repeat(r, 3, axis=-1) if r.shape[-1] == 1 else r for r in rows]
  h, w = rows[0].shape[:2]
  dpi, text_w, head_h = 100, 300, (24 if headers else 0)
  fig = plt.figure(figsize=((text_w + w) / dpi, (len(rows) * h + head_h) / dpi), dpi=dpi)
  total_h = len(rows) * h + head_h
  for i, (row, caption) in enumerate(zip(rows, captions)):
    bottom = 1 - (head_h + (i + 1) * h) / total_h
    ax = fig.add_axes([text_w / (text_w + w), bottom, w / (text_w + w), h / total_h])
    ax.imshow(row, interpolation="nearest")
    ax.axis("off")
    fig.text(0.01, bottom + 0.5 * h / total_h, textwrap.fill(caption, CAPTION_WIDTH), fontsize=9,
             va="center", ha="left")
  for j, header in enumerate(headers):
    x = (text_w + (j + 0.5) * w / len(headers)) / (text_w + w)
    fig.text(x, 1 - 0.5 * head_h / total_h, header, fontsize=10, ha="center", va="center")
  fig.canvas.draw()
  picture = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
  plt.close(fig)
  return picture


def save_picture(image: np.ndarray, path: str, scale: int = 1) -> None:
  """Writes a uint8 ``[H, W, C]`` picture as a PNG, nearest-neighbour up-scaled ``scale`` times."""
  big = np.asarray(image).repeat(scale, 0).repeat(scale, 1)
  if big.shape[-1] == 1:
    plt.imsave(path, big[..., 0], cmap="gray", vmin=0, vmax=255)
  else:
    plt.imsave(path, big)


def save_grid(images: np.ndarray, path: str, ncols: int | None = None, scale: int = 3) -> np.ndarray:
  """Writes a sample grid PNG (nearest-neighbour up-scaled) and returns the grid."""
  grid = make_grid(images, ncols)
  save_picture(grid, path, scale)
  return grid


def _curves(path: str, steps: Sequence[int], series: dict[str, Sequence[float]], title: str,
            ylabel: str, ylim=None, hline=None) -> None:
  fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
  for label, values in series.items():
    ax.plot(steps, values, label=label, linewidth=1.2)
  if hline is not None:
    ax.axhline(hline, color="gray", linestyle=":", linewidth=1)
  ax.set_xlabel("step")
  ax.set_ylabel(ylabel)
  ax.set_title(title)
  if ylim:
    ax.set_ylim(*ylim)
  ax.grid(alpha=0.3)
  ax.legend()
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)


def plot_losses(history: Sequence[dict], path: str, title: str = "losses") -> None:
  """Generator and discriminator loss against step (records without losses are skipped)."""
  history = [h for h in history if "d_loss" in h and "g_loss" in h]
  steps = [h["step"] for h in history]
  _curves(path, steps, {"discriminator": [h["d_loss"] for h in history],
                        "generator": [h["g_loss"] for h in history]}, title, "loss")


def plot_accuracy(history: Sequence[dict], path: str, title: str = "discriminator accuracy") -> None:
  """D's accuracy on real and on fake batches against step (0.5 = chance)."""
  history = [h for h in history if "d_real_acc" in h and "d_fake_acc" in h]
  steps = [h["step"] for h in history]
  _curves(path, steps, {"real": [h["d_real_acc"] for h in history],
                        "fake": [h["d_fake_acc"] for h in history]}, title, "accuracy",
          ylim=(-0.02, 1.02), hline=0.5)


def class_grid(images: np.ndarray, num_classes: int) -> np.ndarray:
  """Class-by-row grid of conditional samples: ``images`` ``[K * n, H, W, C]`` in [-1, 1], class-major.

  Row ``k`` holds the ``n`` samples of class ``k`` (``images[k * n:(k + 1) * n]``);
  with the same noise vector down each column, a column shows one "style"
  across all classes. Returns the uint8 grid.
  """
  images = np.asarray(images)
  if num_classes < 1 or len(images) % num_classes:
    raise ValueError(f"{len(images)} images do not split into {num_classes} equal class rows")
  return make_grid(images, len(images) // num_classes)


def save_class_grid(images: np.ndarray, num_classes: int, path: str, scale: int = 3) -> np.ndarray:
  """Writes :func:`class_grid` as a PNG (nearest-neighbour up-scaled) and returns the grid."""
  class_grid(images, num_classes)  # checks the shape
  return save_grid(images, path, len(images) // num_classes, scale)


def assemble_film(frames: Sequence[str], gif_path: str, fps: int = 8) -> list[str]:
  """Animated GIF of the PNG ``frames`` (Pillow); also ``.mp4`` beside it when ffmpeg exists.

  Returns the paths written. The last frame is held for a second.
  """
  from PIL import Image
  if not frames:
    return []
  images = [Image.open(f).convert("RGB") for f in frames]
  duration = [int(1000 / fps)] * len(images)
  duration[-1] = max(duration[-1], 1000)
  palette = [im.quantize(colors=256, method=Image.Quantize.MEDIANCUT) for im in images]
  palette[0].save(gif_path, save_all=True, append_images=palette[1:], duration=duration, loop=0,
                  optimize=False)
  written = [gif_path]
  ffmpeg = shutil.which("ffmpeg")
  if ffmpeg:
    mp4 = os.path.splitext(gif_path)[0] + ".mp4"
    w, h = images[0].size
    cmd = [ffmpeg, "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", f"{w}x{h}", "-r", str(fps), "-i", "-", "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2",
           "-pix_fmt", "yuv420p", "-c:v", "libx264", mp4]
    raw = b"".join(np.asarray(im.resize((w, h))).tobytes() for im in images)
    if subprocess.run(cmd, input=raw, check=False).returncode == 0:
      written.append(mp4)
  return written
