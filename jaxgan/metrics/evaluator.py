"""All quality metrics of generated images against a real split, with cached reference statistics.

``Evaluator(dataset, image_size)`` loads the dataset's feature network (hash
checked), and the features of the real ``split`` (default ``test``) at
``image_size``: computed once, then cached on disk in
``<cache_dir>/<dataset>-<split>-<size>-<network sha256[:16]>.npz`` (features,
their mean and covariance, the classifier's accuracy, score and predicted-class
shares on that split). ``evaluate(images)`` then returns FID, KID (mean, std),
precision, recall, the classifier score and the class-balance distance
``class_tv`` of the images. The trainer builds one Evaluator per run and
calls ``evaluate`` every ``eval_every`` steps; ``python -m jaxgan.evaluate`` uses
the same class.

Two feature spaces (``features=``): ``"classifier"`` (the default, fast: the dataset's own
CNN) and ``"inception"`` (the FID Inception network, :mod:`jaxgan.metrics.inception`: FID, KID
and precision/recall as papers report them; its reference statistics are cached under the
network's hash too). The classifier score and the class balance always come from the classifier.

Sample-size note: FID is biased upwards for small sample sets (Bińkowski et al.,
2018) and precision/recall depend on set sizes; compare numbers computed with the
same number of samples. KID is unbiased.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from jaxgan.metrics.cache import CACHE_ENV, default_cache_dir  # noqa: F401 (re-exported)
from jaxgan.metrics.classifier import FeatureNetwork, WeightsError, load_classifier
from jaxgan.metrics.fid import frechet_distance, gaussian_stats
from jaxgan.metrics.kid import kid
from jaxgan.metrics.prd import precision_recall
from jaxgan.metrics.score import class_shares, class_tv, classifier_score

METRICS = ("fid", "kid", "kid_std", "precision", "recall", "classifier_score", "class_tv")
FEATURE_SPACES = ("classifier", "inception")


def to_unit_range(images: np.ndarray) -> np.ndarray:
  """uint8 [0, 255] -> float32 [-1, 1]; float images are checked to lie in [-1, 1]."""
  images = np.asarray(images)
  if images.dtype == np.uint8:
    return images.astype(np.float32) / 127.5 - 1.0
  if not np.issubdtype(images.dtype, np.floating):
    raise ValueError(f"images must be uint8 [0, 255] or float [-1, 1], got dtype {images.dtype}")
  images = images.astype(np.float32)
  if not np.all(np.isfinite(images)):
    raise ValueError("images have non-finite values")
  lo, hi = float(images.min()), float(images.max())
  if lo < -1.0 - 1e-3 or hi > 1.0 + 1e-3:
    raise ValueError(f"float images must lie in [-1, 1], got values in [{lo:.3f}, {hi:.3f}]")
  return images


class Evaluator:
  """FID / KID / precision-recall / classifier score against a real split of ``dataset``.

  Args:
    dataset: tfds name of the real data (``"fashion_mnist"``, ``"mnist"``).
    image_size: side of the generated images (the config's ``image_size``; 0/None = native).
      The real split is loaded at this size, so real and generated images reach the
      feature network the same way.
    num_samples: at most this many real features serve KID and precision/recall (a
      seeded random subset; FID uses the Gaussian fit of the whole split).
    split: the real split (``"test"``).
    data_dir, manual_dir: as :func:`jaxgan.data.load`.
    cache_dir: where reference statistics are cached (default :func:`default_cache_dir`).
    classifier: a :class:`FeatureNetwork`, a dataset name or a ``.msgpack`` path
      (default: the committed network of ``dataset``).
    kid_subsets, kid_subset_size: KID subsets (Bińkowski et al. use 100 x 1000).
    k: neighbourhood size of precision/recall (Kynkäänniemi et al.: 3).
    seed: seed of the real subset and of KID's subsets.
    features: the feature space of FID, KID and precision/recall: ``"classifier"`` or
      ``"inception"`` (``inception``: a loaded :class:`~jaxgan.metrics.inception.Inception`,
      default :func:`~jaxgan.metrics.inception.load_inception`). In Inception space a
      dataset without a committed classifier (CIFAR-10, CelebA) is measured too, without the
      classifier's numbers (classifier score, class balance).
  """

  def __init__(self, dataset: str, image_size: int | None = 32, num_samples: int = 10_000,
               split: str = "test", data_dir: str | None = None, manual_dir: str | None = None,
               cache_dir: str | None = None, classifier: FeatureNetwork | str | None = None,
               kid_subsets: int = 50, kid_subset_size: int = 1000, k: int = 3, seed: int = 0,
               log=None, features: str = "classifier", inception=None):
    if features not in FEATURE_SPACES:
      raise ValueError(f"features must be one of {FEATURE_SPACES}, got {features!r}")
    self.dataset, self.split, self.feature_space = dataset, split, features
    self.image_size = int(image_size or 0)
    self.num_samples = int(num_samples)
    self.kid_subsets, self.kid_subset_size, self.k, self.seed = kid_subsets, kid_subset_size, k, seed
    if isinstance(classifier, FeatureNetwork):
      self.network = classifier
    else:
      try:
        self.network = load_classifier(classifier or dataset)
      except WeightsError:
        if features != "inception" or classifier is not None:
          raise
        self.network = None   # Inception space only: no classifier numbers for this dataset
    self.cache_dir = os.path.abspath(cache_dir or default_cache_dir())
    stem = f"{dataset}-{split}-{self.image_size or 'native'}"
    self._log = log or (lambda msg: None)
    self._real = None
    self.reference, self.inception = None, None
    if self.network is not None:
      self.cache_path = os.path.join(self.cache_dir, f"{stem}-{self.network.sha256[:16]}.npz")
      self.reference = self._reference(data_dir, manual_dir)
    if features == "inception":
      from jaxgan.metrics.inception import load_inception
      self.inception = inception or load_inception(cache_dir=cache_dir)
      self.inception_cache_path = os.path.join(
          self.cache_dir, f"{stem}-inception-{self.inception.sha256[:16]}.npz")
      self.inception_reference = self._inception_reference(data_dir, manual_dir)
    feats = (self.inception_reference if self.inception else self.reference)["features"]
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.permutation(len(feats))[:min(self.num_samples, len(feats))])
    self.real_features = feats[keep]
    self._real = None

  def _real_images(self, data_dir, manual_dir) -> np.ndarray:
    if self._real is None:
      from jaxgan import data as data_lib
      self._real = data_lib.load(self.dataset, self.split, self.image_size or None,
                                 data_dir=data_dir, manual_dir=manual_dir).images
    return self._real

  def _inception_reference(self, data_dir, manual_dir) -> dict[str, Any]:
    """Inception features of the real split and their Gaussian: cached like the classifier's."""
    path = self.inception_cache_path
    if os.path.exists(path):
      try:
        with np.load(path) as z:
          return {key: z[key] for key in z.files}
      except (OSError, ValueError):
        pass
    self._log(f"computing Inception reference features of {self.dataset}/{self.split} -> {path}")
    real = self._real_images(data_dir, manual_dir)
    features = self.inception(real, progress=True)
    mu, sigma = gaussian_stats(features)
    ref = {"features": features.astype(np.float32), "mu": mu, "sigma": sigma,
           "image_shape": np.array(real.shape[1:])}
    _save(path, ref)
    return ref

  def _reference(self, data_dir, manual_dir) -> dict[str, Any]:
    if os.path.exists(self.cache_path):
      try:
        with np.load(self.cache_path) as z:
          ref = {key: z[key] for key in z.files}
        if ref["features"].shape[1] == self.network.module.hidden and "class_shares" in ref:
          return ref  # (a cache written before class_shares existed is recomputed)
      except (OSError, ValueError, KeyError):
        pass  # unreadable cache: recompute and overwrite
    from jaxgan import data as data_lib
    self._log(f"computing reference features of {self.dataset}/{self.split} "
              f"-> {self.cache_path}")
    real = data_lib.load(self.dataset, self.split, self.image_size or None,
                         data_dir=data_dir, manual_dir=manual_dir)
    self._real = real.images
    features, logits = self.network(real.images)
    mu, sigma = gaussian_stats(features)
    ref = {"features": features.astype(np.float32), "mu": mu, "sigma": sigma,
           "image_shape": np.array(real.images.shape[1:]),
           "accuracy": np.float64(np.mean(np.argmax(logits, -1) == real.labels)),
           "classifier_score": np.float64(classifier_score(logits)),
           "class_shares": class_shares(logits)}
    _save(self.cache_path, ref)
    return ref

  @property
  def image_shape(self) -> tuple[int, ...]:
    """The real images' shape (``[H, W, C]``), which generated images must have."""
    ref = self.reference if self.reference is not None else self.inception_reference
    if "image_shape" not in ref:   # an Inception cache written before the shape was kept
      ref["image_shape"] = np.array(self._real_images(None, None).shape[1:])
    return tuple(int(s) for s in ref["image_shape"])

  def features(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(features, logits)`` of images (uint8 [0, 255] or float [-1, 1], NHWC)."""
    images = self._checked(images)
    if self.network is None:
      raise ValueError(f"{self.dataset} has no committed classifier: its images are measured in "
                       f"Inception space only")
    return self.network(images)

  def _checked(self, images: np.ndarray) -> np.ndarray:
    images = to_unit_range(images)
    if tuple(images.shape[1:]) != self.image_shape:
      raise ValueError(f"images have shape {images.shape[1:]}, the reference {self.dataset}/"
                       f"{self.split} images {self.image_shape}; build the Evaluator with the "
                       f"generator's image_size")
    return images

  def evaluate(self, images: np.ndarray, with_shares: bool = False) -> dict[str, Any]:
    """FID, KID, precision, recall, classifier score and class balance of ``images``.

    Returns ``{fid, kid, kid_std, precision, recall, classifier_score, class_tv, num_samples}``
    (without ``classifier_score`` and ``class_tv`` for a dataset without a classifier).

    ``images``: generated images, uint8 [0, 255] or float [-1, 1], NHWC, at least
    ``k + 1`` of them (and 2 for FID); a few thousand for meaningful numbers.
    ``with_shares``: also ``class_shares``, the images' predicted-class shares
    (an array; the real split's are ``reference["class_shares"]``).
    """
    images = self._checked(images)
    if len(images) <= self.k:
      raise ValueError(f"need more than k={self.k} images, got {len(images)}")
    logits = None
    if self.network is not None:
      fake, logits = self.network(images)
      reference = self.reference
    if self.inception is not None:
      fake, reference = self.inception(images, progress=True), self.inception_reference
    mu, sigma = gaussian_stats(fake)
    fid = frechet_distance(reference["mu"], reference["sigma"], mu, sigma)
    kid_mean, kid_std = kid(self.real_features, fake, self.kid_subsets, self.kid_subset_size,
                            self.seed)
    precision, recall = precision_recall(self.real_features, fake, self.k)
    result = {"fid": fid, "kid": kid_mean, "kid_std": kid_std, "precision": precision,
              "recall": recall, "num_samples": int(len(fake))}
    if logits is not None:
      shares = class_shares(logits, len(self.reference["class_shares"]))
      result.update(classifier_score=classifier_score(logits),
                    class_tv=class_tv(shares, self.reference["class_shares"]))
      if with_shares:
        result["class_shares"] = shares
    return result

  def info(self) -> dict[str, Any]:
    """What the numbers are measured against (for eval.json / logs)."""
    feats = (self.inception_reference if self.inception else self.reference)["features"]
    info = {"dataset": self.dataset, "split": self.split,
            "image_shape": list(self.image_shape),
            "reference_examples": int(len(feats)),
            "reference_subset": int(len(self.real_features)),
            "features": self.feature_space,
            "feature_network": (self.inception or self.network).name,
            "feature_network_sha256": (self.inception or self.network).sha256,
            "kid_subsets": self.kid_subsets, "kid_subset_size": self.kid_subset_size, "k": self.k,
            "cache": self.inception_cache_path if self.inception else self.cache_path}
    if self.network is not None:
      info.update({"classifier": self.network.name, "classifier_sha256": self.network.sha256,
                   "classifier_accuracy_real": float(self.reference["accuracy"]),
                   "classifier_score_real": float(self.reference["classifier_score"]),
                   "class_shares_real": [float(v) for v in self.reference["class_shares"]]})
    return info


def _save(path: str, arrays: dict) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = f"{path}.{os.getpid()}.tmp.npz"
  np.savez(tmp, **arrays)
  os.replace(tmp, path)
