"""Every recipe in configs/: shortened from the command line with ``--config.num_steps=N`` alone.

A user trying a recipe for a minute sets ``num_steps`` and nothing else: the learning-rate
schedule (``decay_steps``) follows it, keeping its shape, and the run trains. Each recipe runs
3 real steps through the trainer on mock data of its dataset's shapes (evaluations off, so the
test measures the training path; the recipes' full-size networks are kept).
"""

import math

import numpy as np
import pytest

from conftest import REPO, load_config, read_metrics
from jaxgan import families, trainer

RECIPES = sorted(p.stem for p in (REPO / "configs").glob("*.py"))
# Real-photo recipes: validated here; their 128-256 px networks train in tests/test_photo.py.
PHOTO = ("cyclegan_horse2zebra", "stargan_celeba")
# Reads a user's captioned folder: trains in tests/families/test_stackgan.py on a folder it writes.
FOLDER = ("stackgan_captions",)
TRANSLATION = ("cyclegan", "stargan")


def shortened(name: str, num_steps: int = 3):
  config = load_config(name)
  config.num_steps = num_steps  # what --config.num_steps=N does
  return config


def test_the_recipe_list_is_complete():
  assert len(RECIPES) >= 20 and {"dcgan_fmnist", "toy_ring_stable", "stargan_mnist"} <= set(RECIPES)


@pytest.mark.parametrize("name", RECIPES)
def test_num_steps_alone_passes_every_check_and_keeps_the_schedule_shape(name):
  full = load_config(name)
  short = shortened(name)
  families.check(short)   # raises on the first value this run could not use
  if full.get("decay_steps", 0):
    # The rate decays over the same fraction of the run (to within one step).
    assert math.isclose(short.decay_steps / short.num_steps, full.decay_steps / full.num_steps,
                        abs_tol=1 / short.num_steps)
    assert 0 < short.decay_steps <= short.num_steps


@pytest.fixture
def random_digits(monkeypatch):
  """The translation domains' gray source images, random (tfds's mock_data fakes the file system,
  which the translation runs' checkpoints write through)."""
  from jaxgan.data import domains
  rng = np.random.default_rng(0)

  def load_gray(name, split="train", data_dir=None, manual_dir=None, image_size=None):
    side = image_size or 28
    return (rng.uniform(-1, 1, (256, side, side, 1)).astype(np.float32),
            rng.integers(0, 10, 256).astype(np.int32))
  from jaxgan.families import translation
  translation._test_split.cache_clear()   # held-out test splits are cached per process
  monkeypatch.setattr(domains, "load_gray", load_gray)
  yield
  translation._test_split.cache_clear()


@pytest.mark.parametrize("name", [r for r in RECIPES if r not in PHOTO + FOLDER])
def test_every_recipe_trains_three_steps_with_num_steps_alone(name, tmp_path, request, monkeypatch):
  request.getfixturevalue("random_digits" if load_config(name).model in TRANSLATION
                          else "mock_fmnist")
  # Mock data stands in for every dataset: no raw files are read (a manual directory holding
  # only the MNIST files would stop CIFAR-10 before the mock's build).
  monkeypatch.delenv("JAXGAN_MANUAL_DIR", raising=False)
  config = shortened(name)
  if config.dataset == "celeb_a":    # its uint8 cache of the mock faces goes to a test data dir
    config.data.data_dir = str(tmp_path / "tfds")
  config.progress = False
  config.num_devices = 1             # the recipes' batch sizes need not divide the 8 test devices
  for key in ("eval_every",):        # evaluations off: they would read classifiers and test sets
    if key in config:
      config[key] = 0
  for group in ("conditional", "sgan"):
    if group in config and "eval_every" in config[group]:
      config[group].eval_every = 0
  workdir = str(tmp_path / name)
  state = trainer.train_and_evaluate(config, workdir)
  assert int(state.step) == 3
  records = [r for r in read_metrics(workdir) if "g_loss" in r or "loss_g" in r or "d_loss" in r]
  assert records and records[-1]["step"] == 3
