"""The text-to-image family: StackGAN (Zhang et al., 2017) on captioned images.

A run reads captioned images (:mod:`jaxgan.data.captions`: MNIST / Fashion-MNIST drawn in colour
with known attributes and templated captions, or a user's folder with a ``captions.jsonl``),
embeds every distinct caption once with the frozen sentence encoder (:mod:`jaxgan.text`,
all-MiniLM-L6-v2, cached), and trains both StackGAN stages in one run (:mod:`jaxgan.stackgan`):
Stage I for ``config.stackgan.stage1_steps`` iterations, then Stage II with Stage I frozen.
Batches are ``{"image", "embedding"}``. The sample grid shows fixed captions beside their rows,
Stage I (enlarged) and Stage II side by side; on the captioned digits and garments the
evaluation reads generated images back (:class:`CaptionEvaluate`).
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxgan import stackgan as sg
from jaxgan.errors import ConfigError
from jaxgan.families.base import Drawing, Family, count, jsonable, number
from jaxgan.generation import normal_draw
from jaxgan.hooks import Hook, Picture
from jaxgan.models.stackgan import Stage1Generator, Stage2Generator, StackDiscriminator

FOLDER = "caption_folder"              # config.dataset of a user's captioned folder
CAPTIONED = ("mnist", "fashion_mnist")  # the captioned digits and garments
GRID_CAPTIONS = 8                      # captions in the sample grid
GRID_SAMPLES = 6                       # samples per caption in the grid
FIXED_NOISE = 2**31 - 1                # fold_in tag of the grid's fixed noise


D_CONDITIONS = ("text", "mu")   # what the critics' conditional heads read (stackgan.d_condition)
D_HEADS = ("concat", "projection")   # how they join it with the image (stackgan.d_head)


def stage2_trained(config: ml_collections.ConfigDict, step) -> bool:
  """Whether Stage II has trained by ``step`` (it starts after ``stackgan.stage1_steps``)."""
  return int(step) > int(config.stackgan.stage1_steps)


def d_condition(config: ml_collections.ConfigDict) -> str:
  """``config.stackgan.d_condition``; runs saved before the key existed read ``mu``."""
  return config.stackgan.get("d_condition", "mu")


def build_networks(config: ml_collections.ConfigDict, image_shape) -> tuple:
  """``(G_0, D_0, G, D)`` of ``config`` for images of ``image_shape`` (Stage II's size)."""
  st = config.stackgan
  channels = int(image_shape[-1])
  g, d = config.generator, config.discriminator
  # The critics' condition: the sentence embedding compressed by their own layer (the paper) or
  # the generator's conditioning-augmentation mean (the released PyTorch code; runs without the key).
  text_dim = int(st.condition_dim) if d_condition(config) == "text" else 0
  head = st.get("d_head", "concat")
  return (Stage1Generator(size=int(st.stage1_size), channels=channels, width=int(g.width),
                          latent_dim=int(config.latent_dim), condition_dim=int(st.condition_dim),
                          ca_activation=st.get("ca_activation", "relu"),
                          ca_max_sigma=float(st.get("ca_max_sigma", 0.0))),
          StackDiscriminator(width=int(d.width), text_dim=text_dim, head=head,
                             unconditional=d.get("stage1_unconditional", False)),
          Stage2Generator(size=int(image_shape[0]), in_size=int(st.stage1_size), channels=channels,
                          width=int(g.stage2_width), condition_dim=int(st.condition_dim),
                          residual_blocks=int(g.residual_blocks),
                          encoder_steps=int(g.get("stage2_encoder_steps", 2)),
                          ca_activation=st.get("ca_activation", "relu"),
                          ca_max_sigma=float(st.get("ca_max_sigma", 0.0))),
          StackDiscriminator(width=int(d.stage2_width), unconditional=True, text_dim=text_dim,
                             head=head))


@functools.lru_cache(maxsize=8)
def _body(stage: int, kl_weight: float, mode_seeking: float) -> Callable:
  return sg.make_stackgan_step(stage=stage, kl_weight=kl_weight, mode_seeking=mode_seeking,
                               jit=False)


class EmbeddedCaptions:
  """Captioned images whose batches carry the sentence embedding of one caption per image:
  ``{"image": [B, H, W, C], "embedding": [B, E]}`` (batch ``i`` a pure function of the seed)."""

  def __init__(self, data, table: np.ndarray):
    self.data, self.table = data, np.asarray(table, np.float32)
    self.example_shape = tuple(data.example_shape)
    self.num_classes = int(getattr(data, "num_classes", 0))
    self.name, self.split = data.name, data.split
    self.subset = getattr(data, "subset", "")

  def stream(self, batch_size: int, seed: int, start: int = 0):
    for batch in self.data.stream(batch_size, seed, start):
      yield {"image": batch["image"], "embedding": self.table[batch["caption"]]}


def load_captioned(config: ml_collections.ConfigDict, split: str = "train",
                   part: tuple[int, int] = (0, 1)):
  """The captioned split ``config`` names (:mod:`jaxgan.data.captions`)."""
  from jaxgan.data import captions
  if config.dataset == FOLDER:
    return captions.caption_folder(config.stackgan.folder, int(config.image_size),
                                   seed=int(config.seed))
  args = (config.dataset, split, int(config.image_size), config.data.data_dir or None,
          config.data.manual_dir or None, int(config.stackgan.caption_seed),
          int(config.stackgan.captions_per_image), tuple(part))
  return _test_split(*args) if split == "test" else captions.captioned(*args)


@functools.lru_cache(maxsize=2)
def _test_split(*args):
  """The captioned test split, rendered once for the sample grid, the meter and ``draw``
  (shared: its images are read-only)."""
  from jaxgan.data import captions
  data = captions.captioned(*args)
  data.images.setflags(write=False)
  return data


def text_encoder(config: ml_collections.ConfigDict):
  """The frozen sentence encoder of ``config`` (``config.stackgan.text_encoder``: a directory,
  or '' for the usual places, :func:`jaxgan.text.load_text_encoder`)."""
  from jaxgan import text
  return text.load_text_encoder(config.stackgan.get("text_encoder", "") or None)


def embed(config: ml_collections.ConfigDict, sentences) -> np.ndarray:
  """Sentence embeddings of ``sentences``, computed once per encoder and cached
  (``config.eval_cache_dir``, else the metrics' cache directory)."""
  from jaxgan import text
  from jaxgan.metrics import default_cache_dir
  cache = config.get("eval_cache_dir", "") or default_cache_dir()
  return text.embed_cached(text_encoder(config), list(sentences), cache)


def grid_captions(config: ml_collections.ConfigDict) -> list[str]:
  """The captions of the sample grid: ``config.stackgan.grid_captions``, else the first captions of
  the first test examples of distinct classes (held-out colour combinations among them)."""
  chosen = list(config.stackgan.get("grid_captions", ()) or ())
  if chosen:
    return chosen
  data = load_captioned(config, "test" if config.dataset != FOLDER else "train")
  picked, seen = [], set()
  for i in range(len(data.caption_ids)):
    key = int(data.labels[i]) if data.num_classes else i
    if key in seen:
      continue
    seen.add(key)
    picked.append(data.captions[int(data.caption_ids[i, 0])])
    if len(picked) == GRID_CAPTIONS:
      break
  return picked


def caption_rows(state: sg.StackGANState, embeddings: np.ndarray, per_caption: int,
                 key: jax.Array, stage2: bool = True) -> tuple[np.ndarray, ...]:
  """``(stage-I images enlarged to Stage II's size, stage-II images)``, ``per_caption`` of each
  caption in turn, from the noise of ``key``; Stage I's alone with ``stage2=False``."""
  emb = np.repeat(np.asarray(embeddings, np.float32), per_caption, axis=0)
  z = jax.random.normal(key, (len(emb), state.latent_dim))
  img1, img2 = _generate(state, z, jnp.asarray(emb), jax.random.fold_in(key, 1), stage2)
  big1 = _enlarge(state, np.asarray(img1))
  return (big1, np.asarray(img2)) if stage2 else (big1,)


def _enlarge(state: sg.StackGANState, images: np.ndarray) -> np.ndarray:
  """Stage-I images at Stage II's size (nearest neighbour), to show the two side by side."""
  k = state.stage2_size // state.stage1_size
  return np.repeat(np.repeat(images, k, axis=1), k, axis=2)


@functools.partial(jax.jit, static_argnames=("stage2", "sample_condition", "truncation"))
def _generate(state, z, emb, key, stage2=True, sample_condition=True, truncation=None):
  return state.generate(z, emb, key, stage2, sample_condition, truncation)


class CaptionGrid(Hook):
  """``samples/step_XXXXXXX.png``: each fixed caption beside its row, Stage I (enlarged) on the
  left and Stage II on the right, from fixed noise (Stage I alone until Stage II trains);
  ``final.png`` at the end."""

  def __init__(self, config: ml_collections.ConfigDict):
    self.every = int(config.sample_every)
    self.config = config
    self.captions = grid_captions(config)
    self.embeddings = embed(config, self.captions)

  def picture(self, state, stage2: bool = True) -> np.ndarray:
    from jaxgan import viz
    key = jax.random.fold_in(jnp.asarray(state.key), FIXED_NOISE)
    stages = caption_rows(state, self.embeddings, GRID_SAMPLES, key, stage2)
    rows = [np.concatenate([viz.make_grid(x[i * GRID_SAMPLES:(i + 1) * GRID_SAMPLES], GRID_SAMPLES)
                            for x in stages], axis=1) for i in range(len(self.captions))]
    return viz.captioned_rows(rows, self.captions, ("Stage I", "Stage II")[:len(stages)])

  def __call__(self, state, step, history):
    return {"samples": Picture(f"samples/step_{step:07d}.png",
                               self.picture(state, stage2_trained(self.config, step)))}

  def end(self, state, step, history):
    stage2 = stage2_trained(self.config, step)
    return [Picture("samples/final.png", self.picture(state, stage2)),
            f"samples      samples/  (each row: a caption, {'Stage I | Stage II' if stage2 else 'Stage I'}"
            f"; final: samples/final.png)"]


EVAL_NOISE = 2**31 - 2     # fold_in tag of the evaluation's noise
DIVERSITY_CAPTIONS = 10   # captions (one per class) whose spread of samples is measured
DIVERSITY_SAMPLES = 50    # samples per caption


def _mean_pairwise(features: np.ndarray) -> float:
  """The mean Euclidean distance between distinct rows of ``features``."""
  f = np.asarray(features, np.float64)
  sq = np.sum(f ** 2, axis=1)
  d = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * f @ f.T, 0.0))
  n = len(f)
  return float(d.sum() / (n * (n - 1))) if n > 1 else 0.0


class CaptionMeter:
  """Reads generated images back against their captions, on the test split's captions.

  For ``num`` test examples (half of them of held-out (class, colour) pairs, which training never
  shows), one caption each, the images of both stages are read by the committed grayscale
  classifier (on the foreground map, :func:`jaxgan.data.captions.to_gray`) for the class and by
  the pixel reader (:func:`jaxgan.data.captions.read_attributes`) for the colour and the second
  attribute. Reports, per stage (``stage1_`` / no prefix for Stage II) and per group
  (``seen`` / ``heldout``): each attribute's accuracy and ``caption_acc`` (all correct); the FID
  of each stage in the classifier's feature space of the foreground maps against the test
  images' (``fid_stage1`` at Stage I's size, enlarged by the classifier's input resize as Stage
  II's images are); and ``diversity`` (``stage1_diversity``): for one seen caption per class, the
  mean pairwise feature distance of its samples over that of the real test images with the same
  attributes (1 = as varied as the data; 0 = one image per caption), averaged over the classes.

  The images are drawn as users draw them, with the conditioning augmentation's noise
  (``c = mu + sigma * eps``); the ``mean_`` measures (``stage1_mean_caption_acc_seen``, ...) draw
  them with ``c = mu``, which tells how much of what is missed is the noise's doing. Called with
  ``stage2=False`` (Stage II not trained yet) it measures Stage I alone; with ``truncation`` = psi
  the latents and the noise come from the normal truncated to ``[-psi, psi]`` (what
  ``jaxgan.sample --truncation`` draws).
  """

  def __init__(self, config: ml_collections.ConfigDict, num: int | None = None):
    from jaxgan.metrics import load_classifier
    self.config = config
    self.data = load_captioned(config, "test")
    self.name = self.data.dataset
    self.classifier = load_classifier(self.name)
    self.table = embed(config, self.data.captions)
    num = int(num or config.stackgan.get("eval_samples", 1000))
    rng = np.random.default_rng([int(config.seed), 0xE7A1])
    held, seen = np.flatnonzero(self.data.heldout_mask), np.flatnonzero(~self.data.heldout_mask)
    k = min(num // 2, len(held))
    self.index = np.concatenate([rng.choice(seen, num - k, replace=False),
                                 rng.choice(held, k, replace=False)])
    self.heldout = self.data.heldout_mask[self.index]
    self.caption_ids = self.data.caption_ids[self.index, 0]
    self.real_features = self.classifier(_gray(self.name, self.real_images()))[0]
    # Diversity: the first seen example of each class, and the real images sharing its attributes.
    keys = ["colour"] + [a for a in self.data.attributes if a != "colour"]
    self.diversity_ids, self.real_spread = [], []
    for c in range(self.data.num_classes):
      first = seen[self.data.labels[seen] == c][0]
      same = np.ones(len(self.data.labels), bool) & (self.data.labels == c)
      for a in keys:
        same &= self.data.attributes[a] == self.data.attributes[a][first]
      same &= ~self.data.heldout_mask
      reals = self.data.images[np.flatnonzero(same)[:DIVERSITY_SAMPLES]].astype(np.float32) / 127.5 - 1
      self.diversity_ids.append(int(self.data.caption_ids[first, 0]))
      self.real_spread.append(_mean_pairwise(self.classifier(_gray(self.name, reals))[0]))

  def real_images(self) -> np.ndarray:
    """The test images whose captions the meter uses, in [-1, 1] (a perfect generator's output)."""
    return self.data.images[self.index].astype(np.float32) / 127.5 - 1.0

  def score(self, images: np.ndarray, prefix: str = "") -> tuple[dict[str, float], np.ndarray]:
    """``(accuracies, classifier features)`` of ``images`` drawn for the meter's captions (row
    ``i`` for caption ``i``): ``{prefix}{attribute}_acc_{group}`` and
    ``{prefix}caption_acc_{group}`` (all attributes right) for ``seen`` and ``heldout``."""
    from jaxgan.data import captions
    truth = {"class": self.data.labels[self.index],
             **{a: v[self.index] for a, v in self.data.attributes.items()}}
    feats, logits = self.classifier(_gray(self.name, images))
    read = {"class": np.argmax(logits, axis=1), **captions.read_attributes(self.name, images)}
    right = {a: read[a] == truth[a] for a in truth}
    every = np.all(np.stack(list(right.values())), axis=0)
    out = {}
    for group, mask in (("seen", ~self.heldout), ("heldout", self.heldout)):
      if mask.any():
        for a, r in right.items():
          out[f"{prefix}{a}_acc_{group}"] = float(r[mask].mean())
        out[f"{prefix}caption_acc_{group}"] = float(every[mask].mean())
    return out, feats

  def __call__(self, state, stage2: bool = True, truncation: float | None = None) -> dict[str, float]:
    from jaxgan.metrics import fid_from_features
    key = jax.random.fold_in(jnp.asarray(state.key), EVAL_NOISE)
    prefixes = ("stage1_", "")[:2 if stage2 else 1]
    out: dict[str, float] = {}
    emb = self.table[self.caption_ids]
    for prefix, images in zip(prefixes, _generate_all(state, emb, key, stage2,
                                                      truncation=truncation)):
      scores, feats = self.score(images, prefix)
      out.update(scores)
      out["fid_stage1" if prefix else "fid_stage2"] = float(
          fid_from_features(feats, self.real_features))
    for prefix, images in zip(prefixes, _generate_all(state, emb, key, stage2,
                                                      sample_condition=False)):
      out.update({k: v for k, v in self.score(images, prefix + "mean_")[0].items()
                  if "caption_acc" in k})
    per = np.repeat(np.asarray(self.diversity_ids), DIVERSITY_SAMPLES)
    for prefix, images in zip(prefixes, _generate_all(state, self.table[per],
                                                      jax.random.fold_in(key, 1), stage2,
                                                      truncation=truncation)):
      feats = self.classifier(_gray(self.name, images))[0]
      ratios = [_mean_pairwise(feats[i * DIVERSITY_SAMPLES:(i + 1) * DIVERSITY_SAMPLES]) / r
                for i, r in enumerate(self.real_spread) if r > 0]
      out[prefix + "diversity"] = float(np.mean(ratios))
    return out


def _gray(name: str, images: np.ndarray) -> np.ndarray:
  from jaxgan.data import captions
  return captions.to_gray(name, np.asarray(images))


def _generate_all(state, embeddings: np.ndarray, key: jax.Array, stage2: bool = True,
                  batch: int = 500, sample_condition: bool = True,
                  truncation: float | None = None) -> tuple[np.ndarray, ...]:
  """Both stages' images for ``embeddings`` (noise from ``key``), in batches; Stage I's alone
  with ``stage2=False``; ``sample_condition=False`` draws with ``c = mu``; ``truncation`` = psi
  draws ``z`` and the conditioning-augmentation noise from the normal truncated to ``[-psi, psi]``."""
  out: list[list[np.ndarray]] = [[] for _ in range(2 if stage2 else 1)]
  for start in range(0, len(embeddings), batch):
    emb = jnp.asarray(embeddings[start:start + batch], jnp.float32)
    k = jax.random.fold_in(key, start)
    z = normal_draw(k, (len(emb), state.latent_dim), truncation)
    images = _generate(state, z, emb, jax.random.fold_in(k, 1), stage2, sample_condition,
                       truncation)
    for part, x in zip(out, images):
      part.append(np.asarray(x))
  return tuple(np.concatenate(part) for part in out)


class CaptionEvaluate(Hook):
  """:class:`CaptionMeter` every ``config.eval_every`` steps; its summary line at the end."""

  def __init__(self, config: ml_collections.ConfigDict, log=None):
    self.every = int(config.eval_every)
    self.config = config
    self.meter = CaptionMeter(config)
    self.last: dict[str, float] = {}

  def __call__(self, state, step, history):
    """The meter's measures; Stage II's only once it has trained."""
    self.last = self.meter(state, stage2=stage2_trained(self.config, step))
    return dict(self.last)

  def end(self, state, step, history):
    m = self.last
    if not m:
      return []
    stage = "" if "fid_stage2" in m else "stage1_"
    fid = (f"FID Stage I {m['fid_stage1']:.2f} -> Stage II {m['fid_stage2']:.2f}" if not stage
           else f"FID Stage I {m['fid_stage1']:.2f}")
    line = (f"captions     all correct: seen {m[stage + 'caption_acc_seen']:.3f}  held-out "
            f"{m[stage + 'caption_acc_heldout']:.3f} (c = mu: {m[stage + 'mean_caption_acc_seen']:.3f} / "
            f"{m[stage + 'mean_caption_acc_heldout']:.3f}; Stage I: seen "
            f"{m['stage1_caption_acc_seen']:.3f})  {fid}  diversity {m[stage + 'diversity']:.2f} "
            f"({len(self.meter.index)} test captions)")
    return [line]


class StackGAN(Family):
  """Text-to-image: StackGAN's two stages on captioned images (:mod:`jaxgan.stackgan`)."""

  name = "stackgan"
  models = ("stackgan",)
  losses = ("nonsaturating",)   # the paper's binary cross-entropy
  honours = frozenset()
  takes_captions = True

  def check_config(self, config: ml_collections.ConfigDict) -> None:
    super().check_config(config)
    if config.dataset not in (*CAPTIONED, FOLDER):
      raise ConfigError(f"config.dataset={config.dataset!r}: StackGAN trains on captioned images; "
                        f"choose one of {[*CAPTIONED, FOLDER]} ({FOLDER!r} reads "
                        f"config.stackgan.folder/captions.jsonl)")
    if config.dataset == FOLDER and not config.stackgan.get("folder", ""):
      raise ConfigError(f"config.dataset={FOLDER!r} needs --config.stackgan.folder=DIR (a folder "
                        f"with captions.jsonl: one {{\"image\": path, \"captions\": [...]}} per line)")
    st = config.stackgan
    count(config, "stackgan.stage1_steps", 1)
    for key in ("stackgan.condition_dim", "stackgan.embedding_dim", "generator.width",
                "generator.stage2_width", "discriminator.width", "discriminator.stage2_width",
                "stackgan.captions_per_image", "latent_dim"):
      count(config, key, 1)
    count(config, "generator.residual_blocks", 0)
    if "stage2_encoder_steps" in config.generator:
      count(config, "generator.stage2_encoder_steps", 1)
    count(config, "stackgan.lr_decay_steps", 0)
    number(config, "stackgan.kl_weight", 0.0)
    number(config, "stackgan.ca_max_sigma", 0.0)
    number(config, "stackgan.mode_seeking", 0.0)
    if d_condition(config) not in D_CONDITIONS:
      raise ConfigError(f"config.stackgan.d_condition={st.d_condition!r}: the critics read the "
                        f"caption's embedding ('text', the paper) or the generator's conditioning "
                        f"mean ('mu', the released PyTorch code)")
    if st.get("stage2_noise", "own") not in sg.STAGE2_NOISE:
      raise ConfigError(f"config.stackgan.stage2_noise={st.stage2_noise!r}: Stage II's "
                        f"conditioning noise is a draw of its own ('own', the paper) or the one "
                        f"that made its Stage-I image ('stage1')")
    if st.get("d_head", "concat") not in D_HEADS:
      raise ConfigError(f"config.stackgan.d_head={st.d_head!r}: the critics join image and "
                        f"condition by 'concat' (the paper) or 'projection' (Miyato & Koyama)")
    s1, s2 = int(st.stage1_size), int(config.image_size)
    ok = s1 >= 8 and s1 % 4 == 0 and (s1 & (s1 - 1)) == 0 and s2 in (2 * s1, 4 * s1)
    if not ok:
      raise ConfigError(f"config.stackgan.stage1_size={s1}, config.image_size={s2}: Stage I makes a "
                        f"power-of-two size >= 8 and Stage II two or four times it (the paper: 64 and "
                        f"256; the CPU recipes: 16 and 32)")
    if int(st.stage1_steps) > int(config.num_steps):
      raise ConfigError(f"config.stackgan.stage1_steps={st.stage1_steps} is more than "
                        f"config.num_steps={config.num_steps}: Stage II would never train; set "
                        f"stage1_steps <= num_steps (num_steps = stage1_steps trains Stage I only)")
    if config.get("g_ema", 0.0) or config.get("d_ema", 0.0) or config.get("n_critic", 1) != 1:
      raise ConfigError("StackGAN trains one D and one G update per iteration without parameter "
                        "averages; set config.n_critic=1, config.g_ema=0 and config.d_ema=0")

  def example_shape(self, config: ml_collections.ConfigDict) -> tuple[int, ...]:
    side = int(config.image_size)
    return (side, side, 3)

  def check_penalties(self, config) -> None:
    if config.get("gp_weight", 0.0) or config.get("r1_weight", 0.0) or config.get("clip", 0.0):
      raise ConfigError("StackGAN's objective has no gradient penalty or clipping; set "
                        "config.gp_weight=0, config.r1_weight=0 and config.clip=0")

  # -- data ---------------------------------------------------------------------------------
  def data(self, config: ml_collections.ConfigDict, process_index: int = 0, process_count: int = 1):
    """The captioned train split, with the cached embedding of every distinct caption."""
    shard = process_count > 1 and config.data.get("process_split", "shard") == "shard"
    data = load_captioned(config, "train", (process_index, process_count) if shard else (0, 1))
    table = embed(config, data.captions)
    if table.shape[1] != int(config.stackgan.embedding_dim):
      raise ConfigError(f"the text encoder gives {table.shape[1]}-d embeddings but "
                        f"config.stackgan.embedding_dim={config.stackgan.embedding_dim}; set it to "
                        f"{table.shape[1]}")
    return EmbeddedCaptions(data, table)

  # -- state --------------------------------------------------------------------------------
  def build_state(self, config: ml_collections.ConfigDict, image_shape, num_classes: int = 0):
    g1, d1, g2, d2 = build_networks(config, image_shape)
    tx = lambda rate: sg.stackgan_optimizer(float(config.get(rate, 0.0) or config.learning_rate),
                                            int(config.stackgan.lr_decay_steps), config.b1, config.b2)
    try:
      return sg.create_stackgan_state(g1, d1, g2, d2, tx("g_learning_rate"), tx("d_learning_rate"),
                                      jax.random.PRNGKey(config.seed),
                                      int(config.stackgan.embedding_dim),
                                      config.stackgan.get("stage2_noise", "own"))
    except (TypeError, ValueError) as e:
      raise ConfigError(f"cannot build StackGAN from config.generator / config.discriminator / "
                        f"config.stackgan: {e}") from None

  def model_meta(self, config: ml_collections.ConfigDict, image_shape) -> dict:
    st = config.stackgan
    return {"model": config.model, "dataset": config.dataset,
            "image_shape": [int(s) for s in image_shape], "latent_dim": int(config.latent_dim),
            "generator": jsonable(config.generator.to_dict()),
            "discriminator": jsonable(config.discriminator.to_dict()),
            "stackgan": {"stage1_size": int(st.stage1_size), "condition_dim": int(st.condition_dim),
                         "embedding_dim": int(st.embedding_dim),
                         "lr_decay_steps": int(st.lr_decay_steps)}}

  # -- step ---------------------------------------------------------------------------------
  def step_options(self, config: ml_collections.ConfigDict) -> dict[str, Any]:
    return {"n_critic": 1}

  def phases(self, config: ml_collections.ConfigDict) -> tuple[int, ...]:
    """Stage II starts at ``config.stackgan.stage1_steps`` (none when Stage I is the whole run)."""
    at = int(config.stackgan.stage1_steps)
    return (at,) if at < int(config.num_steps) else ()

  def phase_body(self, config: ml_collections.ConfigDict, phase: int):
    """Stage I's step (phase 0), then Stage II's (phase 1)."""
    return _body(1 + phase, float(config.stackgan.kl_weight),
                 float(config.stackgan.get("mode_seeking", 0.0)))

  def step_body(self, config: ml_collections.ConfigDict):
    """Stage I's step (the first phase)."""
    return self.phase_body(config, 0)

  # -- outputs ------------------------------------------------------------------------------
  def hooks(self, config: ml_collections.ConfigDict, data, log=None) -> list[Hook]:
    hooks: list[Hook] = [CaptionGrid(config)]
    if config.get("eval_every", 0) and config.dataset in CAPTIONED:
      hooks.append(CaptionEvaluate(config, log))
    return hooks

  def draw(self, state, config: ml_collections.ConfigDict, num: int, seed: int = 0,
           batch_size: int = 500, label: int | None = None, truncation: float | None = None,
           interpolate: int = 0, caption: str | None = None) -> Drawing:
    """``num`` images of ``caption`` (Stage II under ``images``, Stage I under ``stage1_images``);
    without a caption, ``num`` images of the test split's captions in turn."""
    from jaxgan import viz
    from jaxgan.generation import SampleError
    if label is not None or interpolate:
      raise SampleError("StackGAN samples from captions: use --caption TEXT (not --label or "
                        "--interpolate)")
    if caption is not None:
      captions = [caption]
    else:
      data = load_captioned(config, "test" if config.dataset != FOLDER else "train")
      captions = [data.captions[int(data.caption_ids[i % len(data.caption_ids), 0])]
                  for i in range(min(num, 64))]
    table = text_encoder(config)(captions)
    ids = np.arange(num) % len(captions)
    img1, img2 = _generate_all(state, table[ids], jax.random.PRNGKey(seed), batch=batch_size,
                               truncation=None if truncation is None else float(truncation))
    big1 = _enlarge(state, img1)
    shown = min(num, 32)
    pairs = np.stack([big1[:shown], img2[:shown]], axis=1).reshape(-1, *img2.shape[1:])
    arrays = {"images": viz.to_uint8(img2), "stage1_images": viz.to_uint8(img1),
              "captions": np.asarray([captions[i] for i in ids])}
    what = f"caption {caption!r}" if caption is not None else f"{len(captions)} test captions in turn"
    return Drawing(arrays, pairs, f"{num} images of {what} (Stage II {img2.shape[1:]} under "
                   f"'images', Stage I under 'stage1_images'; the picture pairs Stage I | Stage II)",
                   columns=8)
