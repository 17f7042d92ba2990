"""Samples from a trained run: ``python -m jaxgan.sample --workdir runs/dcgan_fmnist --num 10000 --out samples.npz``.

Rebuilds the model from the run's ``config.json`` and the checkpoint's ``meta``,
restores the latest (or ``--step``) checkpoint, and generates in jitted batches.
The noise is ``jax.random.normal(PRNGKey(seed), (num, latent_dim))``, so the
images depend on ``--seed`` only (not on ``--batch_size``). Writes the images as
uint8 ``[num, H, W, C]`` in [0, 255] under the key ``images`` of an ``.npz``, and
a grid of the first 64 beside it (``samples.png`` next to ``samples.npz``).

What is drawn is the run's family's choice (:meth:`jaxgan.families.Family.draw`): a
conditional generator draws every class in turn (or ``--label``, saved under ``labels``);
the translation families (CycleGAN, StarGAN) translate held-out test images instead:
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
from jaxgan.generation import (SampleError, generate_images, sample_labels,  # noqa: E402,F401
                               save_arrays)




def load_generator(workdir: str, step: int | None = None, best: bool = False, raw: bool = False):
  """``(state, config, step)`` of ``workdir``'s checkpoint ``step`` (default: latest); with
  ``best``, the lowest-FID checkpoint the trainer kept in ``best/`` (``eval_every`` runs). A run
  trained with ``config.g_ema`` gives the average of G unless ``raw``."""
  import ml_collections

  from jaxgan import families
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
  try:
    family = families.for_config(config)
  except JaxganError as e:
    raise SampleError(f"{config_path}: {e}") from None
  ckpt = Checkpointer(ckpt_dir, max_to_keep=10**6)  # never saves, so never deletes
  try:
    steps = ckpt.all_steps()
    if not steps:
      raise SampleError(f"no checkpoint in {ckpt_dir}; train first: "
                        f"python train.py --config CONFIG --workdir {workdir}")
    checked = step is None
    if checked:  # the newest whole checkpoint (a live run's is whole once it is listed)
      step, damaged = ckpt.newest_whole()
      if step is None:
        raise SampleError(f"no checkpoint in {ckpt_dir} can be read: "
                          + "; ".join(f"step {s}: {why}" for s, why in damaged))
      for s, why in damaged:
        print(f"warning: checkpoint step {s} is damaged: {why}; using step {step}", file=sys.stderr)
    step = int(step)
    if step not in steps:
      raise SampleError(f"no checkpoint at step {step} in {ckpt_dir}; it has steps {sorted(steps)}")
    why = None if checked else ckpt.damage(step)   # newest_whole has read it already
    if why is not None:
      raise SampleError(f"checkpoint step {step} in {ckpt_dir} is damaged: {why}; choose another "
                        f"--step (it has steps {sorted(steps)})")
    meta = ckpt.read_meta(step)
    image_shape = tuple(meta["image_shape"])
    state = family.build_state(config, image_shape)
    state = ckpt.restore(state, family.model_meta(config, image_shape), step)
  finally:
    ckpt.close()
  if not raw:
    from jaxgan import ema
    state = ema.averaged(state)
  return state, config, step


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
  arrays = draw(workdir, num, seed, step, batch_size, best, label).arrays
  return arrays["images"], arrays.get("labels")


def draw(workdir: str, num: int, seed: int = 0, step: int | None = None, batch_size: int = 500,
         best: bool = False, label: int | None = None, truncation: float | None = None,
         interpolate: int = 0, raw: bool = False, caption: str | None = None):
  """What the run's family draws for ``num`` samples of ``workdir``'s checkpoint
  (:meth:`jaxgan.families.Family.draw`: generated images, or a translation run's figure rows;
  ``truncation`` and ``interpolate`` as there; ``caption``: a text-to-image run's images of it)."""
  from jaxgan import families
  from jaxgan.generation import check_truncation
  check_truncation(truncation)
  if interpolate and interpolate < 2:
    raise SampleError(f"--interpolate {interpolate}: an interpolation needs at least 2 steps")
  state, config, _ = load_generator(workdir, step, best, raw)
  family = families.for_config(config)
  extra = {}
  if caption is not None:
    if not family.takes_captions:
      takers = sorted(f.name for f in families.FAMILIES.values() if f.takes_captions)
      raise SampleError(f"--caption: the {family.name} family is not text-conditioned (only "
                        f"{', '.join(takers)} runs take a caption); leave --caption out")
    extra["caption"] = caption
  return family.draw(state, config, num, seed, batch_size, label, truncation=truncation,
                     interpolate=interpolate, **extra)


def save_drawing(drawing, out: str) -> tuple[str, str]:
  """Writes a drawing's arrays to ``out`` (.npz) and its picture as a PNG beside it."""
  return save_arrays(out, drawing.arrays, drawing.picture, drawing.columns)


def define_flags() -> None:
  """The command-line flags (defined only when run as a program, so importing this module
  from the trainer or from jaxgan.evaluate defines none)."""
  flags.DEFINE_string("workdir", None, "Run directory written by train.py.")
  flags.DEFINE_integer("num", 10_000, "Number of samples.")
  flags.DEFINE_integer("step", None, "Checkpoint step (default: latest).")
  flags.DEFINE_bool("best", False, "Use the lowest-FID checkpoint (best/, kept by eval_every runs).")
  flags.DEFINE_integer("seed", 0, "Seed of the latent noise.")
  flags.DEFINE_integer("batch_size", 500, "Images per generator call.")
  flags.DEFINE_bool("raw", False, "A run trained with config.g_ema: the current generator "
                    "instead of its parameter average.")
  flags.DEFINE_float("truncation", None, "The truncation trick: draw z from the normal truncated "
                     "to [-psi, psi] (e.g. 0.5: fewer, cleaner modes; default: none).")
  flags.DEFINE_integer("interpolate", 0, "Instead of --num samples, N images along the great "
                       "circle (slerp) between two latents of --seed, as one PNG row "
                       "(default <workdir>/interpolation.npz).")
  flags.DEFINE_string("caption", None, "Text-to-image runs (StackGAN): --num images of this caption, "
                      "e.g. \"a thick blue seven\" (default: the test split's captions in turn).")


def fail(message: str, code: int = 2):
  print(f"error: {message}", file=sys.stderr)
  sys.exit(code)


def cli_flags(argv):
  """The parsed flags of the sample / evaluate commands, after the checks they share."""
  FLAGS = flags.FLAGS
  if len(argv) > 1:
    fail(f"unexpected arguments: {' '.join(argv[1:])} (flags are --name=value; --help lists them)")
  if not FLAGS["verbosity"].present:
    logging.set_verbosity(logging.ERROR)  # orbax warns about the state item when reading meta only
  if not FLAGS.workdir:
    fail("--workdir is required: the run directory train.py wrote")
  return FLAGS


def main(argv):
  FLAGS = cli_flags(argv)
  if FLAGS.num <= 0 or FLAGS.batch_size <= 0:
    fail(f"--num and --batch_size must be positive (got --num={FLAGS.num} "
         f"--batch_size={FLAGS.batch_size})")
  try:
    default = "interpolation.npz" if FLAGS.interpolate else "samples.npz"
    drawing = draw(FLAGS.workdir, FLAGS.num, FLAGS.seed, FLAGS.step, FLAGS.batch_size, FLAGS.best,
                   FLAGS["label"].value if "label" in FLAGS else None,
                   truncation=FLAGS.truncation, interpolate=FLAGS.interpolate, raw=FLAGS.raw,
                   caption=FLAGS.caption)
    out, png = save_drawing(drawing, FLAGS.out or os.path.join(FLAGS.workdir, default))
  except JaxganError as e:
    fail(str(e))
  print(f"wrote {drawing.description} to {out} and a picture of them to {png}")


if __name__ == "__main__":
  define_flags()
  flags.DEFINE_string("out", None, "Output .npz (default <workdir>/samples.npz); a .png grid "
                      "goes beside it.")
  flags.DEFINE_integer("label", None, "Conditional generators: the class of every sample, in "
                       "[0, num_classes) (default: every class in turn); written to the .npz as 'labels'.")
  app.run(main)
