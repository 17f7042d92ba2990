"""Data-parallel scaling and ``steps_per_call`` fusion of the train step.

Two tables:

1. steps/s and images/s of the fused D+G step against the device count
   (1, 2, 4, 8 by default; ``--parallel shard_map|pmap``) at a fixed global batch;
   one device is the plain jitted step, as in the trainer.
2. The MLP GAN with ``steps_per_call`` = 1, 4, 16 on one device: the gain of fusing
   small, dispatch-bound steps into one call.

On a CPU the devices are forced host devices
(``--xla_force_host_platform_device_count``, set by this script before jax is
imported) that share the same cores: table 1 then shows the overhead of the
collectives and the split, not a speed-up. On a GPU/TPU host it measures the real
scaling. Synthetic images of the recipe's shape (the input pipeline is measured
by ``bench_train.py``).

    python benchmarks/bench_parallel.py [--models gan,dcgan] [--batch 256] [--devices 1,2,4,8]
        [--parallel shard_map] [--steps_per_call 1,4,16] [--seconds 3]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shlex
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
_FORCE = "--xla_force_host_platform_device_count"


def _force_host_devices(n: int) -> None:
  flags = os.environ.get("XLA_FLAGS", "")
  if _FORCE not in flags:
    os.environ["XLA_FLAGS"] = f"{flags} {_FORCE}={n}".strip()


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--models", default="gan,dcgan")
  parser.add_argument("--batch", type=int, default=256, help="global batch size")
  parser.add_argument("--devices", default="1,2,4,8")
  parser.add_argument("--parallel", default="shard_map", choices=("shard_map", "pmap"))
  parser.add_argument("--steps_per_call", default="1,4,16")
  parser.add_argument("--spc_batch", type=int, default=64, help="batch of the steps_per_call table")
  parser.add_argument("--seconds", type=float, default=3.0, help="timed window per row")
  args = parser.parse_args(argv)
  counts = [int(n) for n in args.devices.split(",")]
  _force_host_devices(max(counts))  # only takes effect on the CPU backend

  import jax
  import numpy as np
  sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
  sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
  from bench_train import OtherLoad, cpu_name, load_config
  from jaxgan import families, parallel
  from jaxgan.trainer import build_state

  print("$ " + " ".join(["python", *(shlex.quote(a) for a in sys.argv)]))
  print(f"backend: {jax.default_backend()}  devices: {jax.local_device_count()} x "
        f"{jax.devices()[0].device_kind}  host: {cpu_name()}, {os.cpu_count()} CPUs  jax {jax.__version__}")

  def run(step, state, batch, seconds):
    state, metrics = step(state, batch)            # compile
    jax.block_until_ready((state, metrics))
    for _ in range(2):
      state, metrics = step(state, batch)
    jax.block_until_ready(state)
    n, t0 = 0, time.perf_counter()
    with OtherLoad() as load:
      while True:
        state, metrics = step(state, batch)
        n += 1
        if n % 5 == 0:
          jax.block_until_ready(state)
          if time.perf_counter() - t0 >= seconds:
            break
    return n / (time.perf_counter() - t0), load.cores

  rng = np.random.default_rng(0)
  print(f"\n### Device count ({args.parallel}, global batch {args.batch})\n")
  print("| model | devices | per-device batch | steps/s | images/s | vs 1 device | other load |")
  print("|---|---:|---:|---:|---:|---:|---:|")
  for name in args.models.split(","):
    config = load_config(name)
    config.batch_size = args.batch
    shape = (config.image_size, config.image_size, 1)
    state0 = build_state(config, shape)
    options = families.for_config(config).step_options(config)
    host = {"image": rng.uniform(-1, 1, (args.batch, *shape)).astype(np.float32)}
    base = None
    for n in counts:
      if n > jax.local_device_count() or args.batch % n:
        continue
      if n == 1:
        step = parallel.make_train_step(config.loss, **options)
        state, batch = state0, jax.device_put(host)
      else:
        dp = parallel.DataParallel(mode=args.parallel, devices=jax.local_devices()[:n])
        step = dp.train_step(config.loss, **options)
        state, batch = dp.replicate(state0), dp.shard(host)
      sps, load = run(step, state, batch, args.seconds)
      base = base or sps
      print(f"| {name} | {n} | {args.batch // n} | {sps:.2f} | {sps * args.batch:.0f} | "
            f"{sps / base:.2f}x | {load:.2f} |", flush=True)

  print(f"\n### steps_per_call (MLP GAN, batch {args.spc_batch}, one device)\n")
  print("| steps_per_call | steps/s | vs 1 | other load |")
  print("|---:|---:|---:|---:|")
  config = load_config("gan")
  config.batch_size = args.spc_batch
  shape = (config.image_size, config.image_size, 1)
  state0 = build_state(config, shape)
  options = families.for_config(config).step_options(config)
  base = None
  for k in [int(k) for k in args.steps_per_call.split(",")]:
    images = rng.uniform(-1, 1, (args.spc_batch, *shape)).astype(np.float32)
    batch = {"image": np.stack([images] * k) if k > 1 else images}
    step = parallel.make_train_step(config.loss, steps_per_call=k, **options)
    calls, load = run(step, state0, jax.device_put(batch), args.seconds)
    base = base or calls * k
    print(f"| {k} | {calls * k:.1f} | {calls * k / base:.2f}x | {load:.2f} |", flush=True)
  print("\nsteps/s: back-to-back calls for >= --seconds, synchronised every 5 calls. "
        "'other load': CPU cores other processes used meanwhile (only rows near 0 are clean).")
  return 0


if __name__ == "__main__":
  sys.exit(main())
