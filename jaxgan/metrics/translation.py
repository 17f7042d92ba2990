"""Measuring an image-to-image translation against its known ground truth.

The offline domains of :mod:`jaxgan.data.domains` are known pixel transforms
``T_c`` of gray digits ``x``, so a translation ``G(T_s(x), c)`` has a true
answer ``T_c(x)``. Four numbers (pixels in [-1, 1]):

* **MAE** (:func:`mean_abs_error`): ``mean |G(T_s(x), c) - T_c(x)|``; 0 for a
  perfect translation. ``identity_mae = mean |T_s(x) - T_c(x)|`` is the error
  of not translating at all.
* **Attribute accuracy**: a small CNN (:class:`AttributeClassifier`) trained
  on the known transforms of *real* images (:func:`train_attribute_classifier`;
  independent of the GAN's critic) classifies the translated images; the share
  that it reads as the target label ``c`` (:func:`attribute_accuracy`:
  argmax for single-label domains; per attribute, averaged over attributes,
  for multi-attribute labels, as StarGAN's Table 3 reports).
* **Content accuracy**: the committed MNIST / Fashion-MNIST classifier
  (:func:`jaxgan.metrics.load_classifier`, 99.4 % on MNIST) still recognises
  the source image's class in the translated image, read in its input format
  (:func:`content_gray`: the target's inversion undone, the colour channels
  collapsed to gray).
* **Cycle / reconstruction L1**: ``mean |G(G(x, c), s) - x|`` (StarGAN's
  ``L_rec``; CycleGAN's ``|F(G(a)) - a|``).

The functions take images and labels (numpy) and return floats; the trainer's
hook (:mod:`jaxgan.families.translation`) runs the generator.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import serialization

from jaxgan.data.domains import DomainSpec

CLASSIFIER_VERSION = 1  # bump when the architecture or the training recipe changes (cache key)


def mean_abs_error(images: np.ndarray, truth: np.ndarray) -> float:
  """``mean |images - truth|`` over every pixel and channel (float64 accumulation)."""
  images, truth = np.asarray(images), np.asarray(truth)
  if images.shape != truth.shape:
    raise ValueError(f"images {images.shape} and ground truth {truth.shape} differ in shape")
  return float(np.mean(np.abs(images.astype(np.float64) - truth.astype(np.float64))))


def content_gray(images: np.ndarray, spec: DomainSpec, labels: np.ndarray) -> np.ndarray:
  """RGB images of the domains ``labels`` -> gray ``[N, H, W, 1]``, the input format of the class
  classifiers: images of an inverted target are negated back, then the channels are collapsed by
  their maximum (a coloured stroke ``2 t rgb - 1`` with one channel on gives ``2 t - 1``; a gray
  image is unchanged). Thick strokes stay thick."""
  images = np.asarray(images, np.float32)
  labels = spec.check(labels)
  if spec.kind == "single":
    inverted = np.asarray([spec.names[i] == "inverted" for i in labels.argmax(1)])
  elif "inverted" in spec.names:
    inverted = labels[:, spec.names.index("inverted")] > 0.5
  else:
    inverted = np.zeros(len(labels), bool)
  images = np.where(inverted[:, None, None, None], -images, images)
  return images.max(axis=-1, keepdims=True)


def attribute_accuracy(logits: np.ndarray, labels: np.ndarray, kind: str) -> float:
  """Share of correct labels: ``"single"``: argmax = the one-hot label's; ``"multi"``: per
  attribute (logit > 0 = on), averaged over attributes and images."""
  logits, labels = np.asarray(logits), np.asarray(labels)
  if kind == "single":
    return float(np.mean(logits.argmax(-1) == labels.argmax(-1)))
  return float(np.mean((logits > 0) == (labels > 0.5)))


def class_predictions(network, gray: np.ndarray) -> np.ndarray:
  """The class ``network`` (a :class:`jaxgan.metrics.FeatureNetwork`) assigns to each ``gray`` image."""
  _, logits = network(gray)
  return np.argmax(logits, -1)


def class_accuracy(network, gray: np.ndarray, classes: np.ndarray) -> float:
  """Share of ``gray`` images that ``network`` (a :class:`jaxgan.metrics.FeatureNetwork`) assigns
  to ``classes``."""
  return float(np.mean(class_predictions(network, gray) == np.asarray(classes)))


# ---------------------------------------------------------------------------------------
# The independent attribute classifier

class AttributeClassifier(nn.Module):
  """A small CNN on RGB images in [-1, 1]: three 3x3 stride-2 convolutions (32, 64, 64) with
  ReLU, a 128-wide ReLU layer, ``num_outputs`` logits. No normalisation layers."""
  num_outputs: int
  features: Sequence[int] = (32, 64, 64)
  hidden: int = 128

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    for f in self.features:
      x = nn.relu(nn.Conv(f, (3, 3), strides=(2, 2))(x))
    x = nn.relu(nn.Dense(self.hidden)(x.reshape(x.shape[0], -1)))
    return nn.Dense(self.num_outputs)(x)


class TrainedAttributeClassifier:
  """An :class:`AttributeClassifier` with its parameters: ``logits(images)`` in jitted batches,
  ``accuracy(images, labels)``, and ``test_accuracy`` (on real transformed test images, if given
  to :func:`train_attribute_classifier`)."""

  def __init__(self, spec: DomainSpec, module: AttributeClassifier, params, test_accuracy=None):
    self.spec, self.module, self.params, self.test_accuracy = spec, module, params, test_accuracy
    self._apply = jax.jit(lambda p, x: module.apply({"params": p}, x))

  def logits(self, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
    images = np.asarray(images, np.float32)
    out = []
    for start in range(0, len(images), batch_size):
      x = images[start:start + batch_size]
      valid = len(x)
      if valid < batch_size and len(images) > batch_size:  # one compiled shape
        x = np.concatenate([x, np.zeros((batch_size - valid, *x.shape[1:]), np.float32)])
      out.append(np.asarray(self._apply(self.params, x))[:valid])
    return np.concatenate(out) if out else np.zeros((0, self.spec.size), np.float32)

  def accuracy(self, images: np.ndarray, labels: np.ndarray) -> float:
    return attribute_accuracy(self.logits(images), labels, self.spec.kind)


def _loss(logits, labels, kind):
  if kind == "single":
    return jnp.mean(optax.softmax_cross_entropy(logits, labels))
  return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, labels))


def _cache_path(cache_dir: str, key: dict) -> str:
  digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
  return os.path.join(cache_dir, f"attribute_classifier_{digest}.msgpack")


def train_attribute_classifier(gray: np.ndarray, spec: DomainSpec, steps: int = 400,
                               batch_size: int = 64, learning_rate: float = 1e-3, seed: int = 0,
                               test_gray: np.ndarray | None = None, test_images: int = 2000,
                               cache_dir: str | None = None, name: str = "") -> TrainedAttributeClassifier:
  """Trains an :class:`AttributeClassifier` to read the label of ``T_c(x)`` (``spec``).

  Each of ``steps`` Adam steps draws ``batch_size`` real gray images ``x``
  (``gray``, the train split) and random valid labels ``c`` (``spec.sample``)
  and fits the logits of ``T_c(x)`` to ``c`` (softmax cross-entropy for
  single-label domains, per-attribute BCE for attributes). Draws are a
  function of ``seed``. With ``test_gray``, the accuracy on ``test_images``
  transformed held-out images is measured (``test_accuracy``). With
  ``cache_dir``, the parameters and that accuracy are stored under a key of
  the recipe and the data (``name``, spec, shapes, steps, seed) and reused.
  """
  gray = np.asarray(gray, np.float32)
  module = AttributeClassifier(num_outputs=spec.size)
  key = {"version": CLASSIFIER_VERSION, "name": name, "spec": list(spec.names), "kind": spec.kind,
         "shape": list(gray.shape), "steps": steps, "batch": batch_size, "lr": learning_rate,
         "seed": seed, "test": None if test_gray is None else [len(test_gray), test_images]}
  template = jax.eval_shape(lambda: module.init(jax.random.PRNGKey(0), jnp.zeros((1, *gray.shape[1:3], 3))))
  path = _cache_path(cache_dir, key) if cache_dir else None
  if path and os.path.exists(path) and os.path.exists(path + ".json"):
    with open(path, "rb") as f:
      params = serialization.from_bytes(template["params"], f.read())
    with open(path + ".json") as f:
      acc = json.load(f).get("test_accuracy")
    return TrainedAttributeClassifier(spec, module, jax.tree.map(jnp.asarray, params), acc)

  tx = optax.adam(learning_rate)
  params = jax.jit(module.init)(jax.random.PRNGKey(seed), jnp.zeros((1, *gray.shape[1:3], 3)))["params"]
  opt_state = tx.init(params)

  @jax.jit
  def step(params, opt_state, x, y):
    loss, grads = jax.value_and_grad(lambda p: _loss(module.apply({"params": p}, x), y, spec.kind))(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  rng = np.random.default_rng([seed, 0xA77])
  for _ in range(steps):
    idx = rng.integers(0, len(gray), batch_size)
    labels = spec.sample(rng, batch_size)
    params, opt_state, _ = step(params, opt_state, spec.apply(gray[idx], labels), labels)
  classifier = TrainedAttributeClassifier(spec, module, params)
  if test_gray is not None:
    rng = np.random.default_rng([seed, 0x7E57])
    test = np.asarray(test_gray, np.float32)[:test_images]
    labels = spec.sample(rng, len(test))
    classifier.test_accuracy = classifier.accuracy(spec.apply(test, labels), labels)
  if path:
    os.makedirs(cache_dir, exist_ok=True)
    with open(path, "wb") as f:
      f.write(serialization.to_bytes(jax.device_get(params)))
    with open(path + ".json", "w") as f:
      json.dump({**key, "test_accuracy": classifier.test_accuracy}, f, indent=1)
  return classifier
