"""Checkpoints damaged on disk: a run falls back to the newest whole one and keeps the damaged aside."""

import hashlib
import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest

from conftest import REPO, load_config, tiny
from jaxgan import sample, trainer
from jaxgan.checkpoint import Checkpointer, CheckpointError


def _config(num_steps):
  config = tiny(load_config("gan_fmnist"))
  config.num_steps, config.log_every, config.sample_every, config.checkpoint_every = num_steps, 1, 1000, 3
  return config


def _damage(step_dir, how):
  if how == "meta":          # a half-written JSON metadata file
    with open(os.path.join(step_dir, "meta", "metadata"), "w") as f:
      f.write('{"model": ')
  elif how == "empty":       # the step directory and nothing in it
    shutil.rmtree(step_dir)
    os.mkdir(step_dir)
  elif how == "arrays":      # array files cut short
    data = [os.path.join(d, f) for d, _, files in os.walk(os.path.join(step_dir, "state"))
            if os.path.basename(d) == "d" for f in files]
    assert data
    for path in data:
      os.truncate(path, 10)


def _digest(path):
  """Every file under ``path`` (or the file itself) with its sha256."""
  if os.path.isfile(path):
    return {"": hashlib.sha256(open(path, "rb").read()).hexdigest()}
  return {os.path.relpath(os.path.join(d, f), path):
          hashlib.sha256(open(os.path.join(d, f), "rb").read()).hexdigest()
          for d, _, files in os.walk(path) for f in files}


@pytest.mark.parametrize("how", ["meta", "empty", "arrays"])
def test_a_damaged_latest_checkpoint_is_set_aside_and_the_run_resumes_from_the_one_before(
    tmp_path, mock_fmnist, capsys, how):
  reference = trainer.train_and_evaluate(_config(9), str(tmp_path / "reference"))
  workdir = tmp_path / "run"
  trainer.train_and_evaluate(_config(6), str(workdir))
  ckpt_dir = workdir / "checkpoints"
  _damage(str(ckpt_dir / "6"), how)
  damaged = _digest(str(ckpt_dir / "6"))
  capsys.readouterr()

  state = trainer.train_and_evaluate(_config(9), str(workdir))
  err = capsys.readouterr().err
  warnings = [line for line in err.splitlines() if line.startswith("warning: checkpoint step 6")]
  assert len(warnings) == 1 and "resuming from step 3" in warnings[0], err
  # Kept aside byte for byte, not deleted; the run went on from step 3 exactly.
  assert _digest(str(tmp_path / "run" / "checkpoints.damaged" / "6")) == damaged
  assert sorted(Checkpointer(str(ckpt_dir)).all_steps()) == [3, 6, 9]
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(state.g_params),
               jax.device_get(reference.g_params))
  # jaxgan.sample reads the repaired run; given a damaged checkpoint it takes the one before.
  assert sample.load_generator(str(workdir))[2] == 9


def test_no_whole_checkpoint_is_one_error_that_changes_nothing(tmp_path, mock_fmnist):
  workdir = tmp_path / "run"
  trainer.train_and_evaluate(_config(6), str(workdir))
  for step in ("3", "6"):
    _damage(str(workdir / "checkpoints" / step), "arrays")
  before = {name: _digest(str(workdir / name)) for name in ("checkpoints", "metrics.jsonl",
                                                            "config.json")}
  with pytest.raises(CheckpointError, match=r"no checkpoint in .* can be read \(step 6: its "
                                            r"arrays cannot be read .*; step 3: "):
    trainer.train_and_evaluate(_config(9), str(workdir))
  assert {name: _digest(str(workdir / name)) for name in before} == before
  assert not (workdir / "checkpoints.damaged").exists()


def test_sample_skips_a_damaged_latest_and_refuses_a_damaged_step(tmp_path, mock_fmnist, capsys):
  workdir = tmp_path / "run"
  trainer.train_and_evaluate(_config(6), str(workdir))
  _damage(str(workdir / "checkpoints" / "6"), "arrays")
  before = _digest(str(workdir / "checkpoints"))
  capsys.readouterr()
  assert sample.load_generator(str(workdir))[2] == 3
  assert "warning: checkpoint step 6 is damaged" in capsys.readouterr().err
  with pytest.raises(sample.SampleError, match="checkpoint step 6 .* is damaged"):
    sample.load_generator(str(workdir), step=6)
  assert _digest(str(workdir / "checkpoints")) == before   # a reader moves nothing


def test_train_py_says_the_fallback_in_one_line(tmp_path):
  """Through the command line, on the real data: no traceback, one warning line, exit 0."""
  from conftest import _need_raw
  _need_raw("fashion_mnist")
  workdir = str(tmp_path / "run")
  args = [sys.executable, str(REPO / "train.py"), "--config", str(REPO / "configs" / "gan_fmnist.py"),
          "--workdir", workdir, "--config.checkpoint_every=2", "--config.log_every=1",
          "--config.sample_every=1000", "--config.progress=False", "--config.batch_size=8"]
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  subprocess.run(args + ["--config.num_steps=4"], check=True, capture_output=True, env=env, timeout=300)
  _damage(os.path.join(workdir, "checkpoints", "4"), "meta")
  result = subprocess.run(args + ["--config.num_steps=6"], capture_output=True, text=True, env=env,
                          timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  assert "Traceback" not in result.stderr
  assert [line for line in result.stderr.splitlines() if "damaged" in line] == [
      line for line in result.stderr.splitlines() if line.startswith("warning: checkpoint step 4 "
                                                                     "is damaged: its meta item")]
  assert "resumed from" in result.stdout and "at step 2" in result.stdout
