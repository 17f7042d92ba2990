import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan.models import MLPDiscriminator, MLPGenerator, build_models


def _count(tree):
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def _dense(i, o):
  return i * o + o


def test_classic_tutorial_mlp_gan_shapes_and_parameter_counts():
  g = MLPGenerator(image_shape=(32, 32, 1), latent_dim=100, batchnorm_epsilon=0.8)
  z = jnp.ones((5, 100))
  variables = g.init(jax.random.PRNGKey(0), z)
  # 100-128 (no BN), 128-256 BN, 256-512 BN, 512-1024 BN, 1024-1024 tanh
  expected = (_dense(100, 128) + _dense(128, 256) + 2 * 256 + _dense(256, 512) + 2 * 512
              + _dense(512, 1024) + 2 * 1024 + _dense(1024, 1024))
  assert _count(variables["params"]) == expected
  assert _count(variables["batch_stats"]) == 2 * (256 + 512 + 1024)
  out = g.apply(variables, z, train=False)
  assert out.shape == (5, 32, 32, 1)
  assert float(jnp.max(jnp.abs(out))) <= 1.0

  d = MLPDiscriminator(hidden=(512, 256))
  dv = d.init(jax.random.PRNGKey(1), out)
  assert _count(dv["params"]) == _dense(1024, 512) + _dense(512, 256) + _dense(256, 1)
  assert d.apply(dv, out).shape == (5,)


def test_keras_book_gan_parameter_counts():
  g, d = build_models("mlp", (28, 28, 1), 100, {"hidden": (128,), "batchnorm": False,
                                                  "negative_slope": 0.01},
                      {"hidden": (128,), "negative_slope": 0.01})
  gv = g.init(jax.random.PRNGKey(0), jnp.ones((2, 100)))
  assert "batch_stats" not in gv
  assert _count(gv["params"]) == _dense(100, 128) + _dense(128, 784)
  x = g.apply(gv, jnp.ones((2, 100)))
  assert x.shape == (2, 28, 28, 1)
  dv = d.init(jax.random.PRNGKey(0), x)
  assert _count(dv["params"]) == _dense(784, 128) + _dense(128, 1)


def test_batchnorm_epsilon_is_used():
  # With eps 0.8 a constant-variance batch is normalised much less than with 1e-5.
  z = jax.random.normal(jax.random.PRNGKey(0), (16, 4))
  outs = []
  for eps in (1e-5, 0.8):
    g = MLPGenerator(image_shape=(2, 2, 1), latent_dim=4, hidden=(8, 8), batchnorm_epsilon=eps)
    v = g.init(jax.random.PRNGKey(0), z)
    outs.append(g.apply(v, z, train=True, mutable=["batch_stats"])[0])
  assert not np.allclose(outs[0], outs[1], atol=1e-3)


def test_unknown_model_and_bad_dcgan_size_are_clear_errors():
  with pytest.raises(ValueError, match="choose one of"):
    build_models("stylegan9", (32, 32, 1), 100)
  g, _ = build_models("dcgan", (28, 28, 1), 100)
  with pytest.raises(ValueError, match="multiple of 8"):
    g.init(jax.random.PRNGKey(0), jnp.ones((1, 100)))
