"""Config defaults shared by the recipes in ``configs/``, and their validation.

Every recipe is ``get_config() -> ml_collections.ConfigDict`` built on
:func:`base_config`; any key can be overridden on the command line
(``--config.batch_size=128``). :func:`validate` turns a wrong value into one
:class:`~jaxgan.errors.ConfigError` that names the key and the fix.
"""

from __future__ import annotations

import math

import ml_collections

from jaxgan import augment as augment_lib
from jaxgan import losses
from jaxgan.errors import ConfigError
from jaxgan.optim import OPTIMIZERS
from jaxgan.state import COMPUTE_DTYPES


def base_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  # What to train.
  c.model = "dcgan"                 # jaxgan.models.MODELS; its family trains it (jaxgan.families)
  c.dataset = "fashion_mnist"       # a tfds image dataset
  c.image_size = 32                 # resize to image_size x image_size (0 = keep)
  c.latent_dim = 100
  c.loss = "nonsaturating"          # jaxgan.losses.LOSSES
  c.generator = ml_collections.ConfigDict()      # extra kwargs of the generator
  c.discriminator = ml_collections.ConfigDict()  # extra kwargs of the discriminator
  # Optimisation (the same optimizer, with its own state, for both networks).
  c.optimizer = "adam"              # "adam" (b1, b2) or "rmsprop" (decay 0.99, as torch's RMSprop)
  c.learning_rate = 2e-4
  c.g_learning_rate = 0.0           # the generator's own rate (0 = learning_rate), e.g. TTUR
  c.d_learning_rate = 0.0           # the discriminator's own rate (0 = learning_rate)
  c.b1 = 0.5
  c.b2 = 0.999
  c.adam_eps = 1e-8                 # Adam: added to sqrt(second moment) (optax's eps)
  c.adam_eps_root = 0.0             # Adam: added inside the square root (optax's eps_root)
  c.decay_steps = 0                 # the last decay_steps steps: learning rates fall linearly to 0 (0 = constant)
  c.d_ema = 0.0                     # Polyak average of D's parameters in D's optimizer state (decay; 0 = off)
  c.g_ema = 0.0                     # average of G's parameters (decay, e.g. 0.999; 0 = off): samples and
  c.g_ema_start = 0                 #   evaluation use it (raw G's numbers logged as raw_*); from this step on
  c.batch_size = 64
  c.num_steps = 5000                # generator updates
  # The objective's training mechanics (jaxgan.steps.make_train_step).
  c.n_critic = 1                    # discriminator updates (each on a fresh batch) per G update
  c.reuse_fakes = True              # n_critic=1: G's update reuses D's fakes (one G forward, as torch's DCGAN)
  c.gp_weight = 0.0                 # WGAN-GP lambda (0 = off); needs a critic without BatchNorm
  c.gp_one_sided = False            # penalise only gradient norms above 1
  c.r1_weight = 0.0                 # R1 gamma (adds gamma/2 * R1; 0 = off); no BatchNorm either
  c.clip = 0.0                      # WGAN weight clipping of D's parameters to [-clip, clip] (0 = off)
  c.label_smoothing = 0.0           # one-sided: D's real target 1 - s (cross-entropy objectives; 0 = off)
  c.augment = ""                    # DiffAugment: D sees real and fake through e.g. "color,translation,cutout"
  c.seed = 0
  c.dtype = "float32"               # "bfloat16": mixed precision (bf16 compute; fp32 parameters and optimizer states)
  # Devices (jaxgan.parallel): data-parallel over the local devices.
  c.num_devices = 0                 # 0 = all local devices; the global batch_size is split over them
  c.parallel = "shard_map"          # "shard_map" (jax.jit + jax.shard_map over a Mesh) or "pmap"
  c.steps_per_call = 1              # train steps fused into one jitted call (lax.scan)
  # Outputs.
  c.log_every = 50                  # metrics.jsonl / TensorBoard / progress bar
  c.sample_every = 500              # sample grid + plots
  c.checkpoint_every = 1000
  c.keep_checkpoints = 3
  c.num_samples = 64                # images in a sample grid (8x8)
  # Quality during training (jaxgan.metrics): FID/KID/precision/recall on eval_samples
  # generated images vs the real test split; the best FID's checkpoint is kept in best/.
  c.eval_every = 0                  # 0 = off
  c.eval_samples = 5000
  c.eval_features = "classifier"    # or "inception": FID/KID/precision/recall in the field's space
  c.eval_cache_dir = ""             # reference statistics cache ('' = $JAXGAN_CACHE_DIR or ~/.cache/jaxgan)
  c.progress = True                 # tqdm progress bar
  # Data: tfds data_dir ('' = tfds default) and a directory of raw files for
  # offline machines ('' = $JAXGAN_MANUAL_DIR, else download).
  # process_split (multi-process runs): "shard" = each process reads its own even part of the
  # train split (tfds.even_splits) and feeds batch_size / processes examples per step; "full" =
  # every process reads the whole split and feeds its rows of one global batch (the run then
  # equals a one-process run exactly).
  # fraction: train on a seeded random subset of the train split (e.g. 0.1; 1.0 = all of it), the
  # same subset for every run seed; fraction_seed picks another one.
  c.data = ml_collections.ConfigDict({"data_dir": "", "manual_dir": "", "process_split": "shard",
                                      "fraction": 1.0, "fraction_seed": 0})
  return c


PARALLEL_MODES = ("shard_map", "pmap")
PROCESS_SPLITS = ("shard", "full")

def dcgan_body(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Puts the DCGAN-32 networks (Radford et al., 2016) into ``config``; shared by the DCGAN-body recipes.

  G: z -> 4x4x256 -> 8x8x128 -> 16x16x64 -> 32x32xC; D mirrors it. The
  convolution formulations are ``"auto"``: the fastest exact one for the
  backend (see ``jaxgan.models.layers``).
  """
  config.model = "dcgan"
  config.image_size = 32
  config.generator.features = (256, 128, 64)
  config.generator.upsample = "auto"
  config.discriminator.features = (64, 128, 256)
  return config


def sngan_body(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Puts SNGAN's 32x32 ResNets and training setting into ``config`` (Miyato et al., 2018,
  CIFAR-10 ResNet): hinge loss, n_critic 5, Adam(2e-4, b1=0, b2=0.9), batch 64, z ~ N(0, I_128),
  the learning rates decaying linearly to 0 over the run; shared by the SNGAN recipes."""
  config.model = "resnet"
  config.image_size = 32
  config.latent_dim = 128
  config.generator.widths = (256, 256, 256, 256)
  config.discriminator.widths = (128, 128, 128, 128)
  config.loss = "hinge"
  config.n_critic = 5
  config.optimizer = "adam"
  config.learning_rate = 2e-4
  config.b1, config.b2 = 0.0, 0.9
  config.batch_size = 64
  return config


def stackgan_body(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Puts StackGAN (Zhang et al., 2017) into ``config`` at the CPU sizes (text -> 16x16 -> 32x32);
  shared by the StackGAN recipes. The critics join image and text with a projection head and
  Stage I's has an unconditional head too (StackGAN++); ``stackgan.d_head="concat"`` and
  ``discriminator.stage1_unconditional=False`` give the paper's critics. The paper's setting
  otherwise: a 128-d conditioning-augmentation code with the KL term weighted 2, Adam(2e-4,
  b1=0.5) halved every ``lr_decay_steps`` updates; widths cut for a CPU (the paper's GF_DIM /
  DF_DIM: 128 / 64)."""
  config.model = "stackgan"
  config.image_size = 32                   # Stage II's size
  config.latent_dim = 100
  config.loss = "nonsaturating"
  config.learning_rate = 2e-4
  config.b1, config.b2 = 0.5, 0.999
  config.batch_size = 64
  # Stage II encodes its 16x16 input once (to 8x8) before the residual blocks; the paper encodes
  # its 64x64 input twice (to 16x16), which here would leave a 4x4 grid.
  config.generator = ml_collections.ConfigDict(
      {"width": 32, "stage2_width": 32, "residual_blocks": 2, "stage2_encoder_steps": 1})
  # Stage I's critic at 64 (its 16x16 input allows only two stride-2 convolutions): with the
  # gated CA it read 51 % of the digits right after 3,000 iterations, against 10 % at width 32
  # with the ReLU CA (docs/text-to-image.md).
  # stage1_unconditional: Stage I's critic with the unconditional head Stage II's has
  # (StackGAN++'s joint conditional-unconditional loss; the paper's Stage I has none). With the
  # projection head (stackgan.d_head) it lifted whole captions right from 30 % to 80 % of the
  # seen ones after 3,000 Stage-I iterations at the paper's KL weight (docs/text-to-image.md).
  config.discriminator = ml_collections.ConfigDict(
      {"width": 64, "stage2_width": 32, "stage1_unconditional": True})
  config.stackgan = ml_collections.ConfigDict({
      "stage1_size": 16,
      # Stage I for the first half of the run, then Stage II ("// 2" keeps the split when
      # num_steps alone is overridden; set stage1_steps itself for another split).
      "stage1_steps": config.get_ref("num_steps") // 2,
      "kl_weight": 2.0,
      "condition_dim": 128,
      "d_condition": "text",               # the critics read the text ("text", the paper) or G's mu ("mu")
      "d_head": "projection",              # ...joined to the image by "projection" or "concat" (the paper)
      "ca_activation": "glu",              # conditioning augmentation: "glu" (StackGAN++) or "relu"
      "ca_max_sigma": 0.0,                 # > 0: the CA's largest sigma (0: unbounded, the paper)
      "stage2_noise": "own",               # Stage II's CA noise: its own draw ("own", the paper) or Stage I's ("stage1")
      "mode_seeking": 0.0,                 # > 0: MSGAN's term on Stage I, this weight (0: the paper)
      "embedding_dim": 384,                # all-MiniLM-L6-v2
      "lr_decay_steps": 2000,              # halve the rates every this many updates of a network
      "captions_per_image": 5,
      "caption_seed": 0,
      "text_encoder": "",                  # a model directory ('' = $JAXGAN_TEXT_ENCODER, the pip package)
      "folder": "",                        # dataset='caption_folder': the folder with captions.jsonl
      "grid_captions": (),                 # the sample grid's captions ('' = test captions)
      "eval_samples": 1000,                # held-out captions scored per evaluation
  })
  config.num_steps = 6000
  config.sample_every = 500
  config.eval_every = 1000
  return config


def override(config: ml_collections.ConfigDict, overrides) -> ml_collections.ConfigDict:
  """Sets dotted keys (``{"discriminator.pack": 2}``) of ``config`` in place, as
  ``--config.discriminator.pack=2`` would, and returns it.

  A key that does not exist raises :class:`ConfigError` naming the keys that do
  (the recipe's keys are the schema: an override never adds one).
  """
  for key, value in dict(overrides).items():
    node = config
    *path, leaf = key.split(".")
    for i, part in enumerate(path + [leaf]):
      if not isinstance(node, ml_collections.ConfigDict) or part not in node:
        where = "config." + ".".join(path[:i]) if i else "the config"
        have = ", ".join(sorted(node.keys())) if isinstance(node, ml_collections.ConfigDict) else "no keys"
        raise ConfigError(f"unknown config key {key!r}: {where} has no key {part!r} (it has {have})")
      if i < len(path):
        node = node[part]
    node[leaf] = value
  return config


# Keys that change what a run writes, when, and where it reads from, not what it computes: a run
# resumed (or a seed protocol repeated) with other values of these is still the same experiment.
BOOKKEEPING_KEYS = ("progress", "checkpoint_every", "keep_checkpoints", "log_every", "sample_every",
                    "num_samples", "eval_cache_dir", "data.data_dir", "data.manual_dir")


def flat(config) -> dict:
  """``config`` (a ConfigDict or the dict of a ``config.json``) as ``{"dotted.key": value}``, with
  tuples as lists, so that a config and its JSON compare equal."""
  tree = config.to_dict() if isinstance(config, ml_collections.ConfigDict) else config
  out = {}

  def walk(node, prefix):
    for k, v in node.items():
      if isinstance(v, (dict, ml_collections.ConfigDict)):
        walk(v, f"{prefix}{k}.")
      else:
        out[prefix + k] = jsonable(v)
  walk(tree, "")
  return out


def changed_keys(old, new, ignore=BOOKKEEPING_KEYS) -> dict:
  """``{"dotted.key": (old, new)}`` for the keys both configs have whose values differ, less the
  ``ignore``d ones. A key only one side has is left out: keys are added with a default that keeps
  the earlier behaviour, so an older run's ``config.json`` lacking one is not a difference."""
  a, b = _effective(flat(old)), _effective(flat(new))
  return {k: (a[k], b[k]) for k in sorted(a.keys() & b.keys())
          if k not in ignore and a[k] != b[k]}


def _effective(flat_config: dict) -> dict:
  """A network's own rate of 0 means ``learning_rate``: compare the rate it trains at."""
  for key in ("g_learning_rate", "d_learning_rate"):
    if flat_config.get(key) == 0 and "learning_rate" in flat_config:
      flat_config[key] = flat_config["learning_rate"]
  return flat_config


def describe_changes(changes: dict) -> str:
  """``"g_learning_rate 0.003 -> 0.001, num_steps 7000 -> 30000"``."""
  return ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in changes.items())


_POSITIVE_INTS = ("num_steps", "batch_size", "log_every", "sample_every", "checkpoint_every",
                  "keep_checkpoints", "num_samples", "latent_dim")


def validate(config: ml_collections.ConfigDict) -> None:
  """Raises :class:`ConfigError` for the first wrong value found."""
  missing = [k for k in ("model", "dataset", "image_size", "loss", "learning_rate", "b1", "b2",
                         "seed", *_POSITIVE_INTS) if k not in config]
  if missing:
    raise ConfigError(f"config is missing key(s) {missing}; build recipes on jaxgan.config.base_config()")
  for key in _POSITIVE_INTS:
    value = config[key]
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
      raise ConfigError(f"config.{key} must be a positive integer, got {value!r}")
  if isinstance(config.seed, bool) or not isinstance(config.seed, int):
    raise ConfigError(f"config.seed must be an integer, got {config.seed!r}")
  if not isinstance(config.image_size, int) or config.image_size < 0:
    raise ConfigError(f"config.image_size must be a non-negative integer, got {config.image_size!r}")
  lr = config.learning_rate
  if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
    raise ConfigError(f"config.learning_rate must be a positive number, got {lr!r}")
  for key in ("b1", "b2"):
    b = config[key]
    if isinstance(b, bool) or not isinstance(b, (int, float)) or not 0 <= b < 1:
      raise ConfigError(f"config.{key} must be in [0, 1), got {b!r}")
  if config.loss not in losses.LOSSES:
    raise ConfigError(f"config.loss={config.loss!r} is unknown; choose one of {sorted(losses.LOSSES)}")
  for key in ("g_learning_rate", "d_learning_rate"):
    value = config.get(key, 0.0)
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
        or value < 0):
      raise ConfigError(f"config.{key} must be a number >= 0 (0 = config.learning_rate), got {value!r}")
  eval_every = config.get("eval_every", 0)
  if isinstance(eval_every, bool) or not isinstance(eval_every, int) or eval_every < 0:
    raise ConfigError(f"config.eval_every must be a non-negative integer (0 = off), got {eval_every!r}")
  eval_samples = config.get("eval_samples", 5000)
  if eval_every and (isinstance(eval_samples, bool) or not isinstance(eval_samples, int)
                     or eval_samples < 10):
    raise ConfigError(f"config.eval_samples must be an integer >= 10 (a few thousand for meaningful "
                      f"FID), got {eval_samples!r}")
  eval_features = config.get("eval_features", "classifier")
  if eval_features not in ("classifier", "inception"):
    raise ConfigError(f"config.eval_features must be 'classifier' or 'inception', got "
                      f"{eval_features!r}")
  for key in ("adam_eps", "adam_eps_root"):
    value = config.get(key, 0.0)
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
        or value < 0):
      raise ConfigError(f"config.{key} must be a number >= 0, got {value!r}")
  if config.get("adam_eps", 1e-8) == 0 and config.get("adam_eps_root", 0.0) == 0:
    raise ConfigError("config.adam_eps and config.adam_eps_root are both 0: Adam would divide by "
                      "zero for a parameter without gradient; set one of them > 0")
  decay = config.get("decay_steps", 0)
  if isinstance(decay, bool) or not isinstance(decay, int) or not 0 <= decay <= config.num_steps:
    raise ConfigError(f"config.decay_steps={decay!r} must be an integer in [0, num_steps="
                      f"{config.num_steps}] (the last steps, over which the learning rate "
                      f"falls linearly to 0; 0 = constant); shortening a run with decay, set "
                      f"--config.decay_steps too, e.g. to half of num_steps")
  g_ema, g_ema_start = config.get("g_ema", 0.0), config.get("g_ema_start", 0)
  if isinstance(g_ema, bool) or not isinstance(g_ema, (int, float)) or not 0 <= g_ema < 1:
    raise ConfigError(f"config.g_ema must be in [0, 1) (a decay such as 0.999; 0 = off), got {g_ema!r}")
  if isinstance(g_ema_start, bool) or not isinstance(g_ema_start, int) or g_ema_start < 0:
    raise ConfigError(f"config.g_ema_start must be an integer >= 0, got {g_ema_start!r}")
  d_ema = config.get("d_ema", 0.0)
  if isinstance(d_ema, bool) or not isinstance(d_ema, (int, float)) or not 0 <= d_ema < 1:
    raise ConfigError(f"config.d_ema must be in [0, 1) (0 = no parameter average), got {d_ema!r}")
  optimizer = config.get("optimizer", "adam")
  if optimizer not in OPTIMIZERS:
    raise ConfigError(f"config.optimizer={optimizer!r} is unknown; choose one of {list(OPTIMIZERS)}")
  for key in ("num_devices", "steps_per_call"):
    value = config.get(key, 1)
    if isinstance(value, bool) or not isinstance(value, int) or value < (0 if key == "num_devices" else 1):
      raise ConfigError(f"config.{key} must be a {'non-negative' if key == 'num_devices' else 'positive'} "
                        f"integer, got {value!r}")
  try:
    augment_lib.parse_policy(config.get("augment", ""))
  except (ValueError, AttributeError, TypeError) as e:
    raise ConfigError(f"config.augment={config.get('augment')!r}: {e}") from None
  if config.get("dtype", "float32") not in COMPUTE_DTYPES:
    raise ConfigError(f"config.dtype={config.get('dtype')!r} is not supported; choose one of "
                      f"{list(COMPUTE_DTYPES)} (bfloat16: mixed precision, parameters stay float32)")
  fraction = config.get("data", {}).get("fraction", 1.0)
  if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
    raise ConfigError(f"config.data.fraction must be in (0, 1] (the share of the train split to "
                      f"train on; 1.0 = all), got {fraction!r}")
  fraction_seed = config.get("data", {}).get("fraction_seed", 0)
  if isinstance(fraction_seed, bool) or not isinstance(fraction_seed, int):
    raise ConfigError(f"config.data.fraction_seed must be an integer, got {fraction_seed!r}")
  process_split = config.get("data", {}).get("process_split", "shard")
  if process_split not in PROCESS_SPLITS:
    raise ConfigError(f"config.data.process_split={process_split!r} is unknown; choose one of "
                      f"{list(PROCESS_SPLITS)}")
  if config.get("parallel", "shard_map") not in PARALLEL_MODES:
    raise ConfigError(f"config.parallel={config.parallel!r} is unknown; choose one of {list(PARALLEL_MODES)}")
  k = config.get("steps_per_call", 1)
  if config.num_steps % k:
    raise ConfigError(f"config.num_steps={config.num_steps} is not a multiple of config.steps_per_call={k} "
                      f"(each call runs {k} steps); set num_steps to e.g. {config.num_steps + k - config.num_steps % k}")
  n_critic = config.get("n_critic", 1)
  if isinstance(n_critic, bool) or not isinstance(n_critic, int) or n_critic <= 0:
    raise ConfigError(f"config.n_critic must be a positive integer, got {n_critic!r}")
  for key in ("gp_weight", "r1_weight", "clip"):
    value = config.get(key, 0.0)
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
        or value < 0):
      raise ConfigError(f"config.{key} must be a number >= 0 (0 = off), got {value!r}")
  if not isinstance(config.get("gp_one_sided", False), bool):
    raise ConfigError(f"config.gp_one_sided must be True or False, got {config.gp_one_sided!r}")
  smoothing = config.get("label_smoothing", 0.0)
  if (isinstance(smoothing, bool) or not isinstance(smoothing, (int, float))
      or not 0 <= smoothing < 0.5):
    raise ConfigError(f"config.label_smoothing must be in [0, 0.5) (0 = none; 0.1 makes D's real "
                      f"target 0.9, Salimans et al.'s one-sided smoothing), got {smoothing!r}")
  if smoothing and config.loss not in losses.CROSS_ENTROPY_LOSSES:
    raise ConfigError(f"config.label_smoothing smooths a cross-entropy objective; with "
                      f"config.loss={config.loss!r} set it to 0 (or use --config.loss=nonsaturating)")
def jsonable(x):
  """``x`` with dict keys sorted and tuples as lists (how a config and its JSON compare)."""
  if isinstance(x, dict):
    return {k: jsonable(v) for k, v in sorted(x.items())}
  if isinstance(x, (list, tuple)):
    return [jsonable(v) for v in x]
  return x
