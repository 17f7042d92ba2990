"""Conditional GANs: ``G(z, y)`` with a class label, as cGAN (Mirza & Osindero, 2014) and ACGAN.

* :class:`CGAN` (models ``cgan_mlp``, ``cgan_dcgan``): D sees the label too,
  ``D(x, y)`` (concatenation or projection conditioning); the step is the
  ordinary :func:`jaxgan.steps.train_step_fn` with labels threaded through.
* :class:`ACGAN` (model ``acgan``; Odena, Olah & Shlens, 2017): D has a source
  head and a class head, ``D(x) -> (s, l)``; its step is :func:`acgan_step_fn`.

Both draw class-by-row sample grids (:class:`ClassGrid`, row ``k`` = class
``k``) and, every ``conditional.eval_every`` steps, measure conditional
correctness (the share of ``G(z, y)`` the dataset's committed classifier
assigns to ``y``, ``cond_acc``) and the intra-class FID (``intra_fid``, the mean
over classes of the FID of class ``k``'s samples against the real test images of
class ``k``; Miyato & Koyama, 2018) with :class:`ConditionalEvaluate`.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax import lax

from jaxgan import data as data_lib
from jaxgan import losses, steps, viz
from jaxgan.errors import ConfigError
from jaxgan.families.base import Family, cached_body, count, number
from jaxgan.generation import generate_images
from jaxgan.hooks import Hook, Picture, fixed_noise
from jaxgan.models.conditional import CONDITIONINGS
from jaxgan.state import GANState
from jaxgan.steps import generate

LABEL_NOISE = 2**31 - 3  # fold_in tag of the conditional evaluation noise
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
  ``PRNGKey(seed)`` unless given (:func:`jaxgan.generation.generate_images`)."""
  labels = np.asarray(labels, np.int32)
  if not len(labels):
    return np.zeros((0,), np.float32)
  return generate_images(state, state.latent_dim, len(labels), seed, batch_size, labels=labels, z=z)


class ClassGrid(Hook):
  """``samples/step_XXXXXXX.png`` class-by-row grids every ``sample_every`` steps, ``final.png`` at the end.

  ``K`` rows (classes) by ``n`` columns (``num_samples // K``, at least 1):
  the same fixed noise vector down each column.
  """

  def __init__(self, config: ml_collections.ConfigDict, num_classes: int):
    self.every = int(config.sample_every)
    self.num_classes = int(num_classes)
    self.per_class = max(1, int(config.num_samples) // self.num_classes)

  def grid(self, state: GANState, name: str) -> Picture:
    z, y = class_rows(state, self.num_classes, self.per_class)
    images = np.asarray(generate(state, z, y))
    return Picture(f"samples/{name}", viz.class_grid(images, self.num_classes), scale=3)

  def __call__(self, state, step, history):
    return {"samples": self.grid(state, f"step_{step:07d}.png")}

  def end(self, state, step, history):
    return [self.grid(state, "final.png"),
            "samples      samples/  (final: samples/final.png; row k = class k)"]


def test_split(config: ml_collections.ConfigDict):
  """The real test split of ``config.dataset`` at the run's image size, with its labels."""
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

  def __init__(self, config: ml_collections.ConfigDict, num_classes: int):
    self.every = int(config.conditional.eval_every)
    self.per_class = int(config.conditional.get("samples_per_class", 100))
    self.num_classes = int(num_classes)
    test = test_split(config)
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


# ---------------------------------------------------------------------------------------------
# The ACGAN step

def acgan_step_fn(state: GANState, batch: steps.Batch, *, loss: str = "nonsaturating",
                  axis_name: str | None = None, class_weight: float = 1.0,
                  fake_class_weight: float = 1.0,
                  label_smoothing: float = 0.0) -> tuple[GANState, steps.Metrics]:
  """One ACGAN update (Odena et al., 2017): D then G on the same fakes ``G(z, c)``.

  ``c`` is drawn uniformly (:func:`sample_labels`), ``z`` and ``c`` from the D
  stream. D (source and class heads, ``D(x) -> (s, l)``) minimises
  :func:`jaxgan.losses.acgan_discriminator_loss` on ``batch["image"]`` /
  ``batch["label"]`` and the fakes; G then minimises
  :func:`jaxgan.losses.acgan_generator_loss` through the *updated* D on the
  same fakes, its gradient pulled back through the one forward pass (as
  :func:`reused_fakes_step_fn`). Metrics add ``d_class_acc_real`` /
  ``d_class_acc_fake`` (D's class head accuracy on the real batch and on the
  fakes w.r.t. the labels they were generated for) and the class losses.
  ``label_smoothing`` smooths the source term's real target (as :func:`d_step_fn`).
  """
  real, real_label = batch["image"], batch["label"]
  key = steps.step_key(state, steps.D_STREAM)
  z = steps.sample_latent(state, key, real.shape[0], axis_name)
  fake_label = steps.sample_labels(state, key, real.shape[0], axis_name)
  fake, pull_back, g_stats = jax.vjp(
      lambda g_params: state.replace(g_params=g_params).generate(z, train=True, label=fake_label),
      state.g_params, has_aux=True)
  fake_d = lax.stop_gradient(fake)

  def d_loss_fn(d_params):
    (real_s, real_c), stats = state.discriminate(real, d_params=d_params)
    (fake_s, fake_c), stats = state.discriminate(fake_d, stats, d_params=d_params)
    d_loss = losses.acgan_discriminator_loss(loss, real_s, fake_s, real_c, fake_c, real_label,
                                             fake_label, class_weight, fake_class_weight,
                                             **steps.smoothing_kwargs(label_smoothing))
    return d_loss, (stats, real_s, fake_s, real_c, fake_c)

  (d_loss, (stats, real_s, fake_s, real_c, fake_c)), grads = jax.value_and_grad(
      d_loss_fn, has_aux=True)(state.d_params)
  state = steps.apply_d_update(state, grads, stats, axis_name)

  def g_loss_fn(x):
    (s, c), _ = state.discriminate(x)
    return losses.acgan_generator_loss(loss, s, c, fake_label, class_weight), c

  (g_loss, g_class_logits), fake_grad = jax.value_and_grad(g_loss_fn, has_aux=True)(fake)
  (grads,) = pull_back(fake_grad)
  state, g_metrics = steps.apply_g_update(state, grads, g_stats, g_loss, axis_name)
  real_acc, fake_acc = losses.discriminator_accuracy(real_s, fake_s)
  metrics = {
      "d_loss": d_loss, "d_real_acc": real_acc, "d_fake_acc": fake_acc,
      "d_class_acc_real": losses.class_accuracy(real_c, real_label),
      "d_class_acc_fake": losses.class_accuracy(fake_c, fake_label),
      "d_class_loss_real": losses.class_cross_entropy(real_c, real_label),
      "d_class_loss_fake": losses.class_cross_entropy(fake_c, fake_label),
      "g_class_loss": losses.class_cross_entropy(g_class_logits, fake_label),
  }
  return state, {**steps.pmean(metrics, axis_name), **g_metrics}


def make_acgan_step(loss: str = "nonsaturating", *, class_weight: float = 1.0,
                    fake_class_weight: float = 1.0, label_smoothing: float = 0.0,
                    axis_name: str | None = None, jit: bool = True, donate: bool = False):
  """:func:`acgan_step_fn` with its options bound; jitted unless ``jit=False``."""
  for name, value in (("class_weight", class_weight), ("fake_class_weight", fake_class_weight)):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
      raise ValueError(f"{name} must be a number >= 0, got {value!r}")
  steps.check_objective(loss, label_smoothing)
  return steps.bind(acgan_step_fn, jit=jit, donate=donate, loss=loss,
                    class_weight=float(class_weight), fake_class_weight=float(fake_class_weight),
                    label_smoothing=float(label_smoothing), axis_name=axis_name)


# ---------------------------------------------------------------------------------------------
# The families

class CGAN(Family):
  """The conditional GAN: ``G(z, y)`` against ``D(x, y)``, the ordinary step with labels."""

  name = "cgan"
  models = ("cgan_mlp", "cgan_dcgan", "cgan_resnet")

  def check_config(self, config: ml_collections.ConfigDict) -> None:
    super().check_config(config)
    cond = config.discriminator.get("conditioning", None)
    if cond is not None and cond not in CONDITIONINGS:
      raise ConfigError(f"config.discriminator.conditioning={cond!r} is unknown; choose one of "
                        f"{list(CONDITIONINGS)}")
    count(config, "conditional.eval_every")
    count(config, "conditional.samples_per_class", 2)

  def check_data(self, config: ml_collections.ConfigDict, data) -> None:
    require_labels(config, data, self.name)

  def hooks(self, config: ml_collections.ConfigDict, data,
            log: Callable[[str], None] | None = None) -> list[Hook]:
    """:class:`ClassGrid`, and :class:`ConditionalEvaluate` when ``config.conditional.eval_every``."""
    num_classes = int(getattr(data, "num_classes", 0))
    hooks: list[Hook] = [ClassGrid(config, num_classes)]
    if config.get("conditional", {}).get("eval_every", 0):
      hooks.append(ConditionalEvaluate(config, num_classes))
    return hooks


class ACGAN(CGAN):
  """ACGAN: a source and a class head on D (:func:`acgan_step_fn`); recipe keys
  ``acgan.class_weight`` and ``acgan.fake_class_weight``."""

  name = "acgan"
  honours = frozenset({"data.fraction", "dtype"})   # its step (two heads) has no DiffAugment
  models = ("acgan",)

  def check_config(self, config: ml_collections.ConfigDict) -> None:
    super().check_config(config)
    one_update_per_step(config)
    for key in ("class_weight", "fake_class_weight"):
      number(config, f"acgan.{key}")

  def step_options(self, config: ml_collections.ConfigDict) -> dict[str, Any]:
    acgan = config.get("acgan", {})
    return {"n_critic": 1, "class_weight": float(acgan.get("class_weight", 1.0)),
            "fake_class_weight": float(acgan.get("fake_class_weight", 1.0)),
            "label_smoothing": float(config.get("label_smoothing", 0.0))}

  def step_body(self, config: ml_collections.ConfigDict):
    options = {k: v for k, v in self.step_options(config).items() if k != "n_critic"}
    return cached_body(make_acgan_step, tuple(sorted({**options, "loss": config.loss}.items())))


def require_labels(config: ml_collections.ConfigDict, data, family: str) -> None:
  """The data error of a label-aware family: a dataset without class labels."""
  if int(getattr(data, "num_classes", 0)) < 2:
    raise ConfigError(
        f"config.model={config.model!r} is label-aware ({family}) but the dataset "
        f"{config.dataset!r} has no class labels; use a labelled dataset (e.g. "
        f"--config.dataset=mnist) or an unconditional model (e.g. --config.model=dcgan)")


def one_update_per_step(config: ml_collections.ConfigDict) -> None:
  """The config errors of a family whose step makes one D and one G update with no penalty."""
  if config.get("n_critic", 1) != 1:
    raise ConfigError(f"config.model={config.model!r} makes one D and one G update per step; "
                      f"set --config.n_critic=1")
  for key in ("gp_weight", "r1_weight", "clip"):
    if config.get(key, 0.0):
      raise ConfigError(f"config.{key} is not supported by config.model={config.model!r}; set it to 0")
