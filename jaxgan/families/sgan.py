"""The semi-supervised GAN (Salimans et al., 2016, sec. 5): a K-way classifier as the discriminator.

D classifies ``K`` real classes with the fake class implicit (``D(x) ->
(logits, features)``, its real-vs-fake logit ``log Z``); it learns from a few
labelled images and the whole unlabelled set, G by feature matching. The
family's data (:class:`jaxgan.data.labeled.SemiSupervisedData`) stream an
unlabelled batch with a cycled labelled minibatch; its weight-normalised D is
initialised from data (:func:`initialise_from_data`); its metric is the test
accuracy of D's classifier (:class:`SemiSupervisedTestAccuracy`, every
``sgan.eval_every`` steps). Recipe keys: ``sgan.{labels_per_class,
labeled_batch_size, unsupervised_weight, feature_matching, matching_batch,
eval_every}`` (``configs/sgan_mnist.py``).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax import lax

from jaxgan import losses, steps
from jaxgan.data import labeled
from jaxgan.ema import ema_params
from jaxgan.errors import ConfigError
from jaxgan.families.base import Family, cached_body, count, number
from jaxgan.families.conditional import one_update_per_step, require_labels, test_split
from jaxgan.generation import batched
from jaxgan.hooks import Evaluate, Hook, SampleGrid
from jaxgan.models.conditional import weight_norm_data_init
from jaxgan.state import GANState

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
  if not getattr(state.discriminator, "weight_norm", False) or not hasattr(data, "init_images"):
    return state
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
  return batched(lambda x: _predict(state, x), images, batch_size=batch_size,
                 dtype=np.int64).astype(np.int64)


@jax.jit
def _predict(state: GANState, x: jax.Array) -> jax.Array:
  return jnp.argmax(state.discriminate(x, train=False)[0][0], -1)


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
    self.test = test_split(config)
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


# ---------------------------------------------------------------------------------------------
# The step

def _noise_rngs(state: GANState, axis_name: str | None):
  """``i -> {"noise": key}`` for D's stochastic layers; per device, the key is folded with its index."""
  key = steps.step_key(state, steps.NOISE_STREAM)
  if axis_name is not None:
    key = jax.random.fold_in(key, lax.axis_index(axis_name))
  return lambda i: {"noise": jax.random.fold_in(key, i)}


def sgan_step_fn(state: GANState, batch: steps.Batch, *, loss: str = "nonsaturating",
                 axis_name: str | None = None, unsupervised_weight: float = 0.5,
                 feature_matching: bool = True, label_smoothing: float = 0.0) -> tuple[GANState, steps.Metrics]:
  """One semi-supervised GAN update (Salimans et al., 2016, sec. 5): D, then G with fresh noise.

  The batch holds unlabelled images ``image`` ``[B, ...]`` and a labelled
  minibatch ``labeled_image`` ``[Bl, ...]`` / ``labeled_label`` ``[Bl]``.
  D is a K-way classifier with the fake class implicit (``D(x) -> (logits,
  features)``, real-vs-fake logit ``log Z``, :func:`jaxgan.losses.sgan_log_z`);
  it minimises

  ``L_D = CE(labelled) + unsupervised_weight * L_unsup(log Z(unlabelled), log Z(G(z)))``

  with ``L_unsup`` the GAN objective ``loss`` on the ``log Z`` logits (for
  ``"nonsaturating"`` exactly :func:`jaxgan.losses.sgan_unsupervised_loss`;
  Salimans et al.'s code has the weight 1/2). ``unsupervised_weight = 0`` is
  the supervised-only baseline (D never sees a fake). ``label_smoothing`` = s
  sets the unlabelled real images' target to 1 - s (one-sided label
  smoothing, Salimans et al., 2016, sec. 3.4;
  :func:`jaxgan.losses.bce_discriminator_loss`; cross-entropy objectives only). G (fresh noise from the
  G stream) then minimises, through the updated D, the feature-matching loss
  (:func:`jaxgan.losses.feature_matching_loss`, D's last hidden layer on the
  unlabelled batch, or on ``matching_image`` when the batch holds one, vs the
  fakes) or, with ``feature_matching=False``, the objective's generator loss on ``log Z``. D's stochastic layers draw from
  the noise stream; with several devices each device folds in its index,
  and feature matching uses each device's batch statistics, so n devices
  are not bit-identical to one here.
  """
  unlabeled, labeled, label = batch["image"], batch["labeled_image"], batch["labeled_label"]
  rngs = _noise_rngs(state, axis_name)
  z = steps.sample_latent(state, steps.step_key(state, steps.D_STREAM), unlabeled.shape[0], axis_name)
  fake = lax.stop_gradient(state.generate(z, train=True)[0])

  def d_loss_fn(d_params):
    (lab_logits, _), stats = state.discriminate(labeled, d_params=d_params, rngs=rngs(0))
    (unl_logits, _), stats = state.discriminate(unlabeled, stats, d_params=d_params, rngs=rngs(1))
    (fake_logits, _), stats = state.discriminate(fake, stats, d_params=d_params, rngs=rngs(2))
    sup = losses.sgan_supervised_loss(lab_logits, label)
    unsup = losses.discriminator_loss(loss, losses.sgan_log_z(unl_logits), losses.sgan_log_z(fake_logits),
                                      **steps.smoothing_kwargs(label_smoothing))
    return sup + unsupervised_weight * unsup, (stats, lab_logits, unl_logits, fake_logits, sup, unsup)

  (d_loss, (stats, lab_logits, unl_logits, fake_logits, sup, unsup)), grads = jax.value_and_grad(
      d_loss_fn, has_aux=True)(state.d_params)
  state = steps.apply_d_update(state, grads, stats, axis_name)

  z_g = steps.sample_latent(state, steps.step_key(state, steps.G_STREAM), unlabeled.shape[0], axis_name)
  real_features = None
  if feature_matching:  # the real statistics: D's unlabelled batch, or an independent one if given
    matching = batch.get("matching_image", unlabeled)
    (_, real_features), _ = state.discriminate(matching, rngs=rngs(3))

  def g_loss_fn(g_params):
    fake, g_stats = state.replace(g_params=g_params).generate(z_g, train=True)
    (logits, features), _ = state.discriminate(fake, rngs=rngs(4))
    if feature_matching:
      return losses.feature_matching_loss(real_features, features), g_stats
    return losses.generator_loss(loss, losses.sgan_log_z(logits)), g_stats

  (g_loss, g_stats), grads = jax.value_and_grad(g_loss_fn, has_aux=True)(state.g_params)
  state, g_metrics = steps.apply_g_update(state, grads, g_stats, g_loss, axis_name)
  real_z, fake_z = losses.sgan_log_z(unl_logits), losses.sgan_log_z(fake_logits)
  real_acc, fake_acc = losses.discriminator_accuracy(real_z, fake_z)
  metrics = {
      "d_loss": d_loss, "d_sup_loss": sup, "d_unsup_loss": unsup,
      "d_labeled_acc": losses.class_accuracy(lab_logits, label),
      "d_real_acc": real_acc, "d_fake_acc": fake_acc,
      "d_real_prob": jnp.mean(jax.nn.sigmoid(real_z)), "d_fake_prob": jnp.mean(jax.nn.sigmoid(fake_z)),
  }
  return state, {**steps.pmean(metrics, axis_name), **g_metrics}


def make_sgan_step(loss: str = "nonsaturating", *, unsupervised_weight: float = 0.5,
                   feature_matching: bool = True, label_smoothing: float = 0.0,
                   axis_name: str | None = None, jit: bool = True, donate: bool = False):
  """:func:`sgan_step_fn` with its options bound; jitted unless ``jit=False``."""
  if isinstance(unsupervised_weight, bool) or not isinstance(unsupervised_weight, (int, float)) \
      or not unsupervised_weight >= 0:
    raise ValueError(f"unsupervised_weight must be a number >= 0, got {unsupervised_weight!r}")
  steps.check_objective(loss, label_smoothing)
  return steps.bind(sgan_step_fn, jit=jit, donate=donate, loss=loss,
                    unsupervised_weight=float(unsupervised_weight),
                    feature_matching=bool(feature_matching), label_smoothing=float(label_smoothing),
                    axis_name=axis_name)


class SGAN(Family):
  name = "sgan"
  honours = frozenset({"dtype"})   # its own step, and its labelled / unlabelled data
  models = ("sgan",)

  def check_config(self, config: ml_collections.ConfigDict) -> None:
    super().check_config(config)
    one_update_per_step(config)
    sgan = config.get("sgan", ml_collections.ConfigDict())
    for key, minimum in (("labels_per_class", 1), ("labeled_batch_size", 0), ("eval_every", 0)):
      count(config, f"sgan.{key}", minimum)
    number(config, "sgan.unsupervised_weight")
    for key in ("feature_matching", "matching_batch"):
      if not isinstance(sgan.get(key, False), bool):
        raise ConfigError(f"config.sgan.{key} must be True or False, got {sgan[key]!r}")

  def data(self, config: ml_collections.ConfigDict, process_index: int = 0, process_count: int = 1):
    """An unlabelled stream and a cycled labelled subset (:func:`jaxgan.data.labeled.for_config`;
    every process reads the whole split, so every process picks the same subset)."""
    return labeled.for_config(config)

  def check_data(self, config: ml_collections.ConfigDict, data) -> None:
    require_labels(config, data, self.name)

  def prepare_state(self, config: ml_collections.ConfigDict, state, data):
    return initialise_from_data(state, data, config)

  def step_options(self, config: ml_collections.ConfigDict) -> dict[str, Any]:
    sgan = config.get("sgan", {})
    return {"n_critic": 1, "unsupervised_weight": float(sgan.get("unsupervised_weight", 0.5)),
            "feature_matching": bool(sgan.get("feature_matching", True)),
            "label_smoothing": float(config.get("label_smoothing", 0.0))}

  def step_body(self, config: ml_collections.ConfigDict):
    options = {k: v for k, v in self.step_options(config).items() if k != "n_critic"}
    return cached_body(make_sgan_step, tuple(sorted({**options, "loss": config.loss}.items())))

  def hooks(self, config: ml_collections.ConfigDict, data,
            log: Callable[[str], None] | None = None) -> list[Hook]:
    """The fixed-noise :class:`~jaxgan.hooks.SampleGrid` (G is unconditional),
    :class:`SemiSupervisedTestAccuracy` when ``config.sgan.eval_every``, and the FID/KID
    evaluation of the generator when ``config.eval_every``."""
    hooks: list[Hook] = [SampleGrid(config)]
    if config.get("sgan", {}).get("eval_every", 0):
      hooks.append(SemiSupervisedTestAccuracy(
          config, int(getattr(data, "labels_per_class", config.sgan.get("labels_per_class", 10))),
          int(getattr(data, "num_classes", 0))))
    if config.get("eval_every", 0):
      hooks.append(Evaluate(config, log))
    return hooks
