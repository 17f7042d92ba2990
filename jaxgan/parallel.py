"""Data-parallel training: one step body, wrapped for ``jax.pmap`` or ``jax.jit`` + ``shard_map``.

The step bodies of :mod:`jaxgan.steps` take an ``axis_name``; mapped over a
named device axis they average gradients, BatchNorm statistics and metrics
with ``lax.pmean``, draw each device's share of the global noise
(:func:`jaxgan.steps.local_draw`) and, through :func:`with_sync_batchnorm`,
normalise with the statistics of the *global* batch. So ``n`` devices with a
global batch ``B`` compute what one device computes with the batch ``B``.

:class:`DataParallel` owns the device layout::

    dp = DataParallel(mode="shard_map")             # or "pmap"; all local devices
    step = dp.train_step("nonsaturating", steps_per_call=4)
    state = dp.replicate(state)                     # a plain GANState onto the devices
    state, metrics = step(state, dp.shard(batch))   # batch: the global numpy batch
    plain = dp.unreplicate(state)                   # for checkpoints and sampling

* ``"pmap"``: the Flax-examples idiom: the state carries a leading device axis.
* ``"shard_map"``: ``jax.jit`` of ``jax.shard_map`` over a 1-D ``Mesh``: the
  state is replicated (``NamedSharding(mesh, P())``), the batch sharded along
  its batch axis.

The checkpointed state is always the plain single copy (:meth:`unreplicate`),
so a checkpoint does not depend on the device count that wrote it.
``steps_per_call = k`` fuses ``k`` train steps into one call with ``lax.scan``
over a batch stacked on a new leading axis (dispatch-bound small models).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import numpy as np
from jax import lax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxgan import steps as steps_lib
from jaxgan.state import GANState

MODES = ("pmap", "shard_map")
AXIS = "batch"


def initialize_distributed(coordinator_address: str | None = None, num_processes: int | None = None,
                           process_id: int | None = None, auto: bool = False) -> bool:
  """Starts JAX's multi-process runtime when asked; returns whether it did.

  Asked means: a coordinator address (argument or ``$JAX_COORDINATOR_ADDRESS``)
  with ``num_processes`` / ``process_id`` (arguments or ``$JAX_NUM_PROCESSES`` /
  ``$JAX_PROCESS_ID``), or ``auto=True`` to let :func:`jax.distributed.initialize`
  detect the cluster (TPU pod slices, SLURM, Open MPI). On the CPU backend the
  cross-process collectives go through gloo. Must run before anything touches
  the devices.
  """
  import os
  coordinator_address = coordinator_address or os.environ.get("JAX_COORDINATOR_ADDRESS")
  if num_processes is None and os.environ.get("JAX_NUM_PROCESSES"):
    num_processes = int(os.environ["JAX_NUM_PROCESSES"])
  if process_id is None and os.environ.get("JAX_PROCESS_ID"):
    process_id = int(os.environ["JAX_PROCESS_ID"])
  if not (auto or coordinator_address):
    return False
  if os.environ.get("JAX_PLATFORMS", "").startswith("cpu") or not _has_accelerator_plugin():
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(coordinator_address=coordinator_address, num_processes=num_processes,
                             process_id=process_id)
  return True


def _has_accelerator_plugin() -> bool:
  import importlib.util
  return any(importlib.util.find_spec(m) is not None
             for m in ("jax_cuda12_plugin", "jax_cuda13_plugin", "libtpu", "jax_rocm_plugin"))


def with_sync_batchnorm(module: nn.Module, axis_name: str | None) -> nn.Module:
  """``module`` with its BatchNorm layers averaging statistics over ``axis_name``.

  Models with BatchNorm expose a ``bn_axis_name`` field; others are returned as is.
  """
  if "bn_axis_name" in {f.name for f in dataclasses.fields(module)}:
    return module.clone(bn_axis_name=axis_name)
  return module


def mapped_body(body: Callable, axis_name: str) -> Callable:
  """``body(state, batch, axis_name=...)`` run with sync BatchNorm in every network the state
  holds; the state's modules are restored."""

  def run(state: GANState, batch):
    modules = {f.name: getattr(state, f.name) for f in dataclasses.fields(state)
               if isinstance(getattr(state, f.name), nn.Module)}   # every network of the state
    mapped = state.replace(**{k: with_sync_batchnorm(m, axis_name) for k, m in modules.items()})
    new, metrics = body(mapped, batch, axis_name=axis_name)
    return new.replace(**modules), metrics

  return run


def fuse_steps(step: Callable, steps_per_call: int) -> Callable:
  """``steps_per_call`` applications of ``step`` in one ``lax.scan`` over the batch's leading axis.

  Metrics come back stacked, ``[steps_per_call, ...]``. Unrolled on CPU
  (see :func:`jaxgan.steps.scan_unroll`).
  """
  if steps_per_call == 1:
    return step

  def fused(state, batches):
    return lax.scan(step, state, batches, unroll=steps_lib.scan_unroll(steps_per_call))

  return fused


def check_batch(global_batch: int, num_devices: int) -> int:
  """The per-device batch; a clear error when ``global_batch`` does not divide."""
  if global_batch % num_devices:
    up = global_batch + num_devices - global_batch % num_devices
    raise ValueError(
        f"the global batch size {global_batch} does not divide over {num_devices} devices; "
        f"use a multiple of {num_devices} (e.g. --config.batch_size={up}) or fewer devices "
        f"(--config.num_devices=...)")
  return global_batch // num_devices


@dataclasses.dataclass(frozen=True)
class DataParallel:
  """A data-parallel layout over ``devices`` (default: all devices of all processes) and its step wrappers."""
  mode: str = "shard_map"
  devices: Sequence[jax.Device] | None = None
  axis_name: str = AXIS

  def __post_init__(self):
    if self.mode not in MODES:
      raise ValueError(f"unknown parallel mode {self.mode!r}; choose one of {list(MODES)}")
    devices = tuple(self.devices) if self.devices is not None else tuple(jax.devices())
    if not devices:
      raise ValueError("no devices to run on")
    object.__setattr__(self, "devices", devices)

  @property
  def num_devices(self) -> int:
    return len(self.devices)

  @functools.cached_property
  def mesh(self) -> Mesh:
    return Mesh(np.array(self.devices), (self.axis_name,))

  # -- placement ---------------------------------------------------------------
  def replicate(self, state: GANState) -> GANState:
    """A plain state, copied onto every device of the layout."""
    if self.mode == "pmap":  # a leading device axis, one copy per device
      stacked = jax.tree.map(lambda x: np.broadcast_to(x, (self.num_devices,) + np.shape(x)),
                             jax.device_get(state))
      return jax.device_put(stacked, NamedSharding(self.mesh, P(self.axis_name)))
    return jax.device_put(state, NamedSharding(self.mesh, P()))

  def unreplicate(self, state: GANState) -> GANState:
    """The plain single copy of a replicated state (what checkpoints and sampling use)."""
    if self.mode == "pmap":  # device 0's row of the leading device axis
      return jax.tree.map(lambda x: x.addressable_shards[0].data[0], state)
    return jax.tree.map(lambda x: x.addressable_shards[0].data, state)

  def shard(self, batch: dict[str, Any], batch_axis: int = 0, process_local: bool = False
            ) -> dict[str, Any]:
    """Places a global batch: examples along ``batch_axis`` are split evenly over the devices.

    Device ``i`` gets the ``i``-th contiguous block (the block of noise
    :func:`jaxgan.steps.local_draw` gives it). In a multi-process run every
    process passes the same global batch and only its devices' rows are used,
    or, with ``process_local``, each process passes just its own rows (its
    part of the global batch, read from its own shard of the data).
    """
    if jax.process_count() > 1:
      return self._shard_multi_process(batch, batch_axis, process_local)

    def place(x):
      x = np.asarray(x)
      per = check_batch(x.shape[batch_axis], self.num_devices)
      if self.mode == "pmap":
        x = x.reshape(x.shape[:batch_axis] + (self.num_devices, per) + x.shape[batch_axis + 1:])
        return jax.device_put(np.moveaxis(x, batch_axis, 0),
                              NamedSharding(self.mesh, P(self.axis_name)))
      spec = P(*([None] * batch_axis), self.axis_name)
      return jax.device_put(x, NamedSharding(self.mesh, spec))
    return {k: place(v) for k, v in batch.items()}

  def process_rows(self, global_batch_size: int) -> slice:
    """The rows of a global batch this process feeds (its devices' contiguous blocks)."""
    per_device = check_batch(global_batch_size, self.num_devices)
    mine = [i for i, d in enumerate(self.devices) if d.process_index == jax.process_index()]
    if mine != list(range(mine[0], mine[0] + len(mine))):
      raise ValueError("this process's devices are not contiguous in the mesh")
    return slice(mine[0] * per_device, (mine[-1] + 1) * per_device)

  def _shard_multi_process(self, batch, batch_axis, process_local):
    if self.mode == "pmap":
      raise ValueError("multi-process training uses parallel='shard_map' (jax.jit + shard_map); "
                       "set --config.parallel=shard_map")
    spec = NamedSharding(self.mesh, P(*([None] * batch_axis), self.axis_name))
    local_devices = sum(d.process_index == jax.process_index() for d in self.devices)

    def place(x):
      x = np.asarray(x)
      if process_local:
        shape = list(x.shape)
        shape[batch_axis] = x.shape[batch_axis] * self.num_devices // local_devices
        return jax.make_array_from_process_local_data(spec, x, tuple(shape))
      rows = self.process_rows(x.shape[batch_axis])
      local = x[(slice(None),) * batch_axis + (rows,)]
      return jax.make_array_from_process_local_data(spec, local, x.shape)
    return {k: place(v) for k, v in batch.items()}

  # -- step wrappers -----------------------------------------------------------
  def wrap(self, body: Callable, *, batch_axis: int = 0, donate: bool = False) -> Callable:
    """Maps ``body(state, batch, axis_name=...) -> (state, metrics)`` over the devices.

    The result takes a replicated state and a batch placed by :meth:`shard`
    (with the same ``batch_axis``) and returns a replicated state and
    device-averaged metrics (for ``pmap`` with a leading device axis; use
    :meth:`metrics`).
    """
    run = mapped_body(body, self.axis_name)
    donate_argnums = (0,) if donate else ()
    if self.mode == "pmap":
      return jax.pmap(run, axis_name=self.axis_name, devices=list(self.devices),
                      donate_argnums=donate_argnums)
    spec = P(*([None] * batch_axis), self.axis_name)
    # check_vma=False: per-device gradients of the local loss, averaged by the body's pmean
    # (with the checker on, gradients of replicated parameters arrive already summed).
    mapped = jax.shard_map(run, mesh=self.mesh, in_specs=(P(), spec), out_specs=(P(), P()),
                           check_vma=False)
    return jax.jit(mapped, donate_argnums=donate_argnums)

  def metrics(self, metrics: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """Device-averaged metrics as plain arrays (drops ``pmap``'s device axis)."""
    if self.mode == "pmap":
      return jax.tree.map(lambda x: x.addressable_shards[0].data[0], metrics)
    return metrics

  def train_step(self, loss: str = "nonsaturating", *, n_critic: int = 1, steps_per_call: int = 1,
                 donate: bool = False, **options) -> Callable:
    """The data-parallel fused train step (:func:`jaxgan.steps.train_step_fn`).

    Its batch is :meth:`shard` of the global batch with ``batch_axis``
    :meth:`batch_axis` (``n_critic`` and ``steps_per_call`` stack batches on
    leading axes, ``[steps_per_call, n_critic, B, ...]``, each present only when
    > 1). ``options`` are :func:`jaxgan.steps.make_train_step`'s.
    """
    if isinstance(steps_per_call, bool) or not isinstance(steps_per_call, int) or steps_per_call < 1:
      raise ValueError(f"steps_per_call must be a positive integer, got {steps_per_call!r}")
    body = steps_lib.make_train_step(loss, n_critic=n_critic, jit=False, **options)
    return self.fused_step(body, steps_per_call=steps_per_call,
                           batch_axis=batch_axis(n_critic, steps_per_call), donate=donate)

  def fused_step(self, body: Callable, *, steps_per_call: int = 1, batch_axis: int = 0,
                 donate: bool = False) -> Callable:
    """:meth:`wrap` of ``steps_per_call`` applications of ``body(state, batch, axis_name=...)``
    fused by :func:`fuse_steps` (any family's step body, e.g. the translation families')."""

    def fused(state, batch, axis_name):
      return fuse_steps(functools.partial(body, axis_name=axis_name), steps_per_call)(state, batch)

    return self.wrap(fused, batch_axis=batch_axis, donate=donate)


def batch_axis(n_critic: int = 1, steps_per_call: int = 1) -> int:
  """Where the examples are in a train-step batch: after the ``steps_per_call`` and ``n_critic`` axes."""
  return int(steps_per_call > 1) + int(n_critic > 1)


def make_train_step(loss: str = "nonsaturating", *, steps_per_call: int = 1, jit: bool = True,
                    donate: bool = False, n_critic: int = 1, **options) -> Callable:
  """Single-device fused step of ``steps_per_call`` train steps (``lax.scan``); metrics stacked.

  With ``steps_per_call == 1`` this is :func:`jaxgan.steps.make_train_step`.
  """
  if steps_per_call == 1:
    return steps_lib.make_train_step(loss, n_critic=n_critic, jit=jit, donate=donate, **options)
  body = steps_lib.make_train_step(loss, n_critic=n_critic, jit=False, **options)
  fused = fuse_steps(body, steps_per_call)
  return jax.jit(fused, donate_argnums=(0,) if donate else ()) if jit else fused
