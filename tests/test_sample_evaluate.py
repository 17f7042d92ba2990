"""``python -m jaxgan.sample`` and ``python -m jaxgan.evaluate`` on a tiny checkpoint."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from conftest import MANUAL_DIR, REPO, load_config, tiny
from jaxgan.sample import SampleError, generate_images, load_generator, sample
from jaxgan.viz import to_uint8


def _env():
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  if MANUAL_DIR:
    env["JAXGAN_MANUAL_DIR"] = MANUAL_DIR
  return env


def _module(name, *args, timeout=240):
  return subprocess.run([sys.executable, "-m", name, *args], cwd=REPO, env=_env(),
                        capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  """A tiny MLP GAN trained 2 steps on mock Fashion-MNIST (32x32), checkpoints at steps 1 and 2."""
  import tensorflow_datasets as tfds
  from jaxgan import trainer
  from jaxgan.data import tfds_data
  workdir = str(tmp_path_factory.mktemp("sample") / "run")
  config = tiny(load_config("gan_fmnist"))
  config.num_steps, config.log_every, config.sample_every, config.checkpoint_every = 2, 1, 2, 1
  with pytest.MonkeyPatch.context() as mp, tfds.testing.mock_data(num_examples=256):
    mp.setattr(tfds_data, "_reachable", lambda *a, **k: True)
    trainer.train_and_evaluate(config, workdir)
  return workdir


def test_sample_is_uint8_deterministic_and_independent_of_batch_size(run):
  a = sample(run, 10, seed=1, batch_size=4)      # 3 batches, the last one padded
  assert a.shape == (10, 32, 32, 1) and a.dtype == np.uint8
  assert a.std() > 10
  np.testing.assert_array_equal(a, sample(run, 10, seed=1, batch_size=4))
  state, config, step = load_generator(run)
  assert step == 2 and int(state.step) == 2 and config.latent_dim == 8
  # The noise depends on the seed only: other batch sizes give the same images.
  f4 = generate_images(state, 8, 10, seed=1, batch_size=4)
  np.testing.assert_allclose(generate_images(state, 8, 10, seed=1, batch_size=500), f4, atol=1e-5)
  np.testing.assert_array_equal(a, to_uint8(f4))
  assert np.abs(generate_images(state, 8, 10, seed=2) - f4).max() > 0.1
  old, _, _ = load_generator(run, step=1)
  assert np.abs(generate_images(old, 8, 10, seed=1) - f4).max() > 1e-3   # step 1's generator


def test_sample_errors_are_clear(tmp_path, run):
  with pytest.raises(SampleError, match="does not exist"):
    sample(str(tmp_path / "missing"), 4)
  (tmp_path / "empty").mkdir()
  with pytest.raises(SampleError, match="no checkpoint"):
    sample(str(tmp_path / "empty"), 4)
  with pytest.raises(SampleError, match=r"no checkpoint at step 7 .* steps \[1, 2\]"):
    sample(run, 4, step=7)
  with pytest.raises(SampleError, match="eval_every"):
    sample(run, 4, best=True)


def test_sample_command_writes_npz_and_grid(run, tmp_path):
  out = tmp_path / "s" / "samples.npz"
  result = _module("jaxgan.sample", "--workdir", run, "--num", "20", "--seed", "1",
                   "--batch_size", "8", "--out", str(out))
  assert result.returncode == 0, result.stderr[-3000:]
  with np.load(out) as z:
    assert z.files == ["images"]
    images = z["images"]
  assert images.shape == (20, 32, 32, 1) and images.dtype == np.uint8
  np.testing.assert_array_equal(images, sample(run, 20, seed=1, batch_size=8))  # same seed
  assert (tmp_path / "s" / "samples.png").stat().st_size > 1000
  assert "wrote 20 samples" in result.stdout


def test_commands_fail_with_one_line_for_a_missing_workdir(tmp_path):
  for name in ("jaxgan.sample", "jaxgan.evaluate"):
    result = _module(name, "--workdir", str(tmp_path / "nope"), "--num", "8")
    assert result.returncode != 0
    assert "error: workdir" in result.stderr and "does not exist" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "nope").exists()


@pytest.mark.parametrize("name,args,match", [
    ("jaxgan.sample", ["--num", "0"], "--num and --batch_size must be positive (got --num=0"),
    ("jaxgan.sample", ["--num", "8", "--batch_size", "-1"], "must be positive"),
    ("jaxgan.evaluate", ["--num", "2"], "--num must be at least 4"),
    ("jaxgan.sample", ["--num", "8", "extra"], "unexpected arguments: extra"),
    ("jaxgan.evaluate", [], "--workdir is required"),
])
def test_bad_flags_are_one_line_without_the_usage_text(tmp_path, name, args, match):
  workdir = [] if "--workdir" in match else ["--workdir", str(tmp_path)]
  result = _module(name, *workdir, *args)
  assert result.returncode == 2
  lines = [line for line in result.stderr.splitlines() if line.strip()
           and not line.startswith(("WARNING: All log messages", "I0000"))]
  assert lines == [f"error: {lines[0][len('error: '):]}"] and match in lines[0], result.stderr


def test_evaluate_writes_eval_json_on_mock_data(run, mock_fmnist, tmp_path, capsys):
  from jaxgan.evaluate import evaluate
  from jaxgan.metrics import Evaluator
  result = evaluate(run, num=64, cache_dir=str(tmp_path))
  with open(os.path.join(run, "eval.json")) as f:
    saved = json.load(f)
  assert saved == result
  assert saved["step"] == 2 and saved["num_samples"] == 64
  assert set(saved["metrics"]) == {"fid", "kid", "kid_std", "precision", "recall",
                                   "classifier_score", "class_tv"}
  assert len(saved["class_shares"]) == 10 and sum(saved["class_shares"]) == pytest.approx(1.0)
  assert len(saved["reference"]["class_shares_real"]) == 10
  assert all(np.isfinite(v) for v in saved["metrics"].values())
  assert saved["reference"]["dataset"] == "fashion_mnist"
  assert saved["reference"]["reference_examples"] == 256    # the mock test split
  out = capsys.readouterr().out
  assert "FID" in out and "precision" in out and "eval.json" in out
  assert "class TV" in out and "ankle boot" in out
  # The same numbers as the Evaluator on what `jaxgan.sample` returns.
  direct = Evaluator("fashion_mnist", 32, num_samples=64, cache_dir=str(tmp_path)).evaluate(
      sample(run, 64))
  assert direct["fid"] == pytest.approx(saved["metrics"]["fid"], rel=1e-9)
  assert direct["precision"] == saved["metrics"]["precision"]


def test_evaluate_command_on_real_test_split(run, real_data_dir, tmp_path):
  result = _module("jaxgan.evaluate", "--workdir", run, "--num", "200", "--batch_size", "64",
                   "--data_dir", real_data_dir, "--cache_dir", str(tmp_path))
  assert result.returncode == 0, result.stderr[-3000:]
  with open(os.path.join(run, "eval.json")) as f:
    saved = json.load(f)
  ref = saved["reference"]
  assert ref["reference_examples"] == 10_000 and ref["reference_subset"] == 200
  assert ref["classifier_accuracy_real"] >= 0.92
  # Two steps of training: far from the data, and all samples alike (one class, no coverage).
  m = saved["metrics"]
  assert m["fid"] > 100 and m["kid"] > 1 and m["recall"] < 0.1
  assert m["classifier_score"] < 2 < ref["classifier_score_real"]
  # ... so most fall in one class: far from the real split's balance (about 10 % a class).
  assert max(saved["class_shares"]) > 0.5 and m["class_tv"] > 0.4
  assert max(ref["class_shares_real"]) < 0.15
  assert "FID" in result.stdout and "KID" in result.stdout and "class TV" in result.stdout


def test_evaluate_in_inception_space_warns_of_the_small_sample_bias(tmp_path):
  from jaxgan.evaluate import evaluate
  logs = []
  with pytest.raises(SampleError, match="does not exist"):
    evaluate(str(tmp_path / "nope"), num=500, features="inception", log=logs.append)
  assert len(logs) == 1 and "500 samples: Inception FID is biased upwards at small N" in logs[0]
  logs.clear()
  with pytest.raises(SampleError):
    evaluate(str(tmp_path / "nope"), num=500, log=logs.append)   # classifier space: no warning
  assert logs == []


def test_truncated_latents_stay_within_psi_and_slerp_keeps_the_ends():
  from jaxgan.generation import interpolation_latents, latent_noise, slerp
  plain = latent_noise(2000, 8, seed=3)
  np.testing.assert_array_equal(plain, np.asarray(jax.random.normal(jax.random.PRNGKey(3), (2000, 8))))
  z = latent_noise(2000, 8, seed=3, truncation=0.5)
  assert np.abs(z).max() <= 0.5 and np.abs(plain).max() > 2
  assert 0.2 < z.std() < 0.3          # a normal truncated at 0.5 sigma has std 0.28
  a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
  path = slerp(a, b, np.linspace(0, 1, 5))
  np.testing.assert_allclose(path[[0, -1]], [a, b], atol=1e-7)
  np.testing.assert_allclose(np.linalg.norm(path, axis=1), 1.0, atol=1e-6)   # on the circle
  ends = latent_noise(2, 8, seed=4)
  np.testing.assert_allclose(interpolation_latents(8, 7, seed=4)[[0, -1]], ends, atol=1e-6)
  with pytest.raises(SampleError, match="at least 2 steps"):
    interpolation_latents(8, 1)
  with pytest.raises(SampleError, match="must be a positive number"):
    latent_noise(4, 8, truncation=0.0)


def test_sample_command_draws_truncated_samples_and_interpolations(run, tmp_path):
  from jaxgan.sample import draw
  truncated = draw(run, 16, seed=2, truncation=0.7).arrays["images"]
  assert truncated.shape == (16, 32, 32, 1)
  assert not np.array_equal(truncated, sample(run, 16, seed=2))
  result = _module("jaxgan.sample", "--workdir", run, "--interpolate", "6", "--seed", "5",
                   "--out", str(tmp_path / "path.npz"))
  assert result.returncode == 0, result.stderr[-2000:]
  saved = np.load(tmp_path / "path.npz")
  images, z = saved["images"], saved["z"]
  assert images.shape == (6, 32, 32, 1) and z.shape == (6, 8)
  state, _, _ = load_generator(run)
  ends = to_uint8(generate_images(state, 8, 2, seed=5))
  np.testing.assert_array_equal(images[[0, -1]], ends)       # the path starts and ends at two draws
  assert (tmp_path / "path.png").stat().st_size > 1000
  bad = _module("jaxgan.sample", "--workdir", run, "--truncation", "-1")
  lines = [line for line in bad.stderr.splitlines() if line.startswith("error:")]
  assert bad.returncode == 2 and len(lines) == 1 and "positive number" in lines[0]


def test_translation_runs_refuse_latent_tools():
  from jaxgan import families
  for kwargs, flag in (({"truncation": 0.5}, "--truncation"), ({"interpolate": 4}, "--interpolate")):
    with pytest.raises(SampleError, match=f"{flag} [0-9.]+: a translation run translates test "
                                          f"images .*; drop {flag}"):
      families.for_model("cyclegan").draw(None, None, 4, **kwargs)
