"""Checkpoints through orbax: save every N steps, keep the last few, restore the latest.

A checkpoint holds the whole :class:`~jaxgan.state.GANState` pytree (both
networks' parameters and BatchNorm statistics, both optimizer states, step,
PRNG key) and a JSON ``meta`` item describing the model, so that a workdir
holding another model's checkpoints is refused with a clear message instead
of failing deep inside a restore.

A checkpoint damaged on disk (a truncated array file, an unreadable ``meta``, an empty step
directory) is found before orbax touches it (:meth:`Checkpointer.damage` reads every byte of
it); a resuming run falls back to the newest checkpoint that is whole and sets the damaged ones
aside in ``<directory>.damaged/`` (:meth:`Checkpointer.set_aside`), deleting nothing.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from flax import serialization

from jaxgan.errors import JaxganError
from jaxgan.state import GANState


# State fields newer than the first checkpoint format, restorable from older checkpoints
# (they keep the template's fresh value).
_ADDED_FIELDS = ("k_t",)
# Fields that older checkpoints hold for every family but a state no longer has: read and dropped.
# (checkpoints of the first format hold BEGAN's k_t for every family).
_DROPPED_FIELDS = {"k_t": ((), "float32")}
# Meta keys written only when a run uses the option; a run that has one resumes only a
# checkpoint that has the same (a scheduled learning rate adds a count to the optimizer state).
_OPTIONAL_META = ("lr_schedule", "g_ema")
_META_HINTS = {"lr_schedule": " (config.decay_steps > 0 schedules the learning rate, which adds a "
                              "step count to the optimizer state: resume with decay_steps 0 or > 0 "
                              "as the checkpoint was made)",
              "g_ema": " (config.g_ema > 0 keeps an average of G in its optimizer state: resume "
                       "with g_ema 0 or > 0 as the checkpoint was made)"}


class CheckpointError(JaxganError):
  """A checkpoint cannot be used for this run; the message says why and what to do."""


class Checkpointer:
  """Checkpoints of a :class:`~jaxgan.state.GANState` in a directory (orbax underneath).

  From research code::

      ckpt = jaxgan.Checkpointer("runs/mine/checkpoints", max_to_keep=3)
      ckpt.save(state)                       # at state.step; the oldest beyond 3 is dropped
      ckpt.wait()                            # saves are asynchronous
      state = ckpt.restore(fresh_state)      # the latest step, into fresh_state's structure
      ckpt.close()

  ``meta`` (optional, a JSON-able dict) describes the model; a restore given a ``meta`` refuses
  a checkpoint whose ``meta`` differs on any key, with a message naming the keys, instead of
  failing deep inside orbax. The trainer saves its model description there.
  """

  def __init__(self, directory: str, max_to_keep: int = 3):
    self.directory = os.path.abspath(directory)
    self._manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True),
        item_handlers={"state": ocp.StandardCheckpointHandler(),
                       "meta": ocp.JsonCheckpointHandler()})

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def damage(self, step: int) -> str | None:
    """Why checkpoint ``step`` cannot be read, or None when it is whole.

    Reads its ``meta`` item and every byte of its arrays' OCDBT database (what a restore reads),
    synchronously: a damaged file is reported here, in one line, instead of failing inside
    orbax's asynchronous restore.
    """
    try:
      self.read_meta(step)
    except Exception as e:  # noqa: BLE001 - any failure to read it is damage
      return f"its meta item cannot be read ({_first_line(e)})"
    state = os.path.join(self.directory, str(step), "state")
    if not os.path.isfile(os.path.join(state, "manifest.ocdbt")):
      return "its state item has no manifest.ocdbt (an incomplete write)"
    import tensorstore as ts  # orbax's storage layer
    try:
      kv = ts.KvStore.open({"driver": "ocdbt", "base": f"file://{state}/"}).result()
      keys = kv.list().result()
      for key in keys:
        kv.read(key).result()
    except Exception as e:  # noqa: BLE001
      return f"its arrays cannot be read ({_first_line(e)})"
    if not keys:
      return "its state item holds no arrays"
    return None

  def newest_whole(self) -> tuple[int | None, list[tuple[int, str]]]:
    """The newest step that is whole (:meth:`damage`), and the newer ones that are damaged as
    ``(step, why)``, newest first. ``(None, [...])`` when no checkpoint is whole."""
    damaged = []
    for step in sorted(self.all_steps(), reverse=True):
      why = self.damage(step)
      if why is None:
        return step, damaged
      damaged.append((step, why))
    return None, damaged

  def set_aside(self, step: int) -> str:
    """Moves checkpoint ``step`` out of the directory into ``<directory>.damaged/<step>`` (nothing
    is deleted; a later run never sees it); returns where it went."""
    aside = self.directory + ".damaged"
    os.makedirs(aside, exist_ok=True)
    target, n = os.path.join(aside, str(step)), 1
    while os.path.exists(target):
      n += 1
      target = os.path.join(aside, f"{step}.{n}")
    shutil.move(os.path.join(self.directory, str(step)), target)
    self._manager.reload()
    return target

  def all_steps(self) -> list[int]:
    return list(self._manager.all_steps())

  def save(self, state: GANState, meta: dict[str, Any] | None = None) -> int:
    """Saves ``state`` at its step (asynchronously: :meth:`wait` or :meth:`close` finishes it);
    a step already saved is kept as is. Returns the step."""
    step = int(jax.device_get(state.step))
    if step in self._manager.all_steps():
      return step
    self._manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(serialization.to_state_dict(state)),
        meta=ocp.args.JsonSave(dict(meta or {}))))
    return step

  def delete(self, step: int) -> None:
    self._manager.delete(step)

  def wait(self) -> None:
    self._manager.wait_until_finished()

  def read_meta(self, step: int | None = None) -> dict[str, Any]:
    step = self.latest_step() if step is None else step
    return dict(self._manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"])

  def restore(self, template: GANState, meta: dict[str, Any] | None = None,
              step: int | None = None) -> GANState:
    """Restores ``step`` (default: latest) into the structure of ``template``.

    With ``meta``, it must match the checkpoint's ``meta`` on every key the checkpoint
    has (model family, architecture, image shape, ...) and on the optional keys
    ``meta`` has (``lr_schedule``); without, only the structure must match.
    """
    step = self.latest_step() if step is None else step
    if step is None:
      raise CheckpointError(f"no checkpoint in {self.directory}")
    saved = self.read_meta(step) if meta is not None else {}
    meta = {} if meta is None else meta
    keys = [*saved, *(k for k in _OPTIONAL_META if k in meta and k not in saved)]
    diffs = {k: (saved.get(k), meta.get(k)) for k in keys if saved.get(k) != meta.get(k)}
    if diffs:
      detail = "; ".join(f"{k}: checkpoint has {a!r}, this run has {b!r}{_META_HINTS.get(k, '')}"
                         for k, (a, b) in diffs.items())
      raise CheckpointError(
          f"{self.directory} holds a checkpoint (step {step}) of a different model ({detail}). "
          f"Use another --workdir, or delete that directory to start over.")
    target = serialization.to_state_dict(template)
    # GANState fields added after jaxgan 0.1 (BEGAN's k_t): absent from older checkpoints,
    # they keep the template's fresh value.
    added = {}
    saved_keys = self._saved_state_keys(step)
    for name in _ADDED_FIELDS:
      if saved_keys is not None and name in target and name not in saved_keys:
        added[name] = target.pop(name)
    dropped = [name for name in _DROPPED_FIELDS
               if saved_keys is not None and name in saved_keys and name not in target]
    for name in dropped:
      shape, dtype = _DROPPED_FIELDS[name]
      target[name] = np.zeros(shape, dtype)
    try:
      restored = self._manager.restore(step, args=ocp.args.Composite(
          state=ocp.args.StandardRestore(target)))["state"]
      restored = {k: v for k, v in restored.items() if k not in dropped}
      restored = {**restored, **added}
    except Exception as e:  # structure or shape mismatch
      raise CheckpointError(
          f"cannot restore {self.directory} step {step} into this model: {type(e).__name__}: "
          f"{str(e)[:500]}. Use another --workdir, or delete that directory to start over.") from None
    return serialization.from_state_dict(template, restored)

  def _saved_state_keys(self, step: int):
    try:
      tree = self._manager.item_metadata(step)["state"]
      tree = getattr(tree, "tree", tree)
      return set(tree.keys())
    except Exception:  # noqa: BLE001 - no metadata: restore as is and let orbax report
      return None

  def reload(self) -> None:
    """Reads the directory's steps again (after another process set one aside)."""
    self._manager.reload()

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()


def _first_line(e: BaseException) -> str:
  text = str(e).strip().splitlines()
  return f"{type(e).__name__}: {text[0][:300] if text else ''}".rstrip(": ")
