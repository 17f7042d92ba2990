"""The run directory (jaxgan.workdir): one live run per workdir, and workdirs that cannot be used."""

import os
import signal
import socket
import subprocess
import sys

import pytest

from conftest import REPO, load_config, tiny
from jaxgan import trainer
from jaxgan.errors import RunDirError
from jaxgan.workdir import LOCK, RunDir

HOLD = ("import sys, time\n"
        "from jaxgan.workdir import RunDir\n"
        "run = RunDir(sys.argv[1])\n"
        "print('held', flush=True)\n"
        "time.sleep(120)\n")


def _holder(path):
  """A process that holds ``path`` as a live run does, until killed."""
  proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], cwd=REPO, stdout=subprocess.PIPE,
                          text=True)
  assert proc.stdout.readline().strip() == "held"
  return proc


def _contents(path):
  return {p: open(os.path.join(path, p), "rb").read() for p in sorted(os.listdir(path))
          if os.path.isfile(os.path.join(path, p))}


def test_a_second_run_on_a_live_workdir_stops_at_once_naming_the_holder(tmp_path):
  workdir = tmp_path / "run"
  workdir.mkdir()
  (workdir / "config.json").write_text('{"model": "dcgan"}\n')      # a run's earlier outputs
  (workdir / "metrics.jsonl").write_text('{"step": 50, "d_loss": 1.0}\n')
  holder = _holder(workdir)
  try:
    before = _contents(workdir)
    with pytest.raises(RunDirError, match=rf"is in use by a run \(pid {holder.pid} on "
                                          rf"{socket.gethostname()}\)"):
      RunDir(str(workdir))
    # train.py: one line, exit code 2, before any work; the live run's files untouched.
    result = subprocess.run([sys.executable, str(REPO / "train.py"), "--workdir", str(workdir),
                             "--config.progress=False"], cwd=REPO, capture_output=True, text=True,
                            timeout=300, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and f"in use by a run (pid {holder.pid}" in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert _contents(workdir) == before
  finally:
    holder.send_signal(signal.SIGKILL)
    holder.wait()
  # A killed run leaves no lock behind: the next run takes the workdir.
  with RunDir(str(workdir)) as run:
    assert open(os.path.join(run.path, LOCK)).read() == f"pid {os.getpid()} on {socket.gethostname()}\n"
  with RunDir(str(workdir)):   # and releases it when it ends
    pass


def _config():
  config = tiny(load_config("dcgan_fmnist"))
  config.num_steps = 2
  return config


def test_workdirs_that_cannot_be_used_are_one_line_before_any_training(tmp_path, monkeypatch):
  afile = tmp_path / "notes.txt"
  afile.write_text("not a run")
  with pytest.raises(RunDirError, match=r"is a file, not a directory; choose another --workdir"):
    trainer.train_and_evaluate(_config(), str(afile))
  with pytest.raises(RunDirError, match=r"cannot create --workdir .*notes.txt is a file"):
    trainer.train_and_evaluate(_config(), str(afile / "run"))
  assert afile.read_text() == "not a run"
  # A read-only folder (simulated: root, who runs CI, may write anywhere).
  readonly = tmp_path / "readonly"
  readonly.mkdir()
  real_makedirs = os.makedirs

  def makedirs(path, *args, **kwargs):
    if str(path).startswith(str(readonly)):
      raise PermissionError(13, "Permission denied", str(path))
    return real_makedirs(path, *args, **kwargs)
  monkeypatch.setattr(os, "makedirs", makedirs)
  monkeypatch.setattr(os, "access", lambda p, mode: not str(p).startswith(str(readonly)))
  with pytest.raises(RunDirError, match=r"cannot create --workdir .*: Permission denied \(.*readonly "
                                        r"is not writable\)"):
    trainer.train_and_evaluate(_config(), str(readonly / "run"))
  with pytest.raises(RunDirError, match=r"readonly is not writable; fix its permissions"):
    trainer.train_and_evaluate(_config(), str(readonly))
  assert os.listdir(readonly) == []


def test_train_py_names_a_workdir_that_is_a_file_in_one_line(tmp_path):
  afile = tmp_path / "run"
  afile.write_text("x")
  result = subprocess.run([sys.executable, str(REPO / "train.py"), "--workdir", str(afile)],
                          cwd=REPO, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
  assert result.returncode == 2 and "Traceback" not in result.stderr
  assert f"error: --workdir {afile} is a file, not a directory" in result.stderr
