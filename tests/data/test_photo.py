"""The real translation datasets (tfds cycle_gan/<pair>, celeb_a) on tfds.testing.mock_data.

The files are not on our machines: mock_data serves random examples with the
real feature specs (CelebA 218x178 faces with its 40 attributes, CycleGAN
images of random sizes), so these tests check the preprocessing, the labels,
the cache, the batches and the trainer wiring, not the photos.
"""

import os

import numpy as np
import pytest

from conftest import load_config
from jaxgan import data as data_lib
from jaxgan import trainer
from jaxgan.config import override
from jaxgan.data import DataError, photo, prepare, tfds_data
from jaxgan.errors import ConfigError

H2Z = "cycle_gan/horse2zebra"


@pytest.fixture
def mock_photos(monkeypatch):
  import tensorflow_datasets as tfds
  monkeypatch.delenv("JAXGAN_MANUAL_DIR", raising=False)
  monkeypatch.setattr(tfds_data, "_reachable", lambda *a, **k: True)
  with tfds.testing.mock_data(num_examples=24):
    yield


def _raw(name, split, data_dir):
  import tensorflow_datasets as tfds
  ds = tfds.builder(name, data_dir=data_dir).as_dataset(split=split, shuffle_files=False)
  return list(tfds.as_numpy(ds))


def test_celeba_is_center_cropped_resized_and_labelled(mock_photos, tmp_path):
  import tensorflow as tf
  data_dir = str(tmp_path)
  attrs = ("Blond_Hair", "Male", "Eyeglasses")
  data = photo.celeb_a(32, attrs, data_dir=data_dir)
  raw = _raw("celeb_a", "train", data_dir)
  assert data.images.shape == (len(raw), 32, 32, 3) and data.images.dtype == np.uint8
  want = np.array([[ex["attributes"][a] for a in attrs] for ex in raw], np.float32)
  np.testing.assert_array_equal(data.labels, want)
  # Center crop 178 of a 218 x 178 face = rows 20..197, then the resize.
  face = raw[0]["image"]
  assert face.shape == (218, 178, 3)
  crop = tf.image.resize(face[20:198].astype(np.float32), (32, 32), "bicubic", antialias=True).numpy()
  np.testing.assert_allclose(data.images[0], np.clip(np.round(crop), 0, 255), atol=1)
  off = tf.image.resize(face[:178].astype(np.float32), (32, 32), "bicubic", antialias=True).numpy()
  assert np.abs(data.images[0].astype(np.float32) - off).mean() > 5  # a top crop would differ


def test_celeba_cache_is_reused_and_serves_any_attribute_subset(mock_photos, tmp_path, monkeypatch):
  data_dir = str(tmp_path)
  first = photo.celeb_a(16, data_dir=data_dir)
  assert first.spec.names == photo.CELEBA_DEFAULT and first.spec.exclusive == [0, 1, 2]
  # A second load reads the memory-mapped cache, not tfds.
  import tensorflow_datasets as tfds
  builder_cls = type(tfds.builder("celeb_a"))
  monkeypatch.setattr(builder_cls, "as_dataset", lambda *a, **k: pytest.fail("re-decoded"))
  again = photo.celeb_a(16, ("Young", "Black_Hair"), data_dir=data_dir)
  assert isinstance(again.images, np.memmap)
  np.testing.assert_array_equal(again.images, first.images)
  np.testing.assert_array_equal(again.labels, first.labels[:, [4, 0]])


def test_celeba_batches_are_flipped_deterministically(mock_photos, tmp_path):
  data = photo.celeb_a(16, data_dir=str(tmp_path))
  b1, b2, b3 = data.batch(8, 3, 5), data.batch(8, 3, 5), data.batch(8, 3, 6)
  np.testing.assert_array_equal(b1["image"], b2["image"])
  assert not np.array_equal(b1["image"], b3["image"])
  assert b1["image"].dtype == np.float32 and -1 <= b1["image"].min() and b1["image"].max() <= 1
  plain = photo.AttributePhotos(data.images, data.labels, data.spec, flip=False)
  p = plain.batch(8, 3, 5)  # same indices, no flips
  np.testing.assert_array_equal(p["label"], b1["label"])
  flipped = [not np.array_equal(x, y) for x, y in zip(b1["image"], p["image"])]
  for x, y, f in zip(b1["image"], p["image"], flipped):
    np.testing.assert_array_equal(x, y[:, ::-1] if f else y)
  many = np.mean([not np.array_equal(x, y) for i in range(20)
                  for x, y in zip(data.batch(8, 0, i)["image"], plain.batch(8, 0, i)["image"])])
  assert 0.3 < many < 0.7  # p = 0.5


def test_cycle_gan_domains_are_random_crops_of_the_load_size(mock_photos, tmp_path):
  data = photo.cycle_gan(H2Z, 16, data_dir=str(tmp_path))
  assert photo.cyclegan_load_size(256) == 286 and data.images_a.shape[1:] == (18, 18, 3)
  assert len(data.images_a) == len(_raw(H2Z, "trainA", str(tmp_path)))
  batch = data.batch(4, 0, 0)
  assert batch["image_a"].shape == batch["image_b"].shape == (4, 16, 16, 3)
  np.testing.assert_array_equal(batch["image_a"], data.batch(4, 0, 0)["image_a"])
  # Every training image is a 16 x 16 window (maybe mirrored) of its 18 x 18 cached image.
  idx = np.sort(np.random.default_rng([0, 0, 0]).permutation(len(data.images_a))[:4])
  for x, k in zip(batch["image_a"], idx):
    src = photo.to_float(data.images_a[k])
    windows = [src[y:y + 16, v:v + 16] for y in range(3) for v in range(3)]
    assert any(np.array_equal(x, w) or np.array_equal(x, w[:, ::-1]) for w in windows)
  test = photo.cycle_gan(H2Z, 16, "test", data_dir=str(tmp_path))
  assert test.images_a.shape[1:] == (16, 16, 3) and not test.flip


def test_a_cycle_gan_pair_needs_only_its_own_zip(tmp_path):
  manual = tmp_path / "manual" / "cycle_gan"
  manual.mkdir(parents=True)
  with pytest.raises(DataError) as e:
    prepare(H2Z, data_dir=str(tmp_path / "tfds"), manual_dir=str(tmp_path / "manual"))
  assert "horse2zebra.zip" in str(e.value) and "monet2photo" not in str(e.value)
  assert str(manual) in str(e.value)


def _tiny(name, data_dir, **kw):
  config = load_config(name)
  config.image_size = 16
  config.generator.features, config.generator.num_blocks = 4, 1
  config.discriminator.features, config.discriminator.num_layers = 4, 2
  config.batch_size, config.progress, config.num_devices = 2, False, 1
  config.num_steps, config.log_every, config.sample_every, config.checkpoint_every = 2, 1, 2, 2
  config.decay_steps = 1
  config.data.data_dir = data_dir
  if config.model == "stargan":
    config.n_critic = 2
  for k, v in kw.items():
    config[k] = v
  return config


@pytest.mark.parametrize("name,columns", [("cyclegan_horse2zebra", 6), ("stargan_celeba", 6)])
def test_photo_recipes_train_and_write_their_figure(mock_photos, tmp_path, name, columns):
  import matplotlib.image
  workdir = str(tmp_path / "run")
  state = trainer.train_and_evaluate(_tiny(name, str(tmp_path / "tfds")), workdir)
  assert int(state.step) == 2
  grid = matplotlib.image.imread(os.path.join(workdir, "samples", "final.png"))
  assert grid.shape[:2] == ((8 * 18 + 2) * 3, (columns * 18 + 2) * 3)  # 8 rows of 16-px tiles


@pytest.mark.parametrize("name,overrides,match", [
    ("stargan_celeba", {"eval_every": 10}, "ground-truth"),
    ("stargan_celeba", {"multi_dataset": True}, "multi_dataset=False"),
    ("stargan_celeba", {"model": "cyclegan"}, "model=stargan"),
    ("cyclegan_horse2zebra", {"model": "stargan", "loss": "wasserstein"}, "model=cyclegan"),
    ("cyclegan_horse2zebra", {"data.load_size": 8}, "load_size"),
])
def test_bad_photo_configs_are_refused_before_any_work(tmp_path, name, overrides, match):
  config = _tiny(name, str(tmp_path / "tfds"))
  override(config, overrides)
  with pytest.raises(ConfigError, match=match):
    trainer.train_and_evaluate(config, str(tmp_path / "run"))
  assert not os.path.exists(tmp_path / "run")


def test_unknown_celeba_attribute_is_named(tmp_path):
  config = _tiny("stargan_celeba", str(tmp_path))
  config.stargan.attributes = "Blond_Hair,Purple_Hair"
  with pytest.raises(ConfigError, match="Purple_Hair.*Black_Hair"):
    trainer.train_and_evaluate(config, str(tmp_path / "run"))


def test_celeba_faces_without_labels_feed_the_image_families(mock_photos, tmp_path):
  """``jaxgan.data.load("celeb_a", ...)``: the same crop and resize, kept as uint8 (memory-mapped),
  batches float32 in [-1, 1]; a fraction of it and a missing image_size behave."""
  data_dir = str(tmp_path)
  data = data_lib.load("celeb_a", "train", 16, data_dir=data_dir)
  same = photo.celeb_a(16, data_dir=data_dir)
  assert data.images.dtype == np.uint8 and data.example_shape == (16, 16, 3)
  np.testing.assert_array_equal(data.images, same.images)
  assert data.num_classes == 0
  batch = data.batch(8, seed=0, i=0)["image"]
  assert batch.dtype == np.float32 and batch.shape == (8, 16, 16, 3)
  assert -1.0 <= batch.min() and batch.max() <= 1.0 and batch.std() > 0
  levels = (batch + 1) * 127.5                                  # the uint8 values, converted
  np.testing.assert_allclose(levels, np.round(levels), atol=1e-4)
  half = data_lib.subset(data, 0.5)
  assert len(half.images) == 12 and half.images.dtype == np.uint8
  with pytest.raises(data_lib.DataError, match="celeb_a needs config.image_size"):
    data_lib.load("celeb_a", "train", 0, data_dir=data_dir)
