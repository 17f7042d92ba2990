"""Train-step speed of the recipes, alone and through the real input pipeline.

For every model and batch size: the compile time (first call), the median
time of one synchronised train step over ``--steps`` steps after warm-up,
images per second, and the throughput of the trainer's loop shape (steps
dispatched back to back, one sync at the end) twice: with one device-resident
batch ("step alone") and with batches from :class:`jaxgan.data.BatchStream`
over the real Fashion-MNIST ("end to end"); the difference is the input
pipeline's overhead.

    python benchmarks/bench_train.py [--models gan,dcgan] [--batches 64,256] [--steps 30]
        [--data_dir /tmp/tfdsdata] [--manual_dir /path/to/raw/files]
        [--set generator.upsample=subpixel --set discriminator.conv_impl=xla]

``--set key=value`` overrides a config entry for every model that has it (use
it to time one formulation against another). Models are built exactly as the
trainer builds them (``get_config()`` of the recipe, ``trainer.build_state``,
``steps.make_train_step``).
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import os
import pathlib
import platform
import shlex
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import jax  # noqa: E402
import numpy as np  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
MODELS = {"gan": "configs/gan_fmnist.py", "dcgan": "configs/dcgan_fmnist.py"}
BUSY = 0.2  # other processes' CPU cores above which a timing is flagged
MIN_WINDOW_S = 2.0  # shortest timed window of the back-to-back loops


def load_config(name_or_path: str):
  path = pathlib.Path(MODELS.get(name_or_path, name_or_path))
  if not path.is_absolute():
    path = REPO / path
  spec = importlib.util.spec_from_file_location(path.stem, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def apply_overrides(config, overrides: list[str]) -> list[str]:
  """Applies the ``a.b=value`` overrides that fit ``config``; returns those applied.

  An override fits if its key exists, or if it is ``generator.X`` /
  ``discriminator.X`` with ``X`` an attribute of the recipe's module.
  """
  from jaxgan.models import MODELS
  modules = dict(zip(("generator", "discriminator"), MODELS.get(config.model, (None, None))))
  applied = []
  for item in overrides:
    key, _, raw = item.partition("=")
    try:
      value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
      value = raw
    *parents, leaf = key.split(".")
    node = config
    for p in parents:
      node = node.get(p) if hasattr(node, "get") else None
      if node is None:
        break
    module = modules.get(parents[0]) if len(parents) == 1 else None
    fits = node is not None and (leaf in node or (
        module is not None and leaf in getattr(module, "__dataclass_fields__", {})))
    if fits:
      with node.unlocked() if hasattr(node, "unlocked") else _null():
        node[leaf] = value
      applied.append(item)
  return applied


class _null:
  def __enter__(self):
    return self

  def __exit__(self, *exc):
    return False


def cpu_name() -> str:
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or "unknown"


def formulation(config) -> str:
  """The up-sampling / convolution formulations a DCGAN resolves to here."""
  if config.model != "dcgan":
    return "-"
  from jaxgan.models import layers
  up = layers.resolve_upsample_impl(config.generator.get("upsample", "auto"))
  conv = layers.resolve_conv_impl(config.discriminator.get("conv_impl", "auto"))
  return f"G {up} / D {conv}"


class OtherLoad:
  """CPU cores used by *other* processes while the block runs (Linux; else 0).

  Timings on a shared machine are only meaningful when this stays near 0.
  """

  @staticmethod
  def _read():
    try:
      with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:8]]
      with open("/proc/self/stat") as f:
        own = f.read().rsplit(")", 1)[1].split()
    except OSError:
      return None
    busy = sum(fields) - fields[3] - fields[4]          # all but idle and iowait
    return busy, int(own[11]) + int(own[12])             # utime + stime of this process

  def __enter__(self):
    self.start, self.t = self._read(), time.perf_counter()
    return self

  def __exit__(self, *exc):
    end, dt = self._read(), time.perf_counter() - self.t
    self.cores = 0.0
    if self.start and end and dt > 0:
      ticks = (end[0] - self.start[0]) - (end[1] - self.start[1])
      self.cores = max(0.0, ticks / os.sysconf("SC_CLK_TCK") / dt)
    return False


def time_steps(step, state, batches, steps: int, sync_each: bool):
  """Runs ``steps`` steps; returns (state, per-step times or [total time])."""
  times = []
  t_all = time.perf_counter()
  for _ in range(steps):
    t = time.perf_counter()
    state, metrics = step(state, next(batches))
    if sync_each:
      jax.block_until_ready((state, metrics))
      times.append(time.perf_counter() - t)
  jax.block_until_ready(state)
  return state, times if sync_each else [time.perf_counter() - t_all]


def repeat(batch):
  while True:
    yield batch


def bench(name: str, config, batch_size: int, steps: int, data, warmup: int = 3) -> dict:
  from jaxgan import data as data_lib
  from jaxgan import families
  from jaxgan.steps import make_train_step
  from jaxgan.trainer import build_state, stacked_batches

  config.batch_size = batch_size
  options = families.for_config(config).step_options(config)
  n_critic = options.get("n_critic", 1)
  if data is not None:
    image_shape = data.images.shape[1:]
    stream = data_lib.BatchStream(data, batch_size, seed=config.seed)
    host_batch = stream.batch(0)
  else:  # no dataset: random images of the recipe's shape (no end-to-end numbers)
    image_shape = (config.image_size, config.image_size, 1)
    stream = None
    rng = np.random.default_rng(0)
    host_batch = {"image": rng.uniform(-1, 1, (batch_size, *image_shape)).astype(np.float32),
                  "label": np.zeros((batch_size,), np.int32)}
  if n_critic > 1:
    host_batch = {k: np.stack([v] * n_critic) for k, v in host_batch.items()}
  state = build_state(config, image_shape)
  step = make_train_step(config.loss, **options)
  batch = jax.device_put(host_batch)

  t = time.perf_counter()
  state, metrics = step(state, batch)
  jax.block_until_ready((state, metrics))
  compile_s = time.perf_counter() - t

  fixed = repeat(batch)
  state, _ = time_steps(step, state, fixed, warmup, sync_each=True)
  with OtherLoad() as load_median:
    state, times = time_steps(step, state, fixed, steps, sync_each=True)
  median_ms = 1e3 * float(np.median(times))
  # Throughput over >= MIN_WINDOW_S seconds, so that fast steps are not timed over a few ms.
  loop_steps = max(steps, int(np.ceil(MIN_WINDOW_S / (median_ms / 1e3))))
  with OtherLoad() as load_alone:
    state, (alone_s,) = time_steps(step, state, fixed, loop_steps, sync_each=False)
  loads = [load_median.cores, load_alone.cores]
  row = {"model": name, "batch": batch_size, "formulation": formulation(config),
         "compile_s": compile_s, "median_ms": median_ms,
         "images_per_s": batch_size * n_critic / (median_ms / 1e3),
         "loop_steps": loop_steps, "alone_sps": loop_steps / alone_s, "e2e_sps": None, "overhead_pct": None}
  if stream is not None:
    batches = stacked_batches(iter(stream), n_critic)
    state, _ = time_steps(step, state, batches, warmup, sync_each=False)
    with OtherLoad() as load_e2e:
      state, (e2e_s,) = time_steps(step, state, batches, loop_steps, sync_each=False)
    batches.close()
    loads.append(load_e2e.cores)
    row["e2e_sps"] = loop_steps / e2e_s
    row["overhead_pct"] = 100.0 * (e2e_s - alone_s) / alone_s
  row["other_load"] = max(loads)
  return row


def fmt(v, spec):
  return "n/a" if v is None else format(v, spec)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--models", default="gan,dcgan",
                      help=f"comma-separated names ({', '.join(MODELS)}) or config file paths")
  parser.add_argument("--batches", default="64,256", help="comma-separated batch sizes")
  parser.add_argument("--steps", type=int, default=30, help="timed steps per measurement (>= 30)")
  parser.add_argument("--data_dir", default=os.environ.get("TFDS_DATA_DIR", "/tmp/tfdsdata"),
                      help="tfds data dir holding (or to hold) the built dataset")
  parser.add_argument("--manual_dir", default=None,
                      help="raw files for an offline build (default: $JAXGAN_MANUAL_DIR)")
  parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                      help="config override applied to every model that has KEY, e.g. "
                           "generator.upsample=subpixel (repeatable)")
  args = parser.parse_args(argv)
  if args.steps < 30:
    parser.error("--steps must be >= 30")

  env = [f"{k}={shlex.quote(os.environ[k])}" for k in ("JAXGAN_MANUAL_DIR", "XLA_FLAGS")
         if os.environ.get(k)]
  print("$ " + " ".join([*env, "python", *(shlex.quote(a) for a in sys.argv)]))
  device = jax.devices()[0]
  print(f"backend: {jax.default_backend()}  device: {device.device_kind} x{jax.device_count()}  "
        f"host: {cpu_name()}, {os.cpu_count()} CPUs  jax {jax.__version__}")

  from jaxgan import data as data_lib
  rows, datasets = [], {}
  for name in [m.strip() for m in args.models.split(",") if m.strip()]:
    for batch_size in [int(b) for b in args.batches.split(",")]:
      config = load_config(name)
      applied = apply_overrides(config, args.overrides)
      key = (config.dataset, config.image_size)
      if key not in datasets:
        t = time.perf_counter()
        try:
          datasets[key] = data_lib.load(config.dataset, "train", config.image_size or None,
                                        data_dir=args.data_dir, manual_dir=args.manual_dir)
          print(f"data: {config.dataset} train {datasets[key].images.shape} loaded in "
                f"{time.perf_counter() - t:.1f} s from {args.data_dir}")
        except data_lib.DataError as e:
          print(f"data: {config.dataset} unavailable, no end-to-end numbers ({e})")
          datasets[key] = None
      row = bench(name, config, batch_size, args.steps, datasets[key])
      row["overrides"] = ", ".join(applied)
      rows.append(row)
      print(f"  done: {name} batch {batch_size}: {row['median_ms']:.1f} ms/step", flush=True)

  print()
  print("| model | batch | formulation | compile (s) | step median (ms) | images/s "
        "| step alone (steps/s) | end to end (steps/s) | pipeline overhead | other load |")
  print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
  for r in rows:
    overhead = "n/a" if r["overhead_pct"] is None else f"{r['overhead_pct']:+.1f} %"
    flag = " (!)" if r["other_load"] > BUSY else ""
    print(f"| {r['model']} | {r['batch']} | {r['formulation']} | {r['compile_s']:.2f} "
          f"| {r['median_ms']:.1f} | {r['images_per_s']:.0f} | {r['alone_sps']:.2f} "
          f"| {fmt(r['e2e_sps'], '.2f')} | {overhead} | {r['other_load']:.2f}{flag} |")
  if any(r["overrides"] for r in rows):
    print(f"\noverrides: {'; '.join(sorted({r['overrides'] for r in rows if r['overrides']}))}")
  print(f"\nmedian over {args.steps} synchronised steps after 3 warm-up steps; steps/s over "
        f">= {args.steps} back-to-back steps and >= {MIN_WINDOW_S:.0f} s (the trainer's loop), "
        f"one device batch vs BatchStream. "
        f"'other load': most CPU cores used by other processes during a timed block"
        + (f"; (!) rows (> {BUSY}) were disturbed: run again on a quiet machine."
           if any(r["other_load"] > BUSY for r in rows) else "."))
  return 0


if __name__ == "__main__":
  sys.exit(main())
