"""WGAN-GP critic-step speed (configs/wgangp_fmnist.py), against eager PyTorch, interleaved.

    python benchmarks/bench_gp.py [--batches 64,256] [--rounds 5] [--steps 6]
        [--variant NAME[@GIT_REV][:key=value,...]] ... [--what critic,train]
        [--torch /work/torchvenv/bin/python] [--hlo DIR] [--convs]

For every batch size and variant it builds the state as the trainer does (the recipe's
``get_config()`` with the variant's overrides, ``trainer.build_state``) and times

* ``critic``: one critic update, ``steps.make_d_step("wasserstein", gp_weight=10)``
  (fakes from G in training mode, WGAN loss + 10 * GP, Adam), and
* ``train``: the recipe's whole train step, ``steps.make_train_step(**family.step_options(config))``:
  5 critic updates (``n_critic = 5``, unrolled scan) then one generator update.

All variants (and, with ``--torch``, the eager-PyTorch reference
``benchmarks/torch_reference_gp.py`` run by that interpreter as a child process) are timed
round-robin: each round runs ``--steps`` synchronised steps of every contender in turn,
so a change of machine load hits all of them alike; the table gives the median over all
rounds and the CPU (in cores) that *other* processes used during each contender's timed
blocks ("other load"; only rows near 0 are clean) and each contender's process CPU time
per step. The contenders never run at the same time (the torch child waits on its stdin
while JAX runs). On a busy machine, compare one thread against one thread, where a
step's CPU time is its work (no thread waits on a descheduled sibling):
``XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"`` and
``--torch_threads 1``.

A variant is ``NAME`` (a label), an optional ``@GIT_REV`` (time the ``jaxgan`` package of
that revision of this repository, imported in the same process under the same name: e.g.
``before@HEAD~3``) and optional config overrides, e.g.
``xla:discriminator.conv_impl=xla,generator.upsample=transpose`` (XLA's own convolutions
and gradients everywhere: the straightforward JAX program). Default variants: ``xla`` and
``auto`` (the recipe as it is).

``--hlo DIR`` writes each critic step's optimized HLO (``jit(...).lower().compile().as_text()``)
to DIR and prints its convolutions (count, shapes, window, dimension labels). ``--convs``
lists the convolutions of each critic step's jaxpr (dead code removed) with their source
line and times each one alone (median of 7 calls): the slow formulations stand out.
"""

from __future__ import annotations

import argparse
import ast
import collections
import functools
import importlib
import importlib.util
import json
import os
import pathlib
import re
import shlex
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
RECIPE = REPO / "configs" / "wgangp_fmnist.py"
TORCH_SCRIPT = REPO / "benchmarks" / "torch_reference_gp.py"
DEFAULT_VARIANTS = ("xla:discriminator.conv_impl=xla,generator.upsample=transpose", "auto")
BUSY = 0.2


# ------------------------------------------------------------------------------ jaxgan versions

def _drop_jaxgan_modules():
  for name in [m for m in sys.modules if m == "jaxgan" or m.startswith("jaxgan.")]:
    del sys.modules[name]


@functools.lru_cache(maxsize=None)
def load_jaxgan(rev: str | None):
  """``(config, trainer, steps)`` modules of this tree's jaxgan, or of git revision ``rev``, and the
  revision's ``step_options(config)`` function.

  A revision's ``jaxgan/`` is extracted to a temporary directory and imported as
  ``jaxgan`` with ``sys.modules`` swapped around the import, so both versions live in
  this process (their jitted steps are compiled once and timed side by side).
  """
  _drop_jaxgan_modules()
  path = str(REPO)
  if rev is not None:
    path = tempfile.mkdtemp(prefix=f"jaxgan-{re.sub(r'[^A-Za-z0-9]', '_', rev)}-")
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "jaxgan"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", path], input=archive, check=True)
  sys.path.insert(0, path)
  try:
    mods = tuple(importlib.import_module(f"jaxgan.{m}") for m in ("config", "trainer", "steps"))
    assert pathlib.Path(mods[0].__file__).resolve().is_relative_to(pathlib.Path(path).resolve())
    # The run's step options: from its family where the revision has jaxgan.families.
    try:
      families = importlib.import_module("jaxgan.families")
      options = lambda config: families.for_config(config).step_options(config)  # noqa: E731
    except ImportError:
      options = mods[0].step_options
    mods = mods + (options,)
  finally:
    sys.path.remove(path)
    _drop_jaxgan_modules()
  return mods


def recipe():
  spec = importlib.util.spec_from_file_location("wgangp_fmnist", RECIPE)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def parse_variant(text: str):
  head, _, sets = text.partition(":")
  name, _, rev = head.partition("@")
  overrides = {}
  for item in filter(None, sets.split(",")):
    key, _, raw = item.partition("=")
    try:
      overrides[key] = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
      overrides[key] = raw
  return name, rev or None, overrides


def build(variant, what: str, batch_size: int):
  """``(compiled step, state, batch, compile seconds, hlo text)`` of one contender."""
  name, rev, overrides = variant
  config_lib, trainer, steps, step_options = load_jaxgan(rev)
  config = recipe()
  config.batch_size = batch_size
  for key, value in overrides.items():
    *parents, leaf = key.split(".")
    node = config
    for p in parents:
      node = node[p]
    with node.unlocked():
      node[leaf] = value
  state = trainer.build_state(config, (32, 32, 1))
  rng = np.random.default_rng(0)
  options = step_options(config)
  if what == "critic":
    step = steps.make_d_step(config.loss, gp_weight=options["gp_weight"])
    image = rng.uniform(-1, 1, (batch_size, 32, 32, 1))
  else:
    step = steps.make_train_step(config.loss, **options)
    image = rng.uniform(-1, 1, (options["n_critic"], batch_size, 32, 32, 1))
  batch = {"image": jnp.asarray(image, jnp.float32)}
  t = time.perf_counter()
  compiled = step.lower(state, batch).compile()
  compile_s = time.perf_counter() - t
  fn = functools.partial(steps.d_step_fn, loss=config.loss, gp_weight=options["gp_weight"])
  return compiled, state, batch, compile_s, compiled.as_text(), fn


# ------------------------------------------------------------------------------ load accounting

def _cpu_ticks(pids=()):
  """(busy ticks of the machine, ticks of this process and of ``pids``)."""
  with open("/proc/stat") as f:
    fields = [int(v) for v in f.readline().split()[1:8]]
  own = 0
  for pid in ("self", *pids):
    try:
      with open(f"/proc/{pid}/stat") as f:
        stat = f.read().rsplit(")", 1)[1].split()
      own += int(stat[11]) + int(stat[12])
    except OSError:
      pass
  return sum(fields) - fields[3] - fields[4], own


def process_cpu_seconds(pid="self") -> float:
  """utime + stime of a process (all its threads), in seconds."""
  try:
    with open(f"/proc/{pid}/stat") as f:
      stat = f.read().rsplit(")", 1)[1].split()
  except OSError:
    return 0.0
  return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")


def other_cores(start, end, seconds):
  if start is None or end is None or seconds <= 0:
    return 0.0
  ticks = (end[0] - start[0]) - (end[1] - start[1])
  return max(0.0, ticks / os.sysconf("SC_CLK_TCK") / seconds)


class TorchReference:
  """``benchmarks/torch_reference_gp.py --serve`` in its own interpreter."""

  def __init__(self, python: str, threads: int = 0):
    cmd = [python, str(TORCH_SCRIPT), "--serve"] + (["--threads", str(threads)] if threads else [])
    self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    self.version = self.proc.stdout.readline().strip()

  def run(self, what: str, batch_size: int, steps: int) -> list[float]:
    self.proc.stdin.write(f"{what} {batch_size} {steps}\n")
    self.proc.stdin.flush()
    return json.loads(self.proc.stdout.readline())

  def close(self):
    self.proc.stdin.close()
    self.proc.wait(timeout=60)


# ------------------------------------------------------------------------------ convolutions

def hlo_convolutions(text: str):
  """Counter of the convolutions of an optimized HLO module: (output, lhs, rhs, window, dims)."""
  shapes = {}
  for line in text.splitlines():
    m = re.match(r"\s*(?:ROOT )?(%[\w.\-]+) = (\w+\[[\d,]*\])", line)
    if m:
      shapes[m.group(1)] = m.group(2)
  found = collections.Counter()
  for line in text.splitlines():
    m = re.search(r"= (\w+\[[\d,]*\])\{[^}]*\} convolution\((%[\w.\-]+), (%[\w.\-]+)\), "
                  r"(window=\{[^}]*\}), (dim_labels=[^, ]+)", line)
    if m:
      groups = " ".join(re.findall(r"(?:feature|batch)_group_count=\d+", line))
      found[(m.group(1), shapes.get(m.group(2), "?"), shapes.get(m.group(3), "?"), m.group(4),
             m.group(5), groups)] += 1
  return found


def jaxpr_convolutions(fn, *args):
  """{signature: (count, source line)} of the convolutions in ``fn``'s jaxpr, dead code removed."""
  from jax._src import source_info_util
  from jax._src.interpreters import partial_eval as pe
  closed = jax.make_jaxpr(fn)(*args)
  jaxpr, _ = pe.dce_jaxpr(closed.jaxpr, [True] * len(closed.jaxpr.outvars))
  found, where = collections.Counter(), {}

  def walk(j):
    for e in j.eqns:
      if e.primitive.name == "conv_general_dilated":
        p = e.params
        key = (tuple(e.invars[0].aval.shape), tuple(e.invars[1].aval.shape),
               tuple(p["window_strides"]), tuple(map(tuple, p["padding"])),
               tuple(p["lhs_dilation"]), tuple(p["rhs_dilation"]),
               (tuple(p["dimension_numbers"].lhs_spec), tuple(p["dimension_numbers"].rhs_spec),
                tuple(p["dimension_numbers"].out_spec)),
               p["feature_group_count"], p["batch_group_count"])
        found[key] += 1
        frame = source_info_util.user_frame(e.source_info.traceback) if e.source_info.traceback else None
        where.setdefault(key, f"{pathlib.Path(frame.file_name).name}:{frame.start_line} "
                              f"({frame.function_name})" if frame else "?")
      for v in e.params.values():
        for sub in (v if isinstance(v, (list, tuple)) else [v]):
          if hasattr(sub, "jaxpr") and hasattr(sub.jaxpr, "eqns"):
            walk(sub.jaxpr)
          elif hasattr(sub, "eqns"):
            walk(sub)
  walk(jaxpr)
  return found, where


def time_convolution(key, reps: int = 7) -> float:
  from jax import lax
  lhs, rhs, strides, padding, lhs_dil, rhs_dil, dn, fgc, bgc = key
  f = jax.jit(lambda a, b: lax.conv_general_dilated(
      a, b, strides, padding, lhs_dil, rhs_dil, lax.ConvDimensionNumbers(*dn),
      feature_group_count=fgc, batch_group_count=bgc))
  a, b = jnp.ones(lhs, jnp.float32), jnp.ones(rhs, jnp.float32)
  f(a, b).block_until_ready()
  times = []
  for _ in range(reps):
    t = time.perf_counter()
    f(a, b).block_until_ready()
    times.append(time.perf_counter() - t)
  return 1e3 * float(np.median(times))


def print_jaxpr_convolutions(label, fn, state, batch):
  found, where = jaxpr_convolutions(fn, state, batch)
  print(f"\nconvolutions of the critic step, {label} (jaxpr, dead code removed; each timed alone)")
  print("| count | ms each | lhs | rhs | strides | padding | lhs dil. | rhs dil. | dims (lhs/rhs/out) | source |")
  print("|---:|---:|---|---|---|---|---|---|---|---|")
  total = 0.0
  for key, count in sorted(found.items(), key=lambda kv: -kv[1]):
    ms = time_convolution(key)
    total += count * ms
    lhs, rhs, strides, padding, lhs_dil, rhs_dil, dn, fgc, bgc = key
    groups = "" if fgc == bgc == 1 else f" fgc={fgc} bgc={bgc}"
    print(f"| {count} | {ms:.2f} | {lhs} | {rhs} | {strides} | {padding} | {lhs_dil} | {rhs_dil} "
          f"| {dn}{groups} | {where[key]} |")
  print(f"sum of count x time alone: {total:.1f} ms")


# ------------------------------------------------------------------------------ main

def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--batches", default="64,256")
  parser.add_argument("--what", default="critic,train", help="critic and/or train")
  parser.add_argument("--variant", action="append", default=[],
                      help="NAME[@GIT_REV][:key=value,...] (repeatable); default: "
                           + " and ".join(DEFAULT_VARIANTS))
  parser.add_argument("--rounds", type=int, default=5)
  parser.add_argument("--steps", type=int, default=6, help="timed steps per contender per round")
  parser.add_argument("--train_steps", type=int, default=1,
                      help="timed train steps (5 critic updates + G) per contender per round")
  parser.add_argument("--torch", default=None, help="python interpreter with torch (reference)")
  parser.add_argument("--torch_threads", type=int, default=0,
                      help="torch.set_num_threads for the reference (0: torch's default)")
  parser.add_argument("--hlo", default=None, help="directory for the critic steps' optimized HLO")
  parser.add_argument("--convs", action="store_true",
                      help="list and time the convolutions of each critic step's jaxpr")
  args = parser.parse_args(argv)
  variants = [parse_variant(v) for v in (args.variant or DEFAULT_VARIANTS)]
  whats = [w.strip() for w in args.what.split(",") if w.strip()]

  print("$ python " + " ".join(shlex.quote(a) for a in sys.argv))
  with open("/proc/loadavg") as f:
    loadavg = f.read().split()[:3]
  print(f"backend: {jax.default_backend()}  jax {jax.__version__}  {os.cpu_count()} CPUs  "
        f"load average {' '.join(loadavg)}")
  if os.environ.get("XLA_FLAGS"):
    print(f"XLA_FLAGS={os.environ['XLA_FLAGS']}")
  torch = TorchReference(args.torch, args.torch_threads) if args.torch else None
  if torch:
    print(f"reference: {torch.version}")

  rows = []
  for batch_size in [int(b) for b in args.batches.split(",")]:
    for what in whats:
      contenders = []
      for v in variants:
        compiled, state, batch, compile_s, hlo, fn = build(v, what, batch_size)
        label = v[0] + (f"@{v[1]}" if v[1] else "")
        if what == "critic" and args.hlo:
          os.makedirs(args.hlo, exist_ok=True)
          path = pathlib.Path(args.hlo) / f"critic_{v[0]}_{batch_size}.hlo.txt"
          path.write_text(hlo)
          print(f"\nconvolutions in {path}:")
          for k, count in sorted(hlo_convolutions(hlo).items(), key=lambda kv: kv[0][3]):
            print(f"  {count} x {' '.join(filter(None, k))}")
        if what == "critic" and args.convs:
          print_jaxpr_convolutions(f"{label}, batch {batch_size}", fn, state, batch)
        state, metrics = compiled(state, batch)  # warm-up
        jax.block_until_ready((state, metrics))
        contenders.append({"label": label, "compiled": compiled, "state": state, "batch": batch,
                           "compile_s": compile_s, "times": [], "load": [], "cpu": []})
      if torch:
        torch.run(what, batch_size, 1)  # warm-up
        contenders.append({"label": "eager PyTorch (reference)", "compiled": None,
                           "compile_s": None, "times": [], "load": [], "cpu": []})
      steps = args.steps if what == "critic" else args.train_steps
      for _ in range(args.rounds):
        for c in contenders:
          pids = (torch.proc.pid,) if torch else ()
          start, t0 = _cpu_ticks(pids), time.perf_counter()
          own = torch.proc.pid if c["compiled"] is None else "self"
          cpu0 = process_cpu_seconds(own)
          if c["compiled"] is None:
            c["times"] += torch.run(what, batch_size, steps)
          else:
            for _ in range(steps):
              t = time.perf_counter()
              c["state"], metrics = c["compiled"](c["state"], c["batch"])
              jax.block_until_ready((c["state"], metrics))
              c["times"].append(time.perf_counter() - t)
          c["load"].append(other_cores(start, _cpu_ticks(pids), time.perf_counter() - t0))
          c["cpu"].append((process_cpu_seconds(own) - cpu0) / steps)
      ref = np.median(contenders[-1]["times"]) if torch else None
      for c in contenders:
        med = float(np.median(c["times"]))
        rows.append({"what": what, "batch": batch_size, "label": c["label"],
                     "compile_s": c["compile_s"], "median_ms": 1e3 * med,
                     "vs_torch": (med / ref) if ref else None, "load": max(c["load"]),
                     "cpu_ms": 1e3 * float(np.median(c["cpu"])),
                     "n": len(c["times"])})
        print(f"  {what} batch {batch_size} {c['label']}: {1e3 * med:.1f} ms", flush=True)
  if torch:
    torch.close()

  print("\n| step | batch | variant | compile (s) | median (ms) | vs eager PyTorch | CPU time (ms) "
        "| other load |")
  print("|---|---:|---|---:|---:|---:|---:|---:|")
  for r in rows:
    comp = "-" if r["compile_s"] is None else f"{r['compile_s']:.1f}"
    vs = "-" if r["vs_torch"] is None else f"{r['vs_torch']:.2f}x"
    flag = " (!)" if r["load"] > BUSY else ""
    step = "critic update" if r["what"] == "critic" else "train step (5 critic + G)"
    print(f"| {step} | {r['batch']} | {r['label']} | {comp} | {r['median_ms']:.1f} | {vs} "
          f"| {r['cpu_ms']:.0f} | {r['load']:.2f}{flag} |")
  print(f"\nmedians over {args.rounds} rounds x {args.steps} critic / {args.train_steps} train "
        f"steps per contender, round-robin; 'other load': most CPU cores used by other processes "
        f"during a contender's timed block in any round (> {BUSY}: disturbed); 'CPU time': the "
        f"contender's process CPU time per step (all threads; median over rounds), which other load "
        f"inflates less than wall time, but which includes spin-waiting threads")
  return 0


if __name__ == "__main__":
  sys.exit(main())
