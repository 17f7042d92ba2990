"""Semi-supervised data: a balanced, seeded labelled subset of a split, and the rest without labels.

:func:`labeled_subset` picks ``labels_per_class`` examples of every class
(Salimans et al., 2016 use 10 per class = 100 labels on MNIST), a pure
function of the labels and the seed. :class:`SemiSupervisedData` wraps a
decoded split (:class:`~jaxgan.data.tfds_data.ImageData`) and streams batches

    {"image": [B, H, W, C]               unlabelled examples (their labels are never read),
     "labeled_image": [Bl, H, W, C],     a labelled minibatch, cycling through the subset,
     "labeled_label": [Bl] int32,
     "matching_image": [B, H, W, C]}    with ``matching_batch``: a second, independent unlabelled
                                         batch (the real statistics of feature matching)

Batch ``i`` is a pure function of ``(seed, i)`` (both parts), so a resumed run
reads exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from jaxgan.data.tfds_data import DataError, ImageData, load

_SUBSET_TAG = 0x1AB5     # seeds of the subset choice and of the two streams, kept apart
_UNLABELED_TAG = 0x0
_LABELED_TAG = 0x1
_INIT_TAG = 0x2
_MATCHING_TAG = 0x3


def labeled_subset(labels: np.ndarray, labels_per_class: int, num_classes: int, seed: int,
                   name: str = "the split") -> np.ndarray:
  """Sorted indices of ``labels_per_class`` examples of each of ``num_classes`` classes.

  Class ``k``'s examples are the first ``labels_per_class`` of a permutation
  of its indices drawn from ``np.random.default_rng([seed, TAG, k])``: balanced,
  and the same for the same labels and seed on every machine.
  """
  labels = np.asarray(labels)
  if isinstance(labels_per_class, bool) or not isinstance(labels_per_class, (int, np.integer)) \
      or labels_per_class < 1:
    raise DataError(f"labels_per_class must be a positive integer, got {labels_per_class!r}")
  chosen = []
  for k in range(num_classes):
    idx = np.flatnonzero(labels == k)
    if len(idx) < labels_per_class:
      smallest = min(int(np.sum(labels == c)) for c in range(num_classes))
      raise DataError(
          f"labels_per_class={labels_per_class}, but class {k} has only {len(idx)} examples in "
          f"{name}; set --config.sgan.labels_per_class to at most {smallest}")
    chosen.append(np.random.default_rng([seed, _SUBSET_TAG, k]).permutation(idx)[:labels_per_class])
  return np.sort(np.concatenate(chosen))


def _cycled(n: int, batch_size: int, seed: int, i: int) -> np.ndarray:
  """Indices of batch ``i`` of an endless sequence of seeded permutations of ``range(n)``.

  Position ``q`` of the sequence is ``perm_e[q % n]`` with ``e = q // n`` and
  ``perm_e = default_rng([seed, e]).permutation(n)``; a batch may span
  epochs (and be larger than ``n``).
  """
  q = np.arange(i * batch_size, (i + 1) * batch_size, dtype=np.int64)
  epochs = q // n
  out = np.empty(batch_size, np.int64)
  for e in np.unique(epochs):
    sel = epochs == e
    out[sel] = np.random.default_rng([seed, int(e)]).permutation(n)[q[sel] % n]
  return out


class SemiSupervisedData:
  """A split with a labelled subset (``labels_per_class`` per class) and the rest unlabelled.

  Has the dataset interface of :meth:`jaxgan.families.Family.data`
  (``example_shape``, ``num_classes``, ``name``, ``stream``).
  ``labeled_batch_size`` (0 = the unlabelled batch size) is the labelled
  minibatch of every step; the subset is cycled through in seeded epochs.
  ``matching_batch`` adds ``matching_image``, a second unlabelled batch from
  its own seeded permutations (Salimans et al.'s ``trainx_unl2``: the real
  images whose features the generator matches, independent of D's batch).
  """

  def __init__(self, data: ImageData, labels_per_class: int = 10, seed: int = 0,
               labeled_batch_size: int = 0, matching_batch: bool = False):
    if not data.num_classes:
      raise DataError(f"{data.name} has no labels; the semi-supervised GAN needs a labelled dataset")
    self.base = data
    self.labels_per_class = int(labels_per_class)
    self.labeled_batch_size = int(labeled_batch_size)
    self.matching_batch = bool(matching_batch)
    self.subset_seed = int(seed)
    self.labeled_index = labeled_subset(data.labels, labels_per_class, data.num_classes, seed,
                                        f"{data.name}/{data.split}")
    mask = np.ones(len(data.images), bool)
    mask[self.labeled_index] = False
    self.unlabeled_index = np.flatnonzero(mask)
    self.labeled_images = data.images[self.labeled_index]
    self.labeled_labels = data.labels[self.labeled_index].astype(np.int32)

  @property
  def example_shape(self) -> tuple[int, ...]:
    return self.base.example_shape

  @property
  def num_classes(self) -> int:
    return int(self.base.num_classes)

  @property
  def name(self) -> str:
    return self.base.name

  def batch(self, batch_size: int, seed: int, i: int) -> dict[str, np.ndarray]:
    """Batch ``i`` of the stream with ``batch_size`` unlabelled examples (pure in ``seed``, ``i``)."""
    n_unl = len(self.unlabeled_index)
    if batch_size > n_unl:
      raise DataError(f"batch_size {batch_size} is larger than the {n_unl} unlabelled examples")
    steps_per_epoch = n_unl // batch_size  # drop_remainder, as BatchStream
    epoch, j = divmod(i, steps_per_epoch)

    def unlabeled(tag):
      perm = np.random.default_rng([seed, tag, epoch]).permutation(n_unl)
      return self.base.images[self.unlabeled_index[np.sort(perm[j * batch_size:(j + 1) * batch_size])]]

    lab = _cycled(len(self.labeled_index), self.labeled_batch_size or batch_size,
                  int(np.random.default_rng([seed, _LABELED_TAG]).integers(2**31)), i)
    out = {"image": unlabeled(_UNLABELED_TAG), "labeled_image": self.labeled_images[lab],
           "labeled_label": self.labeled_labels[lab]}
    if self.matching_batch:
      out["matching_image"] = unlabeled(_MATCHING_TAG)
    return out

  def init_images(self, n: int, seed: int) -> np.ndarray:
    """``n`` training images drawn without replacement with ``seed`` (for a data-dependent
    initialisation; Salimans et al. use 500)."""
    n = min(int(n), len(self.base.images))
    idx = np.random.default_rng([seed, _INIT_TAG]).choice(len(self.base.images), n, replace=False)
    return self.base.images[np.sort(idx)]

  def stream(self, batch_size: int, seed: int, start: int = 0) -> Iterator[dict[str, np.ndarray]]:
    """Endless batches from batch ``start`` on; batch ``i`` is :meth:`batch` ``(i, ...)``."""
    self.batch(batch_size, seed, start)  # fail now, not in the loop, on a bad batch size
    i = start
    while True:
      yield self.batch(batch_size, seed, i)
      i += 1


def for_config(config, data: ImageData | None = None) -> SemiSupervisedData:
  """The semi-supervised dataset of a run: ``config.dataset``'s train split (all of it, in every
  process, so every process picks the same subset) with ``config.sgan.labels_per_class`` labels
  per class chosen with ``config.seed``."""
  if data is None:
    data = load(config.dataset, "train", config.image_size or None,
                data_dir=config.data.data_dir or None, manual_dir=config.data.manual_dir or None)
  sgan = config.get("sgan", {})
  return SemiSupervisedData(data, int(sgan.get("labels_per_class", 10)), int(config.seed),
                            int(sgan.get("labeled_batch_size", 0)),
                            bool(sgan.get("matching_batch", False)))
