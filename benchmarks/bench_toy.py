"""Mode collapse on the 2-D ring and grid against PacGAN's Table 1, 10 seeds per row in one program.

Every row trains ``--seeds`` independent runs at once (:class:`jaxgan.families.toy.MultiSeed`:
``jax.vmap`` over the whole GANState, data sampled inside the compiled program) and reports
mean ± standard error over the seeds of the VEEGAN / PacGAN mode metrics on 2,500 samples
(:mod:`jaxgan.metrics.modes`): modes covered, % high-quality samples, reverse KL.

Rows (each on ``ring`` and ``grid``):

* ``gan``: the non-saturating GAN, D without packing;
* ``pacgan2`` / ``pacgan4``: the same with ``discriminator.pack = 2 / 4``;
* ``stable``: our best stable recipe (``--stable``, see STABLE below).

Architecture: PacGAN's (Lin et al., 2018; the authors' released configuration of Table 1: G with
four hidden layers of 400 ReLU units with BatchNorm and a 2-D N(0, 1) latent, D with three hidden
maxout layers of 200 units and 5 pieces, weights N(0, 0.02), Adam(1e-4, b1 0.8), batch 100,
400 epochs of a fixed 100,000-sample set = 400,000 iterations) scaled to what a 2-core CPU can
run for 80 runs: G four hidden layers of ``--g_width`` (128) ReLU units with BatchNorm, D three
LeakyReLU(0.2) layers of ``--d_width`` (128), no maxout (``--d_maxout 5`` for PacGAN's); the packed
discriminators keep the widths (only their first layer grows, 2m inputs). Adam(``--lr`` 1e-4,
``--b1`` 0.8; ``--decay_steps`` N: linearly to 0 over the last N steps), batch 100, ``--steps``
generator updates (the paper: 400,000).

    nice -n 10 python benchmarks/bench_toy.py [--datasets ring,grid] [--rows gan,pacgan2,pacgan4,stable]
        [--seeds 10] [--steps 10000] [--stable NAME] [--set KEY=VALUE ...] > table.md
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

PUBLISHED = {  # PacGAN (Lin et al., 2018), Table 1, 10 trials: (modes ± se, high quality %, reverse KL)
    ("ring", "GAN"): ("6.3±0.5", "98.2%", "0.45"),
    ("ring", "PacGAN2"): ("7.9±0.1", "95.6%", "0.07"),
    ("ring", "PacGAN4"): ("7.8±0.1", "95.9%", "0.07"),
    ("grid", "GAN"): ("17.3±0.8", "94.8%", "0.70"),
    ("grid", "PacGAN2"): ("23.8±0.7", "91.3%", "0.13"),
    ("grid", "PacGAN4"): ("24.8±0.2", "93.6%", "0.04"),
}

# Candidate "stable" recipes: config overrides on top of the benchmark's base ("wgangp" trains
# n_critic = 5 critic updates per step on stacked [5, B, 2] point batches).
STABLE = {
    "wgangp": {"loss": "wasserstein", "gp_weight": 10.0, "n_critic": 5, "b1": 0.5, "b2": 0.9},
    "r1": {"r1_weight": 1.0},
    # A light R1 (gamma 0.01): a mode of std 0.01-0.05 needs a sharp D, which gamma 1 forbids.
    "r1_small": {"r1_weight": 0.01},
    "pacgan4_r1": {"discriminator.pack": 4, "r1_weight": 1.0},
    "pacgan4_r1_ttur": {"discriminator.pack": 4, "r1_weight": 1.0, "d_learning_rate": 4e-4},
    # The toy recipes' generator: LeakyReLU(0.2), no BatchNorm (its batch statistics move the points).
    "lrelu": {"generator.batchnorm": False, "generator.negative_slope": 0.2},
    "pacgan2_lrelu": {"discriminator.pack": 2, "generator.batchnorm": False,
                      "generator.negative_slope": 0.2},
}

ROW_NAMES = {"gan": "GAN", "pacgan2": "PacGAN2", "pacgan4": "PacGAN4"}


def base_config(dataset: str, args) -> "ml_collections.ConfigDict":
  from jaxgan.families.toy import toy_config
  c = toy_config(dataset)
  c.generator.hidden = (args.g_width,) * 4
  c.generator.batchnorm = True
  c.generator.negative_slope = 0.0
  c.discriminator.hidden = (args.d_width,) * 3
  c.discriminator.maxout = args.d_maxout
  c.learning_rate = args.lr
  c.b1, c.b2 = args.b1, 0.999
  c.batch_size = 100
  c.num_steps = args.steps
  c.decay_steps = args.decay_steps
  return c


def row_config(dataset: str, row: str, stable: str, args):
  c = base_config(dataset, args)
  if row == "pacgan2":
    c.discriminator.pack = 2
  elif row == "pacgan4":
    c.discriminator.pack = 4
  elif row == "stable":
    for key, value in STABLE[stable].items():
      _override(c, key, value)
  for item in args.set:
    key, value = parse_override(item)
    _override(c, key, value)
  return c


def parse_override(item: str):
  """``"key.sub=value"`` -> ``("key.sub", value)``, the value read as a Python literal
  (``2``, ``3e-3``, ``False``, ``(64, 64)``); a bare word stays a string."""
  import ast
  key, sep, text = item.partition("=")
  if not sep or not key:
    raise SystemExit(f"--set expects KEY=VALUE (e.g. --set n_critic=2), got {item!r}")
  try:
    value = ast.literal_eval(text)
  except (ValueError, SyntaxError):
    value = text
  return key.strip(), value


def _override(config, key: str, value) -> None:
  """:func:`jaxgan.config.override`, an unknown key stopping the script with the keys that exist."""
  from jaxgan.config import override
  from jaxgan.errors import ConfigError
  try:
    override(config, {key: value})
  except ConfigError as e:
    raise SystemExit(f"--set {key}: {e}") from None


def _cell(x, fmt: str) -> str:
  """``mean±standard error`` of the per-seed values ``x``."""
  se = x.std(ddof=1) / math.sqrt(len(x)) if len(x) > 1 else float("nan")
  return f"{fmt.format(x.mean())}±{fmt.format(se)}"


def parse_args(argv=None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--datasets", default="ring,grid")
  parser.add_argument("--rows", default="gan,pacgan2,pacgan4,stable")
  parser.add_argument("--stable", default="pacgan4_r1", choices=sorted(STABLE))
  parser.add_argument("--seeds", type=int, default=10)
  parser.add_argument("--steps", type=int, default=10000)
  parser.add_argument("--chunk", type=int, default=1000, help="steps per compiled call")
  parser.add_argument("--g_width", type=int, default=128)
  parser.add_argument("--d_width", type=int, default=128)
  parser.add_argument("--d_maxout", type=int, default=1,
                      help="maxout pieces of D's hidden layers (PacGAN: 5; 1 = LeakyReLU)")
  parser.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate of G and D")
  parser.add_argument("--b1", type=float, default=0.8, help="Adam beta1")
  parser.add_argument("--decay_steps", type=int, default=0,
                      help="the last N steps take the learning rates linearly to 0 (0 = constant)")
  parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="a config override applied to every row after its own (repeatable), "
                           "e.g. --set n_critic=2 --set discriminator.pack=2")
  parser.add_argument("--json", default=None,
                      help="also write every row's per-seed modes, high-quality % and reverse KL here")
  return parser.parse_args(argv)


def main(argv=None) -> int:
  args = parse_args(argv)
  sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
  import jax
  import numpy as np
  from jaxgan.families.toy import MultiSeed

  results = {}
  for dataset in args.datasets.split(","):
    for row in args.rows.split(","):
      config = row_config(dataset, row, args.stable, args)
      ms = MultiSeed(config, range(args.seeds))
      t0 = time.perf_counter()
      states = ms.init()
      done = 0
      while done < args.steps:
        n = min(args.chunk, args.steps - done)
        states, metrics = ms.run(states, n)
        done += n
        scores = {k: np.asarray(v) for k, v in jax.device_get(ms.mode_metrics(states)).items()}
        print(f"# {dataset} {row} step {done}: modes {scores['modes'].mean():.2f} "
              f"hq {scores['high_quality'].mean():.1f} kl {scores['reverse_kl'].mean():.3f} "
              f"d_loss {float(np.mean(metrics['d_loss'])):.3f} "
              f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
      results[(dataset, row)] = scores
      print(f"# done {dataset} {row}: modes {_cell(scores['modes'].astype(float), '{:.1f}')} "
            f"hq {_cell(scores['high_quality'], '{:.1f}')} kl {_cell(scores['reverse_kl'], '{:.2f}')}",
            file=sys.stderr, flush=True)

  decay = f" (the last {args.decay_steps} decaying to lr 0)" if args.decay_steps else ""
  extra = f"; every row with {', '.join(args.set)}" if args.set else ""
  print(f"\n{args.seeds} seeds per row, {args.steps} steps{decay}, lr {args.lr}, b1 {args.b1}, "
        f"batch 100, mean ± standard error; "
        f"stable = {args.stable} {STABLE[args.stable]}{extra}\n")
  for dataset in args.datasets.split(","):
    total = 8 if dataset == "ring" else 25
    print(f"| {dataset} | modes (of {total}) | high-quality % | reverse KL |")
    print("|---|---|---|---|")
    for row in args.rows.split(","):
      name = ROW_NAMES.get(row, f"stable: {args.stable}")
      if (dataset, name) in PUBLISHED:
        m, hq, kl = PUBLISHED[(dataset, name)]
        print(f"| {name} (published) | {m} | {hq} | {kl} |")
      s = results[(dataset, row)]
      print(f"| {name} (jaxgan) | {_cell(s['modes'].astype(float), '{:.1f}')} | "
            f"{_cell(s['high_quality'], '{:.1f}')} | {_cell(s['reverse_kl'], '{:.2f}')} |")
    print()
  if args.json:
    rows = [{"dataset": d, "row": r, "seeds": args.seeds, "steps": args.steps,
             **{k: np.asarray(v, float).tolist() for k, v in results[(d, r)].items()}}
            for d, r in results]
    pathlib.Path(args.json).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1))
  return 0


if __name__ == "__main__":
  sys.exit(main())
