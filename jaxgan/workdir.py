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
import errno
import fcntl
import json
import os
import socket

import ml_collections
import numpy as np

from jaxgan import config as config_lib
from jaxgan import viz
from jaxgan.checkpoint import Checkpointer
from jaxgan.errors import RunDirError
from jaxgan.hooks import Film, Picture

LOCK = ".lock"   # the run's lock file: an flock held while a run trains; its text names the holder


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
  """A run's directory: its metrics log, TensorBoard writer, config and the hooks' files.

  The writing process (``write=True``) holds an exclusive ``flock`` on ``<workdir>/.lock``
  while the run lives (:meth:`close`, or the process's end, releases it; the OS drops it when a
  run is killed), so a second run on the same workdir stops at once with
  :class:`~jaxgan.errors.RunDirError` naming the holder; ``jaxgan.sample`` and
  ``jaxgan.evaluate`` only read a run and take no lock. A workdir that is a file, or cannot be
  created or written, is refused the same way, before anything is written.
  """

  def __init__(self, path: str, write: bool = True):
    self.path = os.path.abspath(path)
    self.write = write
    self._lock = None
    if write:
      self._make()
      self._lock = self._acquire()

  def _make(self) -> None:
    where = f"--workdir {self.path}"
    if os.path.exists(self.path) and not os.path.isdir(self.path):
      raise RunDirError(f"{where} is a file, not a directory; choose another --workdir")
    try:
      if not os.path.isdir(self.path):
        os.makedirs(self.path, exist_ok=True)
    except OSError as e:
      raise RunDirError(f"cannot create {where}: {e.strerror or e} ({_blocking(self.path)}); "
                        f"choose a --workdir in a folder you can write") from None
    if not os.access(self.path, os.W_OK | os.X_OK):
      raise RunDirError(f"{where} is not writable; fix its permissions or choose another --workdir")

  def _acquire(self):
    path = self.join(LOCK)
    try:
      f = open(path, "a+")
    except OSError as e:
      raise RunDirError(f"--workdir {self.path} cannot be written ({e.strerror or e}); fix its "
                        f"permissions or choose another --workdir") from None
    try:
      fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
      f.seek(0)
      holder = f.read().strip() or "another process"
      f.close()
      if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
        raise RunDirError(f"cannot lock --workdir {self.path}: {e.strerror or e}") from None
      raise RunDirError(f"--workdir {self.path} is in use by a run ({holder}); wait for it to "
                        f"end or stop it, or choose another --workdir") from None
    f.seek(0)
    f.truncate()
    f.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
    f.flush()
    return f

  def close(self) -> None:
    """Releases the run's lock (the lock file stays: its text is only read while locked)."""
    if self._lock is not None:
      self._lock.close()   # closing the descriptor drops the flock
      self._lock = None

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()

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


def _blocking(path: str) -> str:
  """What stands in the way of creating ``path``: the nearest existing ancestor, and why."""
  parent = os.path.dirname(path)
  while parent and not os.path.exists(parent):
    parent = os.path.dirname(parent)
  if parent and not os.path.isdir(parent):
    return f"{parent} is a file"
  if parent and not os.access(parent, os.W_OK):
    return f"{parent} is not writable"
  return f"under {parent or '/'}"
