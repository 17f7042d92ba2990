"""jaxgan.MultiSeed: N seeds of an image GAN in one vmapped program, each equal to its own run."""

import jax
import numpy as np
import pytest

from conftest import load_config, tiny
from jaxgan import trainer
from jaxgan.errors import ConfigError
from jaxgan.multiseed import MultiSeed


def _close(a, b, rtol=2e-4, atol=1e-5):
  for x, y in zip(jax.tree.leaves(jax.device_get(a)), jax.tree.leaves(jax.device_get(b))):
    np.testing.assert_allclose(x, y, rtol=rtol, atol=atol)


def _same_run(mine, single):
  """Equal up to float rounding: D, its optimizer and G's kernels leaf by leaf; G by its outputs.
  (A bias right before a BatchNorm has a null gradient, which Adam divides by its own tiny second
  moment: there the vmapped program's rounding moves it by ~1e-4 in 3 steps, which reaches G's
  inference-mode output through the running mean by up to ~2e-4; two seeds differ by ~0.1-1.)"""
  _close((mine.d_params, mine.d_opt_state), (single.d_params, single.d_opt_state))
  kernels = lambda p: [v for path, v in jax.tree_util.tree_flatten_with_path(p)[0]
                       if "kernel" in jax.tree_util.keystr(path)]
  _close(kernels(mine.g_params), kernels(single.g_params))
  z = jax.random.normal(jax.random.key(9), (16, mine.latent_dim))
  for train in (False, True):
    _close(mine.generate(z, train=train)[0], single.generate(z, train=train)[0], atol=1e-3)


@pytest.mark.parametrize("name,overrides", [("gan_fmnist", {}), ("dcgan_fmnist", {}),
                                            ("wgangp_fmnist", {"n_critic": 2})])
def test_seed_s_equals_a_single_run_of_seed_s(tmp_path, mock_fmnist, name, overrides):
  config = tiny(load_config(name))
  config.num_steps, config.checkpoint_every, config.sample_every = 3, 1000, 1000
  config.num_devices = 1   # the single runs on one device, as the seeds' program
  for k, v in overrides.items():
    config[k] = v
  runs = MultiSeed(config, seeds=[4, 7])
  states, metrics = runs.run(runs.init(), 2)
  states, metrics = runs.run(states, 1)          # runs continue where they stopped
  assert metrics["d_loss"].shape == (2,) and np.all(np.isfinite(metrics["d_loss"]))
  for i, seed in enumerate((4, 7)):
    config.seed = seed
    single = trainer.train_and_evaluate(config, str(tmp_path / f"seed_{seed}"))
    mine = runs.state(states, i)
    assert int(mine.step) == 3
    _same_run(mine, single)
  a, b = (jax.tree.leaves(runs.state(states, i).g_params)[0] for i in (0, 1))
  assert not np.allclose(a, b)


def test_seeds_are_checked(mock_fmnist):
  config = tiny(load_config("gan_fmnist"))
  with pytest.raises(ConfigError, match="at least one seed"):
    MultiSeed(config, seeds=[])
  with pytest.raises(ConfigError, match="must differ"):
    MultiSeed(config, seeds=[1, 1])
