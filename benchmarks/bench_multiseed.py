"""N seeds of a recipe in one vmapped program (:class:`jaxgan.MultiSeed`) against N runs in turn.

For each N of ``--seeds``, times ``--steps`` train steps of every seed both ways, after one
warm-up call each (compilation excluded; both read their batches inside the timing), and prints seed-steps per second and the speed-up.
"In turn" is the trainer's one-device program (the family's jitted step) run for each seed
after the other; "one program" is :meth:`jaxgan.MultiSeed.run`. Both read each seed's real
data stream, as ``train.py --config.seed=s`` does.

    JAXGAN_MANUAL_DIR=/path/to/raw python benchmarks/bench_multiseed.py \
        --config configs/gan_mnist.py --seeds 1,4,8 --steps 200 [--set batch_size=64]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _config(path: str, sets: list[str]):
  import importlib.util
  spec = importlib.util.spec_from_file_location("recipe", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config()
  for item in sets:
    key, value = item.split("=", 1)
    import ast
    config[key] = ast.literal_eval(value) if value[:1] in "0123456789-([" else value
  config.num_devices = 1
  return config


def _block(tree):
  import jax
  jax.block_until_ready(tree)
  return tree


def time_in_turn(runs, steps: int) -> float:
  """Seconds for ``steps`` steps of each seed, one seed after the other (compiled beforehand)."""
  import jax
  step = jax.jit(runs.family.step_body(runs.config), donate_argnums=(0,))
  stacked = runs.init()
  states = [runs.state(stacked, i) for i in range(runs.num_seeds)]
  _block(step(runs.state(stacked, 0), runs._batch(runs.seeds[0], 0)))  # compile
  t = time.perf_counter()
  for state, seed in zip(states, runs.seeds):
    for i in range(steps):   # each seed's batches read from its stream, as the trainer does
      state, metrics = step(state, runs._batch(seed, i))
    _block(metrics)
  return time.perf_counter() - t


def time_one_program(runs, steps: int) -> float:
  states, _ = runs.run(runs.init(), 1)  # compile
  _block(states)
  t = time.perf_counter()
  states, metrics = runs.run(states, steps)
  _block(metrics)
  return time.perf_counter() - t


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", default="configs/gan_mnist.py")
  parser.add_argument("--seeds", default="1,4,8", help="comma-separated numbers of seeds")
  parser.add_argument("--steps", type=int, default=200)
  parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
  args = parser.parse_args(argv)
  import jax

  from jaxgan.multiseed import MultiSeed
  config = _config(args.config, args.set)
  data = None
  print(f"{args.config}: batch {config.batch_size}, {args.steps} steps per seed, "
        f"{jax.devices()[0].device_kind}, {os.cpu_count()} CPUs, jax {jax.__version__}")
  print("| seeds | in turn (seed-steps/s) | one program (seed-steps/s) | speed-up |")
  print("|---|---|---|---|")
  for n in (int(x) for x in args.seeds.split(",")):
    runs = MultiSeed(config, seeds=range(n), data=data)
    data = runs.data
    in_turn = n * args.steps / time_in_turn(runs, args.steps)
    runs = MultiSeed(config, seeds=range(n), data=data)
    together = n * args.steps / time_one_program(runs, args.steps)
    print(f"| {n} | {in_turn:.0f} | {together:.0f} | {together / in_turn:.2f}x |", flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
