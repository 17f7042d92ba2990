"""``python train.py`` as a user runs it: real data, real process, real signals."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import MANUAL_DIR, REPO

TINY = ["--config.generator.features=(16,8,4)", "--config.discriminator.features=(4,8,16)",
        "--config.latent_dim=8", "--config.batch_size=8", "--config.num_samples=16",
        "--config.progress=False"]


def _env():
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  if MANUAL_DIR:
    env["JAXGAN_MANUAL_DIR"] = MANUAL_DIR
  return env


def _train(*args, timeout=300):
  return subprocess.run([sys.executable, str(REPO / "train.py"), *args], cwd=REPO, env=_env(),
                        capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("args,match", [
    (["--config.no_such_key=1"], "unknown config key 'no_such_key'"),
    (["--config", "configs/acgan_fmnist.py", "--config.no_such_key=1"], "unknown config key 'no_such_key'"),
    (["--config", "configs/dcgan_fmnist.py", "--config.generator.label_jion=multiply"],
     "unknown config key"),
    (["--config.generator.featurs=(1,2)"], 'Did you mean "features"'),
    (["--config.batch_size=many"], "batch_size"),
    (["--config.batch_size=0"], "config.batch_size must be a positive integer"),
    (["--config.learning_rate=-0.1"], "config.learning_rate must be a positive number"),
    (["--config", "configs/no_such_recipe.py"], "no_such_recipe.py"),
    (["--config.eval_features=fid"], "config.eval_features must be 'classifier' or 'inception'"),
])
def test_bad_input_is_one_clear_message(tmp_path, args, match):
  _one_line(tmp_path, args, match)


def _one_line(tmp_path, args, match):
  """train.py refuses ``args`` with one ``error:`` line holding ``match``, before any work."""
  result = _train(*args, "--workdir", str(tmp_path / "run"))
  assert result.returncode != 0
  assert match in result.stderr
  assert "Traceback" not in result.stderr
  assert not (tmp_path / "run" / "checkpoints").exists()
  lines = [line for line in result.stderr.splitlines() if line.strip()
           and not line.startswith(("WARNING: All log messages", "I0000"))]
  assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr


@pytest.mark.parametrize("recipe,match", [
    ("def get_config(:\n", "syntax error at line 1"),
    ("def get_config():\n  return undefined_name\n", "NameError: name 'undefined_name' is not "
                                                         "defined (line 2)"),
])
def test_a_recipe_that_does_not_load_is_one_line(tmp_path, recipe, match):
  path = tmp_path / "recipe.py"
  path.write_text(recipe)
  _one_line(tmp_path, ["--config", str(path)], match)


def test_a_misspelt_dataset_is_one_line(tmp_path):
  _one_line(tmp_path, ["--config.dataset=fashion_mnst"], "did you mean fashion_mnist?")


def test_train_py_end_to_end_on_real_fashion_mnist(tmp_path, real_data_dir):
  workdir = tmp_path / "run"
  result = _train("--config", "configs/dcgan_fmnist.py", "--workdir", str(workdir), *TINY,
                  f"--config.data.data_dir={real_data_dir}", "--config.num_steps=4",
                  "--config.log_every=2", "--config.sample_every=2", "--config.checkpoint_every=2")
  assert result.returncode == 0, result.stderr[-3000:]
  assert sorted(os.listdir(workdir / "checkpoints")) == ["2", "4"]
  assert (workdir / "samples" / "final.png").stat().st_size > 1000
  assert (workdir / "losses.png").exists() and (workdir / "accuracy.png").exists()
  records = [json.loads(line) for line in open(workdir / "metrics.jsonl")]
  assert [r["step"] for r in records] == [2, 4]
  assert "trained steps 0 -> 4" in result.stdout
  # Same command again: resumes, nothing left to do, nothing lost.
  again = _train("--config", "configs/dcgan_fmnist.py", "--workdir", str(workdir), *TINY,
                 f"--config.data.data_dir={real_data_dir}", "--config.num_steps=4")
  assert again.returncode == 0, again.stderr[-3000:]
  assert "trained steps 4 -> 4" in again.stdout
  assert "changed config" not in again.stdout  # only bookkeeping keys (log_every ...) differ


def test_sigterm_saves_a_checkpoint_and_resume_continues(tmp_path, real_data_dir):
  workdir = tmp_path / "run"
  args = ["--config", "configs/gan_fmnist.py", "--workdir", str(workdir),
          "--config.generator.hidden=(16,32)", "--config.discriminator.hidden=(32,16)",
          "--config.latent_dim=8", "--config.batch_size=8", "--config.progress=False",
          f"--config.data.data_dir={real_data_dir}", "--config.num_steps=10000000",
          "--config.log_every=1", "--config.checkpoint_every=10000000"]
  proc = subprocess.Popen([sys.executable, str(REPO / "train.py"), *args], cwd=REPO, env=_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  metrics = workdir / "metrics.jsonl"
  deadline = time.time() + 240
  while time.time() < deadline and proc.poll() is None:
    if metrics.exists() and len(metrics.read_text().splitlines()) >= 3:
      break
    time.sleep(0.2)
  assert proc.poll() is None, proc.communicate()[1][-3000:]
  proc.send_signal(signal.SIGTERM)
  _, err = proc.communicate(timeout=120)
  assert proc.returncode == 128 + signal.SIGTERM, err[-3000:]
  assert "SIGTERM" in err and "checkpoint saved" in err
  saved = [int(s) for s in os.listdir(workdir / "checkpoints") if s.isdigit()]
  assert len(saved) == 1 and saved[0] >= 3
  resumed = _train(*args[:-3], "--config.num_steps", str(saved[0] + 2))
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert f"trained steps {saved[0]} -> {saved[0] + 2}" in resumed.stdout
  assert (f"resuming at step {saved[0]} with a changed config: num_steps 10000000 -> {saved[0] + 2}"
          in resumed.stdout)


@pytest.mark.parametrize("case", ["misspelt dataset", "recipe syntax error", "unknown key"])
def test_a_failed_start_leaves_an_earlier_run_byte_for_byte(tmp_path, case):
  run = tmp_path / "run"
  (run / "checkpoints" / "100").mkdir(parents=True)
  files = {"config.json": '{"model": "dcgan", "num_steps": 100}\n',
           "metrics.jsonl": '{"step": 100, "d_loss": 1.0, "g_loss": 2.0}\n',
           "checkpoints/100/state.bin": "\x00\x01 checkpoint bytes"}
  for name, text in files.items():
    (run / name).write_text(text)
  recipe = tmp_path / "recipe.py"
  recipe.write_text("def get_config(:\n")
  args = {"misspelt dataset": ["--config.dataset=fashion_mnst"],
          "recipe syntax error": ["--config", str(recipe)],
          "unknown key": ["--config.no_such_key=1"]}[case]
  result = _train(*args, "--workdir", str(run))
  assert result.returncode != 0 and "Traceback" not in result.stderr
  assert {name: (run / name).read_text() for name in files} == files
  # Nothing else written (the run's lock file aside, which a start takes before reading data).
  assert {p.name for p in run.iterdir()} - {".lock"} == {"checkpoints", "config.json", "metrics.jsonl"}
  assert [p.name for p in (run / "checkpoints").iterdir()] == ["100"]
