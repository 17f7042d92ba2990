"""Offline image-to-image translation domains from MNIST / Fashion-MNIST, with known ground truth.

A domain is a known pixel transform ``T_c`` of a grayscale image ``x`` in
[-1, 1] (bright strokes on a dark background) into an RGB image in [-1, 1]:

* ``"original"``: the gray image in all three channels;
* ``"red"``, ``"green"``, ``"blue"``: strokes of that colour on black,
  ``2 t rgb - 1`` with intensity ``t = (x + 1) / 2``;
* ``"inverted"``: dark strokes on a white background, ``-x``;
* ``"thick"``: strokes thickened by a 3x3 grey dilation (max-pool, stride 1).

Because ``T_c`` is known, a translation ``G(T_a(x), c)`` can be measured
against its ground truth ``T_c(x)`` (mean absolute error), which real
translation datasets cannot offer.

* :class:`DomainSpec` is a label set: ``"single"`` (one domain per image, a
  one-hot label, softmax classification: e.g. ``("red", "green", "blue")``)
  or ``"multi"`` (attributes, a 0/1 vector, per-attribute BCE, like CelebA's:
  e.g. ``("red", "green", "blue", "thick", "inverted")``, where the colours
  are mutually exclusive as CelebA's hair colours, and thick/inverted
  independent).
* :class:`CycleGANDomains`: two unpaired domains (A from one half of the
  images, B from the other).
* :class:`StarGANDomains`: labelled images of one dataset, or of several
  (MNIST and Fashion-MNIST) with the mask vector of StarGAN's multi-dataset
  training (:func:`joint_labels`).

Both have the dataset interface of :mod:`jaxgan.data`: ``example_shape``,
``num_classes``, ``name`` and ``stream(batch_size, seed, start)``, whose batch
``i`` is a pure function of ``(seed, i)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

from jaxgan.errors import ConfigError

COLOURS = {"red": (1.0, 0.0, 0.0), "green": (0.0, 1.0, 0.0), "blue": (0.0, 0.0, 1.0)}
TRANSFORMS = ("original", "red", "green", "blue", "inverted", "thick")
ATTRIBUTES = ("red", "green", "blue", "thick", "inverted")
KINDS = ("single", "multi")


# ---------------------------------------------------------------------------------------
# The transforms

def _check_gray(x: np.ndarray) -> np.ndarray:
  x = np.asarray(x, np.float32)
  if x.ndim != 4 or x.shape[-1] != 1:
    raise ValueError(f"expected grayscale images [N, H, W, 1] in [-1, 1], got shape {x.shape}")
  return x


def to_rgb(x: np.ndarray) -> np.ndarray:
  """Gray ``[N, H, W, 1]`` -> the same image in three channels."""
  return np.repeat(_check_gray(x), 3, axis=-1)


def dilate(x: np.ndarray, size: int = 3) -> np.ndarray:
  """Grey dilation: the maximum over a ``size x size`` window, stride 1 (max-pool, 'SAME').

  Bright strokes on a dark background get ``size - 1`` pixels thicker; the
  border is padded with the background value -1.
  """
  x = _check_gray(x)
  p = size // 2
  padded = np.pad(x, ((0, 0), (p, size - 1 - p), (p, size - 1 - p), (0, 0)), constant_values=-1.0)
  h, w = x.shape[1:3]
  out = np.full_like(x, -1.0)
  for dy in range(size):
    for dx in range(size):
      np.maximum(out, padded[:, dy:dy + h, dx:dx + w], out=out)
  return out


def colourise(x: np.ndarray, rgb) -> np.ndarray:
  """Strokes of colour ``rgb`` (``[3]`` or per image ``[N, 3]`` in [0, 1]) on black: ``2 t rgb - 1``."""
  t = (_check_gray(x) + 1.0) / 2.0
  rgb = np.asarray(rgb, np.float32).reshape(-1, 1, 1, 3)
  return (2.0 * t * rgb - 1.0).astype(np.float32)


def transform(x: np.ndarray, name: str) -> np.ndarray:
  """``T_name(x)``: gray ``[N, H, W, 1]`` in [-1, 1] -> RGB ``[N, H, W, 3]`` in [-1, 1]."""
  if name == "original":
    return to_rgb(x)
  if name in COLOURS:
    return colourise(x, COLOURS[name])
  if name == "inverted":
    return to_rgb(-_check_gray(x))
  if name == "thick":
    return to_rgb(dilate(x))
  raise ConfigError(f"unknown domain {name!r}; choose from {list(TRANSFORMS)}")


# ---------------------------------------------------------------------------------------
# Label sets

@dataclass(frozen=True)
class DomainSpec:
  """A label set over the transforms; ``apply(x, labels)`` is the ground-truth ``T_c(x)``.

  ``kind="single"``: ``names`` are domains (:data:`TRANSFORMS`); a label is
  one-hot; classification by softmax cross-entropy. ``kind="multi"``:
  ``names`` are attributes (:data:`ATTRIBUTES`); a label is a 0/1 vector with
  exactly one colour on (when any colour is named; otherwise strokes stay
  gray) and ``thick`` / ``inverted`` free; classification by per-attribute
  BCE. The attributes compose as dilate, then colour, then invert.
  """
  names: tuple[str, ...]
  kind: str = "single"

  def __post_init__(self):
    object.__setattr__(self, "names", tuple(self.names))
    if self.kind not in KINDS:
      raise ConfigError(f"unknown label kind {self.kind!r}; choose one of {list(KINDS)}")
    allowed = TRANSFORMS if self.kind == "single" else ATTRIBUTES
    bad = [n for n in self.names if n not in allowed]
    if bad or len(set(self.names)) != len(self.names):
      raise ConfigError(f"{self.kind}-label domains {self.names}: each name once, from {list(allowed)}")
    if self.kind == "single" and len(self.names) < 2:
      raise ConfigError(f"a translation needs at least two domains, got {self.names}")
    if self.kind == "multi" and not self.names:
      raise ConfigError("a multi-attribute label set needs at least one attribute")

  @property
  def size(self) -> int:
    return len(self.names)

  @property
  def loss(self) -> str:
    """The classification loss of these labels: ``"softmax"`` or ``"bce"``."""
    return "softmax" if self.kind == "single" else "bce"

  @property
  def _colours(self) -> list[int]:
    return [i for i, n in enumerate(self.names) if n in COLOURS]

  @property
  def exclusive(self) -> list[int]:
    """The indices of the mutually exclusive group (the colours; CelebA's hair colours)."""
    return self._colours if self.kind == "multi" else []

  def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` random valid labels ``[n, size]`` (float32): uniform domains / colours, fair coins."""
    labels = np.zeros((n, self.size), np.float32)
    if self.kind == "single":
      labels[np.arange(n), rng.integers(0, self.size, n)] = 1.0
      return labels
    colours = self._colours
    free = [i for i in range(self.size) if i not in colours]
    if colours:
      labels[np.arange(n), np.asarray(colours)[rng.integers(0, len(colours), n)]] = 1.0
    if free:
      labels[:, free] = rng.integers(0, 2, (n, len(free))).astype(np.float32)
    return labels

  def check(self, labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels, np.float32)
    if labels.ndim != 2 or labels.shape[1] != self.size:
      raise ConfigError(f"labels of shape {labels.shape} for the {self.size} domains {self.names}; "
                        f"give one entry per domain")
    if not np.all((labels == 0) | (labels == 1)):
      raise ValueError("domain labels must be 0/1")
    ones = labels[:, self._colours].sum(1) if self.kind == "multi" else labels.sum(1)
    if self.kind == "single" or self._colours:
      if not np.all(ones == 1):
        raise ValueError(f"every label needs exactly one {'domain' if self.kind == 'single' else 'colour'} on")
    return labels

  def apply(self, gray: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``T_c(x)`` for each image and its label: gray ``[N, H, W, 1]`` -> RGB ``[N, H, W, 3]``."""
    gray, labels = _check_gray(gray), self.check(labels)
    if len(gray) != len(labels):
      raise ValueError(f"{len(gray)} images but {len(labels)} labels")
    if self.kind == "single":
      out = np.empty(gray.shape[:3] + (3,), np.float32)
      which = labels.argmax(1)
      for d, name in enumerate(self.names):
        sel = which == d
        if sel.any():
          out[sel] = transform(gray[sel], name)
      return out
    attr = {n: labels[:, i] for i, n in enumerate(self.names)}
    x = gray
    if "thick" in attr:
      x = np.where(attr["thick"][:, None, None, None] > 0, dilate(gray), gray)
    rgb = np.ones((len(gray), 3), np.float32)
    if self._colours:
      rgb = sum(attr[n][:, None] * np.asarray(COLOURS[n], np.float32)
                for n in self.names if n in COLOURS)
    out = colourise(x, rgb)
    if "inverted" in attr:
      out = np.where(attr["inverted"][:, None, None, None] > 0, -out, out)
    return out.astype(np.float32)


def joint_labels(labels: np.ndarray, dataset: int, sizes: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
  """StarGAN's multi-dataset label: ``labels`` of dataset ``dataset`` padded to ``sum(sizes)`` + the mask.

  The joint vector holds every dataset's label in order, zeros for the
  datasets whose labels are unknown; the mask is the one-hot ``[N, n]``
  vector of the known dataset (Choi et al., 2018, sec. 3.2).
  """
  sizes = tuple(int(s) for s in sizes)
  if len(sizes) < 2:
    raise ConfigError(f"the mask vector needs at least two labelled datasets, got label sizes "
                      f"{sizes}; add a dataset or turn multi-dataset mode off "
                      f"(--config.multi_dataset=False)")
  if not 0 <= dataset < len(sizes):
    raise ValueError(f"dataset index {dataset} out of range for {len(sizes)} datasets")
  labels = np.asarray(labels, np.float32)
  if labels.ndim != 2 or labels.shape[1] != sizes[dataset]:
    raise ConfigError(f"dataset {dataset} has {sizes[dataset]} label entries, got labels of shape "
                      f"{labels.shape}")
  start = sum(sizes[:dataset])
  joint = np.zeros((len(labels), sum(sizes)), np.float32)
  joint[:, start:start + sizes[dataset]] = labels
  mask = np.zeros((len(labels), len(sizes)), np.float32)
  mask[:, dataset] = 1.0
  return joint, mask


# ---------------------------------------------------------------------------------------
# Datasets

class _Indices:
  """Batch ``i``'s example indices: epoch ``i // steps`` is ``default_rng([seed, salt, epoch]).permutation``."""

  def __init__(self, n: int, batch_size: int, name: str):
    if not 0 < batch_size <= n:
      raise ConfigError(f"batch_size {batch_size} must be between 1 and the {n} examples of {name}")
    self.n, self.batch_size, self.steps = n, batch_size, n // batch_size

  def __call__(self, seed: int, salt: int, i: int) -> np.ndarray:
    epoch, j = divmod(i, self.steps)
    perm = np.random.default_rng([seed, salt, epoch]).permutation(self.n)
    return np.sort(perm[j * self.batch_size:(j + 1) * self.batch_size])


def _stream(batch_fn, start: int) -> Iterator[dict]:
  i = start
  while True:
    yield batch_fn(i)
    i += 1


class CycleGANDomains:
  """Two unpaired domains of one grayscale set: A = ``T_a`` of the first half, B = ``T_b`` of the second.

  Batches ``{"image_a", "image_b"}`` (RGB, [-1, 1]); :meth:`paired` gives the
  ground truth ``(T_a(x), T_b(x))`` of any gray images for measurement.
  """

  def __init__(self, gray: np.ndarray, domain_a: str, domain_b: str, name: str = "mnist"):
    gray = _check_gray(gray)
    for d in (domain_a, domain_b):
      if d not in TRANSFORMS:
        raise ConfigError(f"unknown domain {d!r}; choose from {list(TRANSFORMS)}")
    if domain_a == domain_b:
      raise ConfigError(f"CycleGAN's two domains are both {domain_a!r}; choose two different ones")
    if len(gray) < 2:
      raise ConfigError("CycleGANDomains needs at least two images (one per domain half)")
    half = len(gray) // 2
    self.gray_a, self.gray_b = gray[:half], gray[half:2 * half]
    self.domain_a, self.domain_b = domain_a, domain_b
    self.name = f"{name}:{domain_a}2{domain_b}"
    self.example_shape = gray.shape[1:3] + (3,)
    self.num_classes = 0

  def paired(self, gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(T_a(x), T_b(x))``: an A image and its true B translation (and vice versa)."""
    return transform(gray, self.domain_a), transform(gray, self.domain_b)

  def batch(self, batch_size: int, seed: int, i: int) -> dict[str, np.ndarray]:
    """Batch ``i`` of the stream with ``seed`` (a pure function of them)."""
    idx = _Indices(len(self.gray_a), batch_size, self.name)
    return {"image_a": transform(self.gray_a[idx(seed, 0, i)], self.domain_a),
            "image_b": transform(self.gray_b[idx(seed, 1, i)], self.domain_b)}

  def stream(self, batch_size: int, seed: int, start: int = 0) -> Iterator[dict[str, np.ndarray]]:
    _Indices(len(self.gray_a), batch_size, self.name)  # fail fast
    return _stream(lambda i: self.batch(batch_size, seed, i), start)


class StarGANDomains:
  """Labelled translation data: each image is ``T_c(x)`` for a random label ``c`` of its dataset.

  ``datasets``: ``[(gray_images, DomainSpec), ...]``. One dataset: batches
  ``{"image", "label"}``. Several (multi-dataset mode): batch ``i`` comes from
  dataset ``i % n`` (the reference alternates datasets) and carries the
  joint label and the mask vector, ``{"image", "label", "mask"}``
  (:func:`joint_labels`). Labels are drawn from ``(seed, i)``.
  """

  def __init__(self, datasets: Sequence[tuple[np.ndarray, DomainSpec]],
               names: Sequence[str] | None = None, multi_dataset: bool | None = None):
    datasets = [(_check_gray(g), spec) for g, spec in datasets]
    if not datasets:
      raise ConfigError("StarGANDomains needs at least one dataset")
    multi = len(datasets) > 1 if multi_dataset is None else bool(multi_dataset)
    if multi and len(datasets) < 2:
      raise ConfigError("multi-dataset mode (the mask vector) needs at least two labelled datasets, "
                        "got one; add the second dataset or set --config.multi_dataset=False")
    if not multi and len(datasets) > 1:
      raise ConfigError(f"{len(datasets)} datasets given without multi-dataset mode; set "
                        f"multi_dataset=True")
    shapes = {g.shape[1:] for g, _ in datasets}
    if len(shapes) != 1:
      raise ConfigError(f"the datasets' images differ in shape {sorted(shapes)}; resize them alike")
    self.datasets, self.multi = datasets, multi
    self.sizes = tuple(spec.size for _, spec in datasets)
    names = list(names) if names is not None else [f"data{i}" for i in range(len(datasets))]
    self.name = "+".join(names)
    self.example_shape = datasets[0][0].shape[1:3] + (3,)
    self.label_size = sum(self.sizes)
    self.num_classes = 0
    self.cls_loss = (datasets[0][1].loss if not multi
                     else tuple(spec.loss for _, spec in datasets))

  @property
  def label_sizes(self) -> tuple[int, ...] | None:
    """Per-dataset label lengths in multi-dataset mode (``None`` with one dataset)."""
    return self.sizes if self.multi else None

  def batch(self, batch_size: int, seed: int, i: int) -> dict[str, np.ndarray]:
    d = i % len(self.datasets)
    gray, spec = self.datasets[d]
    idx = _Indices(len(gray), batch_size, self.name)(seed, d, i // len(self.datasets))
    labels = spec.sample(np.random.default_rng([seed, 1000 + d, i]), batch_size)
    out = {"image": spec.apply(gray[idx], labels)}
    if self.multi:
      out["label"], out["mask"] = joint_labels(labels, d, self.sizes)
    else:
      out["label"] = labels
    return out

  def stream(self, batch_size: int, seed: int, start: int = 0) -> Iterator[dict[str, np.ndarray]]:
    for g, _ in self.datasets:
      _Indices(len(g), batch_size, self.name)  # fail fast
    return _stream(lambda i: self.batch(batch_size, seed, i), start)


def load_gray(name: str, split: str = "train", data_dir: str | None = None,
              manual_dir: str | None = None, image_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
  """The real ``mnist`` / ``fashion_mnist`` split through tfds: images ``[N, 28, 28, 1]`` in [-1, 1]
  (``image_size``: resized to that side, bilinear), and the class labels."""
  from jaxgan.data.tfds_data import load
  data = load(name, split, image_size=image_size or None, data_dir=data_dir, manual_dir=manual_dir)
  return data.images, data.labels


# The offline recipes' label sets: MNIST with five attributes like CelebA's (three exclusive
# colours, two binary attributes; BCE) and Fashion-MNIST with three single-label colour domains
# (softmax, the role RaFD's expressions play in the paper's multi-dataset experiment).
DEFAULT_SPECS = {"mnist": DomainSpec(ATTRIBUTES, "multi"),
                 "fashion_mnist": DomainSpec(("red", "green", "blue"), "single")}


def mnist_cyclegan(domain_a: str = "original", domain_b: str = "inverted", split: str = "train",
                   data_dir: str | None = None, manual_dir: str | None = None) -> CycleGANDomains:
  """The offline CycleGAN recipe: two transforms of the real MNIST digits."""
  return CycleGANDomains(load_gray("mnist", split, data_dir, manual_dir)[0], domain_a, domain_b)


def mnist_stargan(multi_dataset: bool = False, split: str = "train", data_dir: str | None = None,
                  manual_dir: str | None = None) -> StarGANDomains:
  """The offline StarGAN recipe: MNIST with :data:`DEFAULT_SPECS`' attributes; with
  ``multi_dataset``, Fashion-MNIST's colour domains join through the mask vector."""
  names = ["mnist", "fashion_mnist"] if multi_dataset else ["mnist"]
  return StarGANDomains([(load_gray(n, split, data_dir, manual_dir)[0], DEFAULT_SPECS[n]) for n in names],
                        names=names, multi_dataset=multi_dataset)
