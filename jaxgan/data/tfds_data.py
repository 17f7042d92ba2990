"""Image datasets through tensorflow-datasets, offline-capable, with exact resume.

tfds builds the dataset once into its data dir (from the network, or from a
directory of the original raw files on offline machines), then a ``tf.data``
pipeline decodes, normalises to [-1, 1] and resizes the split once. The decoded
split is small (Fashion-MNIST at 32x32 is 245 MB as float32) and is kept in host
memory; :class:`BatchStream` then shuffles it with one seeded permutation per
epoch and batches with ``drop_remainder``. Batch ``i`` of the stream is a pure
function of ``(seed, i)``, so resuming at step ``i`` reads exactly the batches
an uninterrupted run would have read, and a batch costs one numpy gather
(microseconds) instead of a trip through ``tf.data``.
"""

from __future__ import annotations

import fcntl
import os
import socket
import threading
import queue
from dataclasses import dataclass
from typing import Iterator
from urllib.parse import urlparse

import numpy as np

from jaxgan.errors import JaxganError

MANUAL_DIR_ENV = "JAXGAN_MANUAL_DIR"

# What a correct build of each known dataset holds.
EXPECTED = {
    "fashion_mnist": {"train": 60_000, "test": 10_000, "shape": (28, 28, 1), "classes": 10},
    "mnist": {"train": 60_000, "test": 10_000, "shape": (28, 28, 1), "classes": 10},
    "cifar10": {"train": 50_000, "test": 10_000, "shape": (32, 32, 3), "classes": 10},
}


class DataError(JaxganError):
  """The dataset cannot be found, built or read; the message says how to fix it."""


def _tfds():
  import tensorflow_datasets as tfds  # heavy import, deferred
  return tfds


def _reachable(host: str, port: int, timeout: float = 3.0) -> bool:
  try:
    with socket.create_connection((host, port), timeout=timeout):
      return True
  except OSError:
    return False


def resolve_manual_dir(manual_dir: str | None) -> str | None:
  """The config value if set, else ``$JAXGAN_MANUAL_DIR``, else None."""
  manual_dir = manual_dir or os.environ.get(MANUAL_DIR_ENV) or None
  return os.path.abspath(os.path.expanduser(manual_dir)) if manual_dir else None


def manual_subdir(name: str) -> str:
  """The folder of ``name``'s original files under the manual directory (``cycle_gan`` for every pair)."""
  return name.split("/")[0]


def needed_files(name: str, url_infos: dict) -> list[str]:
  """The original files ``name`` is built from: a CycleGAN pair needs only its own zip (tfds's
  ``cycle_gan`` builder lists every pair's)."""
  files = sorted({u.filename for u in url_infos.values() if u.filename})
  if name.startswith("cycle_gan/"):
    pair = name.split("/", 1)[1]
    return [f for f in files if f == f"{pair}.zip"] or [f"{pair}.zip"]
  return files


def prepare(name: str, data_dir: str | None = None, manual_dir: str | None = None):
  """Builds ``name`` with tfds if needed and returns its builder.

  ``manual_dir`` (or ``$JAXGAN_MANUAL_DIR``) names a directory with one
  sub-directory of original raw files per dataset (``fashion_mnist/``,
  ``mnist/``, ``celeb_a/``, and ``cycle_gan/`` holding ``<pair>.zip``: a pair
  needs only its own zip); tfds reads them instead of downloading. Each dataset gets its
  own extraction directory: tfds caches extracted files by file name and MNIST
  and Fashion-MNIST use the same names.
  """
  builder = _builder(name, data_dir)
  if builder.info.splits:  # already built (or provided by tfds.testing.mock_data)
    return builder
  # One build per dataset and data dir at a time: a second run (another process, another
  # machine on a shared disk) waits for the first and then reads what it built.
  root = builder.data_dir_root
  os.makedirs(root, exist_ok=True)
  lock_path = os.path.join(root, f".{name.replace('/', '_')}.jaxgan-build.lock")
  with open(lock_path, "a") as lock:
    try:
      fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
      print(f"waiting for another process that is building {name} in {root} ...", flush=True)
      fcntl.flock(lock, fcntl.LOCK_EX)
    builder = _builder(name, data_dir)  # what the lock's previous holder built, if anything
    if builder.info.splits:
      return builder
    return _build(name, builder, manual_dir)


def _builder(name: str, data_dir: str | None):
  """tfds's builder of ``name``; an unknown name is one line with the closest known names."""
  tfds = _tfds()
  try:
    return tfds.builder(name, data_dir=data_dir)
  except tfds.core.registered.DatasetNotFoundError:
    import difflib
    known = tfds.list_builders(with_community_datasets=False)
    close = difflib.get_close_matches(name.split("/")[0], known, n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    raise DataError(f"unknown dataset {name!r}: {hint}(config.dataset takes a tensorflow-datasets "
                    f"name, e.g. fashion_mnist, mnist, celeb_a)") from None
  except Exception as e:  # bad config name, bad data_dir
    detail = str(e).strip().splitlines()
    raise DataError(f"tfds cannot open dataset {name!r}: {detail[0] if detail else type(e).__name__}"
                    ) from None


def _build(name: str, builder, manual_dir: str | None):
  """Builds ``name`` from the manual directory's raw files, or downloads them."""
  tfds = _tfds()
  manual_dir = resolve_manual_dir(manual_dir)
  url_infos = getattr(builder, "url_infos", None) or {}
  config = tfds.download.DownloadConfig(try_download_gcs=False)
  needed = needed_files(name, url_infos)
  if manual_dir:
    sub = manual_subdir(name)
    ds_dir = os.path.join(manual_dir, sub)
    missing = [f for f in needed if not os.path.exists(os.path.join(ds_dir, f))]
    if not os.path.isdir(ds_dir) or missing:
      raise DataError(
          f"{name}: manual data directory {ds_dir} is missing "
          f"{', '.join(missing) if missing else 'entirely'}. Put the original raw files "
          f"there, or point {MANUAL_DIR_ENV} / --config.data.manual_dir at a directory with a "
          f"'{sub}/' sub-directory holding them.")
    config = tfds.download.DownloadConfig(
        manual_dir=ds_dir, try_download_gcs=False,
        extract_dir=os.path.join(builder.data_dir_root, "downloads", "extracted", name))
  else:
    urls = {urlparse(u) for u in url_infos}
    endpoints = {(u.hostname, u.port or (443 if u.scheme == "https" else 80)) for u in urls}
    offline = sorted(h for h, port in endpoints if h and not _reachable(h, port))
    if offline:
      raise DataError(
          f"{name} is not built in {builder.data_dir_root} and {', '.join(offline)} cannot be "
          f"reached to download it. On an offline machine, set {MANUAL_DIR_ENV}=/path/to/raw "
          f"(or --config.data.manual_dir) to a directory holding '{manual_subdir(name)}/' "
          f"with the original "
          f"files: {', '.join(needed)}.")
  try:
    builder.download_and_prepare(download_config=config)
  except Exception as e:
    raise DataError(f"tfds could not build {name}: {type(e).__name__}: {e}") from None
  return builder


def _check(name: str, split: str, builder, images: np.ndarray, labels: np.ndarray) -> None:
  """Refuses a build that does not hold what the dataset should."""
  expected = EXPECTED.get(name)
  feature = builder.info.features["image"]
  if tuple(images.shape[1:]) != tuple(feature.shape):
    raise DataError(f"{name}/{split}: images have shape {images.shape[1:]}, "
                    f"tfds says {feature.shape}")
  if expected is None:
    return
  if tuple(images.shape[1:]) != expected["shape"]:
    raise DataError(f"{name}/{split}: expected images of shape {expected['shape']}, got {images.shape[1:]}")
  if labels.size and (labels.min() < 0 or labels.max() >= expected["classes"]):
    raise DataError(f"{name}/{split}: labels outside [0, {expected['classes']})")
  if builder.info.splits and split in expected and len(images) != expected[split]:
    raise DataError(f"{name}/{split}: read {len(images)} examples, expected {expected[split]}; "
                    f"delete {builder.data_dir} and rebuild")


@dataclass
class ImageData:
  """A decoded split: float32 images in [-1, 1] (or uint8, for large photo sets), NHWC, and int32
  labels; batches are float32 in [-1, 1] either way."""
  images: np.ndarray
  labels: np.ndarray
  num_classes: int
  name: str
  split: str
  subset: str = ""   # what part of the split this is when not all of it (:func:`subset`)

  @property
  def example_shape(self) -> tuple[int, ...]:
    """The shape of one example (``(H, W, C)``)."""
    return tuple(self.images.shape[1:])

  def batch(self, batch_size: int, seed: int, i: int) -> dict[str, np.ndarray]:
    """Batch ``i`` of :meth:`stream` ``(batch_size, seed)``."""
    return BatchStream(self, batch_size, seed).batch(i)

  def stream(self, batch_size: int, seed: int, start: int = 0) -> "BatchStream":
    """Shuffled batches ``{"image", "label"}``; batch ``i`` is a pure function of ``(seed, i)``."""
    return BatchStream(self, batch_size, seed, start=start)


def load(name: str, split: str = "train", image_size: int | None = None,
         data_dir: str | None = None, manual_dir: str | None = None,
         part: tuple[int, int] = (0, 1)) -> ImageData:
  """Builds (if needed) and decodes a whole split with tf.data into host memory.

  ``part=(i, n)`` reads only the ``i``-th of ``n`` equal contiguous parts of the
  split (the remainder dropped, as ``tfds.even_splits(..., drop_remainder=True)``),
  e.g. one process's share in a multi-process run; ``ImageData.split`` then
  reads ``"train[i*k:(i+1)*k]"``.
  """
  import tensorflow as tf
  tf.config.set_visible_devices([], "GPU")  # tf.data only; keep accelerators for JAX
  tfds = _tfds()
  builder = prepare(name, data_dir, manual_dir)
  index, count = part
  if count > 1:
    total = builder.info.splits[split].num_examples
    per = total // count
    if per == 0:
      raise DataError(f"{name}/{split} has {total} examples, fewer than the {count} processes")
    split = f"{split}[{index * per}:{(index + 1) * per}]"
  try:
    ds = builder.as_dataset(split=split, shuffle_files=False)
  except Exception as e:
    raise DataError(f"tfds cannot read {name}/{split}: {e}") from None
  raw_images, labels = [], []
  for chunk in tfds.as_numpy(ds.batch(8192)):
    raw_images.append(chunk["image"])
    labels.append(chunk["label"])
  if not raw_images:
    raise DataError(f"{name}/{split} is empty")
  raw = np.concatenate(raw_images)
  labels = np.concatenate(labels).astype(np.int32)
  _check(name, split, builder, raw, labels)

  def normalise(x):
    x = tf.cast(x, tf.float32) / 127.5 - 1.0
    if image_size and (x.shape[1] != image_size or x.shape[2] != image_size):
      x = tf.clip_by_value(tf.image.resize(x, (image_size, image_size), method="bilinear"), -1.0, 1.0)
    return x

  images = np.concatenate([
      b for b in tfds.as_numpy(tf.data.Dataset.from_tensor_slices(raw).batch(4096).map(normalise))])
  num_classes = builder.info.features["label"].num_classes
  return ImageData(images=images.astype(np.float32), labels=labels, num_classes=num_classes,
                   name=name, split=split)


def subset(data: ImageData, fraction: float, seed: int = 0) -> ImageData:
  """A seeded random ``fraction`` of ``data`` (``round(fraction * n)`` examples, at least one, in
  their original order): the small-data setting of DiffAugment (Zhao et al., 2020), e.g. 10 % of
  Fashion-MNIST's train split. The subset depends on ``seed`` only, so runs of several seeds
  train on the same images. ``fraction`` 1 returns ``data`` itself."""
  if not 0 < fraction <= 1:
    raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
  if fraction == 1:
    return data
  n = len(data.images)
  keep = np.sort(np.random.default_rng([0xF4AC, seed]).permutation(n)[:max(1, round(fraction * n))])
  return ImageData(images=data.images[keep], labels=data.labels[keep], num_classes=data.num_classes,
                   name=data.name, split=data.split,
                   subset=f"{len(keep)} of {n} examples (fraction {fraction:g}, seed {seed})")


def as_float(images: np.ndarray) -> np.ndarray:
  """Images as float32 in [-1, 1] (uint8 [0, 255] converted; floats returned as they are)."""
  if images.dtype == np.uint8:
    return images.astype(np.float32) / 127.5 - 1.0
  return images


class BatchStream:
  """Endless, exactly resumable stream of shuffled batches (``drop_remainder``).

  Batch ``i`` comes from epoch ``i // steps_per_epoch`` whose order is
  ``np.random.default_rng([seed, epoch]).permutation(n)``. A background thread
  keeps ``prefetch`` batches ready.
  """

  def __init__(self, data: ImageData, batch_size: int, seed: int, start: int = 0,
               prefetch: int = 2):
    n = len(data.images)
    if batch_size > n:
      raise DataError(f"batch_size {batch_size} is larger than the {n} examples of "
                      f"{data.name}/{data.split}")
    self.data, self.batch_size, self.seed = data, batch_size, seed
    self.steps_per_epoch = n // batch_size
    self.position = start
    self._prefetch = prefetch
    self._queue: queue.Queue | None = None
    self._epoch_cache: tuple[int, np.ndarray] | None = None

  def indices(self, i: int) -> np.ndarray:
    """The sorted example indices of batch ``i``: its slice of epoch ``e``'s permutation
    ``default_rng([seed, e]).permutation(n)``."""
    epoch, j = divmod(i, self.steps_per_epoch)
    if self._epoch_cache is None or self._epoch_cache[0] != epoch:
      self._epoch_cache = (epoch, np.random.default_rng([self.seed, epoch]).permutation(
          len(self.data.images)))
    return np.sort(self._epoch_cache[1][j * self.batch_size:(j + 1) * self.batch_size])

  def batch(self, i: int) -> dict[str, np.ndarray]:
    """The ``i``-th batch of the stream (pure function of the seed and ``i``)."""
    idx = self.indices(i)
    return {"image": as_float(self.data.images[idx]), "label": self.data.labels[idx]}

  def _worker(self, start: int, q: queue.Queue, stop: threading.Event):
    i = start
    while not stop.is_set():
      item = self.batch(i)
      while not stop.is_set():
        try:
          q.put(item, timeout=0.1)
          break
        except queue.Full:
          continue
      i += 1

  def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
    q: queue.Queue = queue.Queue(maxsize=self._prefetch)
    stop = threading.Event()
    thread = threading.Thread(target=self._worker, args=(self.position, q, stop), daemon=True)
    thread.start()
    try:
      while True:
        item = q.get()
        self.position += 1
        yield item
    finally:
      stop.set()
