"""Stride-1 convolution weight gradients on XLA:CPU: XLA's own against batch chunks.

Two parts:

* per layer, for the 3x3 and 1x1 convolutions of the SNGAN ResNets at ``--batch``: the
  forward convolution, XLA's weight gradient and :func:`jaxgan.models.layers.conv_stride1_adjoint`'s
  (the same gradient summed over batch chunks), median of ``--repeats`` synchronised calls,
  and the largest difference between the two gradients relative to their scale;
* per recipe of ``--configs``: the jitted train step with the backend's formulation
  (``"auto"``) and with XLA's convolution everywhere (``"xla"``), timed in alternating windows
  of ``--steps`` steps so that both see the same load. ``--data synthetic`` (the default)
  feeds the step one random image batch at ``--step_batch``; ``--data real`` one batch of the
  recipe's own data at the recipe's batch size (what a translation or StackGAN step needs:
  paired domains, sentence embeddings).

    python benchmarks/bench_conv.py [--configs configs/sngan_fmnist.py] [--batch 128]
        [--steps 2] [--windows 3] [--repeats 5]
    python benchmarks/bench_conv.py --layers 0 --data real \
        --configs configs/began_fmnist.py,configs/cyclegan_mnist.py
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# (H = W, Cin, Cout, kernel side): the 64-channel SNGAN D and G of configs/sngan_fmnist.py.
LAYERS = [(32, 1, 64, 3), (32, 64, 64, 3), (32, 64, 64, 1), (16, 64, 64, 3), (8, 64, 64, 3)]


@contextlib.contextmanager
def xla_convolutions():
  """Within the block, ``resolve_conv_impl("auto")`` is XLA's convolution on every backend
  (trace the step inside it)."""
  from jaxgan.models import layers
  saved = dict(layers._AUTO_CONV)
  layers._AUTO_CONV.clear()
  try:
    yield
  finally:
    layers._AUTO_CONV.update(saved)


def _median_s(fn, *args, repeats: int) -> float:
  import jax
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - t)
  return statistics.median(times)


def bench_layers(batch: int, repeats: int) -> None:
  import jax
  import numpy as np
  from jax import lax
  from jaxgan.models import layers
  print(f"{'layer':<22} {'forward':>9} {'XLA dW':>9} {'chunked dW':>11} {'speed-up':>9} {'rel diff':>9}")
  rng = np.random.default_rng(0)
  for side, cin, cout, k in LAYERS:
    pad = ((k - 1) // 2,) * 2
    padding = (pad, pad)
    x = jax.device_put(rng.standard_normal((batch, side, side, cin)).astype(np.float32))
    w = jax.device_put(0.05 * rng.standard_normal((k, k, cin, cout)).astype(np.float32))
    g = jax.device_put(rng.standard_normal((batch, side, side, cout)).astype(np.float32))
    xla = lambda x, w: lax.conv_general_dilated(x, w, (1, 1), padding,
                                                dimension_numbers=("NHWC", "HWIO", "NHWC"))
    ours = lambda x, w: layers.conv_stride1_adjoint(x, w, padding)
    forward = jax.jit(xla)
    dw_xla = jax.jit(lambda x, w, g: jax.vjp(lambda w: xla(x, w), w)[1](g)[0])
    dw_ours = jax.jit(lambda x, w, g: jax.vjp(lambda w: ours(x, w), w)[1](g)[0])
    a, b = np.asarray(dw_xla(x, w, g), np.float64), np.asarray(dw_ours(x, w, g), np.float64)
    diff = float(np.max(np.abs(a - b)) / np.max(np.abs(a)))
    t_f = _median_s(forward, x, w, repeats=repeats)
    t_x = _median_s(dw_xla, x, w, g, repeats=repeats)
    t_o = _median_s(dw_ours, x, w, g, repeats=repeats)
    name = f"{side}x{side}x{cin}->{cout} {k}x{k}"
    print(f"{name:<22} {1e3 * t_f:>7.0f}ms {1e3 * t_x:>7.0f}ms {1e3 * t_o:>9.0f}ms "
          f"{t_x / t_o:>8.1f}x {diff:>9.1e}", flush=True)


def _real_step_and_state(config):
  """The recipe's jitted step, its fresh state, and the first batch of its own data (stacked
  ``n_critic`` deep), built as :mod:`jaxgan.trainer` builds them."""
  import jax
  from jaxgan import families
  from jaxgan.trainer import stacked_batches
  family = families.check(config)
  data = family.data(config)
  family.check_data(config, data)
  state = family.prepare_state(
      config, family.build_state(config, data.example_shape, data.num_classes), data)
  n_critic = family.step_options(config)["n_critic"]
  batch = next(stacked_batches(iter(data.stream(config.batch_size, config.seed)), n_critic))
  return jax.jit(family.step_body(config)), state, batch


def bench_steps(paths: list[str], batch: int, steps: int, windows: int, real: bool) -> None:
  import jax
  from bench_precision import _config, _step_and_state
  for path in paths:
    runs = {}
    for impl in ("auto", "xla"):
      with xla_convolutions() if impl == "xla" else contextlib.nullcontext():
        config = _config(path, None if real else batch, "float32")
        step, state, data = (_real_step_and_state if real else _step_and_state)(config)
        t = time.perf_counter()
        state, _ = step(state, data)        # traced and compiled here, inside the block
        jax.block_until_ready(state)
      runs[impl] = [step, state, data, [], time.perf_counter() - t]
    for _ in range(windows):
      for run in runs.values():
        step, state, data, times, _ = run
        t = time.perf_counter()
        for _ in range(steps):
          state, _ = step(state, data)
        jax.block_until_ready(state)
        times.append((time.perf_counter() - t) / steps)
        run[1] = state
    median = {impl: statistics.median(r[3]) for impl, r in runs.items()}
    print(f"{path} batch {config.batch_size}: auto {median['auto']:.2f} s/step, XLA's convolution "
          f"{median['xla']:.2f} s/step ({median['xla'] / median['auto']:.1f}x; compile + first "
          f"step {runs['auto'][4]:.0f} s / {runs['xla'][4]:.0f} s)", flush=True)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--configs", default="configs/sngan_fmnist.py",
                      help="comma-separated recipes whose train step to time ('' = none)")
  parser.add_argument("--batch", type=int, default=128, help="batch of the per-layer timings")
  parser.add_argument("--step_batch", type=int, default=64, help="batch of the train steps")
  parser.add_argument("--steps", type=int, default=2, help="steps per timed window")
  parser.add_argument("--windows", type=int, default=3, help="timed windows per formulation")
  parser.add_argument("--repeats", type=int, default=5, help="timed calls per layer measurement")
  parser.add_argument("--layers", type=int, default=1, help="0: skip the per-layer timings")
  parser.add_argument("--data", choices=("synthetic", "real"), default="synthetic",
                      help="the train steps' batch: random images at --step_batch, or the "
                           "recipe's own data at its batch size")
  args = parser.parse_args(argv)
  import jax
  print(f"backend {jax.default_backend()}, jax {jax.__version__}, {os.cpu_count()} CPUs")
  if args.layers:
    bench_layers(args.batch, args.repeats)
  bench_steps([p.strip() for p in args.configs.split(",") if p.strip()], args.step_batch,
              args.steps, args.windows, args.data == "real")
  return 0


if __name__ == "__main__":
  sys.exit(main())
