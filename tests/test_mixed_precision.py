"""Mixed precision: bfloat16 compute, float32 parameters, statistics and optimizer states."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxgan
from conftest import load_config, tiny
from jaxgan import families
from jaxgan.errors import ConfigError
from jaxgan.models import build_models


def _state(dtype, norm="batch"):
  g, d = build_models("dcgan", (16, 16, 1), 16, {"features": (32, 16)},
                      {"features": (16, 32), "norm": norm})
  tx = optax.adam(2e-4, b1=0.5)
  return jaxgan.create_state(g, d, tx, tx, jax.random.PRNGKey(0), dtype=dtype)


@pytest.mark.parametrize("norm", ["batch", "spectral"])
def test_bfloat16_steps_track_float32_and_keep_float32_state(norm):
  """Tolerance: bfloat16 keeps 8 mantissa bits (relative rounding 2^-8 = 0.4 %); after 5 steps
  the losses agree to 5 % and G's outputs to 0.05 (images in [-1, 1])."""
  images = np.asarray(jax.random.uniform(jax.random.PRNGKey(1), (5, 16, 16, 16, 1), minval=-1))
  step = jaxgan.make_train_step("hinge")
  states = {}
  for dtype in ("float32", "bfloat16"):
    state, history = _state(dtype, norm), []
    for k in range(5):
      state, m = step(state, {"image": images[k]})
      history.append((float(m["d_loss"]), float(m["g_loss"])))
    states[dtype] = (state, np.array(history))
  (s32, h32), (s16, h16) = states["float32"], states["bfloat16"]
  for tree in (s16.g_params, s16.d_params, s16.g_opt_state, s16.d_opt_state, s16.g_batch_stats,
               s16.d_batch_stats):
    assert all(leaf.dtype in (jnp.float32, jnp.int32) for leaf in jax.tree.leaves(tree))
  np.testing.assert_allclose(h16, h32, rtol=5e-2, atol=2e-2)
  assert not np.array_equal(h16, h32)   # the compute really ran in bfloat16
  z = jax.random.normal(jax.random.PRNGKey(2), (8, 16))
  out16, out32 = s16.generate(z)[0], s32.generate(z)[0]
  assert out16.dtype == jnp.float32
  np.testing.assert_allclose(out16, out32, atol=5e-2)


def test_dtype_values_other_than_float32_and_bfloat16_are_refused():
  config = tiny(load_config("dcgan_fmnist"))
  config.dtype = "float16"
  with pytest.raises(ConfigError, match=r"config.dtype='float16' is not supported; choose one of "
                                        r"\['float32', 'bfloat16'\]"):
    families.check(config)
  with pytest.raises(ValueError, match="compute dtype .float64. is not one of"):
    _state("float64")
  config = load_config("cyclegan_mnist")
  config.dtype = "bfloat16"
  with pytest.raises(ConfigError, match="cyclegan family has no mixed precision"):
    families.check(config)
