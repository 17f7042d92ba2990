"""Label-aware families in the trainer: their hooks, step options and config checks.

* :class:`ClassGrid`: class-by-row sample grids (row ``k`` = class ``k``,
  column ``j`` = fixed noise vector ``j``) every ``sample_every`` steps.
* :class:`ConditionalEvaluate`: conditional correctness (the share of
  ``G(z, y)`` that the dataset's committed classifier assigns to ``y``,
  ``cond_acc``) and the intra-class FID (``intra_fid``, the mean over classes
  of the FID of class ``k``'s samples against the real test images of class
  ``k``; Miyato & Koyama, 2018) every ``conditional.eval_every`` steps.
* :class:`SemiSupervisedTestAccuracy`: the semi-supervised discriminator's
  accuracy on the real test split (``test_acc``, ``test_error``) every
  ``sgan.eval_every`` steps.

:func:`build_hooks` returns a label-aware family's hooks (None for the
unconditional families); :func:`step_options` the options of
:func:`jaxgan.steps.make_train_step` the family's config sets;
:func:`check_family` the family's config errors.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxgan import models, viz
from jaxgan.ema import ema_params
from jaxgan.errors import ConfigError
from jaxgan.hooks import Hook, SampleGrid, fixed_noise
from jaxgan.state import GANState, takes_label
from jaxgan.steps import generate

LABEL_NOISE = 2**31 - 3  # fold_in tag of the conditional evaluation noise
LABEL_FAMILIES = ("cgan", "acgan", "sgan")


def family(config: ml_collections.ConfigDict) -> str:
  """``"gan"``, ``"cgan"``, ``"acgan"`` or ``"sgan"`` (from ``config.model``)."""
  return models.family(config.model)


def step_options(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """The label-aware options of :func:`jaxgan.steps.make_train_step` that ``config`` sets."""
  fam = family(config)
  if fam == "acgan":
    acgan = config.get("acgan", {})
    return {"class_weight": float(acgan.get("class_weight", 1.0)),
            "fake_class_weight": float(acgan.get("fake_class_weight", 1.0))}
  if fam == "sgan":
    sgan = config.get("sgan", {})
    return {"unsupervised_weight": float(sgan.get("unsupervised_weight", 0.5)),
            "feature_matching": bool(sgan.get("feature_matching", True))}
  return {}


def _number(value, name: str, minimum: float = 0.0) -> None:
  if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) \
      or value < minimum:
    raise ConfigError(f"config.{name} must be a number >= {minimum}, got {value!r}")


def _count(value, name: str, minimum: int = 0) -> None:
  if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
    raise ConfigError(f"config.{name} must be an integer >= {minimum}, got {value!r}")


def check_family(config: ml_collections.ConfigDict, num_classes: int | None = None) -> None:
  """Raises :class:`ConfigError` for a label-aware config that cannot run.

  ``num_classes``: the dataset's (0 = no labels; None = not known yet, e.g.
  before the data is loaded).
  """
  fam = family(config)
  if fam == "gan":
    return
  if num_classes is not None and num_classes < 2:
    raise ConfigError(
        f"config.model={config.model!r} is label-aware ({fam}) but the dataset {config.dataset!r} "
        f"has no class labels; use a labelled dataset (e.g. --config.dataset=mnist) or an "
        f"unconditional model (e.g. --config.model=dcgan)")
  if config.get("n_critic", 1) != 1 and fam in ("acgan", "sgan"):
    raise ConfigError(f"config.model={config.model!r} makes one D and one G update per step; "
                      f"set --config.n_critic=1")
  for key in ("gp_weight", "r1_weight", "clip"):
    if fam in ("acgan", "sgan") and config.get(key, 0.0):
      raise ConfigError(f"config.{key} is not supported by config.model={config.model!r}; set it to 0")
  if fam == "cgan":
    cond = config.discriminator.get("conditioning", None)
    from jaxgan.models.conditional import CONDITIONINGS
    if cond is not None and cond not in CONDITIONINGS:
      raise ConfigError(f"config.discriminator.conditioning={cond!r} is unknown; choose one of "
                        f"{list(CONDITIONINGS)}")
  if fam in ("cgan", "acgan") and "conditional" in config:
    _count(config.conditional.get("eval_every", 0), "conditional.eval_every")
    _count(config.conditional.get("samples_per_class", 100), "conditional.samples_per_class", 2)
  if fam == "acgan" and "acgan" in config:
    _number(config.acgan.get("class_weight", 1.0), "acgan.class_weight")
    _number(config.acgan.get("fake_class_weight", 1.0), "acgan.fake_class_weight")
  if fam == "sgan":
    sgan = config.get("sgan", ml_collections.ConfigDict())
    _count(sgan.get("labels_per_class", 10), "sgan.labels_per_class", 1)
    _count(sgan.get("labeled_batch_size", 0), "sgan.labeled_batch_size")
    _count(sgan.get("eval_every", 0), "sgan.eval_every")
    _number(sgan.get("unsupervised_weight", 0.5), "sgan.unsupervised_weight")
    for key in ("feature_matching", "matching_batch"):
      if not isinstance(sgan.get(key, False), bool):
        raise ConfigError(f"config.sgan.{key} must be True or False, got {sgan[key]!r}")


# ---------------------------------------------------------------------------------------------
# Conditional sampling

def class_rows(state: GANState, num_classes: int, per_class: int, tag: int = 0) -> tuple[jax.Array, jax.Array]:
  """``(z [K * n, d], y [K * n])`` for a class-by-row grid: row ``k`` is class ``k``, column ``j``
  noise vector ``j`` of the run's fixed noise (``tag`` != 0: of ``fold_in(key, tag)``)."""
  z = fixed_noise(state, per_class) if not tag else jax.random.normal(
      jax.random.fold_in(state.key, tag), (per_class, state.latent_dim))
  return jnp.tile(z, (num_classes, 1)), jnp.repeat(jnp.arange(num_classes, dtype=jnp.int32), per_class)


def generate_conditional(state: GANState, labels: np.ndarray, seed: int = 0,
                         batch_size: int = 500, z: np.ndarray | None = None) -> np.ndarray:
  """``G(z, y)`` for the given int labels (float32 NHWC in [-1, 1]), ``z ~ N(0, I)`` from
  ``PRNGKey(seed)`` unless given; jitted batches of ``batch_size`` (the last one padded)."""
  labels = np.asarray(labels, np.int32)
  num = len(labels)
  if z is None:
    z = np.asarray(jax.random.normal(jax.random.PRNGKey(seed), (num, state.latent_dim)), np.float32)
  batch_size = max(1, min(batch_size, num))
  out = []
  for start in range(0, num, batch_size):
    zb, yb = z[start:start + batch_size], labels[start:start + batch_size]
    valid = len(zb)
    if valid < batch_size:
      zb = np.concatenate([zb, np.zeros((batch_size - valid, zb.shape[1]), np.float32)])
      yb = np.concatenate([yb, np.zeros(batch_size - valid, np.int32)])
    out.append(np.asarray(generate(state, zb, yb), np.float32)[:valid])
  return np.concatenate(out) if out else np.zeros((0,), np.float32)


class ClassGrid(Hook):
  """``samples/step_XXXXXXX.png`` class-by-row grids every ``sample_every`` steps, ``final.png`` at the end.

  ``K`` rows (classes) by ``n`` columns (``num_samples // K``, at least 1):
  the same fixed noise vector down each column.
  """

  def __init__(self, config: ml_collections.ConfigDict, workdir: str, num_classes: int,
               write: bool = True):
    self.every = int(config.sample_every)
    self.num_classes = int(num_classes)
    self.per_class = max(1, int(config.num_samples) // self.num_classes)
    self.directory = os.path.join(workdir, "samples")
    self.write = write

  def grid(self, state: GANState, name: str) -> np.ndarray:
    z, y = class_rows(state, self.num_classes, self.per_class)
    images = np.asarray(generate(state, z, y))
    if self.write:
      os.makedirs(self.directory, exist_ok=True)
      return viz.save_class_grid(images, self.num_classes, os.path.join(self.directory, name))
    return viz.class_grid(images, self.num_classes)

  def __call__(self, state, step, history):
    return {"samples": self.grid(state, f"step_{step:07d}.png")}

  def end(self, state, step, history):
    self.grid(state, "final.png")
    return [f"samples      {self.directory}  (final: {os.path.join(self.directory, 'final.png')}; "
            f"row k = class k)"]


def _test_split(config: ml_collections.ConfigDict):
  from jaxgan import data as data_lib
  return data_lib.load(config.dataset, "test", config.image_size or None,
                       data_dir=config.data.data_dir or None, manual_dir=config.data.manual_dir or None)


def _classifier(config: ml_collections.ConfigDict, key: str):
  from jaxgan.metrics import WeightsError, load_classifier
  try:
    return load_classifier(config.dataset)
  except WeightsError as e:
    raise ConfigError(f"{e} (or set --config.{key}=0)") from None


class ConditionalCorrectness:
  """Conditional correctness and intra-FID of a conditional generator with a dataset's classifier.

  ``network``: a :class:`jaxgan.metrics.FeatureNetwork`; ``real_images`` /
  ``real_labels``: the real test split (for the per-class reference statistics).
  """

  def __init__(self, network, real_images: np.ndarray, real_labels: np.ndarray, num_classes: int):
    from jaxgan.metrics.fid import gaussian_stats
    self.network, self.num_classes = network, int(num_classes)
    features, logits = network(real_images)
    self.real_accuracy = float(np.mean(np.argmax(logits, -1) == real_labels))
    self.reference = [gaussian_stats(features[real_labels == k]) for k in range(self.num_classes)]

  def __call__(self, images: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """``cond_acc`` (share classified as their label), ``cond_acc_<k>`` per class, ``intra_fid``."""
    from jaxgan.metrics.fid import frechet_distance, gaussian_stats
    features, logits = self.network(images)
    hit = np.argmax(logits, -1) == labels
    out = {"cond_acc": float(np.mean(hit))}
    fids = []
    for k in range(self.num_classes):
      sel = labels == k
      out[f"cond_acc_{k}"] = float(np.mean(hit[sel])) if sel.any() else float("nan")
      if sel.sum() >= 2:
        mu, sigma = gaussian_stats(features[sel])
        fids.append(frechet_distance(*self.reference[k], mu, sigma))
    out["intra_fid"] = float(np.mean(fids)) if fids else float("nan")
    return out


class ConditionalEvaluate(Hook):
  """``cond_acc`` and ``intra_fid`` (:class:`ConditionalCorrectness`) every ``conditional.eval_every``.

  ``samples_per_class`` samples of every class from one fixed noise batch.
  Intra-FID from few samples per class is biased upwards: compare numbers of
  the same ``samples_per_class``.
  """

  def __init__(self, config: ml_collections.ConfigDict, num_classes: int, write: bool = True):
    self.every = int(config.conditional.eval_every)
    self.per_class = int(config.conditional.get("samples_per_class", 100))
    self.num_classes = int(num_classes)
    self.write = write
    test = _test_split(config)
    self.metric = ConditionalCorrectness(_classifier(config, "conditional.eval_every"), test.images,
                                         test.labels, num_classes)
    self.last: dict[str, float] = {}

  def __call__(self, state, step, history):
    labels = np.repeat(np.arange(self.num_classes, dtype=np.int32), self.per_class)
    seed = int(jax.random.randint(jax.random.fold_in(state.key, LABEL_NOISE), (), 0, 2**31 - 1))
    images = generate_conditional(state, labels, seed)
    self.last = self.metric(images, labels)
    return {k: v for k, v in self.last.items() if k in ("cond_acc", "intra_fid")}

  def end(self, state, step, history):
    if not self.last:
      return []
    worst = min(range(self.num_classes), key=lambda k: self.last[f"cond_acc_{k}"])
    return [f"conditional  correctness {self.last['cond_acc']:.4f} (worst class {worst}: "
            f"{self.last[f'cond_acc_{worst}']:.3f})  intra-FID {self.last['intra_fid']:.2f}  "
            f"({self.per_class} samples per class; the classifier scores "
            f"{self.metric.real_accuracy:.4f} on the real test split)"]


DATA_INIT_TAG = 0xD17A  # fold_in tag of the data-dependent initialisation's noise
DATA_INIT_IMAGES = 500  # Salimans et al. (2016) initialise on 500 training images


def initialise_from_data(state: GANState, data: Any, config: ml_collections.ConfigDict) -> GANState:
  """A fresh semi-supervised state with its weight-normalised D initialised from data.

  Runs :func:`jaxgan.models.conditional.weight_norm_data_init` on
  :data:`DATA_INIT_IMAGES` training images (``data.init_images``, seeded by
  ``config.seed``) and re-initialises D's optimizer state on the new
  parameters. Other families and discriminators without ``weight_norm`` are
  returned unchanged. A resumed run restores its parameters over this.
  """
  if family(config) != "sgan" or not getattr(state.discriminator, "weight_norm", False) \
      or not hasattr(data, "init_images"):
    return state
  from jaxgan.models.conditional import weight_norm_data_init
  images = jnp.asarray(data.init_images(DATA_INIT_IMAGES, int(config.seed)))
  key = jax.random.fold_in(jnp.asarray(state.key), DATA_INIT_TAG)
  params = jax.jit(lambda p, x, k: weight_norm_data_init(state.discriminator, p, x, k))(
      state.d_params, images, key)
  return state.replace(d_params=params, d_opt_state=state.d_tx.init(params))


def discriminator_predictions(state: GANState, images: np.ndarray, batch_size: int = 1000,
                              d_params=None) -> np.ndarray:
  """Class predictions (int ``[N]``) of a semi-supervised discriminator's K-way classifier
  (inference mode: no noise) on ``images``, with ``d_params`` (default: the state's)."""
  if d_params is not None:
    state = state.replace(d_params=d_params)
  apply = jax.jit(lambda s, x: jnp.argmax(s.discriminate(x, train=False)[0][0], -1))
  n = len(images)
  out = np.empty(n, np.int64)
  for start in range(0, n, batch_size):
    x = images[start:start + batch_size]
    valid = len(x)
    if valid < batch_size and n > batch_size:  # one compiled shape
      x = np.concatenate([x, np.zeros((batch_size - valid, *x.shape[1:]), x.dtype)])
    out[start:start + valid] = np.asarray(apply(state, x))[:valid]
  return out


def discriminator_accuracy(state: GANState, images: np.ndarray, labels: np.ndarray,
                           batch_size: int = 1000, d_params=None) -> float:
  """Accuracy of a semi-supervised discriminator's K-way classifier (inference mode: no noise)
  on ``images``, with ``d_params`` (default: the state's)."""
  if not len(images):
    return 0.0
  predictions = discriminator_predictions(state, images, batch_size, d_params)
  return float(np.mean(predictions == np.asarray(labels)))


class SemiSupervisedTestAccuracy(Hook):
  """The semi-supervised discriminator's accuracy on the real test split every ``sgan.eval_every`` steps.

  ``test_acc`` / ``test_error`` use D's Polyak-averaged parameters when D's
  optimizer keeps them (``config.d_ema``; then ``test_acc_raw`` is the current
  parameters'), else the current parameters; D runs without its noise.
  """

  def __init__(self, config: ml_collections.ConfigDict, labels_per_class: int, num_classes: int):
    self.every = int(config.sgan.get("eval_every", 0))
    self.test = _test_split(config)
    self.labels = int(labels_per_class) * int(num_classes)
    self.last: float | None = None

  def __call__(self, state, step, history):
    out = {}
    averaged = ema_params(state.d_opt_state, state.d_params)
    if averaged is not None:  # config.d_ema: evaluate the Polyak average, as Salimans et al.
      out["test_acc_raw"] = discriminator_accuracy(state, self.test.images, self.test.labels)
    self.last = discriminator_accuracy(state, self.test.images, self.test.labels, d_params=averaged)
    return {"test_acc": self.last, "test_error": 1.0 - self.last, **out}

  def end(self, state, step, history):
    if self.last is None:
      self.__call__(state, step, history)
    best = [r["test_acc"] for r in history if "test_acc" in r]
    return [f"semi-supervised  test accuracy {self.last:.4f} (error {100 * (1 - self.last):.2f}%) "
            f"on {len(self.test.labels)} {self.test.name} test images with {self.labels} labels"
            + (f"; best logged {max(best):.4f}" if best else "")]


def build_hooks(config: ml_collections.ConfigDict, workdir: str, data: Any, write: bool = True,
                log: Callable[[str], None] | None = None) -> list[Hook] | None:
  """The hooks of a label-aware run (None for other families).

  Conditional GAN / ACGAN: :class:`ClassGrid`, and :class:`ConditionalEvaluate`
  when ``config.conditional.eval_every``. Semi-supervised GAN: the ordinary
  fixed-noise :class:`~jaxgan.hooks.SampleGrid` (its G is unconditional) and
  :class:`SemiSupervisedTestAccuracy` when ``config.sgan.eval_every``.
  """
  fam = family(config)
  if fam == "gan":
    return None
  num_classes = int(getattr(data, "num_classes", 0))
  check_family(config, num_classes)
  if fam == "sgan":
    hooks: list[Hook] = [SampleGrid(config, workdir, write)]
    if config.get("sgan", {}).get("eval_every", 0):
      hooks.append(SemiSupervisedTestAccuracy(
          config, int(getattr(data, "labels_per_class", config.sgan.get("labels_per_class", 10))),
          num_classes))
    if config.get("eval_every", 0):  # FID/KID of the (unconditional) generator
      from jaxgan.hooks import Evaluate
      hooks.append(Evaluate(config, write, log))
    return hooks
  hooks = [ClassGrid(config, workdir, num_classes, write)]
  if config.get("conditional", {}).get("eval_every", 0):
    hooks.append(ConditionalEvaluate(config, num_classes, write))
  return hooks


__all__ = ["DATA_INIT_IMAGES", "initialise_from_data", "ClassGrid", "ConditionalCorrectness", "ConditionalEvaluate", "SemiSupervisedTestAccuracy",
           "build_hooks", "check_family", "class_rows", "discriminator_accuracy", "discriminator_predictions", "family",
           "generate_conditional", "step_options", "takes_label"]
