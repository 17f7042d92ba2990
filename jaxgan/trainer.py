"""The training loop: ``train_and_evaluate(config, workdir)`` builds or resumes a run.

It looks the run's family up once (:func:`jaxgan.families.check`) and then only calls the
:class:`~jaxgan.families.Family` interface: data, state, step body, hooks. It never names a
family. What a run writes, and where, is :class:`jaxgan.workdir.RunDir`'s: this module and that
one are the only writers of a run directory (hooks return what to keep).
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import os
import signal
import sys
import time
from typing import Any, Iterator

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxgan import ema, families, parallel
from jaxgan.checkpoint import Checkpointer, CheckpointError
from jaxgan.errors import ConfigError, Interrupted, TrainingError
from jaxgan.hooks import Evaluate, Picture
from jaxgan.state import GANState
from jaxgan.workdir import RunDir


@jax.jit
def _all_finite(tree) -> jax.Array:
  leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)
            if jnp.issubdtype(x.dtype, jnp.floating)]
  return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


def build_state(config: ml_collections.ConfigDict, image_shape, num_classes: int = 0):
  """The fresh state of ``config``'s family (``num_classes``: the dataset's, for the label-aware
  families; 0 = their default)."""
  return families.for_config(config).build_state(config, image_shape, num_classes)


def select_devices(config: ml_collections.ConfigDict) -> list:
  """The devices a run uses: ``config.num_devices`` of them (0 = all), checked against the batch.

  One process: its local devices. Several (``jax.distributed``): every device of every process.
  """
  available = jax.devices() if jax.process_count() > 1 else jax.local_devices()
  n = int(config.get("num_devices", 0)) or len(available)
  if jax.process_count() > 1 and n != len(available):
    raise ConfigError(f"config.num_devices={n}: a {jax.process_count()}-process run uses all "
                      f"{len(available)} devices; set --config.num_devices=0")
  if n > len(available):
    raise ConfigError(
        f"config.num_devices={n} but this machine has {len(available)} {available[0].platform} "
        f"device(s); set --config.num_devices={len(available)} (or 0 for all)")
  if config.batch_size % n:
    up = config.batch_size + n - config.batch_size % n
    raise ConfigError(
        f"config.batch_size={config.batch_size} does not divide over {n} devices; use a multiple "
        f"of {n} (e.g. --config.batch_size={up}) or --config.num_devices=... that divides it")
  return available[:n]


class _Runner:
  """The compiled train step of a run and how states and batches reach its devices.

  One device: the jitted step on plain arrays. Several: :class:`jaxgan.parallel.DataParallel`
  (``config.parallel``), the state replicated, each global batch split over the devices.
  Checkpoints and samples always see the plain single copy (:meth:`plain`). The step body is
  the family's (:meth:`jaxgan.families.Family.step_body`), wrapped the same way for every family.
  """

  def __init__(self, family: families.Family, config: ml_collections.ConfigDict, devices: list,
               process_local: bool = False, phase: int = 0):
    n_critic = family.step_options(config)["n_critic"]
    body = family.phase_body(config, phase)
    self.process_local = process_local
    self.steps_per_call = k = int(config.get("steps_per_call", 1))
    self.batch_axis = parallel.batch_axis(n_critic, k)
    self.dp = None
    if len(devices) > 1:
      self.dp = parallel.DataParallel(mode=config.get("parallel", "shard_map"), devices=devices)
      self.step = self.dp.fused_step(body, steps_per_call=k, batch_axis=self.batch_axis)
    else:
      self.step = _jitted(body, k)

  def place(self, state: GANState) -> GANState:
    return state if self.dp is None else self.dp.replicate(state)

  def plain(self, state: GANState) -> GANState:
    return state if self.dp is None else self.dp.unreplicate(state)

  def to_save(self, state: GANState) -> GANState:
    """What a checkpoint gets: the plain copy, or with several processes the replicated global
    arrays (orbax writes each once, coordinating the processes)."""
    return state if jax.process_count() > 1 else self.plain(state)

  def __call__(self, state: GANState, batch: dict) -> tuple[GANState, dict]:
    if self.dp is None:
      return self.step(state, batch)
    state, metrics = self.step(state, self.dp.shard(batch, self.batch_axis, self.process_local))
    return state, self.dp.metrics(metrics)


@functools.lru_cache(maxsize=32)
def _jitted(body, steps_per_call: int):
  """The one-device step: ``body`` (``steps_per_call`` of it fused) jitted, one object per body,
  so runs of a recipe in one process share the compiled step."""
  return jax.jit(parallel.fuse_steps(body, steps_per_call))


def stacked_batches(batches: Iterator[dict], n: int) -> Iterator[dict]:
  """Groups ``n`` consecutive batches into one with a leading axis ``n`` (n == 1: unchanged)."""
  if n == 1:
    yield from batches
    return
  while True:
    group = [next(batches) for _ in range(n)]
    yield {k: np.stack([b[k] for b in group]) for k in group[0]}


class _SignalCatcher:
  """Turns SIGINT/SIGTERM into a flag the loop checks after each step."""

  def __init__(self):
    self.signum: int | None = None
    self._old: dict[int, Any] = {}

  def __enter__(self):
    with contextlib.suppress(ValueError):  # not the main thread: no handlers
      for s in (signal.SIGINT, signal.SIGTERM):
        self._old[s] = signal.signal(s, self._handle)
    return self

  def _handle(self, signum, frame):
    del frame
    if self.signum is not None:  # second signal: stop now
      raise KeyboardInterrupt
    self.signum = signum

  def __exit__(self, *exc):
    for s, h in self._old.items():
      signal.signal(s, h)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> GANState:
  """Trains (or resumes) the GAN of ``config`` in ``workdir``; returns the final state."""
  family = families.check(config)
  devices = select_devices(config)
  main = jax.process_index() == 0  # the only process that writes pictures, logs and the summary
  say = print if main else (lambda *a, **k: None)
  with RunDir(workdir, write=main) as run_dir:   # held (locked) until the run ends
    return _train(config, family, devices, run_dir, main, say)


def _train(config: ml_collections.ConfigDict, family: families.Family, devices: list,
           run_dir: RunDir, main: bool, say) -> GANState:
  workdir = run_dir.path

  procs = jax.process_count()
  data = family.data(config, jax.process_index(), procs)
  # Several processes, each reading its own part of the split: each feeds its own rows.
  process_local = procs > 1 and getattr(data, "split", "train") != "train"
  local_batch = config.batch_size // procs if process_local else config.batch_size
  image_shape = data.example_shape
  family.check_data(config, data)
  state = family.build_state(config, image_shape, data.num_classes)
  state = family.prepare_state(config, state, data)  # e.g. a data-dependent initialisation
  meta = family.model_meta(config, image_shape)
  n_critic = family.step_options(config)["n_critic"]
  # A family whose step changes during the run (phases(), e.g. StackGAN's Stage II) gets one
  # compiled step per phase; a fused call never crosses a phase boundary.
  boundaries = tuple(family.phases(config))
  runners = [_Runner(family, config, devices, process_local, phase)
             for phase in range(len(boundaries) + 1)]
  phase_of = lambda step: bisect.bisect_right(boundaries, step)  # noqa: E731
  runner = runners[0]
  per_call = runner.steps_per_call
  if any(b % per_call for b in boundaries):
    raise ConfigError(f"config.steps_per_call={per_call} does not divide the steps where the "
                      f"{family.name} step changes ({list(boundaries)}); choose a divisor of them")

  ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), config.keep_checkpoints)
  try:
    resumed_from = _newest_whole(ckpt, main)
    if resumed_from is not None:
      state = ckpt.restore(state, meta, resumed_from)
    start = int(state.step)
    if start % per_call:
      raise ConfigError(f"the checkpoint is at step {start}, not a multiple of config.steps_per_call="
                        f"{per_call}; resume with --config.steps_per_call=1 (or a divisor of {start})")
    hooks = family.hooks(config, data, log=say)
  except BaseException:
    ckpt.close()
    raise
  best = run_dir.best_checkpoint() if any(isinstance(h, Evaluate) for h in hooks) else None
  run_dir.save_config(config, start if resumed_from is not None else None, say)
  log = run_dir.metrics_log(start)
  writer = run_dir.tensorboard()

  def run_hooks(step: int, due) -> None:
    plain = shown = None
    for hook in hooks:
      if not due(hook):
        continue
      if plain is None:  # with config.g_ema the hooks see the average of G; raw G is logged too
        plain = runner.plain(state)
        shown = ema.averaged(plain)
      out = hook(shown, step, log.history)
      if shown is not plain and isinstance(hook, Evaluate):
        raw = hook(plain, step, log.history)
        out = {**out, **{f"raw_{k}": v for k, v in raw.items() if np.ndim(v) == 0
                         and not isinstance(v, Picture)}}
      scalars = {k: float(v) for k, v in out.items()
                 if not isinstance(v, Picture) and np.ndim(v) == 0}
      for k, v in out.items():
        if isinstance(v, Picture):
          run_dir.keep(v)
          writer.image(k, np.asarray(v.image), step)
        elif k in scalars:
          writer.scalar(k, scalars[k], step)
        else:
          writer.image(k, np.asarray(v), step)
      if scalars:
        log.append({"step": step, **scalars})
      if best is not None and "fid" in scalars:
        best.offer(runner.to_save(state), step, scalars["fid"], meta)

  def save_checkpoint() -> None:
    plain = runner.plain(state)
    if not bool(_all_finite((plain.g_params, plain.d_params, plain.g_opt_state, plain.d_opt_state))):
      raise TrainingError(_nan_message(int(plain.step), ckpt, "parameters"))
    ckpt.save(runner.to_save(state), meta)

  from tqdm import tqdm
  # Every step reads n_critic batches (one per D update), so step i starts at batch i * n_critic.
  stream = data.stream(local_batch, config.seed, start=start * n_critic)
  pbar = tqdm(total=config.num_steps, initial=start, disable=not (config.progress and main),
              dynamic_ncols=True, desc="train", unit="step")
  if resumed_from is not None and main:
    pbar.write(f"resumed from {ckpt.directory} at step {start}")
  if len(devices) > 1 and main:
    where = f" in {procs} processes" if procs > 1 else ""
    pbar.write(f"data-parallel ({runner.dp.mode}) over {len(devices)} {devices[0].platform} devices"
               f"{where}, {config.batch_size // len(devices)} examples each")
  if getattr(data, "subset", "") and main:
    pbar.write(f"trains on a subset of {data.name}/{data.split}: {data.subset}")
  if process_local:  # every process says which part of the data it reads
    pbar.write(f"process {jax.process_index()}: reads {data.name}/{data.split}, feeds "
               f"{local_batch} examples per batch")
  runner = runners[phase_of(start)]
  state = runner.place(state)
  window: list[dict] = []
  t_window, n_window = time.perf_counter(), 0
  t_start = time.perf_counter()
  step = start
  ran_at: dict[int, int] = {}
  diverged: str | None = None
  summary: list[str] = []
  try:
    with _SignalCatcher() as signals:
      batches = stacked_batches(stacked_batches(iter(stream), n_critic), per_call)
      while step < config.num_steps:
        runner = runners[phase_of(step)]
        state, metrics = runner(state, next(batches))
        prev, step = step, step + per_call
        crossed = lambda every: every > 0 and step // every > prev // every  # noqa: E731
        window.append(metrics)
        n_window += per_call
        pbar.update(per_call)
        if crossed(config.log_every) or step == config.num_steps:
          means = {k: float(v) for k, v in jax.device_get(
              jax.tree.map(lambda *xs: jnp.mean(jnp.stack(xs)), *window)).items()}
          if not all(np.isfinite(v) for v in means.values()):
            bad = ", ".join(f"{k}={v}" for k, v in means.items() if not np.isfinite(v))
            raise TrainingError(_nan_message(step, ckpt, bad))
          if diverged is None:
            diverged = _divergence(means)
            if diverged and main:
              pbar.write(f"warning: the run has diverged at step {step} ({diverged}: losses "
                         f"this large mean it learns nothing); lower --config.learning_rate",
                         file=sys.stderr)
          now = time.perf_counter()
          record = {"step": step, **means, "steps_per_sec": n_window / (now - t_window)}
          log.append(record)
          for k, v in record.items():
            if k != "step":
              writer.scalar(k, v, step)
          pbar.set_postfix(d_loss=f"{means['d_loss']:.3f}", g_loss=f"{means['g_loss']:.3f}",
                           refresh=False)
          window, t_window, n_window = [], now, 0
        if crossed(config.sample_every):
          run_dir.plots(log.history)
        due = [h for h in hooks if crossed(h.every)]
        if due:
          for h in due:
            ran_at[id(h)] = step
          run_hooks(step, lambda h: h in due)
        if crossed(config.checkpoint_every):
          save_checkpoint()
        if signals.signum is not None:
          save_checkpoint()
          ckpt.wait()
          name = signal.Signals(signals.signum).name
          raise Interrupted(signals.signum,
                            f"{name} at step {step}: checkpoint saved in {ckpt.directory}; "
                            f"run the same command again to resume")
    save_checkpoint()
    # Periodic hooks run once more at the final step (unless they just did), then end.
    run_hooks(step, lambda h: h.every > 0 and ran_at.get(id(h)) != step)
    run_dir.plots(log.history)
    plain = ema.averaged(runner.plain(state))
    for hook in hooks:
      for artefact in hook.end(plain, step, log.history):
        line = artefact if isinstance(artefact, str) else run_dir.keep(artefact)
        if line:
          summary.append(line)
  finally:
    pbar.close()
    writer.flush()
    ckpt.close()
    if best is not None:
      best.ckpt.close()

  final_state = runner.plain(state)
  if jax.process_count() > 1:  # every process must end with the same parameters
    from jax.experimental import multihost_utils
    multihost_utils.assert_equal(jax.device_get((final_state.g_params, final_state.d_params)),
                                 "the processes ended with different parameters")
  if not main:
    return final_state
  elapsed = time.perf_counter() - t_start
  trained = step - start
  print(f"\ntrained steps {start} -> {step} in {elapsed:.1f} s"
        + (f" ({trained / elapsed:.1f} steps/s)" if trained else ""))
  train_records = [r for r in log.history if "d_loss" in r]
  if train_records:
    last = train_records[-1]
    acc = (f"  D acc real {last['d_real_acc']:.3f} fake {last['d_fake_acc']:.3f}"
           if "d_real_acc" in last and "d_fake_acc" in last else "")
    print(f"final: d_loss {last['d_loss']:.4f}  g_loss {last['g_loss']:.4f}{acc}")
  print(f"checkpoints  {ckpt.directory}  (steps {ckpt.all_steps()})")
  if best is not None and best.record is not None:
    print(f"best         {best.ckpt.directory}  (step {best.record['step']}, FID {best.record['fid']:.2f})")
  print(f"run          {workdir}")
  for line in summary:
    print(line)
  pictures = run_dir.plots(log.history)
  print(f"plots        {', '.join(pictures) or '(none: no losses logged)'}")
  print(f"metrics      {log.path}")
  print(f"tensorboard  tensorboard --logdir {os.path.join(workdir, 'tensorboard')}")
  return final_state


# A logged loss beyond this magnitude means the run has diverged: no objective of jaxgan's reaches
# it while learning (the WGAN critic's values stay within a few thousand on image data).
DIVERGED = 1e6


def _divergence(means: dict) -> str | None:
  """What shows a diverged run in a logging window's means (``"g_loss 3e+12"``), or None."""
  big = [f"{k} {v:.3g}" for k, v in means.items() if k.endswith("loss") and abs(v) > DIVERGED]
  return ", ".join(big) or None


def _newest_whole(ckpt: Checkpointer, main: bool) -> int | None:
  """The step a run resumes from: the newest whole checkpoint. Newer damaged ones are set aside
  (moved to ``checkpoints.damaged/``, never deleted) and said; none whole is one clear error that
  moves nothing."""
  step, damaged = ckpt.newest_whole()
  if damaged and step is None:
    listing = "; ".join(f"step {s}: {why}" for s, why in damaged)
    raise CheckpointError(f"no checkpoint in {ckpt.directory} can be read ({listing}); move that "
                          f"directory away to start over, or use another --workdir")
  for s, why in damaged:
    if main:
      where = ckpt.set_aside(s)
      print(f"warning: checkpoint step {s} is damaged: {why}; moved to {where}; resuming from "
            f"step {step}", file=sys.stderr)
  if damaged and jax.process_count() > 1:  # every process sees the same steps before training
    from jax.experimental import multihost_utils
    multihost_utils.sync_global_devices("jaxgan: damaged checkpoints set aside")
    ckpt.reload()
  return step


def _nan_message(step: int, ckpt: Checkpointer, what: str) -> str:
  last = ckpt.latest_step()
  kept = (f"the last good checkpoint (step {last}) in {ckpt.directory} is kept"
          if last is not None else "no checkpoint had been written yet")
  return (f"non-finite {what} at step {step}; training stopped and nothing was saved from it "
          f"({kept}). Lower --config.learning_rate, or check the data and the model.")
