"""The StackGAN family through the trainer and jaxgan.sample: both stages in one run, exact
resume, 8 devices against one, sampling from a caption, the caption measures and the config
errors."""

import jax
import numpy as np
import pytest

from conftest import MANUAL_DIR, _need_raw, load_config, read_metrics
from jaxgan import families, sample, trainer
from jaxgan.errors import ConfigError, JaxganError
from jaxgan.generation import SampleError


def tiny_stackgan(num_steps=4, stage1_steps=2):
  config = load_config("stackgan_mnist")
  config.generator.width, config.generator.stage2_width, config.generator.residual_blocks = 2, 4, 1
  config.discriminator.width, config.discriminator.stage2_width = 2, 2
  config.stackgan.condition_dim = 8
  # The ReLU CA: after 4 steps of these tiny networks its images still differ between captions
  # in uint8 (the gated one's are a flat grey either way); "glu" is tested in tests/models/.
  config.stackgan.ca_activation = "relu"
  config.latent_dim = 8
  config.batch_size = 8
  config.num_steps, config.log_every = num_steps, 1
  config.stackgan.stage1_steps = stage1_steps
  config.sample_every, config.checkpoint_every, config.eval_every = 1000, 2, 0
  config.progress = False
  return config


@pytest.fixture
def mock_mnist(mock_fmnist, monkeypatch, tmp_path):
  monkeypatch.delenv("JAXGAN_MANUAL_DIR", raising=False)
  monkeypatch.setenv("JAXGAN_CACHE_DIR", str(tmp_path / "cache"))
  yield


def _params(state):
  return jax.device_get((state.g_params, state.d_params, state.g_batch_stats, state.d_batch_stats))


def test_one_run_trains_stage1_then_stage2_and_resumes_exactly(mock_mnist, tmp_path):
  config = tiny_stackgan()
  whole = trainer.train_and_evaluate(config, str(tmp_path / "whole"))
  stages = [r["stage"] for r in read_metrics(tmp_path / "whole") if "stage" in r]
  assert stages == [1.0, 1.0, 2.0, 2.0]
  assert (tmp_path / "whole" / "samples" / "final.png").exists()

  half = tiny_stackgan()
  half.num_steps = 2                       # Stage I only, then resumed into Stage II
  half.stackgan.stage1_steps = 2
  trainer.train_and_evaluate(half, str(tmp_path / "split"))
  resumed = trainer.train_and_evaluate(config, str(tmp_path / "split"))
  jax.tree.map(np.testing.assert_array_equal, _params(whole), _params(resumed))

  # The conftest's 8 devices train as one device does (1 example each, BatchNorm synced).
  single = tiny_stackgan()
  single.num_devices = 1
  trainer.train_and_evaluate(single, str(tmp_path / "single"))
  losses = lambda run: [(r["d_loss"], r["g_loss"], r["kl"]) for r in read_metrics(run) if "d_loss" in r]
  assert len(losses(tmp_path / "whole")) == 4
  np.testing.assert_allclose(losses(tmp_path / "single"), losses(tmp_path / "whole"), rtol=1e-4)

  # Stage I is frozen through Stage II: the run's Stage-I networks are those of step 2.
  first = trainer.train_and_evaluate(tiny_stackgan(2, 2), str(tmp_path / "first"))
  for a, b in zip(_params(first), _params(whole)):
    jax.tree.map(np.testing.assert_array_equal, a["stage1"], b["stage1"])
  # A run of Stage I alone shows Stage I alone: its grid has one column of images, not two.
  from PIL import Image
  size = lambda run: Image.open(tmp_path / run / "samples" / "final.png").size
  assert size("first")[1] == size("whole")[1] and size("first")[0] < size("whole")[0] - 100

  drawing = sample.draw(str(tmp_path / "whole"), 5, caption="a thick blue seven")
  assert drawing.arrays["images"].shape == (5, 32, 32, 3)
  assert drawing.arrays["stage1_images"].shape == (5, 16, 16, 3)
  assert set(drawing.arrays["captions"]) == {"a thick blue seven"}
  again = sample.draw(str(tmp_path / "whole"), 5, caption="a thick blue seven")
  np.testing.assert_array_equal(drawing.arrays["images"], again.arrays["images"])
  other = sample.draw(str(tmp_path / "whole"), 5, caption="a thin red two", seed=0)
  assert not np.array_equal(other.arrays["images"], drawing.arrays["images"])
  with pytest.raises(JaxganError, match="empty"):
    sample.draw(str(tmp_path / "whole"), 2, caption="   ")
  # --truncation psi: z and both stages' conditioning noise from the normal cut to [-psi, psi];
  # a small psi leaves the images of one caption nearly alike.
  spread = lambda d: float(np.std(d.arrays["images"].astype(np.float32), axis=0).mean())
  narrow = sample.draw(str(tmp_path / "whole"), 5, caption="a thick blue seven", truncation=0.01)
  assert spread(drawing) > 0.0 and spread(narrow) < 0.5 * spread(drawing)


def test_caption_flag_on_a_family_without_text_is_refused(tmp_path, mock_fmnist, monkeypatch):
  from conftest import short_run
  monkeypatch.delenv("JAXGAN_MANUAL_DIR", raising=False)
  config = short_run("dcgan_fmnist", num_steps=1)
  trainer.train_and_evaluate(config, str(tmp_path / "dcgan"))
  with pytest.raises(SampleError, match="not text-conditioned.*stackgan"):
    sample.draw(str(tmp_path / "dcgan"), 2, caption="a red seven")


@pytest.mark.parametrize("key,value,match", [
    ("dataset", "cifar10", "captioned images"),
    ("dataset", "caption_folder", "stackgan.folder"),
    ("stackgan.stage1_steps", 9, "more than config.num_steps"),
    ("stackgan.stage1_steps", 0, "stage1_steps must be an integer >= 1"),
    ("stackgan.stage1_size", 12, "power-of-two"),
    ("image_size", 128, "two or four times"),
    ("loss", "hinge", "cannot train"),
    ("augment", "color", "no DiffAugment"),
    ("g_ema", 0.999, "without parameter averages"),
    ("stackgan.d_condition", "label", "d_condition='label'.*'text'.*'mu'"),
    ("stackgan.d_head", "attention", "d_head='attention'.*'concat'.*'projection'"),
    ("stackgan.ca_max_sigma", -1.0, "ca_max_sigma must be a number >= 0"),
    ("stackgan.stage2_noise", "fresh", "stage2_noise='fresh'.*'own'.*'stage1'"),
])
def test_config_errors_name_the_key(key, value, match):
  config = tiny_stackgan()
  node = config
  *path, leaf = key.split(".")
  for part in path:
    node = node[part]
  node[leaf] = value
  with pytest.raises(ConfigError, match=match):
    families.check(config)


@pytest.mark.parametrize("rate", ["g_learning_rate", "d_learning_rate"])
def test_each_network_trains_at_its_own_rate(rate):
  """config.g_learning_rate / d_learning_rate (0 = learning_rate) set the generators' and the
  critics' Adam rates; Adam's first update moves a parameter by about the rate."""
  config = tiny_stackgan()
  config[rate] = 1e-9
  family = families.check(config)
  state = family.build_state(config, (32, 32, 3))
  rng = np.random.default_rng(0)
  batch = {"image": rng.uniform(-1, 1, (8, 32, 32, 3)).astype(np.float32),
           "embedding": rng.normal(size=(8, 384)).astype(np.float32)}
  new, _ = jax.jit(family.phase_body(config, 0))(state, batch)
  moved = lambda a, b: max(float(np.max(np.abs(np.asarray(x) - np.asarray(y))))
                           for x, y in zip(jax.tree.leaves(a["stage1"]), jax.tree.leaves(b["stage1"])))
  slow, fast = (new.g_params, new.d_params) if rate == "g_learning_rate" else (new.d_params, new.g_params)
  old_slow, old_fast = ((state.g_params, state.d_params) if rate == "g_learning_rate"
                        else (state.d_params, state.g_params))
  assert moved(slow, old_slow) < 1e-8
  assert moved(fast, old_fast) > 1e-4


def test_stage1_critic_takes_the_unconditional_head_when_asked():
  """discriminator.stage1_unconditional: Stage I's critic gets Stage II's unconditional head (the
  joint conditional-unconditional loss of StackGAN++, the recipes'); off, as in the paper, it has
  none."""
  config = tiny_stackgan()
  assert config.discriminator.stage1_unconditional
  config.discriminator.stage1_unconditional = False
  family = families.check(config)
  assert "uncond_logits" not in family.build_state(config, (32, 32, 3)).d_params["stage1"]
  config.discriminator.stage1_unconditional = True
  state = family.build_state(config, (32, 32, 3))
  assert "uncond_logits" in state.d_params["stage1"]
  rng = np.random.default_rng(0)
  batch = {"image": rng.uniform(-1, 1, (8, 32, 32, 3)).astype(np.float32),
           "embedding": rng.normal(size=(8, 384)).astype(np.float32)}
  _, m = jax.jit(family.phase_body(config, 0))(state, batch)
  assert float(m["d_real_uncond"]) > 0 and float(m["d_fake_uncond"]) > 0
  np.testing.assert_allclose(
      m["d_loss"], (m["d_real"] + m["d_real_uncond"]) / 2
      + (m["d_fake"] + m["d_wrong"] + m["d_fake_uncond"]) / 3, rtol=1e-5)


@pytest.mark.parametrize("name,stage1_share", [("stackgan_mnist", 0.4), ("stackgan_fmnist", 0.5)])
def test_the_recipes_split_the_run_between_the_stages(name, stage1_share):
  config = load_config(name)
  assert families.check(config).name == "stackgan"
  assert config.stackgan.stage1_steps == round(config.num_steps * stage1_share)
  config.num_steps = 10                      # --config.num_steps alone keeps the split
  assert config.stackgan.stage1_steps == round(10 * stage1_share)
  assert families.for_config(config).phases(config) == (round(10 * stage1_share),)


def test_the_caption_meter_reads_real_images_as_their_captions(monkeypatch, tmp_path):
  """The measure itself: the test images stand in for a perfect generator (every caption read
  right), the same images against shuffled captions for a generator that ignores the text."""
  _need_raw("mnist")
  from jaxgan.families.stackgan import CaptionMeter
  monkeypatch.setenv("JAXGAN_CACHE_DIR", str(tmp_path / "cache"))
  config = tiny_stackgan()
  config.data.manual_dir = MANUAL_DIR
  config.data.data_dir = str(tmp_path / "tfds")
  meter = CaptionMeter(config, num=400)
  assert meter.heldout.sum() == 200
  perfect, _ = meter.score(meter.real_images())
  for group in ("seen", "heldout"):
    assert perfect[f"colour_acc_{group}"] >= 0.99 and perfect[f"stroke_acc_{group}"] >= 0.98
    assert perfect[f"class_acc_{group}"] >= 0.95
    assert perfect[f"caption_acc_{group}"] >= 0.93
  shuffled, _ = meter.score(np.random.default_rng(0).permutation(meter.real_images()))
  assert shuffled["caption_acc_seen"] < 0.1

  # On a model: Stage I alone before Stage II trains, both after; c sampled and c = mu.
  family = families.for_config(config)
  state = family.build_state(config, (32, 32, 3))
  first, both = meter(state, stage2=False), meter(state)
  assert not any(k.startswith(("caption_acc", "fid_stage2", "mean_", "diversity")) for k in first)
  assert set(first) < set(both)
  for m in (first, both):
    for k in ("stage1_caption_acc_seen", "stage1_mean_caption_acc_heldout"):
      assert 0 <= m[k] <= 1
    assert m["stage1_diversity"] >= 0 and np.isfinite(m["fid_stage1"])
  for k in ("mean_caption_acc_seen", "diversity", "fid_stage2"):
    assert np.isfinite(both[k])
  assert first["fid_stage1"] == both["fid_stage1"]
  # Truncated draws (jaxgan.sample --truncation): a tiny psi leaves one image per caption.
  narrow = meter(state, stage2=False, truncation=1e-4)
  assert first["stage1_diversity"] > 0 and narrow["stage1_diversity"] < 0.1 * first["stage1_diversity"]


def test_the_paper_size_recipe_trains_on_a_captioned_folder(tmp_path, monkeypatch):
  """configs/stackgan_captions.py (64 -> 256) at tiny widths on a folder of photos of several
  shapes: both stages run, the grid shows the folder's captions."""
  import json

  from PIL import Image
  monkeypatch.setenv("JAXGAN_CACHE_DIR", str(tmp_path / "cache"))
  folder = tmp_path / "photos"
  folder.mkdir()
  rng = np.random.default_rng(0)
  with open(folder / "captions.jsonl", "w") as f:
    for i in range(8):
      shape = (300, 260, 3) if i % 2 else (200, 240, 3)
      Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8)).save(folder / f"{i}.png")
      f.write(json.dumps({"image": f"{i}.png", "captions": [f"photo number {i}", "a noisy picture"]})
              + "\n")
  config = load_config("stackgan_captions")
  config.stackgan.folder = str(folder)
  config.generator.width, config.generator.stage2_width, config.generator.residual_blocks = 1, 1, 1
  config.discriminator.width, config.discriminator.stage2_width = 1, 1
  config.stackgan.condition_dim, config.latent_dim, config.batch_size = 4, 4, 8
  config.num_steps, config.log_every, config.checkpoint_every = 2, 1, 2
  config.progress = False
  state = trainer.train_and_evaluate(config, str(tmp_path / "run"))
  assert [r["stage"] for r in read_metrics(tmp_path / "run") if "stage" in r] == [1.0, 2.0]
  img1, img2 = state.generate(jax.numpy.zeros((2, 4)), jax.numpy.zeros((2, 384)), jax.random.PRNGKey(0))
  assert img1.shape == (2, 64, 64, 3) and img2.shape == (2, 256, 256, 3)
  assert (tmp_path / "run" / "samples" / "final.png").exists()
