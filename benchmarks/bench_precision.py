"""float32 against bfloat16 compute (``config.dtype``): the fused train step of a recipe, timed
in alternating windows (so that both see the same load on a shared machine).

For each recipe of ``--configs``, builds the trainer's state and jitted step twice (``dtype``
float32 and bfloat16, parameters float32 in both), compiles both, then times ``--windows``
windows of ``--steps`` steps of each in turn on one resident random batch, and prints the
median step time of each and their ratio.

    python benchmarks/bench_precision.py --configs configs/dcgan_fmnist.py,configs/sngan_fmnist.py \
        [--steps 5] [--windows 5] [--batch 64]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _config(path: str, batch: int | None, dtype: str):
  """The recipe's config on one device in ``dtype``, at batch ``batch`` (None: the recipe's)."""
  spec = importlib.util.spec_from_file_location("recipe", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config()
  config.dtype, config.num_devices = dtype, 1
  if batch is not None:
    config.batch_size = batch
  return config


def _step_and_state(config):
  import jax
  import numpy as np
  from jaxgan import families
  family = families.check(config)
  side = config.image_size
  channels = 3 if config.dataset in ("cifar10", "celeb_a") else 1
  state = family.build_state(config, (side, side, channels), 10)
  n_critic = family.step_options(config)["n_critic"]
  shape = ((n_critic,) if n_critic > 1 else ()) + (config.batch_size, side, side, channels)
  batch = {"image": np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32),
           "label": np.zeros(shape[:-3], np.int32)}
  step = jax.jit(family.step_body(config))
  return step, state, batch


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--configs", default="configs/dcgan_fmnist.py,configs/sngan_fmnist.py")
  parser.add_argument("--steps", type=int, default=5, help="steps per timed window")
  parser.add_argument("--windows", type=int, default=5, help="timed windows per dtype")
  parser.add_argument("--batch", type=int, default=64)
  args = parser.parse_args(argv)
  import jax
  print(f"backend {jax.default_backend()}, {jax.devices()[0].device_kind}, jax {jax.__version__}, "
        f"{os.cpu_count()} CPUs")
  for path in [p.strip() for p in args.configs.split(",") if p.strip()]:
    runs = {}
    for dtype in ("float32", "bfloat16"):
      step, state, batch = _step_and_state(_config(path, args.batch, dtype))
      t = time.perf_counter()
      state, _ = step(state, batch)
      jax.block_until_ready(state)
      runs[dtype] = [step, state, batch, [], time.perf_counter() - t]
    for _ in range(args.windows):
      for dtype, run in runs.items():
        step, state, batch, times, _ = run
        t = time.perf_counter()
        for _ in range(args.steps):
          state, _ = step(state, batch)
        jax.block_until_ready(state)
        times.append((time.perf_counter() - t) / args.steps)
        run[1] = state
    median = {d: statistics.median(r[3]) for d, r in runs.items()}
    print(f"{path} batch {args.batch}: float32 {1e3 * median['float32']:.0f} ms/step, bfloat16 "
          f"{1e3 * median['bfloat16']:.0f} ms/step (bfloat16 / float32 = "
          f"{median['bfloat16'] / median['float32']:.2f}; compile + first step "
          f"{runs['float32'][4]:.0f} s / {runs['bfloat16'][4]:.0f} s)", flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
