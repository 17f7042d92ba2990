"""Samples from a trained run: ``python -m jaxgan.sample --workdir runs/dcgan_fmnist --num 10000 --out samples.npz``.

Rebuilds the model from the run's ``config.json`` and the checkpoint's ``meta``,
restores the latest (or ``--step``) checkpoint, and generates in jitted batches.
The noise is ``jax.random.normal(PRNGKey(seed), (num, latent_dim))``, so the
images depend on ``--seed`` only (not on ``--batch_size``). Writes the images as
uint8 ``[num, H, W, C]`` in [0, 255] under the key ``images`` of an ``.npz``, and
a grid of the first 64 beside it (``samples.png`` next to ``samples.npz``).

Translation runs (CycleGAN, StarGAN) translate held-out test images instead:
``images`` is then ``[num, columns, H, W, 3]``, one figure row per test image
(CycleGAN: ``a, G(a), F(G(a)), b, F(b), G(F(b))``; StarGAN: the input, then its
translation to each target domain), and the PNG shows the first 8 rows.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # noqa: E402

from jaxgan.errors import JaxganError  # noqa: E402


class SampleError(JaxganError):
  """The run cannot be sampled (no workdir, no config, no checkpoint)."""


def load_generator(workdir: str, step: int | None = None, best: bool = False):
  """``(state, config, step)`` of ``workdir``'s checkpoint ``step`` (default: latest); with
  ``best``, the lowest-FID checkpoint the trainer kept in ``best/`` (``eval_every`` runs)."""
  import ml_collections

  from jaxgan import config as config_lib
  from jaxgan import trainer
  from jaxgan.checkpoint import Checkpointer

  workdir = os.path.abspath(workdir)
  if not os.path.isdir(workdir):
    raise SampleError(f"workdir {workdir} does not exist")
  ckpt_dir = os.path.join(workdir, "best" if best else "checkpoints")
  config_path = os.path.join(workdir, "config.json")
  if best and not os.path.isdir(ckpt_dir):
    raise SampleError(f"no best checkpoint in {workdir}: it is kept by runs trained with "
                      f"--config.eval_every=N (N > 0)")
  if not os.path.isdir(ckpt_dir):
    raise SampleError(f"no checkpoint in {workdir} (no checkpoints/ directory); train first: "
                      f"python train.py --config CONFIG --workdir {workdir}")
  if not os.path.exists(config_path):
    raise SampleError(f"{config_path} is missing; it is written by the trainer when a run starts")
  with open(config_path) as f:
    config = ml_collections.ConfigDict(json.load(f))
  ckpt = Checkpointer(ckpt_dir, max_to_keep=10**6)  # never saves, so never deletes
  try:
    steps = ckpt.all_steps()
    if not steps:
      raise SampleError(f"no checkpoint in {ckpt_dir}; train first: "
                        f"python train.py --config CONFIG --workdir {workdir}")
    step = max(steps) if step is None else int(step)
    if step not in steps:
      raise SampleError(f"no checkpoint at step {step} in {ckpt_dir}; it has steps {sorted(steps)}")
    meta = ckpt.read_meta(step)
    image_shape = tuple(meta["image_shape"])
    state = trainer.build_state(config, image_shape)
    state = ckpt.restore(state, config_lib.model_meta(config, image_shape), step)
  finally:
    ckpt.close()
  return state, config, step


def sample_labels(state, num: int, label: int | None = None) -> "np.ndarray | None":
  """The class labels of ``num`` samples of a conditional generator (None for an unconditional one).

  ``label=None``: every class in turn (``i % K``, balanced); else all ``label``,
  which must lie in ``[0, K)``.
  """
  import numpy as np

  from jaxgan.state import takes_label
  if not takes_label(state.generator):
    if label is not None:
      raise SampleError(f"--label {label}: this run's generator is unconditional (it takes no "
                        f"label); drop --label, or sample a conditional run (cgan_*, acgan)")
    return None
  k = int(state.generator.num_classes)
  if label is None:
    return (np.arange(num) % k).astype(np.int32)
  if not 0 <= int(label) < k:
    raise SampleError(f"--label {label} is outside [0, {k}): this generator has {k} classes; "
                      f"choose --label between 0 and {k - 1}")
  return np.full(num, int(label), np.int32)


def generate_images(state, latent_dim: int, num: int, seed: int = 0,
                    batch_size: int = 500, labels=None) -> "np.ndarray":
  """``num`` images G(z) in [-1, 1] (float32 NHWC), ``z ~ N(0, I)`` from ``PRNGKey(seed)``,
  generated in jitted batches of ``batch_size`` (the last one padded: one compilation).

  A conditional generator makes ``G(z, y)`` with ``labels`` (int ``[num]``;
  default :func:`sample_labels`: every class in turn).
  """
  import jax
  import numpy as np

  from jaxgan.steps import generate

  if num <= 0 or batch_size <= 0:
    raise ValueError(f"num and batch_size must be positive, got {num} and {batch_size}")
  if labels is None:
    labels = sample_labels(state, num)
  z = np.asarray(jax.random.normal(jax.random.PRNGKey(seed), (num, latent_dim)), np.float32)
  batch_size = min(batch_size, num)
  out = []
  for start in range(0, num, batch_size):
    zb = z[start:start + batch_size]
    yb = None if labels is None else np.asarray(labels[start:start + batch_size], np.int32)
    valid = len(zb)
    if valid < batch_size:
      zb = np.concatenate([zb, np.zeros((batch_size - valid, latent_dim), np.float32)])
      yb = None if yb is None else np.concatenate([yb, np.zeros(batch_size - valid, np.int32)])
    images = generate(state, zb) if yb is None else generate(state, zb, yb)
    out.append(np.asarray(images, np.float32)[:valid])
  return np.concatenate(out)


def sample(workdir: str, num: int, seed: int = 0, step: int | None = None,
           batch_size: int = 500, best: bool = False) -> "np.ndarray":
  """``num`` samples of ``workdir``'s checkpoint as uint8 ``[num, H, W, C]`` in [0, 255]."""
  return sample_with_labels(workdir, num, seed, step, batch_size, best)[0]


def sample_with_labels(workdir: str, num: int, seed: int = 0, step: int | None = None,
                       batch_size: int = 500, best: bool = False,
                       label: int | None = None) -> "tuple[np.ndarray, np.ndarray | None]":
  """``(images, labels)``: :func:`sample` and, for a conditional generator, the int32 class of
  each sample (``label``: all of that class; default every class in turn); ``labels`` is None
  for an unconditional one."""
  from jaxgan import viz
  state, config, _ = load_generator(workdir, step, best)
  labels = sample_labels(state, num, label)
  images = generate_images(state, int(config.latent_dim), num, seed, batch_size, labels=labels)
  return viz.to_uint8(images), labels


def is_translation_run(workdir: str) -> bool:
  """Whether ``workdir``'s run is a translation family (from its ``config.json``)."""
  from jaxgan import translation_hooks
  path = os.path.join(os.path.abspath(workdir), "config.json")
  if not os.path.exists(path):
    return False
  with open(path) as f:
    return json.load(f).get("model") in translation_hooks.FAMILIES


def save_translations(workdir: str, num: int, out: str, step: int | None = None,
                      best: bool = False) -> tuple[str, str, str]:
  """The figure rows of ``num`` held-out test images (:func:`jaxgan.translation_hooks.figure`) of a
  translation run: uint8 ``[num, columns, H, W, 3]`` under ``images`` in ``out`` (.npz), the first
  8 rows as a PNG beside it; returns both paths and the figure's caption."""
  import numpy as np

  from jaxgan import translation_hooks, viz
  state, config, _ = load_generator(workdir, step, best)
  rows = translation_hooks.figure(state, config, num)
  out = os.path.abspath(out if out.endswith(".npz") else out + ".npz")
  os.makedirs(os.path.dirname(out), exist_ok=True)
  caption = translation_hooks.figure_caption(config)
  np.savez_compressed(out, images=viz.to_uint8(rows), caption=np.asarray(caption))
  png = out[:-len(".npz")] + ".png"
  translation_hooks.save_figure(rows[:translation_hooks.GRID_ROWS], png)
  return out, png, caption


def save_samples(images, out: str, grid: int = 64, labels=None) -> tuple[str, str]:
  """Writes ``images`` (uint8 NHWC) to ``out`` (.npz, key ``images``; with ``labels``, their
  int32 classes under ``labels``) and a PNG grid of the first ``grid`` beside it; returns both paths."""
  import numpy as np

  from jaxgan import viz
  out = os.path.abspath(out if out.endswith(".npz") else out + ".npz")
  os.makedirs(os.path.dirname(out), exist_ok=True)
  arrays = {"images": np.asarray(images, np.uint8)}
  if labels is not None:
    arrays["labels"] = np.asarray(labels, np.int32)
  np.savez_compressed(out, **arrays)
  png = out[:-len(".npz")] + ".png"
  first = np.asarray(images[:grid], np.float32) / 127.5 - 1.0
  viz.save_grid(first, png)
  return out, png


def define_flags() -> None:
  """The command-line flags (defined only when run as a program, so importing this module
  from the trainer or from jaxgan.evaluate defines none)."""
  flags.DEFINE_string("workdir", None, "Run directory written by train.py.")
  flags.DEFINE_integer("num", 10_000, "Number of samples.")
  flags.DEFINE_integer("step", None, "Checkpoint step (default: latest).")
  flags.DEFINE_bool("best", False, "Use the lowest-FID checkpoint (best/, kept by eval_every runs).")
  flags.DEFINE_integer("seed", 0, "Seed of the latent noise.")
  flags.DEFINE_integer("batch_size", 500, "Images per generator call.")


def fail(message: str, code: int = 2):
  print(f"error: {message}", file=sys.stderr)
  sys.exit(code)


def cli_flags(argv):
  """The parsed flags of the sample / evaluate commands, after the checks they share."""
  FLAGS = flags.FLAGS
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  if not FLAGS["verbosity"].present:
    logging.set_verbosity(logging.ERROR)  # orbax warns about the state item when reading meta only
  if not FLAGS.workdir:
    raise app.UsageError("--workdir is required")
  return FLAGS


def main(argv):
  FLAGS = cli_flags(argv)
  if FLAGS.num <= 0 or FLAGS.batch_size <= 0:
    raise app.UsageError("--num and --batch_size must be positive")
  try:
    if is_translation_run(FLAGS.workdir):
      out, png, caption = save_translations(
          FLAGS.workdir, FLAGS.num, FLAGS.out or os.path.join(FLAGS.workdir, "samples.npz"),
          FLAGS.step, FLAGS.best)
      print(f"wrote the translations of {FLAGS.num} test images to {out} (key 'images', uint8 "
            f"[num, columns, H, W, 3]; {caption}) and the first rows to {png}")
      return
    images, labels = sample_with_labels(FLAGS.workdir, FLAGS.num, FLAGS.seed, FLAGS.step,
                                        FLAGS.batch_size, FLAGS.best, FLAGS["label"].value
                                        if "label" in FLAGS else None)
    out, png = save_samples(images, FLAGS.out or os.path.join(FLAGS.workdir, "samples.npz"),
                            labels=labels)
  except JaxganError as e:
    fail(str(e))
  print(f"wrote {len(images)} samples {images.shape[1:]} to {out} (key 'images', uint8"
        + (", and their classes under 'labels'" if labels is not None else "")
        + f") and a grid to {png}")


if __name__ == "__main__":
  define_flags()
  flags.DEFINE_string("out", None, "Output .npz (default <workdir>/samples.npz); a .png grid "
                      "goes beside it.")
  flags.DEFINE_integer("label", None, "Conditional generators: the class of every sample, in "
                       "[0, num_classes) (default: every class in turn); written to the .npz as 'labels'.")
  app.run(main)
