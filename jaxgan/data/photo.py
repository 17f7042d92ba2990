"""The real image-to-image translation datasets through tfds: ``cycle_gan/<pair>`` and ``celeb_a``.

Both are read with the same offline mechanism as Fashion-MNIST
(:func:`jaxgan.data.prepare`: tfds builds them once, from the network or from
the original files in ``$JAXGAN_MANUAL_DIR/<dataset>/``; for the CycleGAN sets
that is ``cycle_gan/<pair>.zip``, for CelebA the five files tfds lists:
``img_align_celeba.zip`` and the four ``list_*`` / ``identity_*`` text files),
then decoded **once** at the run's resolution into a uint8 ``.npy`` cache next
to the tfds build (memory-mapped: CelebA at 128 px is 10 GB, which a laptop
should not hold in RAM). The per-batch augmentation is the reference
implementations' and a pure function of ``(seed, i)``, so resume stays exact:

* **CycleGAN** (Zhu et al., 2017; the reference ``--preprocess resize_and_crop``):
  resize to ``load_size`` (286 for 256-px crops, i.e. ``round(side * 286 / 256)``
  by default), random ``side x side`` crop, random horizontal flip. Domain A is
  the ``trainA`` split, B ``trainB``; figures use ``testA`` / ``testB``.
* **StarGAN on CelebA** (Choi et al., 2018): center crop 178, resize to
  ``side`` (128 in the paper), random horizontal flip; the label is the 0/1
  vector of the chosen attributes (the paper's five: black, blond, brown
  hair, male, young), classified with per-attribute BCE. The hair colours are
  an exclusive group for the figure's target labels (one on, the others off),
  as in the reference ``create_labels``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

from jaxgan.data.domains import _Indices, _stream
from jaxgan.errors import ConfigError
from jaxgan.data.tfds_data import DataError, ImageData
from jaxgan.data.tfds_data import manual_subdir, needed_files  # noqa: F401 - re-exported

CELEBA = "celeb_a"
CYCLE_GAN = "cycle_gan"
CELEBA_DEFAULT = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young")
HAIR_COLOURS = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")
CELEBA_CROP = 178
CYCLEGAN_LOAD_RATIO = 286 / 256


def is_photo(name: str) -> bool:
  """Whether ``name`` is one of the real translation datasets (``celeb_a``, ``cycle_gan/<pair>``)."""
  return name == CELEBA or name.startswith(CYCLE_GAN + "/")


def celeba_attribute_names() -> tuple[str, ...]:
  """The 40 attribute names of tfds's ``celeb_a`` (from its feature spec; no data needed)."""
  from jaxgan.data.tfds_data import _tfds
  return tuple(_tfds().builder(CELEBA).info.features["attributes"].keys())


@dataclass(frozen=True)
class AttributeSpec:
  """CelebA-style labels: a 0/1 vector over ``names`` (per-attribute BCE); ``exclusive`` are the
  indices of one mutually exclusive group (hair colours)."""
  names: tuple[str, ...]
  kind: str = "multi"

  def __post_init__(self):
    object.__setattr__(self, "names", tuple(self.names))
    if not self.names or len(set(self.names)) != len(self.names):
      raise ConfigError(f"attributes {self.names}: name each attribute once, at least one")

  @property
  def size(self) -> int:
    return len(self.names)

  @property
  def loss(self) -> str:
    return "bce"

  @property
  def exclusive(self) -> list[int]:
    return [i for i, n in enumerate(self.names) if n in HAIR_COLOURS]


def celeba_spec(attributes: Sequence[str] = ()) -> AttributeSpec:
  """The label set of a CelebA run (``()`` = the paper's five), checked against tfds's names."""
  names = tuple(attributes) or CELEBA_DEFAULT
  known = celeba_attribute_names()
  bad = [a for a in names if a not in known]
  if bad:
    raise ConfigError(f"celeb_a has no attribute(s) {bad}; choose from {list(known)} "
                      f"(e.g. --config.stargan.attributes={','.join(CELEBA_DEFAULT)})")
  return AttributeSpec(names)


# ---------------------------------------------------------------------------------------
# Decoding once into a uint8 cache

def _cache_path(builder, name: str, split: str, side: int) -> str:
  return os.path.join(builder.data_dir, "jaxgan", f"{name.replace('/', '_')}-{split}-{side}.npy")


def decode(name: str, split: str, side: int, data_dir: str | None = None,
           manual_dir: str | None = None, attributes: Sequence[str] = ()) -> tuple[np.ndarray, np.ndarray]:
  """``(images, labels)`` of a split: uint8 ``[N, side, side, 3]`` (memory-mapped from the cache)
  and float32 0/1 attribute labels ``[N, len(attributes)]`` (CelebA; ``[N, 0]`` otherwise).

  CelebA images are center-cropped to 178 x 178 then resized to ``side``; CycleGAN images are
  resized to ``side`` (callers pass the load size; the random crop comes per batch).
  """
  import tensorflow as tf
  tf.config.set_visible_devices([], "GPU")
  from jaxgan.data.tfds_data import _tfds, prepare
  tfds = _tfds()
  if not isinstance(side, (int, np.integer)) or side < 8:
    raise ConfigError(f"image side {side!r}: give an integer >= 8 (config.image_size)")
  builder = prepare(name, data_dir, manual_dir)
  path = _cache_path(builder, name, split, int(side))
  label_path = path[:-4] + "-labels.npy"
  attributes = tuple(attributes)
  if os.path.exists(path) and os.path.exists(label_path):
    labels = np.load(label_path, allow_pickle=False)
    with open(label_path[:-4] + ".txt") as f:
      cached_names = tuple(f.read().split())
    if set(attributes) <= set(cached_names):
      cols = [cached_names.index(a) for a in attributes]
      return np.load(path, mmap_mode="r"), labels[:, cols].astype(np.float32)
  try:
    ds = builder.as_dataset(split=split, shuffle_files=False)
  except Exception as e:
    raise DataError(f"tfds cannot read {name}/{split}: {e}") from None
  celeba = name == CELEBA
  all_names = celeba_attribute_names() if celeba else ()

  def prep(ex):
    x = ex["image"]
    if celeba:
      x = tf.image.resize_with_crop_or_pad(x, CELEBA_CROP, CELEBA_CROP)
    x = tf.image.resize(tf.cast(x, tf.float32), (side, side), method="bicubic", antialias=True)
    x = tf.cast(tf.clip_by_value(tf.round(x), 0.0, 255.0), tf.uint8)
    if celeba:
      y = tf.stack([tf.cast(ex["attributes"][a], tf.uint8) for a in all_names])
    else:
      y = tf.zeros((0,), tf.uint8)
    return x, y

  n = builder.info.splits[split].num_examples if split in builder.info.splits else None
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = path + f".tmp{os.getpid()}"
  chunks, labels, done = [], [], 0
  out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(n, side, side, 3)) if n else None
  for x, y in tfds.as_numpy(ds.map(prep, num_parallel_calls=tf.data.AUTOTUNE).batch(512)):
    if out is not None:
      out[done:done + len(x)] = x
    else:
      chunks.append(x)
    labels.append(y)
    done += len(x)
  if not done:
    raise DataError(f"{name}/{split} is empty")
  if out is not None:
    if done != n:
      raise DataError(f"{name}/{split}: read {done} examples, tfds says {n}; delete "
                      f"{builder.data_dir} and rebuild")
    out.flush()
    del out
  else:
    np.save(tmp, np.concatenate(chunks), allow_pickle=False)
    os.replace(tmp + ".npy", tmp)
  labels = np.concatenate(labels)
  np.save(label_path, labels, allow_pickle=False)
  with open(label_path[:-4] + ".txt", "w") as f:
    f.write("\n".join(all_names))
  os.replace(tmp, path)  # last: a complete cache or none
  cols = [all_names.index(a) for a in attributes]
  return np.load(path, mmap_mode="r"), labels[:, cols].astype(np.float32)


def faces(split: str, image_size: int | None, data_dir: str | None = None,
          manual_dir: str | None = None, part: tuple[int, int] = (0, 1)) -> ImageData:
  """CelebA's faces without labels, center-cropped to 178 and resized to ``image_size`` (the
  StarGAN / GAN-benchmark preprocessing), as uint8 memory-mapped from a cache next to the tfds
  build (:func:`decode`; 162,770 train faces at 64 px are 2 GB); batches are
  converted to float32 in [-1, 1] as they are drawn."""
  if not image_size:
    raise DataError("celeb_a needs config.image_size (e.g. 64): its 218x178 photos are "
                    "center-cropped to 178 and resized to a square side")
  images, _ = decode(CELEBA, split, int(image_size), data_dir, manual_dir)
  index, count = part
  if count > 1:
    per = len(images) // count
    images = images[index * per:(index + 1) * per]
    split = f"{split}[{index * per}:{(index + 1) * per}]"
  return ImageData(images=images, labels=np.zeros(len(images), np.int32), num_classes=0,
                   name="celeb_a", split=split)


def to_float(x: np.ndarray) -> np.ndarray:
  """uint8 -> float32 in [-1, 1]."""
  return np.asarray(x, np.float32) / 127.5 - 1.0


def augment(images: np.ndarray, side: int, rng: np.random.Generator, flip: bool = True) -> np.ndarray:
  """Random ``side x side`` crops (when the images are larger) and horizontal flips (p = 0.5), as
  float32 in [-1, 1]."""
  n, h, w = images.shape[:3]
  if h < side or w < side:
    raise ConfigError(f"images of {h}x{w} cannot be cropped to {side}x{side}")
  ys, xs = rng.integers(0, h - side + 1, n), rng.integers(0, w - side + 1, n)
  flips = rng.random(n) < 0.5 if flip else np.zeros(n, bool)
  out = np.empty((n, side, side, images.shape[3]), np.float32)
  for k in range(n):
    crop = images[k, ys[k]:ys[k] + side, xs[k]:xs[k] + side]
    out[k] = crop[:, ::-1] if flips[k] else crop
  return out / 127.5 - 1.0


# ---------------------------------------------------------------------------------------
# The training sets

class UnpairedPhotos:
  """CycleGAN's two unpaired domains of real photos: batches ``{"image_a", "image_b"}`` (float32,
  [-1, 1], ``side x side``) randomly cropped from the ``load_size`` cache and flipped."""

  def __init__(self, images_a: np.ndarray, images_b: np.ndarray, side: int, flip: bool = True,
               name: str = "photos"):
    for x in (images_a, images_b):
      if x.ndim != 4 or x.shape[-1] != 3 or x.dtype != np.uint8:
        raise ValueError(f"expected uint8 RGB images [N, H, W, 3], got {x.dtype} {x.shape}")
    self.images_a, self.images_b, self.side, self.flip = images_a, images_b, int(side), flip
    self.name = name
    self.example_shape = (self.side, self.side, 3)
    self.num_classes = 0

  def batch(self, batch_size: int, seed: int, i: int) -> dict[str, np.ndarray]:
    out = {}
    for salt, (key, x) in enumerate((("image_a", self.images_a), ("image_b", self.images_b))):
      idx = _Indices(len(x), batch_size, f"{self.name} ({key})")(seed, salt, i)
      out[key] = augment(x[idx], self.side, np.random.default_rng([seed, 100 + salt, i]), self.flip)
    return out

  def stream(self, batch_size: int, seed: int, start: int = 0) -> Iterator[dict[str, np.ndarray]]:
    for key, x in (("image_a", self.images_a), ("image_b", self.images_b)):
      _Indices(len(x), batch_size, f"{self.name} ({key})")  # fail fast
    return _stream(lambda i: self.batch(batch_size, seed, i), start)


class AttributePhotos:
  """StarGAN's labelled photos (CelebA): batches ``{"image", "label"}``, randomly flipped."""

  def __init__(self, images: np.ndarray, labels: np.ndarray, spec: AttributeSpec, flip: bool = True,
               name: str = CELEBA):
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
      raise ValueError(f"expected uint8 RGB images [N, H, W, 3], got {images.dtype} {images.shape}")
    if labels.shape != (len(images), spec.size):
      raise ConfigError(f"labels of shape {labels.shape} for {len(images)} images and the "
                        f"{spec.size} attributes {spec.names}")
    self.images, self.labels, self.spec, self.flip = images, labels.astype(np.float32), spec, flip
    self.name = name
    self.example_shape = tuple(images.shape[1:])
    self.num_classes = 0
    self.multi, self.label_sizes, self.label_size = False, None, spec.size
    self.cls_loss = spec.loss

  def batch(self, batch_size: int, seed: int, i: int) -> dict[str, np.ndarray]:
    idx = _Indices(len(self.images), batch_size, self.name)(seed, 0, i)
    image = augment(self.images[idx], self.images.shape[1], np.random.default_rng([seed, 100, i]),
                    self.flip)
    return {"image": image, "label": self.labels[idx]}

  def stream(self, batch_size: int, seed: int, start: int = 0) -> Iterator[dict[str, np.ndarray]]:
    _Indices(len(self.images), batch_size, self.name)
    return _stream(lambda i: self.batch(batch_size, seed, i), start)


def cyclegan_load_size(side: int, load_size: int = 0) -> int:
  """The cache resolution of a CycleGAN set: ``load_size`` if given, else the reference's
  286 / 256 of the crop side."""
  load = int(load_size) or int(round(side * CYCLEGAN_LOAD_RATIO))
  if load < side:
    raise ConfigError(f"load_size {load} is smaller than the crop image_size {side}; "
                      f"set config.data.load_size >= image_size (0 = {CYCLEGAN_LOAD_RATIO:.4f} x)")
  return load


def cycle_gan(name: str, side: int, split: str = "train", load_size: int = 0,
              data_dir: str | None = None, manual_dir: str | None = None) -> UnpairedPhotos:
  """A ``cycle_gan/<pair>`` set: A = ``<split>A``, B = ``<split>B``. Test splits are not cropped at
  random: they are decoded straight at ``side`` (and not flipped)."""
  load = cyclegan_load_size(side, load_size) if split == "train" else side
  a = decode(name, f"{split}A", load, data_dir, manual_dir)[0]
  b = decode(name, f"{split}B", load, data_dir, manual_dir)[0]
  return UnpairedPhotos(a, b, side, flip=split == "train", name=name)


def celeb_a(side: int, attributes: Sequence[str] = (), split: str = "train",
            data_dir: str | None = None, manual_dir: str | None = None) -> AttributePhotos:
  """CelebA with the StarGAN preprocessing at ``side`` and the chosen attributes as labels."""
  spec = celeba_spec(attributes)
  images, labels = decode(CELEBA, split, side, data_dir, manual_dir, spec.names)
  return AttributePhotos(images, labels, spec, flip=split == "train")
