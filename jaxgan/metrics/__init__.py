"""Quality metrics of generated images, in JAX/numpy, offline.

- :func:`fid_from_features`, :func:`frechet_distance`, :func:`gaussian_stats`: FID
  (Heusel et al., 2017), float64, matrix square root through ``eigh``.
- :func:`kid`, :func:`mmd2_unbiased`: KID (Bińkowski et al., 2018), unbiased MMD^2 with
  the cubic polynomial kernel, over subsets.
- :func:`precision_recall`: improved precision and recall (Kynkäänniemi et al., 2019), k = 3.
- :func:`classifier_score`: the Inception Score (Salimans et al., 2016) with our classifier.
- :func:`class_shares`, :func:`class_tv`: the predicted-class balance of samples and its total
  variation from the real split's (which classes a collapsed generator dropped).
- :func:`load_classifier`: the per-dataset feature network (hash-checked committed weights;
  trained by ``python -m jaxgan.metrics.train_classifier``).
- :class:`Evaluator`: all of the above against a real split, with cached reference statistics.
"""

from jaxgan.metrics.classifier import (Classifier, FeatureNetwork, WeightsError, load_classifier,
                                       save_classifier)
from jaxgan.metrics.evaluator import METRICS, Evaluator, default_cache_dir
from jaxgan.metrics.fid import fid_from_features, frechet_distance, gaussian_stats
from jaxgan.metrics.kid import kid, mmd2_unbiased, polynomial_kernel
from jaxgan.metrics.prd import knn_radii, precision_recall
from jaxgan.metrics.score import class_shares, class_tv, classifier_score

__all__ = ["METRICS", "Classifier", "Evaluator", "FeatureNetwork", "WeightsError",
           "class_shares", "class_tv", "classifier_score", "default_cache_dir", "fid_from_features",
           "frechet_distance", "gaussian_stats", "kid", "knn_radii", "load_classifier",
           "mmd2_unbiased", "polynomial_kernel", "precision_recall", "save_classifier"]
