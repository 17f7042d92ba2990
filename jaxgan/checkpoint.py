"""Checkpoints through orbax: save every N steps, keep the last few, restore the latest.

A checkpoint holds the whole :class:`~jaxgan.state.GANState` pytree (both
networks' parameters and BatchNorm statistics, both optimizer states, step,
PRNG key) and a JSON ``meta`` item describing the model, so that a workdir
holding another model's checkpoints is refused with a clear message instead
of failing deep inside a restore.
"""

from __future__ import annotations

import os
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
_OPTIONAL_META = ("lr_schedule",)
_META_HINTS = {"lr_schedule": " (config.decay_steps > 0 schedules the learning rate, which adds a "
                              "step count to the optimizer state: resume with decay_steps 0 or > 0 "
                              "as the checkpoint was made)"}


class CheckpointError(JaxganError):
  """A checkpoint cannot be used for this run; the message says why and what to do."""


class Checkpointer:
  """A thin wrapper over :class:`orbax.checkpoint.CheckpointManager`."""

  def __init__(self, directory: str, max_to_keep: int = 3):
    self.directory = os.path.abspath(directory)
    self._manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True),
        item_handlers={"state": ocp.StandardCheckpointHandler(),
                       "meta": ocp.JsonCheckpointHandler()})

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    return list(self._manager.all_steps())

  def save(self, state: GANState, meta: dict[str, Any]) -> int:
    step = int(jax.device_get(state.step))
    if step in self._manager.all_steps():
      return step
    self._manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(serialization.to_state_dict(state)),
        meta=ocp.args.JsonSave(meta)))
    return step

  def delete(self, step: int) -> None:
    self._manager.delete(step)

  def wait(self) -> None:
    self._manager.wait_until_finished()

  def read_meta(self, step: int | None = None) -> dict[str, Any]:
    step = self.latest_step() if step is None else step
    return dict(self._manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"])

  def restore(self, template: GANState, meta: dict[str, Any], step: int | None = None) -> GANState:
    """Restores ``step`` (default: latest) into the structure of ``template``.

    ``meta`` must match the checkpoint's ``meta`` on every key the checkpoint
    has (model family, architecture, image shape, ...) and on the optional keys
    ``meta`` has (``lr_schedule``).
    """
    step = self.latest_step() if step is None else step
    if step is None:
      raise CheckpointError(f"no checkpoint in {self.directory}")
    saved = self.read_meta(step)
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

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()
