"""FID and KID in Inception space between any two image sets: ``python -m jaxgan.fid A B [--num N]``.

``A`` and ``B`` are each an ``.npz`` holding uint8 NHWC images under ``images`` (what
``python -m jaxgan.sample`` writes) or a folder of PNG / JPEG files, from jaxgan or any other
framework: the same yardstick as papers' FIDs (:mod:`jaxgan.metrics.inception`: the 2015-12-05
Inception graph and its input pipeline). ``--num N`` takes the first N images of each set.
The Python function behind it is :func:`fid_between`.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from jaxgan.errors import JaxganError  # noqa: E402

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
# Below this many images per set FID's bias is large against its value (it falls as 1/N: FIDs of
# different N do not compare; papers use 10,000 or 50,000).
FEW_IMAGES = 2048


class ImageSetError(JaxganError):
  """An image set cannot be read as images."""


def load_images(path: str, num: int | None = None) -> np.ndarray:
  """The uint8 ``[N, H, W, C]`` images of an ``.npz`` (key ``images``) or a folder of PNG / JPEG
  files (sorted by name, all of one size); the first ``num`` when given."""
  if not os.path.exists(path):
    raise ImageSetError(f"{path} does not exist")
  if os.path.isdir(path):
    names = sorted(n for n in os.listdir(path) if n.lower().endswith(IMAGE_SUFFIXES))
    if not names:
      raise ImageSetError(f"{path} holds no {'/'.join(s[1:].upper() for s in IMAGE_SUFFIXES)} files")
    from PIL import Image
    images = []
    for name in names[:num]:
      with Image.open(os.path.join(path, name)) as im:
        a = np.asarray(im.convert("L" if im.mode in ("L", "I", "I;16", "1") else "RGB"))
      images.append(a[..., None] if a.ndim == 2 else a)
    sizes = {a.shape for a in images}
    if len(sizes) > 1:
      raise ImageSetError(f"{path}: the images have different sizes or channels {sorted(sizes)}; "
                          f"resize them to one size first")
    return np.stack(images)
  try:
    with np.load(path) as f:
      if "images" not in f:
        raise ImageSetError(f"{path} has no 'images' array (it has {sorted(f.files)}); save uint8 "
                            f"NHWC images under the key 'images'")
      images = f["images"]
  except (OSError, ValueError) as e:
    raise ImageSetError(f"cannot read {path} as an .npz: {e}") from None
  if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] not in (1, 3):
    raise ImageSetError(f"{path}: 'images' must be uint8 [N, H, W, 1 or 3], not {images.dtype} "
                        f"{list(images.shape)} (jaxgan.to_uint8 converts [-1, 1] floats)")
  return images[:num]


def fid_between(a, b, num: int | None = None, network=None, batch_size: int = 100,
                progress: bool = True, warn=None) -> dict:
  """FID and KID (``{"fid", "kid", "kid_std", "n_a", "n_b"}``) between two image sets in
  Inception space. ``a`` / ``b``: paths (:func:`load_images`) or uint8 / [-1, 1] arrays."""
  from jaxgan.metrics import fid_from_features, kid
  from jaxgan.metrics.inception import load_inception
  sets = [load_images(x, num) if isinstance(x, str) else np.asarray(x)[:num] for x in (a, b)]
  channels = [s.shape[-1] for s in sets]
  if channels[0] != channels[1]:
    raise ImageSetError(f"the two sets have {channels[0]} and {channels[1]} channels; compare "
                        f"like with like (convert both to RGB or both to grayscale)")
  for s in sets:
    if len(s) < 2:
      raise ImageSetError(f"a set has {len(s)} image(s); FID needs at least 2 (thousands for a "
                          f"meaningful value)")
  if min(len(s) for s in sets) < FEW_IMAGES and warn is not None:
    warn(f"warning: {min(len(s) for s in sets)} images in a set: FID is biased upwards at small N "
         f"(the bias falls as 1/N), so compare only FIDs of equal N; papers use 10,000 or 50,000")
  network = network or load_inception()
  feats = [network(s, batch_size=batch_size, progress=progress) for s in sets]
  kid_mean, kid_std = kid(*feats)
  return {"fid": float(fid_from_features(*feats)), "kid": float(kid_mean), "kid_std": float(kid_std),
          "n_a": len(sets[0]), "n_b": len(sets[1]), "network": network.name,
          "network_sha256": network.sha256}


def main(argv=None) -> int:
  import argparse
  parser = argparse.ArgumentParser(prog="python -m jaxgan.fid", description=__doc__.splitlines()[0])
  parser.add_argument("a", help=".npz (uint8 NHWC under 'images') or a folder of PNG/JPEG files")
  parser.add_argument("b", help="the second set, as a")
  parser.add_argument("--num", type=int, default=None, help="the first N images of each set")
  parser.add_argument("--batch_size", type=int, default=100)
  args = parser.parse_args(argv)
  if (args.num is not None and args.num < 2) or args.batch_size <= 0:
    print("error: --num must be at least 2 and --batch_size positive", file=sys.stderr)
    return 2
  try:
    r = fid_between(args.a, args.b, args.num, batch_size=args.batch_size,
                    warn=lambda m: print(m, file=sys.stderr))
  except JaxganError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print(f"FID {r['fid']:.4f}  KID {r['kid']:.5f} ± {r['kid_std']:.5f}  ({r['n_a']} vs {r['n_b']} "
        f"images, {r['network']} sha256 {r['network_sha256'][:12]})")
  return 0


if __name__ == "__main__":
  sys.exit(main())
