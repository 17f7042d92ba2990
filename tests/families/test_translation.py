"""CycleGAN / StarGAN through the generic trainer: grids, truth metrics, exact resume, bad input.

The real MNIST / Fashion-MNIST files (JAXGAN_MANUAL_DIR) are read straight from
their idx files (a subset, no tfds build: that path is tested in test_data.py),
tiny networks, a few steps.
"""

import gzip
import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest

from conftest import MANUAL_DIR, REPO, load_config, read_metrics
from jaxgan import trainer
from jaxgan.config import override
from jaxgan.data import domains
from jaxgan.errors import ConfigError
from jaxgan.metrics import translation as mt

TRAIN, TEST = 3000, 500


def _idx(path):
  with gzip.open(path) as f:
    data = f.read()
  dims = data[3]
  shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
  return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


_RAW = {}


def _raw_gray(name, split="train", data_dir=None, manual_dir=None, image_size=None):
  """domains.load_gray from the raw idx files (first TRAIN / TEST examples)."""
  if not MANUAL_DIR or not os.path.isdir(os.path.join(MANUAL_DIR, name)):
    pytest.skip(f"raw {name} files not present (set JAXGAN_MANUAL_DIR)")
  assert image_size in (None, 28)
  key = (name, split)
  if key not in _RAW:
    prefix = "train" if split == "train" else "t10k"
    n = TRAIN if split == "train" else TEST
    images = _idx(os.path.join(MANUAL_DIR, name, f"{prefix}-images-idx3-ubyte.gz"))[:n]
    labels = _idx(os.path.join(MANUAL_DIR, name, f"{prefix}-labels-idx1-ubyte.gz"))[:n]
    _RAW[key] = (images[..., None].astype(np.float32) / 127.5 - 1.0, labels.astype(np.int32))
  return _RAW[key]


@pytest.fixture(autouse=True)
def raw_files(monkeypatch):
  monkeypatch.setattr(domains, "load_gray", _raw_gray)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp("cache"))


def _config(name, cache_dir, **kw):
  config = load_config(name)
  config.generator.features, config.generator.num_blocks = 4, 1
  config.discriminator.features = 4
  config.batch_size, config.progress, config.num_devices = 4, False, 1
  config.num_steps, config.log_every, config.sample_every, config.checkpoint_every = 4, 1, 2, 2
  config.eval_every, config.eval_samples, config.eval_cache_dir = 4, 100, cache_dir
  if name == "stargan_mnist":
    config.n_critic, config.generator.num_blocks, config.eval_classifier_steps = 2, 0, 30
    config.image_size, config.discriminator.num_layers = 28, 2  # the raw 28-px digits, 7x7 map
  for k, v in kw.items():
    config[k] = v
  return config


# ------------------------------------------------------------------------------- measurement

def test_measurements_on_known_cases(cache_dir):
  gray, classes = _raw_gray("mnist", "test")
  spec = domains.DEFAULT_SPECS["mnist"]  # red, green, blue, thick, inverted (BCE)
  labels = spec.sample(np.random.default_rng(0), len(gray))
  truth = spec.apply(gray, labels)
  assert mt.mean_abs_error(truth, truth) == 0.0
  assert mt.mean_abs_error(truth, -truth) == pytest.approx(2 * np.mean(np.abs(truth)))
  # Colour and inversion are undone exactly: a translation to a thin-stroke domain reads as x.
  thin = labels.copy()
  thin[:, spec.names.index("thick")] = 0
  np.testing.assert_allclose(mt.content_gray(spec.apply(gray, thin), spec, thin), gray, atol=1e-6)
  # The committed MNIST classifier recognises the true translations' digits.
  from jaxgan.metrics import load_classifier
  net = load_classifier("mnist")
  assert mt.class_accuracy(net, mt.content_gray(truth, spec, labels), classes) >= 0.95
  # The independent attribute classifier reads the labels of real transformed held-out images.
  train_gray, _ = _raw_gray("mnist", "train")
  clf = mt.train_attribute_classifier(train_gray, spec, steps=400, test_gray=gray,
                                      cache_dir=cache_dir, name="mnist")
  assert clf.test_accuracy >= 0.95
  assert clf.accuracy(truth, labels) >= 0.95
  assert mt.attribute_accuracy(np.array([[2.0, -1.0], [1.0, 0.5]]), np.eye(2), "single") == 0.5
  assert mt.attribute_accuracy(np.array([[2.0, -1.0], [0.5, 1.0]]), np.eye(2), "multi") == 0.75


# ------------------------------------------------------------------------------- CycleGAN

@pytest.fixture(scope="module")
def cyclegan_run(tmp_path_factory, cache_dir):
  mp = pytest.MonkeyPatch()
  mp.setattr(domains, "load_gray", _raw_gray)
  workdir = str(tmp_path_factory.mktemp("cyclegan") / "run")
  config = _config("cyclegan_mnist", cache_dir, eval_classifier_steps=50)
  state = trainer.train_and_evaluate(config, workdir)
  yield config, workdir, state
  mp.undo()


def test_cyclegan_run_writes_triplet_grids_and_truth_metrics(cyclegan_run, capsys):
  import matplotlib.image
  config, workdir, state = cyclegan_run
  assert int(state.step) == 4
  assert sorted(os.listdir(os.path.join(workdir, "samples"))) == [
      "final.png", "step_0000002.png", "step_0000004.png"]
  grid = matplotlib.image.imread(os.path.join(workdir, "samples", "final.png"))
  # 8 rows x 6 columns (a, G(a), F(G(a)), b, F(b), G(F(b))) of 28 px + 2 px gaps, up-scaled 3x
  assert grid.shape[:2] == ((8 * 30 + 2) * 3, (6 * 30 + 2) * 3)
  assert os.path.exists(os.path.join(workdir, "losses.png"))
  assert not os.path.exists(os.path.join(workdir, "accuracy.png"))  # no D accuracy in this family
  records = read_metrics(workdir)
  train = [r for r in records if "d_loss" in r]
  assert [r["step"] for r in train] == [1, 2, 3, 4]
  assert {"g_loss", "cycle_a", "identity_b", "d_a_loss"} <= set(train[0])
  evals = [r for r in records if "mae_ab" in r]
  assert [r["step"] for r in evals] == [4]
  assert {"mae", "attr_acc", "content_acc", "content_truth_acc", "content_agreement", "cycle_a",
          "cycle_b", "identity_mae"} <= set(evals[0])
  assert all(np.isfinite(v) for v in evals[0].values())
  assert evals[0]["identity_mae"] > 1.5  # original vs inverted differ everywhere


def test_cyclegan_resume_is_exact(cyclegan_run, tmp_path):
  config, workdir, _ = cyclegan_run
  part = str(tmp_path / "part")
  shutil.copytree(workdir, part)
  shutil.rmtree(os.path.join(part, "checkpoints", "4"))  # as if stopped after the step-2 save
  resumed = trainer.train_and_evaluate(config, part)
  a, b = read_metrics(workdir), read_metrics(part)
  assert [r["step"] for r in a] == [r["step"] for r in b]
  for ra, rb in zip(a, b):
    for key in ("d_loss", "g_loss", "cycle_a", "mae_ab"):
      if key in ra:
        assert ra[key] == rb[key], (ra["step"], key)
  _, _, full = cyclegan_run
  for x, y in zip(jax.tree.leaves(full), jax.tree.leaves(resumed)):
    np.testing.assert_array_equal(x, y)


def test_sample_cli_writes_the_translation_figure(cyclegan_run, tmp_path):
  from jaxgan import sample
  _, workdir, _ = cyclegan_run
  drawing = sample.draw(workdir, 10)
  out, png = sample.save_drawing(drawing, str(tmp_path / "t.npz"))
  saved = np.load(out)
  images, caption = saved["images"], str(saved["caption"])
  assert images.shape == (10, 6, 28, 28, 3) and images.dtype == np.uint8
  assert os.path.getsize(png) > 1000 and "G(a)" in caption and caption in drawing.description
  with pytest.raises(sample.SampleError, match="--label 3: a translation run"):
    sample.draw(workdir, 10, label=3)


# ------------------------------------------------------------------------------- StarGAN

def test_stargan_multi_dataset_run_on_two_devices(tmp_path, cache_dir):
  import matplotlib.image
  workdir = str(tmp_path / "run")
  config = _config("stargan_mnist", cache_dir, multi_dataset=True, num_devices=2, num_steps=2,
                   sample_every=2, checkpoint_every=2, eval_every=2)
  state = trainer.train_and_evaluate(config, workdir)
  assert int(state.step) == 2
  # The generator reads 4 MNIST attributes + 3 Fashion-MNIST domains + the 2-entry mask.
  assert state.generator.num_domains == 9 and state.discriminator.num_domains == 7
  grid = matplotlib.image.imread(os.path.join(workdir, "samples", "final.png"))
  assert grid.shape[:2] == ((8 * 30 + 2) * 3, (8 * 30 + 2) * 3)  # input + 4 + 3 targets
  records = read_metrics(workdir)
  train = [r for r in records if "d_loss" in r]
  assert {"gp", "d_cls", "g_rec", "d_cls_acc"} <= set(train[-1])
  evals = [r for r in records if "mae" in r]
  assert [r["step"] for r in evals] == [2]
  keys = {"mae", "attr_acc", "content_acc", "rec_l1", "mae_fashion_mnist", "content_acc_fashion_mnist",
          "content_truth_acc", "content_truth_acc_fashion_mnist", "content_agreement_fashion_mnist"}
  assert keys <= set(evals[0]) and all(np.isfinite(v) for v in evals[0].values())


def test_stargan_measurements_by_target_tell_the_truth_from_the_identity(cache_dir):
  from jaxgan.families import translation as th
  config = _config("stargan_mnist", cache_dir)
  config.stargan.attributes = ""  # all five, the inversion included
  meter = th.Meter(config, {"mnist": _raw_gray("mnist")[0]}, 200, cache_dir=cache_dir,
                   classifier_steps=30)
  gray = meter.test["mnist"][0]
  spec = th.stargan_datasets(config)[0][1]
  truth = meter.by_target(None, lambda x, c: spec.apply(gray, c))
  assert [r["target"] for r in truth] == ["own domain", "red", "green", "blue", "thick flipped",
                                          "inverted flipped"]
  # The figure's caption names its columns the same way.
  assert th.figure_caption(config).endswith("mnist:thick flipped, mnist:inverted flipped")
  assert all(r["mae"] == 0.0 and r["content_acc"] >= 0.9 for r in truth)
  # The ceiling is the content accuracy of the true translations: met exactly by the truth.
  assert all(r["content_acc"] == r["content_truth_acc"] for r in truth)
  # ... and it agrees with the classifier on every image, where the classifier errs too.
  assert all(r["content_agreement"] == 1.0 for r in truth)
  # Not translating at all is exact for the own domain only; flipping the inversion and
  # reading it back leaves the digit unrecognised (content_gray undoes the target's inversion).
  same = {r["target"]: r for r in meter.by_target(None, lambda x, c: x)}
  assert same["own domain"]["mae"] == 0.0 and same["own domain"]["content_acc"] >= 0.9
  assert same["inverted flipped"]["mae"] > 0.5 and same["inverted flipped"]["content_acc"] < 0.5
  assert same["inverted flipped"]["content_truth_acc"] >= 0.9  # it does not depend on the generator
  assert same["own domain"]["content_agreement"] == 1.0
  # Agreement with the truth's class is at most accuracy + the truth's errors, at least their gap.
  for r in same.values():
    assert r["content_agreement"] <= r["content_acc"] + (1 - r["content_truth_acc"]) + 1e-9
    assert r["content_agreement"] >= r["content_acc"] - (1 - r["content_truth_acc"]) - 1e-9
  assert same["inverted flipped"]["content_agreement"] < 0.5
  assert all(same[k]["mae"] > 0.0 for k in same if k != "own domain")


def test_model_meta_records_label_norm_only_when_on(cache_dir):
  from jaxgan.families import translation as th
  config = _config("stargan_mnist", cache_dir)
  meta = th.model_meta(config, (28, 28, 3))["generator"]
  # Checkpoints written before the option existed carry no such key and must still restore.
  assert "label_norm" not in meta and meta["num_blocks"] == 0
  config.generator.label_norm = True
  assert th.model_meta(config, (28, 28, 3))["generator"]["label_norm"] is True


# ------------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("name,overrides,match", [
    ("cyclegan_mnist", {"image_size": 30}, "multiples of 4"),
    ("stargan_mnist", {"discriminator.num_layers": 3}, "multiples of 8"),
    ("stargan_mnist", {"discriminator.num_domains": 3}, "label vectors have 4 entries"),
    ("stargan_mnist", {"multi_dataset": True, "generator.num_domains": 8}, "mask entries"),
    ("stargan_mnist", {"multi_dataset": True, "stargan.extra_datasets": ""},
     "at least two labelled datasets"),
    ("stargan_mnist", {"loss": "hinge"}, "wasserstein"),
    ("stargan_mnist", {"stargan.lambda_id": -1.0}, "lambda_id"),
    ("cyclegan_mnist", {"n_critic": 5}, "n_critic=1"),
    ("cyclegan_mnist", {"cyclegan.domain_b": "purple"}, "unknown domain"),
    ("cyclegan_mnist", {"decay_steps": 10_000}, "decay_steps"),
])
def test_bad_translation_configs_are_refused_before_any_work(tmp_path, cache_dir, name, overrides, match):
  config = _config(name, cache_dir)
  override(config, overrides)
  with pytest.raises(ConfigError, match=match):
    trainer.train_and_evaluate(config, str(tmp_path / "run"))
  assert not os.path.exists(tmp_path / "run")


def test_train_py_reports_a_bad_image_size_in_one_line(tmp_path):
  result = subprocess.run(
      [sys.executable, str(REPO / "train.py"), "--config", "configs/stargan_mnist.py",
       "--workdir", str(tmp_path / "run"), "--config.image_size=26"],
      cwd=REPO, capture_output=True, text=True, timeout=120,
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
  assert result.returncode != 0
  assert "error: " in result.stderr and "image_size" in result.stderr
  assert "Traceback" not in result.stderr
