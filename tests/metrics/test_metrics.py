"""jaxgan.metrics: FID / KID / precision-recall / classifier score against hand-computed
values, the committed feature networks, and the Evaluator's cached reference statistics."""

import json
import os
import shutil

import numpy as np
import pytest

from conftest import MANUAL_DIR
from jaxgan.metrics import (Evaluator, WeightsError, class_shares, class_tv, classifier_score,
                            fid_from_features, frechet_distance, gaussian_stats, kid, knn_radii,
                            load_classifier, mmd2_unbiased, precision_recall)
from jaxgan.metrics import classifier as classifier_lib
from jaxgan.metrics.fid import trace_sqrt_product


def _correlated(rng, n, d, scale=1.0):
  a = rng.normal(size=(d, d)) / np.sqrt(d)
  return scale * rng.normal(size=(n, d)) @ a + rng.normal(size=d)


def _spd(rng, d):
  a = rng.normal(size=(d, d))
  return a @ a.T / d + 0.1 * np.eye(d)


# ---------------------------------------------------------------- FID

def test_fid_of_a_set_with_itself_is_zero():
  x = _correlated(np.random.default_rng(0), 2000, 32, scale=5.0)
  mu, sigma = gaussian_stats(x)
  scale = 2 * np.trace(sigma)
  assert fid_from_features(x, x) <= 1e-6 * scale
  # The trace term itself (not only the clipped result): tr((S^1/2 S S^1/2)^1/2) = tr(S).
  assert trace_sqrt_product(sigma, sigma) == pytest.approx(np.trace(sigma), rel=1e-9)


def test_fid_matches_the_closed_form_for_diagonal_covariances():
  # N(mu1, diag(a)) vs N(mu2, diag(b)): ||mu1 - mu2||^2 + sum (sqrt(a) - sqrt(b))^2
  mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([3.0, 1.0, 0.0])
  a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
  expected = 9.0 + 4.0 + (1.0 + 1.0 + 0.0)
  assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-12)


def test_fid_matches_the_closed_form_for_non_commuting_covariances():
  # tr((S1 S2)^1/2) = sum of square roots of the (real, positive) eigenvalues of S1 S2.
  rng = np.random.default_rng(1)
  s1, s2 = _spd(rng, 12), _spd(rng, 12)
  assert not np.allclose(s1 @ s2, s2 @ s1)
  mu1, mu2 = rng.normal(size=12), rng.normal(size=12)
  eig = np.linalg.eigvals(s1 @ s2)
  expected = (np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2)
              - 2 * np.sum(np.sqrt(eig.real)))
  got = frechet_distance(mu1, s1, mu2, s2)
  assert isinstance(got, float)
  assert got == pytest.approx(expected, rel=1e-9)
  assert frechet_distance(mu2, s2, mu1, s1) == pytest.approx(expected, rel=1e-9)


def test_fid_from_samples_approaches_the_gaussians_distance():
  rng = np.random.default_rng(2)
  s1, s2 = _spd(rng, 4), _spd(rng, 4)
  mu1, mu2 = np.zeros(4), np.full(4, 0.5)
  x = rng.multivariate_normal(mu1, s1, size=50_000)
  y = rng.multivariate_normal(mu2, s2, size=50_000)
  assert fid_from_features(x, y) == pytest.approx(frechet_distance(mu1, s1, mu2, s2), rel=0.03)


def test_fid_is_symmetric_and_finite_with_fewer_samples_than_dims():
  rng = np.random.default_rng(3)
  x, y = rng.normal(size=(20, 64)), rng.normal(size=(30, 64)) + 0.3
  assert np.linalg.matrix_rank(gaussian_stats(x)[1]) < 64   # rank deficient
  forward, backward = fid_from_features(x, y), fid_from_features(y, x)
  assert np.isfinite(forward) and forward > 0
  assert forward == pytest.approx(backward, rel=1e-6)
  assert fid_from_features(x, x) <= 1e-6 * 2 * np.trace(gaussian_stats(x)[1])


def test_fid_grows_with_the_mean_shift():
  rng = np.random.default_rng(4)
  x = rng.normal(size=(3000, 8))
  values = [fid_from_features(x, rng.normal(size=(3000, 8)) + shift) for shift in (0.0, 0.5, 1.0)]
  assert values[0] < 0.05 < values[1] < values[2]
  assert values[2] == pytest.approx(8.0, rel=0.1)  # ||shift||^2 = 8, same covariance


# ---------------------------------------------------------------- KID

def _cubic(x, y):
  d = x.shape[1]
  return np.array([[(np.dot(a, b) / d + 1) ** 3 for b in y] for a in x])


def test_mmd2_unbiased_matches_its_definition():
  rng = np.random.default_rng(5)
  x, y = rng.normal(size=(6, 3)), rng.normal(size=(7, 3)) + 1
  kxx, kyy, kxy = _cubic(x, x), _cubic(y, y), _cubic(x, y)
  expected = (sum(kxx[i, j] for i in range(6) for j in range(6) if i != j) / 30
              + sum(kyy[i, j] for i in range(7) for j in range(7) if i != j) / 42
              - 2 * kxy.mean())
  assert mmd2_unbiased(x, y) == pytest.approx(expected, rel=1e-12)


def test_kid_is_unbiased_on_a_toy_case():
  # Two samples of 10 points from the same Gaussian, many times: the unbiased MMD^2
  # averages to 0; the biased (V-statistic) estimator stays clearly positive.
  rng = np.random.default_rng(6)
  m, d, draws = 10, 3, 3000
  unbiased, biased = [], []
  for _ in range(draws):
    x, y = rng.normal(size=(m, d)), rng.normal(size=(m, d))
    unbiased.append(mmd2_unbiased(x, y))
    biased.append(_cubic_v(x, y))
  se = np.std(unbiased) / np.sqrt(draws)
  assert abs(np.mean(unbiased)) < 4 * se
  assert np.mean(biased) > 10 * se


def _cubic_v(x, y):
  d = x.shape[1]
  k = lambda a, b: (a @ b.T / d + 1) ** 3  # noqa: E731
  return k(x, x).mean() + k(y, y).mean() - 2 * k(x, y).mean()


def test_kid_of_identical_sets_is_about_zero_and_positive_for_shifted_ones():
  rng = np.random.default_rng(7)
  x = rng.normal(size=(1000, 16))
  other, other_std = kid(x, x + 0.5, num_subsets=10, subset_size=1000)
  # Identical sets: the unbiased estimate is -2 (mean diag K - mean K) / (m - 1), O(1/m).
  same, same_std = kid(x, x, num_subsets=3, subset_size=1000)
  k = (x @ x.T / 16 + 1) ** 3
  assert same == pytest.approx(-2 * (np.mean(np.diag(k)) - k.mean()) / 999, rel=1e-9)
  assert same_std < 1e-12                  # whole-set subsets: the same value each time
  assert abs(same) < 0.03 * other        # "about zero" on the scale of a real difference
  # A fresh sample of the same distribution: 0 within its spread.
  fresh, fresh_std = kid(x, rng.normal(size=(1000, 16)), num_subsets=10, subset_size=500)
  assert abs(fresh) < 4 * fresh_std + 1e-4 and abs(fresh) < 0.01 * other
  assert other > 10 * other_std


# ---------------------------------------------------------------- precision / recall

def test_knn_radii_match_brute_force_across_blocks():
  rng = np.random.default_rng(8)
  x = rng.normal(size=(50, 5)).astype(np.float32)
  d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
  expected = np.sort(d, axis=1)[:, 3]  # column 0 is the point itself
  np.testing.assert_allclose(knn_radii(x, k=3, block=16), expected, rtol=1e-4, atol=1e-5)


def test_precision_recall_identical_sets_are_one():
  x = np.random.default_rng(9).normal(size=(300, 8))
  assert precision_recall(x, x, block=64) == (1.0, 1.0)


def test_precision_recall_disjoint_clouds_are_zero():
  rng = np.random.default_rng(10)
  real, fake = rng.normal(size=(300, 8)), rng.normal(size=(250, 8)) + 50.0
  assert precision_recall(real, fake, block=64) == (0.0, 0.0)


def test_precision_recall_separate_quality_from_coverage():
  # Real data: two far clusters; samples cover one of them only (mode dropping):
  # precision stays high, recall falls to about one half.
  rng = np.random.default_rng(11)
  real = np.concatenate([rng.normal(size=(400, 4)), rng.normal(size=(400, 4)) + 30])
  fake = rng.normal(size=(800, 4))
  precision, recall = precision_recall(real, fake, block=256)
  assert precision > 0.9
  assert 0.4 < recall < 0.55


# ---------------------------------------------------------------- classifier score

def test_class_shares_and_total_variation_by_hand():
  logits = np.array([[0.0, 2.0, 1.0], [3.0, 0.0, 0.0], [0.0, 5.0, 0.0], [0.1, 0.2, 0.0]])
  np.testing.assert_allclose(class_shares(logits), [0.25, 0.75, 0.0])
  np.testing.assert_allclose(class_shares(logits[:1], num_classes=4), [0, 1, 0, 0])
  assert class_tv([0.25, 0.75, 0.0], [1 / 3, 1 / 3, 1 / 3]) == pytest.approx(
      0.5 * (1 / 12 + 5 / 12 + 1 / 3))
  assert class_tv([0.5, 0.5], [0.5, 0.5]) == 0.0
  assert class_tv([1.0, 0.0], [0.0, 1.0]) == 1.0
  with pytest.raises(ValueError, match="one length"):
    class_tv([0.5, 0.5], [1 / 3, 1 / 3, 1 / 3])
  with pytest.raises(ValueError, match=r"\[n >= 1, classes\]"):
    class_shares(np.zeros((0, 3)))


def test_classifier_score_bounds():
  assert classifier_score(np.zeros((100, 10))) == pytest.approx(1.0)
  confident = np.eye(10)[np.arange(100) % 10] * 50.0   # sharp p(y|x), uniform p(y)
  assert classifier_score(confident) == pytest.approx(10.0, rel=1e-6)
  one_class = np.tile(np.eye(10)[0] * 50.0, (100, 1))  # sharp but a single class
  assert classifier_score(one_class) == pytest.approx(1.0, abs=1e-6)


# ---------------------------------------------------------------- feature network

def test_committed_weights_load_with_their_hash():
  net = load_classifier("fashion_mnist")
  with open(os.path.join(classifier_lib.WEIGHTS_DIR, "fashion_mnist.json")) as f:
    manifest = json.load(f)
  assert net.sha256 == manifest["sha256"] == classifier_lib.sha256_of(
      os.path.join(classifier_lib.WEIGHTS_DIR, "fashion_mnist.msgpack"))
  assert manifest["test_accuracy"] >= 0.92
  assert manifest["bytes"] < 2_000_000
  x = np.random.default_rng(0).uniform(-1, 1, size=(7, 28, 28, 1)).astype(np.float32)
  feats, logits = net(x, batch_size=4)          # 28x28 resized inside; padded last batch
  assert feats.shape == (7, net.module.hidden) and logits.shape == (7, 10)
  np.testing.assert_allclose(net(x, batch_size=500)[0], feats, rtol=1e-5, atol=1e-5)
  assert np.all(feats >= 0) and np.all(np.isfinite(logits))


def test_tampered_or_missing_weights_are_refused(tmp_path):
  src = os.path.join(classifier_lib.WEIGHTS_DIR, "fashion_mnist")
  for ext in (".msgpack", ".json"):
    shutil.copy(src + ext, tmp_path / f"net{ext}")
  load_classifier(str(tmp_path / "net.msgpack"))  # an intact copy loads
  data = bytearray((tmp_path / "net.msgpack").read_bytes())
  data[-1] ^= 1
  (tmp_path / "net.msgpack").write_bytes(bytes(data))
  with pytest.raises(WeightsError, match="sha256"):
    load_classifier(str(tmp_path / "net.msgpack"))
  with pytest.raises(WeightsError, match="train_classifier"):
    load_classifier("no_such_dataset")


def _real_test_accuracy(name, data_dir):
  from jaxgan.data import load
  net = load_classifier(name)
  data = load(name, "test", 32, data_dir=data_dir, manual_dir=MANUAL_DIR)
  assert len(data.images) == 10_000
  _, logits = net(data.images, batch_size=1000)
  return net, float(np.mean(np.argmax(logits, -1) == data.labels))


def test_fashion_mnist_classifier_accuracy_on_real_test_images(real_data_dir):
  net, accuracy = _real_test_accuracy("fashion_mnist", real_data_dir)
  # The whole test split: the manifest's number, reproduced (up to CPU rounding).
  assert accuracy >= 0.92
  assert accuracy == pytest.approx(net.manifest["test_accuracy"], abs=1e-3)


def test_mnist_classifier_accuracy_on_real_test_images(tmp_path_factory):
  if not MANUAL_DIR or not os.path.isdir(os.path.join(MANUAL_DIR, "mnist")):
    pytest.skip("raw mnist files not present (set JAXGAN_MANUAL_DIR; .ci/run does)")
  net, accuracy = _real_test_accuracy("mnist", str(tmp_path_factory.mktemp("tfds_mnist")))
  assert accuracy >= 0.98
  assert accuracy == pytest.approx(net.manifest["test_accuracy"], abs=1e-3)


# ---------------------------------------------------------------- Evaluator

def test_evaluator_caches_reference_statistics_and_scores_real_and_noise(
    tmp_path, mock_fmnist, monkeypatch):
  from jaxgan import data as data_lib
  ev = Evaluator("fashion_mnist", 32, num_samples=10_000, cache_dir=str(tmp_path),
                 kid_subsets=5, kid_subset_size=100)
  assert os.path.exists(ev.cache_path) and "fashion_mnist-test-32-" in ev.cache_path
  assert ev.network.sha256[:16] in ev.cache_path
  real = data_lib.load("fashion_mnist", "test", 32).images
  assert len(ev.real_features) == len(real) == 256

  # Cached: a second Evaluator does not read the dataset at all.
  def no_load(*a, **k):
    raise AssertionError("reference statistics were recomputed instead of read from the cache")
  monkeypatch.setattr(data_lib, "load", no_load)
  ev = Evaluator("fashion_mnist", 32, num_samples=10_000, cache_dir=str(tmp_path),
                 kid_subsets=5, kid_subset_size=100)

  same = ev.evaluate(real)
  noise = ev.evaluate(np.random.default_rng(0).integers(0, 256, (256, 32, 32, 1), dtype=np.uint8))
  assert same["fid"] <= 1e-6 * np.trace(ev.reference["sigma"])
  assert same["precision"] == 1.0 and same["recall"] == 1.0
  assert same["num_samples"] == 256
  # KID subsets (100 of 256, drawn independently) of one set overlap: about 0, not exactly.
  assert abs(same["kid"]) < 0.02 * noise["kid"]
  assert noise["fid"] > 1.0 and noise["precision"] < 0.5
  assert set(noise) == {"fid", "kid", "kid_std", "precision", "recall", "classifier_score",
                        "class_tv", "num_samples"}
  # Class balance: the real split itself is at distance 0; one image repeated puts every sample
  # in that image's predicted class c, at distance 1 - (the real split's share of c).
  assert same["class_tv"] == 0.0
  one = ev.evaluate(np.repeat(real[:1], 64, axis=0), with_shares=True)
  c = int(np.argmax(ev.features(real[:1])[1][0]))
  np.testing.assert_array_equal(one["class_shares"], np.eye(10)[c])
  assert one["class_tv"] == pytest.approx(1.0 - ev.reference["class_shares"][c], abs=1e-12)
  assert ev.reference["class_shares"].sum() == pytest.approx(1.0)
  assert all(np.isfinite(v) for v in noise.values())
  with pytest.raises(ValueError, match="image_size"):
    ev.evaluate(np.zeros((16, 28, 28, 1), np.float32))
  with pytest.raises(ValueError, match=r"\[-1, 1\]"):
    ev.evaluate(np.full((16, 32, 32, 1), 3.0, np.float32))
