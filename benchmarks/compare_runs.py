"""Compares the logged losses and speed of runs made twice (e.g. under two jax versions).

Each argument pair is two workdirs of the same recipe and settings; for each pair it prints the
number of logged steps compared, the largest absolute and relative difference of every loss over
them, the first step where a loss differs by more than ``--rtol``, and the median steps/s of
both. Used to check a jax release against another::

    for v in 0.10.1 0.10.2; do                       # one venv per version, jaxgan installed in each
      for r in gan_mnist dcgan_fmnist wgangp_fmnist; do
        venv-$v/bin/python train.py --config configs/$r.py --workdir runs/jax-$v/$r \\
            --config.num_steps=200 --config.log_every=1 --config.num_devices=1
      done
    done
    python benchmarks/compare_runs.py runs/jax-0.10.1 runs/jax-0.10.2 [--rtol 1e-4]
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np


def records(workdir: str) -> dict[int, dict]:
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    rows = [json.loads(line) for line in f if line.strip()]
  return {r["step"]: r for r in rows if "d_loss" in r}


def compare(a: str, b: str, rtol: float) -> dict:
  ra, rb = records(a), records(b)
  steps = sorted(set(ra) & set(rb))
  keys = sorted(k for k in ra[steps[0]] if k.endswith("loss")) if steps else []
  out = {"steps": len(steps), "losses": {}, "first_divergence": None,
         "steps_per_sec": [float(np.median([r["steps_per_sec"] for r in rs.values()]))
                           for rs in (ra, rb)]}
  for k in keys:
    x = np.array([ra[s][k] for s in steps])
    y = np.array([rb[s][k] for s in steps])
    diff = np.abs(x - y)
    rel = diff / np.maximum(np.abs(x), 1e-8)
    out["losses"][k] = {"max_abs": float(diff.max()), "max_rel": float(rel.max())}
    bad = np.nonzero(rel > rtol)[0]
    if bad.size and (out["first_divergence"] is None or steps[bad[0]] < out["first_divergence"]):
      out["first_divergence"] = int(steps[bad[0]])
  return out


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("root_a")
  parser.add_argument("root_b")
  parser.add_argument("--rtol", type=float, default=1e-4)
  args = parser.parse_args(argv)
  names = sorted(set(os.listdir(args.root_a)) & set(os.listdir(args.root_b)))
  print(f"| recipe | logged steps | largest loss difference (abs / rel) | first step beyond "
        f"rtol {args.rtol:g} | steps/s {os.path.basename(args.root_a.rstrip('/'))} | steps/s "
        f"{os.path.basename(args.root_b.rstrip('/'))} |")
  print("|---|---|---|---|---|---|")
  for name in names:
    a, b = os.path.join(args.root_a, name), os.path.join(args.root_b, name)
    if not (os.path.exists(os.path.join(a, "metrics.jsonl")) and
            os.path.exists(os.path.join(b, "metrics.jsonl"))):
      continue
    c = compare(a, b, args.rtol)
    worst = max(c["losses"].items(), key=lambda kv: kv[1]["max_rel"], default=(None, None))
    detail = (f"{worst[0]} {worst[1]['max_abs']:.2g} / {worst[1]['max_rel']:.2g}"
              if worst[0] else "-")
    print(f"| {name} | {c['steps']} | {detail} | {c['first_divergence'] or 'none'} | "
          f"{c['steps_per_sec'][0]:.1f} | {c['steps_per_sec'][1]:.1f} |")
  return 0


if __name__ == "__main__":
  sys.exit(main())
