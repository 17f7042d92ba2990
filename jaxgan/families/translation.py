"""Image-to-image translation: CycleGAN (Zhu et al., 2017) and StarGAN (Choi et al., 2018).

``config.model`` ``"cyclegan"`` or ``"stargan"``; the states and pure steps are
in :mod:`jaxgan.translation`. These families bring their own:

* config checks (image sizes the networks cannot round-trip, label vectors
  that do not match the models' domain count, a mask-vector run with one dataset);
* data (:mod:`jaxgan.data.domains`: two known transforms of MNIST for
  CycleGAN; MNIST attributes, plus Fashion-MNIST's colour domains with
  ``multi_dataset``, for StarGAN; or real photos, :mod:`jaxgan.data.photo`);
* state and step (two generators or one label-conditioned one, history pools,
  linear learning-rate decay);
* hooks: :class:`TranslationGrid` (every ``sample_every``: CycleGAN's
  A -> B -> A and B -> A -> B triplets; StarGAN's figure rows, an input followed
  by its translation to each target domain) and :class:`TranslationEvaluate`
  (every ``eval_every``: the ground-truth measurements of
  :mod:`jaxgan.metrics.translation`);
* what ``jaxgan.sample`` draws: the figure rows of held-out test images.

Recipe keys (``configs/cyclegan_mnist.py``, ``configs/stargan_mnist.py``):
``cyclegan.{domain_a, domain_b, lambda_cycle, lambda_identity, pool_size}``;
``stargan.{attributes, extra_datasets, lambda_cls, lambda_rec, lambda_id}``,
``multi_dataset``; ``gp_weight`` is StarGAN's ``lambda_gp``; ``decay_steps``
the final iterations over which the learning rates fall linearly to 0.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxgan import translation as tr
from jaxgan import viz
from jaxgan.data import domains, photo
from jaxgan.errors import ConfigError
from jaxgan.families.base import Drawing, Family, jsonable, number
from jaxgan.generation import batched
from jaxgan.hooks import Hook, Picture
from jaxgan.models.translation import PatchGANDiscriminator, ResNetGenerator, StarGANDiscriminator

DATASETS = ("mnist", "fashion_mnist")
GRID_ROWS = 8
EVAL_SEED = 2**31 - 4  # seed of the evaluation's source / target labels


# ---------------------------------------------------------------------------------------
# Config

def stargan_datasets(config: ml_collections.ConfigDict) -> list[tuple[str, domains.DomainSpec]]:
  """``[(dataset, DomainSpec), ...]``: ``config.dataset`` with ``stargan.attributes`` (``""`` = the
  dataset's default label set), then, with ``multi_dataset``, each of ``stargan.extra_datasets``
  (comma-separated) with its default label set."""
  star = config.get("stargan", ml_collections.ConfigDict())
  attributes = [a.strip() for a in str(star.get("attributes", "")).split(",") if a.strip()]
  if config.dataset == photo.CELEBA:
    return [(photo.CELEBA, photo.celeba_spec(attributes))]
  names = [config.dataset]
  if config.get("multi_dataset", False):
    extra = [n.strip() for n in str(star.get("extra_datasets", "")).split(",") if n.strip()]
    names += [n for n in extra if n not in names]
  for n in names:
    if n not in DATASETS:
      raise ConfigError(f"dataset {n!r}: the offline translation domains are built from "
                        f"{list(DATASETS)}; choose one of them")
  first = domains.DEFAULT_SPECS[names[0]]
  if attributes:
    kind = "multi" if all(a in domains.ATTRIBUTES for a in attributes) else "single"
    first = domains.DomainSpec(tuple(attributes), kind)
  return [(names[0], first)] + [(n, domains.DEFAULT_SPECS[n]) for n in names[1:]]


def label_sizes(config) -> tuple[int, ...] | None:
  """Per-dataset label lengths in multi-dataset mode (None with one dataset)."""
  if not config.get("multi_dataset", False):
    return None
  sizes = tuple(spec.size for _, spec in stargan_datasets(config))
  if len(sizes) < 2:  # the library's message (jaxgan.data.domains / jaxgan.translation)
    domains.joint_labels(np.zeros((0, sizes[0]), np.float32), 0, sizes)
  return sizes


def build_models(config: ml_collections.ConfigDict, image_shape) -> tuple[Any, Any]:
  """``(generator, discriminator)`` of the family, sized from the labels (StarGAN's ``num_domains``
  0 = the label length; in multi-dataset mode the generator also reads the mask vector)."""
  g_kwargs, d_kwargs = config.generator.to_dict(), config.discriminator.to_dict()
  try:
    if config.model == "cyclegan":
      g_kwargs.setdefault("style", "cyclegan")
      return ResNetGenerator(**g_kwargs), PatchGANDiscriminator(**d_kwargs)
    specs = stargan_datasets(config)
    sizes = label_sizes(config)
    k = sum(spec.size for _, spec in specs)
    want_g = k + (len(sizes) if sizes else 0)
    g_kwargs = {"style": "stargan", "affine": True, **g_kwargs}
    g_kwargs["num_domains"] = g_kwargs.get("num_domains") or want_g
    d_kwargs["num_domains"] = d_kwargs.get("num_domains") or k
    labels = " + ".join(f"{n} {list(spec.names)}" for n, spec in specs)
    if d_kwargs["num_domains"] != k:
      raise ConfigError(f"config.discriminator.num_domains={d_kwargs['num_domains']}, but the label "
                        f"vectors have {k} entries ({labels}); set it to {k} or 0 (= from the labels)")
    if g_kwargs["num_domains"] != want_g:
      mask = f" + {len(sizes)} mask entries" if sizes else ""
      raise ConfigError(f"config.generator.num_domains={g_kwargs['num_domains']}, but the generator "
                        f"reads {k} label entries ({labels}){mask} = {want_g}; set it to {want_g} "
                        f"or 0 (= from the labels)")
    return ResNetGenerator(**g_kwargs), StarGANDiscriminator(**d_kwargs)
  except TypeError as e:
    raise ConfigError(f"cannot build model {config.model!r} from config.generator / "
                      f"config.discriminator: {e}") from None


def _image_shape(config) -> tuple[int, int, int]:
  side = config.image_size or 28
  return (side, side, 3)


def _check_shapes(generator, discriminator, image_shape, stargan: bool) -> None:
  """Traces (no compute) the networks at ``image_shape``: sizes that cannot round-trip raise the
  models' ConfigError naming image_size."""
  x = jnp.zeros((1, *image_shape), jnp.float32)
  key = jax.random.PRNGKey(0)
  if stargan:
    c = jnp.zeros((1, generator.num_domains), jnp.float32)
    jax.eval_shape(lambda: generator.init(key, x, c))
  else:
    jax.eval_shape(lambda: generator.init(key, x))
  jax.eval_shape(lambda: discriminator.init(key, x))


def check_config(config: ml_collections.ConfigDict) -> None:
  """Raises :class:`ConfigError` for a translation config that cannot run (before any data is read)."""
  fam = config.model
  if config.get("label_smoothing", 0.0):
    raise ConfigError(f"config.label_smoothing is not supported by config.model={fam!r} "
                      f"(its critics train on their own objective); set it to 0")
  if config.get("optimizer", "adam") != "adam":
    raise ConfigError(f"config.model={fam!r} trains with Adam and a linear decay (both papers); "
                      f"set --config.optimizer=adam")
  for key in ("r1_weight", "clip"):
    if config.get(key, 0.0):
      raise ConfigError(f"config.{key} is not supported by config.model={fam!r}; set it to 0")
  real = photo.is_photo(config.dataset)
  if config.dataset not in DATASETS and not real:
    raise ConfigError(f"config.dataset={config.dataset!r}: translation runs read the offline "
                      f"known-transform domains of {list(DATASETS)}, or the real photos of "
                      f"'cycle_gan/<pair>' (CycleGAN) and '{photo.CELEBA}' (StarGAN)")
  if real:
    _check_photo_config(config)
  if fam == "cyclegan":
    if config.get("multi_dataset", False):
      raise ConfigError("config.multi_dataset is StarGAN's (the mask vector); CycleGAN translates "
                        "between two domains: set it to False")
    if config.get("n_critic", 1) != 1:
      raise ConfigError(f"CycleGAN updates its critics once per iteration; set --config.n_critic=1 "
                        f"(got {config.n_critic})")
    if config.get("gp_weight", 0.0):
      raise ConfigError("config.gp_weight is not part of CycleGAN's objective; set it to 0")
    cyc = config.get("cyclegan", ml_collections.ConfigDict())
    tr._cyclegan_options(config.loss, cyc.get("lambda_cycle", 10.0), cyc.get("lambda_identity", 0.5))
    if not real:
      domains.CycleGANDomains(np.zeros((2, 4, 4, 1), np.float32), cyc.get("domain_a", "original"),
                              cyc.get("domain_b", "inverted"))  # the domain names
    tr.empty_pool(cyc.get("pool_size", 50), (1, 1, 1))  # the pool size
  else:
    if config.loss != "wasserstein":
      raise ConfigError(f"StarGAN's adversarial objective is WGAN-GP: set --config.loss=wasserstein "
                        f"(got {config.loss!r})")
    for key in ("lambda_cls", "lambda_rec", "lambda_id"):
      number(config, f"stargan.{key}")
    number(config, "gp_weight", default=10.0)
  generator, discriminator = build_models(config, _image_shape(config))
  _check_shapes(generator, discriminator, _image_shape(config), fam == "stargan")


def _check_photo_config(config: ml_collections.ConfigDict) -> None:
  """The real-photo recipes' extra rules: the right family for the set, no ground-truth metrics."""
  want = "stargan" if config.dataset == photo.CELEBA else "cyclegan"
  if config.model != want:
    raise ConfigError(f"config.dataset={config.dataset!r} is a {want} set (unpaired A/B domains for "
                      f"CycleGAN, attribute labels for StarGAN); set --config.model={want} or pick "
                      f"another dataset")
  if config.get("multi_dataset", False):
    raise ConfigError(f"multi-dataset mode needs a second labelled dataset; {config.dataset} has "
                      f"no partner in tfds (the paper's RaFD is not public): set "
                      f"--config.multi_dataset=False")
  if config.get("eval_every", 0):
    raise ConfigError(f"config.eval_every={config.eval_every}: real photos have no ground-truth "
                      f"translation to measure against (only the MNIST recipes do); set "
                      f"--config.eval_every=0")
  if not config.image_size:
    raise ConfigError(f"config.image_size must be set for {config.dataset} (e.g. 128 or 256)")
  if config.model == "cyclegan":
    photo.cyclegan_load_size(config.image_size, config.data.get("load_size", 0))


def step_options(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """``n_critic`` of the trainer's batch stacking (StarGAN: ``config.n_critic``; CycleGAN: 1)."""
  return {"n_critic": int(config.get("n_critic", 1)) if config.model == "stargan" else 1}


# ---------------------------------------------------------------------------------------
# Data, state, step

def _load(config, name: str, split: str) -> tuple[np.ndarray, np.ndarray]:
  return domains.load_gray(name, split, config.data.data_dir or None, config.data.manual_dir or None,
                           config.image_size or None)


def _photos(config, split: str):
  """A real-photo set of ``config`` (:mod:`jaxgan.data.photo`)."""
  dirs = dict(data_dir=config.data.data_dir or None, manual_dir=config.data.manual_dir or None)
  if config.model == "cyclegan":
    return photo.cycle_gan(config.dataset, config.image_size, split,
                           load_size=config.data.get("load_size", 0), **dirs)
  return photo.celeb_a(config.image_size, stargan_datasets(config)[0][1].names, split, **dirs)


def for_config(config: ml_collections.ConfigDict):
  """The training domains of ``config`` (a :class:`~jaxgan.data.domains.CycleGANDomains` or
  :class:`~jaxgan.data.domains.StarGANDomains`; for real photos a
  :class:`~jaxgan.data.photo.UnpairedPhotos` or :class:`~jaxgan.data.photo.AttributePhotos`)."""
  if photo.is_photo(config.dataset):
    return _photos(config, "train")
  if config.model == "cyclegan":
    cyc = config.cyclegan
    return domains.CycleGANDomains(_load(config, config.dataset, "train")[0], cyc.domain_a,
                                   cyc.domain_b, name=config.dataset)
  specs = stargan_datasets(config)
  return domains.StarGANDomains([(_load(config, n, "train")[0], spec) for n, spec in specs],
                                names=[n for n, _ in specs],
                                multi_dataset=bool(config.get("multi_dataset", False)))


def build_optimizers(config: ml_collections.ConfigDict):
  """``(g_tx, d_tx)``: Adam(b1, b2) at the constant rate, then linearly to 0 over the last
  ``decay_steps`` iterations (:func:`jaxgan.translation.adam_linear_decay`); StarGAN's critic
  counts ``n_critic`` updates per iteration."""
  per_d = step_options(config)["n_critic"]
  decay = int(config.get("decay_steps", 0))
  g_lr = config.get("g_learning_rate", 0.0) or config.learning_rate
  d_lr = config.get("d_learning_rate", 0.0) or config.learning_rate
  return (tr.adam_linear_decay(g_lr, config.num_steps, decay, b1=config.b1, b2=config.b2),
          tr.adam_linear_decay(d_lr, config.num_steps * per_d, decay * per_d, b1=config.b1, b2=config.b2))


def build_state(config: ml_collections.ConfigDict, image_shape) -> Any:
  """A fresh :class:`~jaxgan.translation.CycleGANState` / :class:`~jaxgan.translation.StarGANState`."""
  generator, discriminator = build_models(config, image_shape)
  g_tx, d_tx = build_optimizers(config)
  key = jax.random.PRNGKey(config.seed)
  if config.model == "cyclegan":
    return tr.create_cyclegan_state(generator, discriminator, g_tx, d_tx, key, image_shape,
                                    pool_size=int(config.cyclegan.get("pool_size", 50)))
  return tr.create_stargan_state(generator, discriminator, g_tx, d_tx, key, image_shape,
                                 label_sizes=label_sizes(config))


def step_body(config: ml_collections.ConfigDict) -> Callable:
  """The un-jitted iteration ``body(state, batch, axis_name=None) -> (state, metrics)``.

  One object per set of options (cached), so runs of the same recipe in one
  process (a resumed run, tests) reuse the compiled step.
  """
  if config.model == "cyclegan":
    cyc = config.cyclegan
    return _step_body("cyclegan", (("gan_loss", config.loss), ("lambda_cycle", float(cyc.lambda_cycle)),
                                   ("lambda_identity", float(cyc.lambda_identity))))
  star, specs = config.stargan, stargan_datasets(config)
  sizes = label_sizes(config)
  cls_loss = specs[0][1].loss if sizes is None else tuple(spec.loss for _, spec in specs)
  return _step_body("stargan", (("n_critic", int(config.n_critic)), ("lambda_cls", float(star.lambda_cls)),
                                ("lambda_gp", float(config.gp_weight)),
                                ("lambda_rec", float(star.lambda_rec)),
                                ("lambda_id", float(star.get("lambda_id", 0.0))), ("cls_loss", cls_loss),
                                ("label_sizes", sizes)))


@functools.lru_cache(maxsize=16)
def _step_body(family: str, options: tuple) -> Callable:
  make = tr.make_cyclegan_step if family == "cyclegan" else tr.make_stargan_step
  return make(jit=False, **dict(options))


# Network fields added after checkpoints were written: recorded only away from their default, so
# that those checkpoints (which did not record them) still restore.
_LATER_FIELDS = {"label_norm": False}


def model_meta(config: ml_collections.ConfigDict, image_shape) -> dict:
  """What a checkpoint must agree on: the networks (as built) and the domains."""
  generator, discriminator = build_models(config, image_shape)
  fields = lambda m: {f: getattr(m, f) for f in m.__dataclass_fields__ if f not in ("parent", "name")
                      and not (f in _LATER_FIELDS and getattr(m, f) == _LATER_FIELDS[f])}
  if config.model == "cyclegan":
    domains_meta = [config.cyclegan.domain_a, config.cyclegan.domain_b]
  else:
    domains_meta = [[n, list(spec.names), spec.kind] for n, spec in stargan_datasets(config)]
  return {"model": config.model, "dataset": config.dataset,
          "image_shape": [int(s) for s in image_shape],
          "generator": jsonable(fields(generator)), "discriminator": jsonable(fields(discriminator)),
          "domains": jsonable(domains_meta)}


# ---------------------------------------------------------------------------------------
# Translating test images

@functools.lru_cache(maxsize=8)
def _test_split(name: str, data_dir: str, manual_dir: str, image_size: int):
  return domains.load_gray(name, "test", data_dir or None, manual_dir or None, image_size or None)


@functools.lru_cache(maxsize=4)
def _photo_test(model: str, name: str, side: int, attributes: tuple, data_dir: str, manual_dir: str):
  dirs = dict(data_dir=data_dir or None, manual_dir=manual_dir or None)
  if model == "cyclegan":
    data = photo.cycle_gan(name, side, "test", **dirs)
    return photo.to_float(data.images_a[:GRID_ROWS * 4]), photo.to_float(data.images_b[:GRID_ROWS * 4])
  data = photo.celeb_a(side, attributes, "test", **dirs)
  return photo.to_float(data.images[:GRID_ROWS * 4]), data.labels[:GRID_ROWS * 4]


def held_out_photos(config) -> tuple[np.ndarray, np.ndarray]:
  """The first test photos of a real set (float, [-1, 1]): ``(testA, testB)`` for CycleGAN,
  ``(images, attribute labels)`` for CelebA (cached)."""
  attributes = () if config.model == "cyclegan" else stargan_datasets(config)[0][1].names
  return _photo_test(config.model, config.dataset, config.image_size, tuple(attributes),
                     config.data.data_dir, config.data.manual_dir)


def held_out(config, name: str) -> tuple[np.ndarray, np.ndarray]:
  """``(gray images, classes)`` of ``name``'s test split at the run's image size (cached)."""
  return _test_split(name, config.data.data_dir, config.data.manual_dir, config.image_size)


def cyclegan_translate(state, x: np.ndarray, direction: str) -> np.ndarray:
  """``G(x)`` (``"ab"``) or ``F(x)`` (``"ba"``) in jitted batches."""
  return batched(lambda v: tr.translate_cyclegan(state, v, direction), x, batch_size=250)


def stargan_translate(state, x: np.ndarray, c: np.ndarray) -> np.ndarray:
  """``G(x, c)`` (``c`` with the mask appended in multi-dataset mode) in jitted batches."""
  return batched(lambda v, w: tr.translate_stargan(state, v, w), x, c, batch_size=250)


def _condition(labels: np.ndarray, d: int, sizes) -> np.ndarray:
  """The generator's condition: the labels of dataset ``d`` (joint label + mask in multi-dataset mode)."""
  if sizes is None:
    return labels
  return np.concatenate(domains.joint_labels(labels, d, sizes), axis=-1)


def figure_targets(spec: domains.DomainSpec, source: np.ndarray) -> list[np.ndarray]:
  """The columns of StarGAN's figure for source labels ``source`` ``[N, K]``: one target label per
  domain. Single-label: each domain in turn. Attributes (the paper's Fig. 4): each colour set in
  turn (the other colours off), then each other attribute flipped."""
  if spec.kind == "single":
    return [np.tile(np.eye(spec.size, dtype=np.float32)[i], (len(source), 1)) for i in range(spec.size)]
  out = []
  colours = spec.exclusive
  for i in range(spec.size):
    t = np.array(source, np.float32, copy=True)
    if i in colours:
      t[:, colours] = 0.0
      t[:, i] = 1.0
    else:
      t[:, i] = 1.0 - t[:, i]
    out.append(t)
  return out


def figure_target_names(spec: domains.DomainSpec) -> list[str]:
  """Names of :func:`figure_targets`' columns: the domain, or ``"<attribute> flipped"``."""
  if spec.kind == "single":
    return list(spec.names)
  return [n if i in spec.exclusive else f"{n} flipped" for i, n in enumerate(spec.names)]


def stargan_figure(state, config, rows: int = GRID_ROWS) -> np.ndarray:
  """``[rows, 1 + T, H, W, 3]``: each row an input test image (a random source domain of its
  dataset; in multi-dataset mode the rows alternate datasets) followed by its translation to each
  target of every dataset (:func:`figure_targets`)."""
  specs, sizes = stargan_datasets(config), label_sizes(config)
  if photo.is_photo(config.dataset):  # real photos with their own labels
    x, source = held_out_photos(config)
    x, source = x[np.arange(rows) % len(x)], source[np.arange(rows) % len(x)]
    targets = figure_targets(specs[0][1], source)
    ys = stargan_translate(state, np.repeat(x, len(targets), 0),
                           np.stack(targets, axis=1).reshape(-1, source.shape[1]))
    return np.concatenate([x[:, None], ys.reshape(rows, len(targets), *ys.shape[1:])], axis=1)
  rng = np.random.default_rng([config.seed, EVAL_SEED, 1])
  inputs, xs, cs = [None] * rows, [], []
  for d, (name, spec) in enumerate(specs):
    which = np.arange(d, rows, len(specs))   # this dataset's rows
    gray = held_out(config, name)[0][:len(which)]
    source = spec.sample(rng, len(which))
    x = spec.apply(gray, source)
    conds = []
    for e, (_, other) in enumerate(specs):
      base = source if e == d else np.repeat(other.sample(np.random.default_rng(e), 1), len(which), 0)
      conds += [_condition(t, e, sizes) for t in figure_targets(other, base)]
    for j, r in enumerate(which):
      inputs[r] = x[j]
      xs.append(np.repeat(x[j:j + 1], len(conds), 0))
      cs.append(np.stack([c[j] for c in conds]))
  order = [r for d in range(len(specs)) for r in range(d, rows, len(specs))]
  ys = stargan_translate(state, np.concatenate(xs), np.concatenate(cs))
  ys = ys.reshape(rows, -1, *ys.shape[1:])                  # in the order of ``order``
  out = np.empty((rows, 1 + ys.shape[1], *ys.shape[2:]), np.float32)
  for k, r in enumerate(order):
    out[r, 0], out[r, 1:] = inputs[r], ys[k]
  return out


def cyclegan_figure(state, config, rows: int = GRID_ROWS) -> np.ndarray:
  """``[rows, 6, H, W, 3]``: ``a, G(a), F(G(a))`` then ``b, F(b), G(F(b))`` for held-out test images
  (A from the first ``rows`` test digits, B from the next)."""
  if photo.is_photo(config.dataset):  # real photos: the first test images of each domain
    test_a, test_b = held_out_photos(config)
    a, b = test_a[np.arange(rows) % len(test_a)], test_b[np.arange(rows) % len(test_b)]
  else:
    gray = held_out(config, config.dataset)[0]
    a = domains.transform(gray[np.arange(rows) % len(gray)], config.cyclegan.domain_a)
    b = domains.transform(gray[(np.arange(rows) + rows) % len(gray)], config.cyclegan.domain_b)
  fake_b, fake_a = cyclegan_translate(state, a, "ab"), cyclegan_translate(state, b, "ba")
  cols = [a, fake_b, cyclegan_translate(state, fake_b, "ba"),
          b, fake_a, cyclegan_translate(state, fake_a, "ab")]
  return np.stack(cols, axis=1)


def figure(state, config, rows: int = GRID_ROWS) -> np.ndarray:
  """The family's figure ``[rows, columns, H, W, 3]`` (images in [-1, 1])."""
  return (cyclegan_figure if config.model == "cyclegan" else stargan_figure)(state, config, rows)


def figure_grid(images: np.ndarray) -> np.ndarray:
  """Tiles a figure ``[rows, cols, H, W, C]`` row by row into one uint8 grid."""
  rows, cols = images.shape[:2]
  return viz.make_grid(images.reshape(rows * cols, *images.shape[2:]), cols)


def figure_caption(config) -> str:
  if config.model == "cyclegan":
    a, b = config.cyclegan.domain_a, config.cyclegan.domain_b
    if photo.is_photo(config.dataset):
      a, b = (f"{config.dataset} {d}" for d in ("A", "B"))
    return f"each row: {a} a, G(a), F(G(a)) | {b} b, F(b), G(F(b))"
  cols = [f"{n}:{t}" for n, spec in stargan_datasets(config) for t in figure_target_names(spec)]
  return f"each row: input, then G(x, c) for c = {', '.join(cols)}"


# ---------------------------------------------------------------------------------------
# Measurement against the ground truth

class Meter:
  """The ground-truth measurements of a translation run on ``num`` held-out test images per dataset.

  ``train_gray``: ``{dataset: gray train images}`` for the attribute classifiers
  (trained once, or read from ``cache_dir``); the content classifiers are the
  committed ones (:func:`jaxgan.metrics.load_classifier`). Source and target
  labels are drawn once (a fixed seed), so successive calls differ only by
  the generator.
  """

  def __init__(self, config, train_gray: dict[str, np.ndarray], num: int = 1000,
               cache_dir: str | None = None, classifier_steps: int = 400):
    from jaxgan.metrics import WeightsError, load_classifier
    from jaxgan.metrics import translation as mt
    self.config, self.num = config, int(num)
    if config.model == "cyclegan":
      self.sets = [(config.dataset, domains.DomainSpec((config.cyclegan.domain_a,
                                                        config.cyclegan.domain_b)))]
    else:
      self.sets = stargan_datasets(config)
    self.sizes = None if config.model == "cyclegan" else label_sizes(config)
    self.attribute, self.content, self.test = {}, {}, {}
    for name, spec in self.sets:
      gray, classes = held_out(config, name)
      self.test[name] = (gray[:self.num], classes[:self.num])
      self.attribute[name] = mt.train_attribute_classifier(
          train_gray[name], spec, steps=classifier_steps, test_gray=gray, cache_dir=cache_dir, name=name)
      try:
        self.content[name] = load_classifier(name)
      except WeightsError as e:
        raise ConfigError(f"{e} (or set --config.eval_every=0)") from None

  def classifier_lines(self) -> list[str]:
    return [f"{name}: attribute classifier {self.attribute[name].test_accuracy:.4f} on real "
            f"transformed test images, content classifier "
            f"{self.content[name].manifest.get('test_accuracy', float('nan')):.4f}"
            for name, _ in self.sets]

  def __call__(self, state) -> dict[str, float]:
    return self._cyclegan(state) if self.config.model == "cyclegan" else self._stargan(state)

  def _scores(self, name, spec, fake, truth, target, classes) -> dict[str, float]:
    """MAE against the truth, attribute accuracy, content accuracy, ``content_truth_acc``: the
    content classifier's accuracy on the true translations of the same images, the ceiling of
    ``content_acc`` (below 1 where the classifier itself errs, e.g. ~0.92 on Fashion-MNIST), and
    ``content_agreement``: the share of images the classifier puts in the same class as their true
    translation (1 for a perfect translation whatever the classifier's own errors)."""
    from jaxgan.metrics import translation as mt
    predict = lambda images: mt.class_predictions(self.content[name], mt.content_gray(images, spec, target))
    on_fake, on_truth, classes = predict(fake), predict(truth), np.asarray(classes)
    return {"mae": mt.mean_abs_error(fake, truth),
            "attr_acc": self.attribute[name].accuracy(fake, target),
            "content_acc": float(np.mean(on_fake == classes)),
            "content_truth_acc": float(np.mean(on_truth == classes)),
            "content_agreement": float(np.mean(on_fake == on_truth))}

  def _cyclegan(self, state) -> dict[str, float]:
    from jaxgan.metrics import translation as mt
    name, spec = self.sets[0]
    gray, classes = self.test[name]
    a, b = domains.transform(gray, spec.names[0]), domains.transform(gray, spec.names[1])
    fake_b, fake_a = cyclegan_translate(state, a, "ab"), cyclegan_translate(state, b, "ba")
    eye = np.eye(2, dtype=np.float32)
    ab = self._scores(name, spec, fake_b, b, np.tile(eye[1], (len(a), 1)), classes)
    ba = self._scores(name, spec, fake_a, a, np.tile(eye[0], (len(a), 1)), classes)
    out = {f"{k}_ab": v for k, v in ab.items()} | {f"{k}_ba": v for k, v in ba.items()}
    out |= {k: (ab[k] + ba[k]) / 2 for k in ab}
    out["cycle_a"] = mt.mean_abs_error(cyclegan_translate(state, fake_b, "ba"), a)
    out["cycle_b"] = mt.mean_abs_error(cyclegan_translate(state, fake_a, "ab"), b)
    out["identity_mae"] = mt.mean_abs_error(a, b)
    return out

  def by_target(self, state, translate: Callable | None = None) -> list[dict]:
    """StarGAN's measurements split by the kind of translation, one row per dataset and target:
    ``"own domain"`` (the source label itself: the identity is the truth) and each column of the
    figure (:func:`figure_targets`: each colour set, each other attribute flipped; or each
    domain). The sources are the evaluation's (:meth:`__call__`). ``translate(x, c)`` replaces the
    generator (default ``G(x, c)`` of ``state``), e.g. to measure a known map."""
    if self.config.model == "cyclegan":
      raise ValueError("by_target splits StarGAN's targets; CycleGAN has one per direction")
    translate = translate or (lambda x, c: stargan_translate(state, x, c))
    rows = []
    for d, (name, spec) in enumerate(self.sets):
      gray, classes = self.test[name]
      source = spec.sample(np.random.default_rng([self.config.seed, EVAL_SEED, d]), len(gray))
      x = spec.apply(gray, source)
      for label, target in [("own domain", source)] + list(zip(figure_target_names(spec),
                                                               figure_targets(spec, source))):
        fake = np.asarray(translate(x, _condition(target, d, self.sizes)))
        scores = self._scores(name, spec, fake, spec.apply(gray, target), target, classes)
        rows.append({"dataset": name, "target": label, **scores})
    return rows

  def _stargan(self, state) -> dict[str, float]:
    from jaxgan.metrics import translation as mt
    out = {}
    for d, (name, spec) in enumerate(self.sets):
      gray, classes = self.test[name]
      rng = np.random.default_rng([self.config.seed, EVAL_SEED, d])
      source, target = spec.sample(rng, len(gray)), spec.sample(rng, len(gray))
      x, truth = spec.apply(gray, source), spec.apply(gray, target)
      fake = stargan_translate(state, x, _condition(target, d, self.sizes))
      rec = stargan_translate(state, fake, _condition(source, d, self.sizes))
      scores = self._scores(name, spec, fake, truth, target, classes)
      scores["rec_l1"] = mt.mean_abs_error(rec, x)
      scores["identity_mae"] = mt.mean_abs_error(x, truth)
      suffix = "" if d == 0 else f"_{name}"
      out |= {k + suffix: v for k, v in scores.items()}
    return out


def summary_lines(config, m: dict[str, float], num: int) -> list[str]:
  """The final summary's lines for the measurements ``m``."""
  if config.model == "cyclegan":
    return [f"translation  MAE vs truth A->B {m['mae_ab']:.4f}  B->A {m['mae_ba']:.4f} (no translation: "
            f"{m['identity_mae']:.4f})  attribute acc {m['attr_acc_ab']:.4f} / {m['attr_acc_ba']:.4f}  "
            f"content acc {m['content_acc_ab']:.4f} / {m['content_acc_ba']:.4f} (true translations: "
            f"{m['content_truth_acc_ab']:.4f} / {m['content_truth_acc_ba']:.4f}; same class as the "
            f"truth: {m['content_agreement_ab']:.4f} / {m['content_agreement_ba']:.4f})  cycle L1 "
            f"{m['cycle_a']:.4f} / {m['cycle_b']:.4f}  ({num} test images)"]
  lines = []
  for d, (name, _) in enumerate(stargan_datasets(config)):
    s = "" if d == 0 else f"_{name}"
    lines.append(f"translation  {name}: MAE vs truth {m['mae' + s]:.4f} (no translation: "
                 f"{m['identity_mae' + s]:.4f})  attribute acc {m['attr_acc' + s]:.4f}  content acc "
                 f"{m['content_acc' + s]:.4f} (true translations: {m['content_truth_acc' + s]:.4f}; same "
                 f"class as the truth: {m['content_agreement' + s]:.4f})  "
                 f"reconstruction L1 {m['rec_l1' + s]:.4f}  "
                 f"({num} test images, random source / target labels)")
  return lines


# ---------------------------------------------------------------------------------------
# Hooks

class TranslationGrid(Hook):
  """``samples/step_XXXXXXX.png`` every ``sample_every`` steps and ``final.png``: the family's
  figure (:func:`figure`) on fixed held-out test images."""

  def __init__(self, config: ml_collections.ConfigDict):
    self.config = config
    self.every = int(config.sample_every)

  def _grid(self, state, name: str) -> Picture:
    return Picture(f"samples/{name}", figure_grid(figure(state, self.config)), scale=3)

  def __call__(self, state, step, history):
    return {"samples": self._grid(state, f"step_{step:07d}.png")}

  def end(self, state, step, history):
    return [self._grid(state, "final.png"),
            f"samples      samples/  (final: samples/final.png; {figure_caption(self.config)})"]


class TranslationEvaluate(Hook):
  """The ground-truth measurements (:class:`Meter`) every ``eval_every`` steps on ``eval_samples``
  test images per dataset: ``mae``, ``attr_acc``, ``content_acc``, and ``cycle_a`` / ``cycle_b``
  (CycleGAN) or ``rec_l1`` (StarGAN)."""

  def __init__(self, config: ml_collections.ConfigDict, data, log: Callable[[str], None] | None = None):
    self.config = config
    self.every = int(config.eval_every)
    if config.model == "cyclegan":
      train = {config.dataset: np.concatenate([data.gray_a, data.gray_b])}
    else:
      train = {name: g for name, (g, _) in zip(data.name.split("+"), data.datasets)}
    from jaxgan.metrics import default_cache_dir
    self.meter = Meter(config, train, int(config.eval_samples),
                       cache_dir=config.get("eval_cache_dir", "") or default_cache_dir(),
                       classifier_steps=int(config.get("eval_classifier_steps", 400)))
    self.last: dict[str, float] = {}

  def __call__(self, state, step, history):
    self.last = self.meter(state)
    return dict(self.last)

  def end(self, state, step, history):
    if not self.last:
      return []
    return summary_lines(self.config, self.last, self.meter.num) + [
        "             " + line for line in self.meter.classifier_lines()]


class _Translation(Family):
  """What CycleGAN and StarGAN share: the module functions above, by ``config.model``."""
  honours: frozenset[str] = frozenset()   # its own states, steps and domain data

  def check_config(self, config: ml_collections.ConfigDict) -> None:
    check_config(config)

  def data(self, config: ml_collections.ConfigDict, process_index: int = 0, process_count: int = 1):
    return for_config(config)

  def build_state(self, config: ml_collections.ConfigDict, image_shape, num_classes: int = 0):
    return build_state(config, image_shape)

  def model_meta(self, config: ml_collections.ConfigDict, image_shape) -> dict:
    return model_meta(config, image_shape)

  def step_options(self, config: ml_collections.ConfigDict) -> dict[str, Any]:
    return step_options(config)

  def step_body(self, config: ml_collections.ConfigDict) -> Callable:
    return step_body(config)

  def hooks(self, config: ml_collections.ConfigDict, data: Any,
            log: Callable[[str], None] | None = None) -> list[Hook]:
    """:class:`TranslationGrid`, and :class:`TranslationEvaluate` when ``eval_every``."""
    hooks: list[Hook] = [TranslationGrid(config)]
    if config.get("eval_every", 0):
      hooks.append(TranslationEvaluate(config, data, log))
    return hooks

  def draw(self, state, config: ml_collections.ConfigDict, num: int, seed: int = 0,
           batch_size: int = 500, label: int | None = None, truncation: float | None = None,
           interpolate: int = 0) -> Drawing:
    """The figure rows of ``num`` held-out test images: uint8 ``[num, columns, H, W, 3]``."""
    given = [(f, v) for f, v in (("--label", label), ("--truncation", truncation),
                                 ("--interpolate", interpolate or None)) if v is not None]
    if given:
      from jaxgan.generation import SampleError
      raise SampleError(f"{' '.join(f'{f} {v:g}' for f, v in given)}: a translation run "
                        f"translates test images (it has no latent noise or class to draw); drop "
                        f"{' and '.join(f for f, _ in given)}")
    rows = figure(state, config, num)
    caption = figure_caption(config)
    first = rows[:GRID_ROWS]
    return Drawing({"images": viz.to_uint8(rows), "caption": np.asarray(caption)},
                   first.reshape(-1, *first.shape[2:]),
                   f"the translations of {num} test images (key 'images', uint8 "
                   f"[num, columns, H, W, 3]; {caption})", columns=rows.shape[1])


class CycleGAN(_Translation):
  name = "cyclegan"
  models = ("cyclegan",)


class StarGAN(_Translation):
  name = "stargan"
  models = ("stargan",)
