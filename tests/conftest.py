"""Shared fixtures: tiny configs, mock tfds data, and the real raw files when present."""

import importlib.util
import json
import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Eight host CPU devices, so the multi-device paths (data-parallel steps, sync BatchNorm,
# device-count-independent checkpoints) run in every test session; single-device code is
# unaffected (it runs on the first device). Must be set before jax is imported.
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                             " --xla_force_host_platform_device_count=8").strip()
NUM_DEVICES = 8

import atexit  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402

import jax  # noqa: E402
import pytest  # noqa: E402

# Many tests build the same tiny networks and steps, each through new jitted functions; a
# compilation cache private to this session compiles each distinct program once (measured: the
# trainer and objective tests, 210 s -> 133 s on 2 cores). In this process only: the tests'
# subprocesses (train.py, the two-process run) compile for themselves.
_XLA_CACHE = tempfile.mkdtemp(prefix="jaxgan-test-xla-cache-")
atexit.register(shutil.rmtree, _XLA_CACHE, ignore_errors=True)
jax.config.update("jax_compilation_cache_dir", _XLA_CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)

REPO = pathlib.Path(__file__).resolve().parents[1]
_SHARED = REPO.parent / "shared" / "data"
MANUAL_DIR = os.environ.get("JAXGAN_MANUAL_DIR") or (str(_SHARED) if _SHARED.is_dir() else None)
MANUAL_DIR = os.path.abspath(MANUAL_DIR) if MANUAL_DIR else None


def load_config(name: str):
  """``configs/<name>.py``'s get_config()."""
  spec = importlib.util.spec_from_file_location(name, REPO / "configs" / f"{name}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def read_metrics(workdir) -> list[dict]:
  """The records of a run's ``metrics.jsonl``."""
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [json.loads(line) for line in f]


def tiny(config):
  """Shrinks a recipe to a few-second CPU run, keeping its family and shapes."""
  if config.model == "dcgan":
    config.generator.features = (16, 8, 4)
    config.discriminator.features = (4, 8, 16)
  elif config.model in ("resnet", "cgan_resnet"):
    config.generator.widths = (16, 8, 8, 8)
    config.discriminator.widths = (8, 8, 8, 8)
  elif config.model == "began":
    config.generator.filters = 4
    config.discriminator.filters = 4
    config.discriminator.embedding = 8
  else:
    config.generator.hidden = (16, 32)
    config.discriminator.hidden = (32, 16)
  config.latent_dim = 8
  config.batch_size = 8
  config.num_samples = 16
  config.progress = False
  return config


def short_run(name: str, **overrides):
  """``tiny(configs/<name>.py)`` for a 4-step run logging every step, with ``overrides``."""
  config = tiny(load_config(name))
  config.num_steps, config.log_every, config.sample_every, config.checkpoint_every = 4, 1, 1000, 1000
  config.num_samples = 4
  for k, v in overrides.items():
    config[k] = v
  return config


@pytest.fixture
def mock_fmnist(monkeypatch):
  """tfds.testing.mock_data serving 256 random Fashion-MNIST-shaped examples."""
  import tensorflow_datasets as tfds
  from jaxgan.data import tfds_data
  # mock_data replaces the download; pretend the network is there so the
  # offline fail-fast check (tested on its own) does not fire.
  monkeypatch.setattr(tfds_data, "_reachable", lambda *a, **k: True)
  with tfds.testing.mock_data(num_examples=256):
    yield


def _need_raw(name):
  if not MANUAL_DIR or not (pathlib.Path(MANUAL_DIR) / name).is_dir():
    pytest.skip(f"raw {name} files not present (set JAXGAN_MANUAL_DIR; .ci/run does)")


@pytest.fixture(scope="session")
def real_data_dir(tmp_path_factory):
  """A tfds data dir holding Fashion-MNIST built offline from the raw files."""
  _need_raw("fashion_mnist")
  from jaxgan.data import prepare
  data_dir = str(tmp_path_factory.mktemp("tfds"))
  prepare("fashion_mnist", data_dir=data_dir, manual_dir=MANUAL_DIR)
  return data_dir
