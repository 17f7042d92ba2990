"""The real training loop, in-process, on tiny models and tfds mock data."""

import json
import os

import jax
import numpy as np
import pytest

from conftest import load_config, read_metrics, tiny
from jaxgan import optim, trainer
from jaxgan.checkpoint import Checkpointer, CheckpointError
from jaxgan.errors import ConfigError, TrainingError


def _config(name="dcgan_fmnist", **kw):
  config = tiny(load_config(name))
  config.num_steps, config.log_every, config.sample_every, config.checkpoint_every = 6, 2, 3, 3
  for k, v in kw.items():
    config[k] = v
  return config


def test_run_writes_every_artefact(tmp_path, mock_fmnist, capsys):
  workdir = str(tmp_path / "run")
  state = trainer.train_and_evaluate(_config(), workdir)
  assert int(state.step) == 6
  assert sorted(Checkpointer(os.path.join(workdir, "checkpoints")).all_steps()) == [3, 6]
  assert sorted(os.listdir(os.path.join(workdir, "samples"))) == [
      "final.png", "step_0000003.png", "step_0000006.png"]
  for name in ("losses.png", "accuracy.png"):
    assert os.path.getsize(os.path.join(workdir, name)) > 10_000
  with open(os.path.join(workdir, "config.json")) as f:
    assert json.load(f)["num_steps"] == 6
  records = read_metrics(workdir)
  assert [r["step"] for r in records] == [2, 4, 6]
  for r in records:
    assert {"d_loss", "g_loss", "d_real_acc", "d_fake_acc", "steps_per_sec"} <= set(r)
    assert all(np.isfinite(v) for v in r.values())
  events = os.listdir(os.path.join(workdir, "tensorboard"))
  assert events and all(os.path.getsize(os.path.join(workdir, "tensorboard", e)) > 0 for e in events)
  out = capsys.readouterr().out
  assert "checkpoints" in out and "final.png" in out and "tensorboard --logdir" in out


def test_sample_grid_is_an_8x8_picture(tmp_path, mock_fmnist):
  import matplotlib.image
  workdir = str(tmp_path / "run")
  config = _config(num_samples=64, num_steps=1)
  trainer.train_and_evaluate(config, workdir)
  grid = matplotlib.image.imread(os.path.join(workdir, "samples", "final.png"))
  # 8 tiles of 32 px + 9 gaps of 2 px, up-scaled 3x
  assert grid.shape[:2] == ((8 * 32 + 9 * 2) * 3,) * 2


@pytest.mark.parametrize("name,decay_steps", [("dcgan_fmnist", 0), ("gan_fmnist", 0), ("gan_fmnist", 4),
                                              ("sngan_fmnist", 0)])
def test_resume_reaches_the_same_losses_as_an_uninterrupted_run(tmp_path, mock_fmnist, name,
                                                               decay_steps):
  # decay_steps=4: the scheduled learning rate's count is restored with the optimizer states.
  # The 3-step part stands for an interrupted 6-step run: with decay_steps - 3 its first three
  # rates are those of the 6-step schedule.
  full = str(tmp_path / "full")
  trainer.train_and_evaluate(_config(name, log_every=1, decay_steps=decay_steps), full)
  part = str(tmp_path / "part")
  trainer.train_and_evaluate(_config(name, log_every=1, num_steps=3,
                                     decay_steps=max(decay_steps - 3, 0)), part)
  resumed = trainer.train_and_evaluate(_config(name, log_every=1, decay_steps=decay_steps), part)
  # The resume changed num_steps (and decay_steps): recorded before config.json was overwritten.
  changes = {"num_steps": [3, 6]} | ({"decay_steps": [1, 4]} if decay_steps else {})
  assert [json.loads(line) for line in open(os.path.join(part, "config_changes.jsonl"))] == [
      {"step": 3, "changes": changes}]
  assert json.load(open(os.path.join(part, "config.json")))["num_steps"] == 6
  assert not os.path.exists(os.path.join(full, "config_changes.jsonl"))
  a, b = read_metrics(full), read_metrics(part)
  assert [r["step"] for r in b] == [1, 2, 3, 4, 5, 6]
  for ra, rb in zip(a, b):
    for key in ("d_loss", "g_loss", "d_real_acc", "d_fake_acc"):
      assert ra[key] == rb[key], (ra["step"], key)
  final_full = Checkpointer(os.path.join(full, "checkpoints"))
  restored = final_full.restore(resumed, final_full.read_meta())
  for x, y in zip(jax.tree.leaves(restored), jax.tree.leaves(resumed)):
    np.testing.assert_array_equal(x, y)


def test_checkpoint_of_another_model_is_refused(tmp_path, mock_fmnist):
  workdir = str(tmp_path / "run")
  trainer.train_and_evaluate(_config("gan_fmnist", num_steps=3), workdir)
  with pytest.raises(CheckpointError, match="different model.*--workdir"):
    trainer.train_and_evaluate(_config("dcgan_fmnist"), workdir)
  wider = _config("gan_fmnist")
  wider.generator.hidden = (16, 64)
  with pytest.raises(CheckpointError, match="generator"):
    trainer.train_and_evaluate(wider, workdir)


def test_resuming_across_a_learning_rate_schedule_change_is_refused(tmp_path, mock_fmnist):
  workdir = str(tmp_path / "run")
  trainer.train_and_evaluate(_config("gan_fmnist", num_steps=3), workdir)
  with pytest.raises(CheckpointError, match="lr_schedule.*decay_steps 0 or > 0"):
    trainer.train_and_evaluate(_config("gan_fmnist", decay_steps=2), workdir)
  assert Checkpointer(os.path.join(workdir, "checkpoints")).latest_step() == 3


def test_non_finite_losses_stop_and_keep_the_last_good_checkpoint(tmp_path, mock_fmnist):
  workdir = str(tmp_path / "run")
  trainer.train_and_evaluate(_config("gan_fmnist", num_steps=3), workdir)
  with pytest.raises(TrainingError, match="non-finite.*step 3"):
    trainer.train_and_evaluate(_config("gan_fmnist", num_steps=40, log_every=1,
                                       checkpoint_every=1, learning_rate=1e30), workdir)
  ckpt = Checkpointer(os.path.join(workdir, "checkpoints"))
  good_step = ckpt.latest_step()
  state = trainer.build_state(_config("gan_fmnist"), (32, 32, 1))
  restored = ckpt.restore(state, ckpt.read_meta())
  assert int(restored.step) == good_step
  assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves((restored.g_params, restored.d_params)))


@pytest.mark.parametrize("key,value,match", [
    ("batch_size", 0, "batch_size must be a positive integer"),
    ("num_steps", -5, "num_steps must be a positive integer"),
    ("learning_rate", 0.0, "learning_rate must be a positive number"),
    ("learning_rate", float("nan"), "learning_rate must be a positive number"),
    ("b1", 1.5, r"b1 must be in \[0, 1\)"),
    ("model", "bigbigan", "config.model='bigbigan' is unknown"),
    ("loss", "wgan", "config.loss='wgan' is unknown"),
    ("decay_steps", 7, r"decay_steps=7 must be an integer in \[0, num_steps=6\]"),
])
def test_bad_config_values_are_refused_before_any_work(tmp_path, key, value, match):
  config = _config()
  config[key] = value
  with pytest.raises(ConfigError, match=match):
    trainer.train_and_evaluate(config, str(tmp_path / "run"))
  assert not os.path.exists(tmp_path / "run")


def test_override_sets_dotted_keys_and_refuses_unknown_ones():
  from jaxgan.config import override
  config = _config()
  assert override(config, {"discriminator.features": (8, 8, 8), "seed": 7}) is config
  assert config.discriminator.features == (8, 8, 8) and config.seed == 7
  with pytest.raises(ConfigError, match=r"config.discriminator has no key 'featurs' \(it has .*features"):
    override(config, {"discriminator.featurs": (1,)})
  with pytest.raises(ConfigError, match="config.seed has no key 'x'"):  # a leaf is not a section
    override(config, {"seed.x": 1})
  assert config.seed == 7 and "featurs" not in config.discriminator


def test_config_changes_compare_what_a_run_computes():
  from jaxgan.config import BOOKKEEPING_KEYS, changed_keys, describe_changes
  config = _config()
  saved = json.loads(config.to_json())  # tuples come back as lists: not a change
  assert changed_keys(saved, config) == {}
  config.discriminator.features = (8, 8, 4)
  config.g_learning_rate, config.num_steps = 1e-3, 9
  config.progress, config.log_every, config.data.manual_dir = False, 1, "/elsewhere"  # bookkeeping
  changes = changed_keys(saved, config)
  assert changes == {"discriminator.features": (list(saved["discriminator"]["features"]), [8, 8, 4]),
                     "g_learning_rate": (config.learning_rate, 1e-3), "num_steps": (6, 9)}
  assert "num_steps 6 -> 9" in describe_changes(changes)
  # A network's rate of 0 is learning_rate's; a key an older run lacks is no difference.
  saved["g_learning_rate"], saved["d_learning_rate"] = 1e-3, config.learning_rate
  del saved["discriminator"]["features"]
  assert changed_keys(saved, config, ignore=BOOKKEEPING_KEYS + ("num_steps",)) == {}


def test_unknown_model_argument_is_a_config_error():
  config = _config()
  config.generator.widths = (1, 2)
  with pytest.raises(ConfigError, match="widths"):
    trainer.build_state(config, (32, 32, 1))


def test_eval_every_logs_quality_and_keeps_the_best_fid_checkpoint(tmp_path, mock_fmnist):
  from jaxgan import hooks
  workdir = str(tmp_path / "run")
  config = _config(eval_every=4, eval_samples=64, eval_cache_dir=str(tmp_path / "cache"))
  trainer.train_and_evaluate(config, workdir)
  evals = [r for r in read_metrics(workdir) if "fid" in r]
  assert [r["step"] for r in evals] == [4, 6]  # every 4 steps, and once more at the end
  for r in evals:
    assert {"fid", "kid", "kid_std", "precision", "recall", "classifier_score"} <= set(r)
    assert all(np.isfinite(v) for v in r.values()) and r["fid"] > 0
  best = min(evals, key=lambda r: r["fid"])
  with open(os.path.join(workdir, "best.json")) as f:
    assert json.load(f) == {"step": best["step"], "fid": best["fid"]}
  best_ckpt = Checkpointer(os.path.join(workdir, "best"))
  assert best_ckpt.all_steps() == [best["step"]]
  # The kept checkpoint is the evaluated state: evaluating it again gives the logged FID.
  template = trainer.build_state(config, (32, 32, 1))
  restored = best_ckpt.restore(template, best_ckpt.read_meta())
  again = hooks.Evaluate(config)(restored, best["step"], [])
  np.testing.assert_allclose(again["fid"], best["fid"], rtol=1e-5)
  from jaxgan.sample import load_generator
  assert load_generator(workdir, best=True)[2] == best["step"]


def test_eval_every_without_a_feature_network_is_a_config_error(tmp_path):
  from jaxgan import hooks
  config = _config(eval_every=10, eval_cache_dir=str(tmp_path))
  config.dataset = "cifar10"
  with pytest.raises(ConfigError, match="eval_every"):
    hooks.Evaluate(config)


def test_generator_and_discriminator_learning_rates(mock_fmnist):
  import jax.numpy as jnp
  config = _config(learning_rate=1e-3, g_learning_rate=4e-3)
  g_tx, d_tx = optim.build_optimizers(config)
  ones = {"w": jnp.ones(3)}
  # Adam's first update is -lr * sign(gradient) (up to eps).
  np.testing.assert_allclose(g_tx.update(ones, g_tx.init(ones))[0]["w"], -4e-3, rtol=1e-4)
  np.testing.assert_allclose(d_tx.update(ones, d_tx.init(ones))[0]["w"], -1e-3, rtol=1e-4)
  config.d_learning_rate = -1.0
  from jaxgan import config as config_lib
  with pytest.raises(ConfigError, match="d_learning_rate"):
    config_lib.validate(config)


def test_decay_steps_take_both_rates_linearly_to_zero_at_num_steps():
  import jax.numpy as jnp
  config = _config(learning_rate=1e-3, num_steps=10, decay_steps=4, n_critic=2)
  g_tx, d_tx = optim.build_optimizers(config)
  ones = {"w": jnp.ones(3)}

  def rates(tx, n):  # Adam on a constant gradient moves each weight by -lr(t) (up to eps)
    state, out = tx.init(ones), []
    for _ in range(n):
      updates, state = tx.update(ones, state, ones)
      out.append(-float(updates["w"][0]))
    return np.array(out)

  # G: 6 steps at 1e-3, then 4 falling to 0; D (2 updates per step): 12 at 1e-3, then 8.
  np.testing.assert_allclose(rates(g_tx, 11), 1e-3 * np.array([1] * 7 + [0.75, 0.5, 0.25, 0]),
                             rtol=1e-4, atol=1e-9)
  np.testing.assert_allclose(rates(d_tx, 21), 1e-3 * np.r_[[1] * 13, 1 - np.arange(1, 9) / 8],
                             rtol=1e-4, atol=1e-9)


def test_a_diverged_run_is_said_once(tmp_path, mock_fmnist, capsys):
  trainer.train_and_evaluate(_config("gan_fmnist", num_steps=40, log_every=2), str(tmp_path / "ok"))
  assert "diverged" not in capsys.readouterr().err
  trainer.train_and_evaluate(_config("gan_fmnist", num_steps=40, log_every=2, learning_rate=1e3),
                             str(tmp_path / "diverged"))
  err = capsys.readouterr().err
  lines = [line for line in err.splitlines() if "diverged" in line]
  assert len(lines) == 1 and lines[0].startswith("warning: the run has diverged at step "), err
  assert "--config.learning_rate" in lines[0]
