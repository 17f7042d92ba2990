"""One recipe over many seeds: train each seed with ``train.py``, then report a metric's mean and spread.

    python benchmarks/bench_seeds.py --config configs/sgan_mnist.py --seeds 0-9 \\
        --metric test_error --target '<=0.02' [--root runs/sgan_mnist_seeds] [--config.KEY=VALUE ...]

Seed ``s`` trains ``python train.py --config CONFIG --workdir ROOT/seed_s --config.seed=s``
(plus the ``--config.`` overrides given here), one seed after another, each in its own process,
exactly as a user would run it. A seed whose run has reached the protocol's ``num_steps`` (the
recipe's, or ``--config.num_steps=``) is not trained again, and an unfinished one, or one that
was run for fewer steps, resumes from its latest checkpoint (``train.py``'s own resume), so
the protocol can be stopped (Ctrl-C saves a checkpoint) and continued later, in any order of
seeds. A workdir whose run is not of this protocol is refused (exit 2), never resumed: its
``config.json`` differs from the recipe plus the overrides in a key that changes results, or
its ``config_changes.jsonl`` shows it was resumed under another config. ``--report_only`` trains nothing and summarises what is there.

``--ledger FILE`` keeps the finished seeds in a JSON file meant to be committed, so that a
protocol too long for one machine can be spread over several: each seed is written there the
moment it finishes (its value, step, ``num_steps``, the git commit and the date), and a seed the
ledger holds is neither trained again nor needs its workdir. The ledger records the recipe, the
metric and the overrides that change results; a run with others is refused (the overrides that
only change bookkeeping, such as ``progress`` or ``checkpoint_every``, may differ).

The report, per seed: the last logged value of ``--metric`` in ``metrics.jsonl`` and the step it
was logged at; over the finished seeds: mean, sample standard deviation, standard error of the
mean, min and max, and with ``--target`` (``<=0.02``, ``>=0.95`` ...) how many seeds meet it and
whether the mean does. It is printed as Markdown and written to ``ROOT/summary.json``.
A seed's config picks everything seeded in a run: initialisation, noise, data order and, where
the recipe has one, the labelled subset (``sgan.labels_per_class``).
"""

from __future__ import annotations

import argparse
import json
import math
import operator
import os
import re
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)  # this checkout's jaxgan, whatever is installed
_OPS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}


def parse_seeds(text: str) -> list[int]:
  """``"0-9"``, ``"0,3,5"`` or ``"0-2,7"`` -> the seeds, in order, without repeats."""
  seeds: list[int] = []
  for part in text.split(","):
    match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
    if not match or (match[2] and int(match[2]) < int(match[1])):
      raise ValueError(f"--seeds takes non-negative integers and ranges such as 0-9 or 0,3,5; "
                       f"got {text!r}")
    seeds += range(int(match[1]), int(match[2] or match[1]) + 1)
  return list(dict.fromkeys(seeds))


def parse_target(text: str | None):
  """``"<=0.02"`` -> ``("<=", 0.02)``; None -> None."""
  if not text:
    return None
  for op in sorted(_OPS, key=len, reverse=True):
    if text.startswith(op):
      try:
        return op, float(text[len(op):])
      except ValueError:
        break
  raise ValueError(f"--target is a comparison and a number, e.g. '<=0.02' or '>=0.95'; got {text!r}")


def seed_result(workdir: str, metric: str) -> dict:
  """What ``workdir``'s run says: its ``num_steps``, the last step it logged, and the last logged
  value of ``metric`` with its step (``value`` None when never logged)."""
  out = {"workdir": workdir, "num_steps": None, "last_step": 0, "value": None, "value_step": None}
  config_path = os.path.join(workdir, "config.json")
  if os.path.exists(config_path):
    with open(config_path) as f:
      out["num_steps"] = int(json.load(f).get("num_steps", 0)) or None
  path = os.path.join(workdir, "metrics.jsonl")
  if os.path.exists(path):
    with open(path) as f:
      for line in f:
        if not line.strip():
          continue
        record = json.loads(line)
        step = int(record.get("step", 0))
        out["last_step"] = max(out["last_step"], step)
        if metric in record and record[metric] is not None:
          out["value"], out["value_step"] = float(record[metric]), step
  return out


def protocol_steps(config: str, overrides: list[str]) -> int:
  """The ``num_steps`` every seed of the protocol runs: ``--config.num_steps=`` if given, else the
  recipe's own."""
  return int(seed_config(config, overrides, 0).num_steps)


def finished(result: dict) -> bool:
  """The run reached its ``num_steps`` and logged the metric."""
  return (result["num_steps"] is not None and result["last_step"] >= result["num_steps"]
          and result["value"] is not None)


def summarize(results: dict[int, dict], metric: str, target=None) -> dict:
  """Mean, sample std, standard error, min and max of ``metric`` over the finished seeds, and the
  seeds (and the mean) that meet ``target``."""
  values = {s: r["value"] for s, r in results.items() if finished(r)}
  n = len(values)
  out = {"metric": metric, "seeds": sorted(values), "n": n,
         "unfinished": sorted(s for s in results if s not in values)}
  if n:
    v = list(values.values())
    mean = sum(v) / n
    std = math.sqrt(sum((x - mean) ** 2 for x in v) / (n - 1)) if n > 1 else 0.0
    out |= {"mean": mean, "std": std, "sem": std / math.sqrt(n), "min": min(v), "max": max(v)}
    if target:
      op, bound = target
      out |= {"target": f"{op}{bound:g}", "meeting": sorted(s for s, x in values.items() if _OPS[op](x, bound)),
              "mean_meets": bool(_OPS[op](mean, bound))}
  return out


def report(results: dict[int, dict], summary: dict) -> str:
  """The Markdown report: one row per seed, then the summary line."""
  metric = summary["metric"]
  lines = [f"| seed | steps | {metric} (at step) |", "|---:|---:|---|"]
  for s, r in sorted(results.items()):
    value = "-" if r["value"] is None else f"{r['value']:.6g} ({r['value_step']})"
    steps = f"{r['last_step']} / {r['num_steps'] or '?'}"
    lines.append(f"| {s} | {steps} | {value}{'' if finished(r) else ' (unfinished)'} |")
  if summary["n"]:
    line = (f"\n{metric} over {summary['n']} finished seed(s): mean {summary['mean']:.6g}, std "
            f"{summary['std']:.4g}, s.e.m. {summary['sem']:.4g}, min {summary['min']:.6g}, max "
            f"{summary['max']:.6g}")
    if "target" in summary:
      line += (f"; target {summary['target']}: {len(summary['meeting'])} of {summary['n']} seeds, "
               f"mean {'meets' if summary['mean_meets'] else 'does not meet'} it")
    lines.append(line)
  else:
    lines.append(f"\nno seed has finished yet ({metric})")
  return "\n".join(lines)


# What a seed's result is, in the ledger and in summary.json.
RESULT_KEYS = ("num_steps", "last_step", "value", "value_step")


# Overrides that change what a run writes and when, not what it computes.
BOOKKEEPING = ("progress", "checkpoint_every", "keep_checkpoints", "log_every", "sample_every",
               "num_samples", "eval_cache_dir", "data.data_dir", "data.manual_dir")


def seed_config(config: str, overrides: list[str], seed: int):
  """The config ``train.py --config CONFIG --config.seed=SEED OVERRIDES`` trains (ml_collections'
  own override parsing, on a private flag registry)."""
  from absl import flags
  from ml_collections import config_flags
  argv = ["train.py", "--config", config, *overrides, f"--config.seed={seed}"]
  registry = flags.FlagValues()
  config_flags.DEFINE_config_file("config", None, "recipe", flag_values=registry, lock_config=True,
                                  sys_argv=argv)
  registry(argv)
  return registry.config


def workdir_mismatch(workdir: str, want) -> str | None:
  """Why ``workdir``'s run is not a run of config ``want`` (None when it is): a result-changing
  key of its ``config.json`` differs (``num_steps`` aside: a shorter run resumes), or the run was
  resumed under another config at some step (its ``config_changes.jsonl``)."""
  from jaxgan import config as config_lib  # imports JAX: only when a workdir is read
  ignore = config_lib.BOOKKEEPING_KEYS + ("num_steps",)
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    return None
  with open(path) as f:
    changes = config_lib.changed_keys(json.load(f), want, ignore)
  if changes:
    return "its run's config differs: " + "; ".join(
        f"{k} {a!r} there, {b!r} here" for k, (a, b) in changes.items())
  history = os.path.join(workdir, "config_changes.jsonl")
  if os.path.exists(history):
    with open(history) as f:
      for line in f:
        record = json.loads(line)
        changed = {k: v for k, v in record["changes"].items() if k not in ignore}
        if changed:
          return (f"its run was resumed at step {record['step']} under another config ("
                  + ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in changed.items()) + ")")
  return None


def result_overrides(overrides: list[str]) -> list[str]:
  """The ``--config.`` overrides that can change a result: all but :data:`BOOKKEEPING`, sorted."""
  keep = [o for o in overrides if o.split("=", 1)[0][len("--config."):] not in BOOKKEEPING]
  return sorted(keep)


def load_ledger(path: str, config: str, metric: str, overrides: list[str]) -> dict:
  """The ledger at ``path`` (a new, empty one if there is none). Raises ValueError, naming the
  difference, when it was written for another recipe, metric or result-changing overrides."""
  want = {"config": os.path.relpath(os.path.abspath(config), REPO), "metric": metric,
          "overrides": result_overrides(overrides)}
  if not os.path.exists(path):
    return want | {"seeds": {}}
  try:
    with open(path) as f:
      ledger = json.load(f)
  except json.JSONDecodeError as e:
    raise ValueError(f"--ledger {path} is not valid JSON ({e}); restore it from git "
                     f"(git checkout -- {path}) or give another file") from None
  if not isinstance(ledger.get("seeds") if isinstance(ledger, dict) else None, dict):
    raise ValueError(f"--ledger {path} has no 'seeds' object: it is not a bench_seeds ledger; "
                     f"give another file")
  for key, value in want.items():
    if ledger.get(key) != value:
      raise ValueError(f"--ledger {path} holds {key} {ledger.get(key)!r}, not this run's {value!r}; "
                       f"use another ledger file or the same {key}")
  return ledger


def write_ledger(path: str, ledger: dict) -> None:
  """Writes ``ledger`` to ``path`` atomically (a stopped write leaves the old file)."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path + ".tmp", "w") as f:
    json.dump(ledger, f, indent=1, sort_keys=True)
    f.write("\n")
  os.replace(path + ".tmp", path)


def ledger_entry(result: dict) -> dict:
  """What the ledger keeps of a finished seed: its result, the code's commit and the date."""
  try:
    commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, check=True).stdout.strip()
  except (OSError, subprocess.CalledProcessError):
    commit = None
  return {k: result[k] for k in RESULT_KEYS} | {
      "commit": commit, "date": time.strftime("%Y-%m-%d")}


def from_ledger(entry: dict) -> dict:
  """A ledger entry as :func:`seed_result` gives a finished run."""
  return {"workdir": None, **{k: entry[k] for k in RESULT_KEYS}}


def train_seed(config: str, workdir: str, seed: int, overrides: list[str]) -> int:
  """``train.py`` for one seed in its own process; its exit code. Ctrl-C reaches the child too (one
  process group): the driver then waits while it saves its checkpoint, instead of killing it."""
  cmd = [sys.executable, os.path.join(REPO, "train.py"), "--config", config, "--workdir", workdir,
         f"--config.seed={seed}", *overrides]
  print("$ " + " ".join(cmd[1:]), flush=True)
  child = subprocess.Popen(cmd)
  while True:
    try:
      return child.wait()
    except KeyboardInterrupt:
      continue


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--config", required=True, help="a configs/*.py recipe")
  parser.add_argument("--seeds", default="0-9", help="e.g. 0-9 or 0,3,5 (default 0-9)")
  parser.add_argument("--metric", required=True, help="a key of metrics.jsonl, e.g. test_error")
  parser.add_argument("--target", default=None, help="e.g. '<=0.02': count the seeds meeting it")
  parser.add_argument("--root", default=None, help="seed s trains in ROOT/seed_s "
                      "(default runs/<config name>_seeds)")
  parser.add_argument("--report_only", action="store_true", help="train nothing; summarise")
  parser.add_argument("--ledger", default=None, help="a JSON file (to commit) that keeps finished "
                      "seeds: they are not trained again and need no workdir")
  args, rest = parser.parse_known_args(argv)
  bad = [a for a in rest if not a.startswith("--config.")]
  if bad:
    parser.error(f"unknown arguments {' '.join(bad)} (train.py overrides look like --config.KEY=VALUE)")
  if any(a.startswith("--config.seed=") for a in rest):
    parser.error("--config.seed is set per run from --seeds; drop it")
  try:
    seeds, target = parse_seeds(args.seeds), parse_target(args.target)
  except ValueError as e:
    parser.error(str(e))
  if not os.path.exists(args.config):
    parser.error(f"--config {args.config}: no such file")
  root = args.root or os.path.join("runs", os.path.splitext(os.path.basename(args.config))[0] + "_seeds")
  ledger = None
  if args.ledger:
    try:
      ledger = load_ledger(args.ledger, args.config, args.metric, rest)
    except ValueError as e:
      parser.error(str(e))

  from absl import flags
  try:
    num_steps = protocol_steps(args.config, rest)
  except (AttributeError, KeyError) as e:
    parser.error(f"an override names a key the recipe does not have: {e}")
  except flags.Error as e:
    parser.error(str(e))
  results = {}
  for s in seeds:
    workdir = os.path.join(root, f"seed_{s}")
    if ledger is not None and str(s) in ledger["seeds"]:
      results[s] = from_ledger(ledger["seeds"][str(s)])
      continue
    results[s] = seed_result(workdir, args.metric)
    why = workdir_mismatch(workdir, seed_config(args.config, rest, s))
    if why:
      print(f"error: seed {s}'s workdir {workdir} is not a run of this protocol: {why}. Move it "
            f"away (or give another --root) and run again", file=sys.stderr)
      return 2
    ran = results[s]["num_steps"]
    if ran is not None and ran > num_steps:
      print(f"error: seed {s}'s workdir {workdir} was run for {ran} steps, more than this "
            f"protocol's {num_steps}; give another --root (or the same --config.num_steps)",
            file=sys.stderr)
      return 2
    if ran is not None and ran < num_steps:  # a shorter run of the seed: train.py resumes it
      print(f"seed {s}: its workdir was run for {ran} steps, this protocol runs {num_steps}: "
            f"{'unfinished' if args.report_only else 'resuming it'}", flush=True)
      results[s]["num_steps"] = num_steps
    if not (args.report_only or finished(results[s])):
      code = train_seed(args.config, workdir, s, rest)
      if code:
        print(f"error: seed {s} stopped with exit code {code}; its workdir {workdir} keeps its "
              f"checkpoints, and running this command again resumes it", file=sys.stderr)
        return code
      results[s] = seed_result(workdir, args.metric)
      if results[s]["value"] is None:
        print(f"error: seed {s} finished without logging {args.metric!r} (its metrics.jsonl has "
              f"other keys: check --metric and the recipe's evaluation settings)", file=sys.stderr)
        return 2
    if ledger is not None and finished(results[s]):
      ledger["seeds"][str(s)] = ledger_entry(results[s])
      write_ledger(args.ledger, ledger)

  summary = summarize(results, args.metric, target)
  summary["per_seed"] = {s: {k: r[k] for k in RESULT_KEYS}
                         for s, r in results.items()}
  os.makedirs(root, exist_ok=True)
  with open(os.path.join(root, "summary.json"), "w") as f:
    json.dump(summary, f, indent=1)
  print(report(results, summary))
  return 0


if __name__ == "__main__":
  sys.exit(main())
