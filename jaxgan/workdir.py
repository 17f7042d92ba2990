"""The run directory: everything a run writes, in one place.

``workdir/`` of ``python train.py --config C --workdir workdir``::

    checkpoints/        orbax checkpoints (every checkpoint_every steps + final, last N kept)
    best/, best.json    with eval_every: the checkpoint of the lowest FID so far
    samples/            the hooks' pictures: step_XXXXXXX.png grids, final.png (a toy run: film/)
    losses.png          generator and discriminator loss against step
    accuracy.png        discriminator accuracy on real and fake batches (families that log it)
    metrics.jsonl       one JSON object per logged step (training means and hook scalars)
    config.json         the run's config; config_changes.jsonl: keys changed at a resume
    tensorboard/        event files (scalars and pictures)

The trainer (:mod:`jaxgan.trainer`) and this module are jaxgan's only writers of a run
directory; hooks return what to keep (:class:`jaxgan.hooks.Picture`, :class:`jaxgan.hooks.Film`)
and :meth:`RunDir.keep` writes it. Only the main process of a multi-process run writes
(``write=False`` elsewhere).
"""

from __future__ import annotations

import contextlib
import json
import os

import ml_collections
import numpy as np

from jaxgan import config as config_lib
from jaxgan import viz
from jaxgan.checkpoint import Checkpointer
from jaxgan.hooks import Film, Picture


class MetricsLog:
  """``metrics.jsonl`` (truncated to the resumed step) and the in-memory history.

  Only the main process (``write=True``) touches the file.
  """

  def __init__(self, path: str, start_step: int, write: bool = True):
    self.path = path
    self.write = write
    self.history: list[dict] = []
    if not write:
      return
    if os.path.exists(path):
      with open(path) as f:
        for line in f:
          with contextlib.suppress(json.JSONDecodeError):
            record = json.loads(line)
            if record.get("step", 0) <= start_step:
              self.history.append(record)
    with open(path, "w") as f:
      for record in self.history:
        f.write(json.dumps(record) + "\n")

  def append(self, record: dict) -> None:
    self.history.append(record)
    if not self.write:
      return
    with open(self.path, "a") as f:
      f.write(json.dumps(record) + "\n")


class _NoWriter:
  """The TensorBoard writer of processes other than the main one."""

  def scalar(self, *args):
    pass

  image = scalar

  def flush(self):
    pass


def tensorboard(logdir: str, write: bool = True):
  if not write:
    return _NoWriter()
  from flax.metrics import tensorboard  # imports TensorFlow; deferred
  return tensorboard.SummaryWriter(logdir)


class BestCheckpoint:
  """The checkpoint with the lowest FID so far, in ``<workdir>/best`` (``best.json`` says which)."""

  def __init__(self, workdir: str, write: bool):
    self.ckpt = Checkpointer(os.path.join(workdir, "best"), max_to_keep=1)
    self.path = os.path.join(workdir, "best.json")
    self.write = write
    self.record: dict | None = None
    if os.path.exists(self.path):
      with contextlib.suppress(OSError, json.JSONDecodeError):
        with open(self.path) as f:
          self.record = json.load(f)

  def offer(self, state, step: int, fid: float, meta: dict) -> None:
    if not np.isfinite(fid) or (self.record is not None and fid >= self.record["fid"]):
      return
    for old in self.ckpt.all_steps():  # a resumed run can find a better FID at an earlier step
      if old > step:
        self.ckpt.delete(old)
    self.ckpt.save(state, meta)  # max_to_keep=1 drops the previous best
    self.record = {"step": step, "fid": fid}
    if self.write:
      with open(self.path, "w") as f:
        json.dump(self.record, f)


def record_config_changes(workdir: str, config: ml_collections.ConfigDict, step: int, say) -> dict:
  """A run resumed under another config (a longer ``num_steps``, a new learning rate ...) trains on
  from the checkpoint with the new values: that is allowed, but it is said, and the change is
  appended to ``config_changes.jsonl`` (``{"step", "changes": {key: [old, new]}}``) before
  ``config.json`` is overwritten, so the run's history stays readable. Bookkeeping keys
  (:data:`jaxgan.config.BOOKKEEPING_KEYS`) are not changes. Returns the changes."""
  path = os.path.join(workdir, "config.json")
  try:
    with open(path) as f:
      saved = json.load(f)
  except (OSError, json.JSONDecodeError):
    return {}
  changes = config_lib.changed_keys(saved, config)
  if changes:
    say(f"resuming at step {step} with a changed config: {config_lib.describe_changes(changes)}")
    with open(os.path.join(workdir, "config_changes.jsonl"), "a") as f:
      f.write(json.dumps({"step": step, "changes": {k: list(v) for k, v in changes.items()}}) + "\n")
  return changes


class RunDir:
  """A run's directory: its metrics log, TensorBoard writer, config and the hooks' files."""

  def __init__(self, path: str, write: bool = True):
    self.path = os.path.abspath(path)
    self.write = write
    if write:
      os.makedirs(self.path, exist_ok=True)

  def join(self, *parts: str) -> str:
    return os.path.join(self.path, *parts)

  def metrics_log(self, start_step: int) -> MetricsLog:
    """``metrics.jsonl``, truncated to ``start_step`` (a resumed run rewrites what followed)."""
    return MetricsLog(self.join("metrics.jsonl"), start_step, self.write)

  def tensorboard(self):
    return tensorboard(self.join("tensorboard"), self.write)

  def best_checkpoint(self) -> BestCheckpoint:
    return BestCheckpoint(self.path, self.write)

  def save_config(self, config: ml_collections.ConfigDict, resumed_at: int | None, say) -> None:
    """``config.json``; on a resume first the keys that changed (:func:`record_config_changes`)."""
    if not self.write:
      return
    if resumed_at is not None:
      record_config_changes(self.path, config, resumed_at, say)
    with open(self.join("config.json"), "w") as f:
      f.write(config.to_json(indent=2))

  def plots(self, history: list[dict]) -> list[str]:
    """``losses.png`` and, for families that log D's accuracy, ``accuracy.png``; their paths."""
    if not self.write:
      return []
    if any("d_loss" in r for r in history):
      viz.plot_losses(history, self.join("losses.png"))
    if any("d_real_acc" in r for r in history):
      viz.plot_accuracy(history, self.join("accuracy.png"))
    return [p for p in (self.join("losses.png"), self.join("accuracy.png")) if os.path.exists(p)]

  def keep(self, artefact) -> str | None:
    """Writes a hook's :class:`~jaxgan.hooks.Picture` (PNG) or assembles its
    :class:`~jaxgan.hooks.Film`; returns a summary line for a film."""
    if not self.write:
      return None
    if isinstance(artefact, Picture):
      path = self.join(artefact.path)
      os.makedirs(os.path.dirname(path), exist_ok=True)
      viz.save_picture(np.asarray(artefact.image), path, artefact.scale)
      return None
    if isinstance(artefact, Film):
      frames = [self.join(f) for f in artefact.frames if os.path.exists(self.join(f))]
      made = viz.assemble_film(frames, self.join(artefact.path), fps=artefact.fps)
      if made:
        where = os.path.dirname(frames[0])
        return f"film         {'  '.join(made)}  ({len(frames)} frames in {where})"
      return None
    raise TypeError(f"a hook returned {type(artefact).__name__}; expected a Picture or a Film")
