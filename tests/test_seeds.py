"""``benchmarks/bench_seeds.py``: a recipe over many seeds, trained by ``train.py`` and summarised."""

import json
import os
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "benchmarks"))

import bench_seeds  # noqa: E402


def test_seed_lists_and_targets_parse_or_fail_clearly():
  assert bench_seeds.parse_seeds("0-3") == [0, 1, 2, 3]
  assert bench_seeds.parse_seeds("5,0-2,1") == [5, 0, 1, 2]
  assert bench_seeds.parse_target("<=0.02") == ("<=", 0.02)
  assert bench_seeds.parse_target(">0.5") == (">", 0.5)
  assert bench_seeds.parse_target(None) is None
  for bad in ("a-b", "1-", "", "3-1", "-2"):
    with pytest.raises(ValueError, match="--seeds"):
      bench_seeds.parse_seeds(bad)
  for bad in ("0.02", "<=x", "=<0.1"):
    with pytest.raises(ValueError, match="--target"):
      bench_seeds.parse_target(bad)


def _run(workdir, num_steps, records):
  os.makedirs(workdir)
  with open(os.path.join(workdir, "config.json"), "w") as f:
    json.dump({"num_steps": num_steps}, f)
  with open(os.path.join(workdir, "metrics.jsonl"), "w") as f:
    for r in records:
      f.write(json.dumps(r) + "\n")


def test_the_summary_covers_finished_seeds_only(tmp_path):
  errors = {0: 0.0262, 1: 0.0128, 2: 0.0190}
  for s, e in errors.items():  # the metric logged every 10 steps, the last value counts
    _run(str(tmp_path / f"seed_{s}"), 30, [{"step": 10, "test_error": 0.5}, {"step": 20, "d_loss": 1.0},
                                          {"step": 30, "test_error": e, "d_loss": 0.9}])
  _run(str(tmp_path / "seed_3"), 30, [{"step": 10, "test_error": 0.001}])  # stopped at step 10
  results = {s: bench_seeds.seed_result(str(tmp_path / f"seed_{s}"), "test_error") for s in range(5)}
  assert [bench_seeds.finished(results[s]) for s in range(5)] == [True, True, True, False, False]
  assert results[3]["value"] == 0.001 and results[4]["value"] is None and results[4]["last_step"] == 0
  summary = bench_seeds.summarize(results, "test_error", ("<=", 0.02))
  v = np.array(list(errors.values()))
  assert summary["seeds"] == [0, 1, 2] and summary["unfinished"] == [3, 4]
  assert summary["mean"] == pytest.approx(v.mean()) and summary["std"] == pytest.approx(v.std(ddof=1))
  assert summary["sem"] == pytest.approx(v.std(ddof=1) / np.sqrt(3))
  assert (summary["min"], summary["max"]) == (0.0128, 0.0262)
  assert summary["meeting"] == [1, 2] and summary["mean_meets"] is True
  assert bench_seeds.summarize(results, "test_error", ("<=", 0.015))["mean_meets"] is False
  text = bench_seeds.report(results, summary)
  assert "| 3 | 10 / 30 | 0.001 (10) (unfinished) |" in text and "2 of 3 seeds, mean meets it" in text


def test_a_shorter_run_of_a_seed_is_not_taken_for_the_protocols(tmp_path, capsys):
  # seed_0 ran the whole recipe, seed_1 a 7-step run (as a user's quick look): only seed 0 counts.
  _run(str(tmp_path / "seed_0"), 30, [{"step": 30, "test_error": 0.02}])
  _run(str(tmp_path / "seed_1"), 7, [{"step": 7, "test_error": 0.04}])
  args = ["--config", os.path.join(REPO, "configs", "sgan_mnist.py"), "--seeds", "0,1",
          "--metric", "test_error", "--root", str(tmp_path), "--report_only"]
  assert bench_seeds.main(args + ["--config.num_steps=30"]) == 0
  out = capsys.readouterr().out
  assert "seed 1: its workdir was run for 7 steps, this protocol runs 30: unfinished" in out
  assert "| 1 | 7 / 30 | 0.04 (7) (unfinished) |" in out
  summary = json.load(open(tmp_path / "summary.json"))
  assert summary["seeds"] == [0] and summary["unfinished"] == [1]
  # Without the override the protocol is the recipe's own length (30,000 steps): neither counts.
  assert bench_seeds.protocol_steps(args[1], []) == 30000
  # A workdir run longer than the protocol is refused, not silently read at another step.
  assert bench_seeds.main(args + ["--config.num_steps=5"]) == 2
  assert "was run for 30 steps, more than this protocol's 5" in capsys.readouterr().err


def test_each_seed_trains_once_with_its_own_seed_and_resumes(tmp_path, monkeypatch, capsys):
  """Two seeds of the 2-D ring through train.py; a second call trains nothing and reports the same."""
  monkeypatch.chdir(tmp_path)
  root = str(tmp_path / "seeds")
  args = ["--config", os.path.join(REPO, "configs", "toy_ring.py"), "--seeds", "0-1", "--metric",
          "d_loss", "--root", root, "--config.num_steps=4", "--config.log_every=2",
          "--config.film_every=0", "--config.checkpoint_every=4", "--config.progress=False"]
  assert bench_seeds.main(args) == 0
  first = json.load(open(os.path.join(root, "summary.json")))
  assert first["n"] == 2 and first["seeds"] == [0, 1]
  losses = []
  for s in (0, 1):
    w = os.path.join(root, f"seed_{s}")
    assert json.load(open(os.path.join(w, "config.json")))["seed"] == s
    records = [json.loads(line) for line in open(os.path.join(w, "metrics.jsonl"))]
    assert [r["step"] for r in records if "d_loss" in r] == [2, 4]
    losses.append(records[-1]["d_loss"])
  assert losses[0] != losses[1]  # two seeds, two runs
  assert first["mean"] == pytest.approx(np.mean(losses))
  stamps = [os.path.getmtime(os.path.join(root, f"seed_{s}", "metrics.jsonl")) for s in (0, 1)]
  capsys.readouterr()
  assert bench_seeds.main(args) == 0  # both finished: nothing trains again
  assert "$ " not in capsys.readouterr().out
  assert stamps == [os.path.getmtime(os.path.join(root, f"seed_{s}", "metrics.jsonl")) for s in (0, 1)]
  assert json.load(open(os.path.join(root, "summary.json")))["mean"] == first["mean"]


def test_bad_arguments_are_refused_before_training(tmp_path, capsys):
  for args, message in ((["--seeds", "0-1", "--config.seed=3"], "set per run"),
                        (["--seeds", "x"], "--seeds takes"),
                        (["--seeds", "0", "--epochs", "3"], "unknown arguments --epochs")):
    with pytest.raises(SystemExit) as e:
      bench_seeds.main(["--config", os.path.join(REPO, "configs", "toy_ring.py"), "--metric", "d_loss",
                        "--root", str(tmp_path / "r"), *args])
    assert e.value.code == 2 and message in capsys.readouterr().err
  assert not os.path.exists(tmp_path / "r")


def test_the_ledger_keeps_finished_seeds_across_machines(tmp_path, monkeypatch, capsys):
  """Seeds in the ledger are not trained again, even with their workdirs gone; a new seed is added
  the moment it finishes; a ledger written for other result-changing overrides is refused."""
  monkeypatch.chdir(tmp_path)
  ledger = str(tmp_path / "results" / "ring.json")
  base = ["--config", os.path.join(REPO, "configs", "toy_ring.py"), "--metric", "d_loss",
          "--ledger", ledger, "--config.num_steps=4", "--config.log_every=2", "--config.film_every=0",
          "--config.checkpoint_every=4", "--config.progress=False"]
  assert bench_seeds.main(base + ["--seeds", "0", "--root", str(tmp_path / "a")]) == 0
  kept = json.load(open(ledger))
  assert kept["config"] == os.path.join("configs", "toy_ring.py") and kept["metric"] == "d_loss"
  assert kept["overrides"] == ["--config.film_every=0", "--config.num_steps=4"]
  assert list(kept["seeds"]) == ["0"] and kept["seeds"]["0"]["last_step"] == 4
  capsys.readouterr()
  # another machine: no workdirs, a bookkeeping override changed; only seed 1 trains
  other = [a for a in base if a != "--config.checkpoint_every=4"] + ["--config.checkpoint_every=2"]
  assert bench_seeds.main(other + ["--seeds", "0-1", "--root", str(tmp_path / "b")]) == 0
  out = capsys.readouterr().out
  assert out.count("$ ") == 1 and "--config.seed=1" in out and not os.path.exists(tmp_path / "b" / "seed_0")
  kept2 = json.load(open(ledger))
  assert kept2["seeds"]["0"] == kept["seeds"]["0"] and set(kept2["seeds"]) == {"0", "1"}
  summary = json.load(open(tmp_path / "b" / "summary.json"))
  assert summary["n"] == 2 and summary["mean"] == pytest.approx(
      (kept2["seeds"]["0"]["value"] + kept2["seeds"]["1"]["value"]) / 2)
  with pytest.raises(SystemExit) as e:  # a result-changing override differs
    bench_seeds.main(base + ["--seeds", "0", "--root", str(tmp_path / "c"), "--config.learning_rate=1"])
  assert e.value.code == 2 and "holds overrides" in capsys.readouterr().err
  assert json.load(open(ledger)) == kept2 and not os.path.exists(tmp_path / "c")
  broken = tmp_path / "broken.json"
  broken.write_text('{"seeds": {"0": ')  # a write cut short, or a bad merge
  with pytest.raises(ValueError, match="not valid JSON"):
    bench_seeds.load_ledger(str(broken), os.path.join(REPO, "configs", "toy_ring.py"), "d_loss", [])
  broken.write_text('[1, 2]')
  with pytest.raises(ValueError, match="no 'seeds' object"):
    bench_seeds.load_ledger(str(broken), os.path.join(REPO, "configs", "toy_ring.py"), "d_loss", [])


def test_a_workdir_of_another_recipe_or_overrides_is_refused_not_resumed(tmp_path, capsys):
  """A seed's workdir counts (or resumes) only if its run's config is the protocol's, up to
  bookkeeping keys and a shorter num_steps; nor may the run have been resumed under another."""
  recipe = os.path.join(REPO, "configs", "sgan_mnist.py")

  def run(seed, overrides, history=()):
    config = bench_seeds.seed_config(recipe, ["--config.num_steps=30", *overrides], seed)
    _run(str(tmp_path / f"seed_{seed}"), 30, [{"step": 30, "test_error": 0.01 * (seed + 1)}])
    (tmp_path / f"seed_{seed}" / "config.json").write_text(config.to_json())
    with open(tmp_path / f"seed_{seed}" / "config_changes.jsonl", "w") as f:
      for step, changes in history:
        f.write(json.dumps({"step": step, "changes": changes}) + "\n")

  run(0, ["--config.progress=False", "--config.checkpoint_every=7"], [(10, {"num_steps": [10, 30]})])
  run(1, ["--config.g_learning_rate=0.003"])                        # the recipe's G rate is 1e-3
  run(2, [], [(10, {"sgan.label_smoothing": [0.1, 0.0]})])          # resumed under another config
  args = ["--config", recipe, "--metric", "test_error", "--root", str(tmp_path), "--report_only",
          "--config.num_steps=30"]
  assert bench_seeds.main(args + ["--seeds", "0"]) == 0
  assert "| 0 | 30 / 30 | 0.01 (30) |" in capsys.readouterr().out
  assert bench_seeds.main(args + ["--seeds", "0-1"]) == 2
  err = capsys.readouterr().err
  assert "seed 1's workdir" in err and "g_learning_rate 0.003 there, 0.001 here" in err
  assert bench_seeds.main(args + ["--seeds", "1", "--config.g_learning_rate=0.003"]) == 0
  assert bench_seeds.main(args + ["--seeds", "2"]) == 2
  assert "resumed at step 10 under another config (sgan.label_smoothing 0.1 -> 0.0)" in capsys.readouterr().err
  with pytest.raises(SystemExit) as e:
    bench_seeds.main(args + ["--seeds", "0", "--config.sgan.label_smoothin=0.1"])
  assert e.value.code == 2 and "does not have" in capsys.readouterr().err
