import time

import numpy as np
import pytest

from conftest import MANUAL_DIR, _need_raw
from jaxgan.data import BatchStream, DataError, ImageData, load, prepare
from jaxgan.data import tfds_data


def _toy(n=20):
  images = np.arange(n, dtype=np.float32).reshape(n, 1, 1, 1)
  return ImageData(images=images, labels=np.arange(n, dtype=np.int32), num_classes=n,
                   name="toy", split="train")


def test_stream_is_an_epochwise_permutation_with_drop_remainder():
  stream = BatchStream(_toy(20), batch_size=6, seed=3)
  assert stream.steps_per_epoch == 3
  epoch0 = np.concatenate([stream.batch(i)["label"] for i in range(3)])
  epoch1 = np.concatenate([stream.batch(i)["label"] for i in range(3, 6)])
  assert len(set(epoch0)) == 18 and len(set(epoch1)) == 18   # no repeats within an epoch
  assert not np.array_equal(epoch0, epoch1)                   # reshuffled each epoch
  np.testing.assert_array_equal(stream.batch(4)["image"][:, 0, 0, 0], stream.batch(4)["label"])


def test_stream_resumes_exactly():
  full = BatchStream(_toy(), batch_size=4, seed=7)
  it = iter(full)
  first = [next(it)["label"] for _ in range(12)]
  resumed = iter(BatchStream(_toy(), batch_size=4, seed=7, start=5))
  for i in range(5, 12):
    np.testing.assert_array_equal(next(resumed)["label"], first[i])
  other_seed = iter(BatchStream(_toy(), batch_size=4, seed=8))
  assert any(not np.array_equal(next(other_seed)["label"], first[i]) for i in range(5))


def test_batch_larger_than_dataset_is_refused():
  with pytest.raises(DataError, match="larger than"):
    BatchStream(_toy(5), batch_size=6, seed=0)


def test_mock_pipeline_normalises_and_resizes(mock_fmnist):
  data = load("fashion_mnist", "train", image_size=32)
  assert data.images.shape == (256, 32, 32, 1) and data.images.dtype == np.float32
  assert data.images.min() >= -1.0 and data.images.max() <= 1.0
  assert data.images.min() < -0.5 and data.images.max() > 0.5  # really spans the range
  assert data.num_classes == 10 and data.labels.max() < 10
  native = load("fashion_mnist", "train", image_size=None)
  assert native.images.shape == (256, 28, 28, 1)


def test_process_parts_partition_the_split(real_data_dir):
  """Multi-process runs: process i of n reads the i-th even part; the parts tile the split in order."""
  import ml_collections
  from jaxgan.families.base import Family
  for_config = Family().data   # the image families' data: process i of n
  full = load("fashion_mnist", "train", None, data_dir=real_data_dir)
  config = ml_collections.ConfigDict({"dataset": "fashion_mnist", "image_size": 0, "data": {
      "data_dir": real_data_dir, "manual_dir": "", "process_split": "shard"}})
  parts = [for_config(config, i, 2) for i in range(2)]
  assert [p.split for p in parts] == ["train[0:30000]", "train[30000:60000]"]
  np.testing.assert_array_equal(np.concatenate([p.images for p in parts]), full.images)
  np.testing.assert_array_equal(np.concatenate([p.labels for p in parts]), full.labels)
  third = load("fashion_mnist", "train", None, data_dir=real_data_dir, part=(2, 3))
  np.testing.assert_array_equal(third.images, full.images[40000:])
  config.data.process_split = "full"   # every process reads all of it
  assert for_config(config, 1, 2).split == "train"


def test_offline_without_manual_dir_fails_fast(tmp_path, monkeypatch):
  monkeypatch.delenv("JAXGAN_MANUAL_DIR", raising=False)
  monkeypatch.setattr(tfds_data, "_reachable", lambda *a, **k: False)  # no network
  t = time.perf_counter()
  with pytest.raises(DataError, match="JAXGAN_MANUAL_DIR"):
    prepare("fashion_mnist", data_dir=str(tmp_path))
  assert time.perf_counter() - t < 30


def test_manual_dir_missing_files_names_them(tmp_path):
  (tmp_path / "fashion_mnist").mkdir()
  (tmp_path / "fashion_mnist" / "train-images-idx3-ubyte.gz").write_bytes(b"")
  with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz"):
    prepare("fashion_mnist", data_dir=str(tmp_path / "tfds"), manual_dir=str(tmp_path))


def test_real_fashion_mnist_counts_and_range(real_data_dir):
  train = load("fashion_mnist", "train", image_size=32, data_dir=real_data_dir)
  test = load("fashion_mnist", "test", image_size=None, data_dir=real_data_dir)
  assert train.images.shape == (60_000, 32, 32, 1)
  assert test.images.shape == (10_000, 28, 28, 1)
  assert train.num_classes == 10
  assert np.bincount(train.labels).tolist() == [6000] * 10   # Fashion-MNIST is balanced
  assert np.bincount(test.labels).tolist() == [1000] * 10
  assert -1.0 <= test.images.min() < -0.99 and 0.99 < test.images.max() <= 1.0


def test_mnist_and_fashion_mnist_do_not_share_extracted_files(real_data_dir):
  # Both datasets use the same raw file names; a shared extract dir silently
  # served Fashion-MNIST images as MNIST (see shared/data/README.md).
  _need_raw("mnist")
  mnist = load("mnist", "test", image_size=None, data_dir=real_data_dir, manual_dir=MANUAL_DIR)
  fmnist = load("fashion_mnist", "test", image_size=None, data_dir=real_data_dir)
  assert mnist.images.shape == fmnist.images.shape == (10_000, 28, 28, 1)
  # MNIST digits are mostly background; Fashion-MNIST items fill much more of the frame.
  ink = lambda d: float(np.mean(d.images > -0.5))
  assert ink(mnist) < 0.25 < ink(fmnist)


def test_a_misspelt_dataset_is_one_line_naming_the_closest():
  with pytest.raises(DataError) as e:
    prepare("fashion_mnst")
  message = str(e.value)
  assert "did you mean fashion_mnist?" in message and "\n" not in message and len(message) < 300


BUILD = ("import sys, time\n"
         "from jaxgan.data import prepare\n"
         "start = float(sys.argv[3])\n"
         "time.sleep(max(0.0, start - time.time()))\n"   # both processes start building together
         "builder = prepare('mnist', data_dir=sys.argv[1], manual_dir=sys.argv[2])\n"
         "print('built', builder.info.splits['test'].num_examples, flush=True)\n")


def test_two_processes_building_one_dataset_share_the_build(tmp_path):
  """Two runs building the same dataset at once on a fresh data dir: one builds, the other waits
  for it and reads what it built (without the lock, tfds's rename of the second build fails)."""
  import subprocess
  import sys
  _need_raw("mnist")
  from conftest import REPO
  start = str(time.time() + 8)
  procs = [subprocess.Popen([sys.executable, "-c", BUILD, str(tmp_path), MANUAL_DIR, start],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
           for _ in range(2)]
  outs = [p.communicate(timeout=600) for p in procs]
  for p, (out, err) in zip(procs, outs):
    assert p.returncode == 0, err[-2000:]
    assert "built 10000" in out
  assert sum("waiting for another process that is building mnist" in out for out, _ in outs) == 1
  assert load("mnist", "test", data_dir=str(tmp_path)).images.shape == (10_000, 28, 28, 1)
