"""The average of G (config.g_ema): what it averages, and that samples and evaluation use it."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from conftest import load_config, read_metrics, tiny
from jaxgan import ema, trainer
from jaxgan.checkpoint import CheckpointError
from jaxgan.errors import ConfigError
from jaxgan.sample import load_generator, sample


def test_the_average_starts_after_start_updates_and_warms_up():
  """The n-th averaged update decays by d_n = min(decay, n / (n + 9)): 0, 0.1, 2/11, then 0.2."""
  decay, start = 0.2, 2
  tx = optax.chain(optax.sgd(1.0), ema.generator_ema(decay, start))
  params = {"w": jnp.zeros(3)}
  state = tx.init(params)
  iterates = []
  for i in range(5):
    grads = {"w": -jnp.full(3, float(i + 1))}           # p_i = p_{i-1} + (i + 1)
    updates, state = tx.update(grads, state, params)
    params = optax.apply_updates(params, updates)
    iterates.append(float(params["w"][0]))
    got = float(ema.ema_params(state, params)["w"][0])
    averaged = iterates[start:]
    if not averaged:                                     # before the start: the current parameters
      assert got == iterates[-1]
      continue
    want = 0.0
    for n, p in enumerate(averaged):
      d = [0.0, 0.1, 2 / 11, decay][min(n, 3)]
      want = d * want + (1 - d) * p
    assert got == pytest.approx(want, rel=1e-6)
    if len(averaged) == 1:
      assert got == averaged[0]                          # the first average copies G
  with pytest.raises(ValueError, match="decay must be in"):
    ema.generator_ema(1.0)


def _config(**kw):
  config = tiny(load_config("dcgan_fmnist"))
  config.num_steps, config.log_every, config.sample_every, config.checkpoint_every = 4, 2, 1000, 2
  config.eval_every, config.eval_samples = 2, 32
  for k, v in kw.items():
    config[k] = v
  return config


def test_samples_and_evaluation_use_the_average_and_log_the_raw_generator(tmp_path, mock_fmnist):
  workdir = str(tmp_path / "run")
  cache = str(tmp_path / "cache")
  # From update 1 on: the average copies G at step 2 (its first averaged update), then averages.
  final = trainer.train_and_evaluate(_config(g_ema=0.9, g_ema_start=1, eval_cache_dir=cache), workdir)
  records = [r for r in read_metrics(workdir) if "fid" in r]
  assert [r["step"] for r in records] == [2, 4]
  assert all("raw_fid" in r for r in records)
  assert records[0]["raw_fid"] == records[0]["fid"] and records[1]["raw_fid"] != records[1]["fid"]
  averaged, _, _ = load_generator(workdir)
  current, _, _ = load_generator(workdir, raw=True)
  jax.tree.map(np.testing.assert_array_equal, current.g_params, jax.device_get(final.g_params))
  want = ema.ema_params(final.g_opt_state, final.g_params)
  jax.tree.map(np.testing.assert_allclose, averaged.g_params, jax.device_get(want))
  assert not np.array_equal(sample(workdir, 8), load_and_sample_raw(workdir))
  # A run without an average: samples are the raw generator's, and nothing is logged as raw_.
  plain = str(tmp_path / "plain")
  trainer.train_and_evaluate(_config(eval_cache_dir=cache), plain)
  assert not any("raw_fid" in r for r in read_metrics(plain))
  # Resuming with the average switched on is refused with the reason.
  with pytest.raises(CheckpointError, match="g_ema"):
    trainer.train_and_evaluate(_config(g_ema=0.9, num_steps=6, eval_cache_dir=cache), plain)


def load_and_sample_raw(workdir):
  from jaxgan.sample import draw
  return draw(workdir, 8, raw=True).arrays["images"]


def test_bad_average_settings_are_refused(tmp_path, mock_fmnist):
  for kw, match in (({"g_ema": 1.0}, "config.g_ema must be in"),
                    ({"g_ema": 0.9, "g_ema_start": -1}, "config.g_ema_start must be")):
    with pytest.raises(ConfigError, match=match):
      trainer.train_and_evaluate(_config(**kw), str(tmp_path / "x"))
