"""Spectral normalisation (Miyato et al., 2018) and the SNGAN ResNets."""

from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxgan
from conftest import load_config, tiny
from jaxgan import families, parallel
from jaxgan.errors import ConfigError
from jaxgan.models import build_models
from jaxgan.models.layers import spectral_norm


class _Wrapped(nn.Module):
  make: Callable[[], nn.Module]   # builds the layer

  @nn.compact
  def __call__(self, x, train=True):
    return spectral_norm(self.make(), train)(x)


def _power_iterate(module, variables, x, calls):
  for _ in range(calls):
    _, mutated = module.apply(variables, x, mutable=["batch_stats"])
    variables = {**variables, **mutated}
  return variables


def _matrix(kernel):
  kernel = np.asarray(kernel)
  return kernel.reshape(-1, kernel.shape[-1])


@pytest.mark.parametrize("make,shape", [
    (lambda: nn.Dense(24), (3, 40)),
    (lambda: nn.Conv(16, (3, 3)), (2, 8, 8, 5)),
    (lambda: nn.Conv(7, (4, 4), strides=(2, 2)), (2, 8, 8, 3)),
])
def test_sigma_converges_to_the_largest_singular_value_and_the_layer_divides_by_it(make, shape):
  x = jax.random.normal(jax.random.PRNGKey(1), shape)
  module = _Wrapped(make)
  variables = module.init(jax.random.PRNGKey(0), x)
  (params,) = variables["params"].values()
  kernel = params["kernel"]
  top = np.linalg.svd(_matrix(kernel), compute_uv=False)[0]
  stats = jax.tree.leaves_with_path(variables["batch_stats"])
  sigma_of = lambda v: float(next(leaf for path, leaf in jax.tree.leaves_with_path(v["batch_stats"])
                                  if "sigma" in jax.tree_util.keystr(path)))
  assert len(stats) == 2   # u and sigma of the one kernel
  one = _power_iterate(module, variables, x, 1)
  many = _power_iterate(module, variables, x, 100)
  # One power iteration per training call: the estimate improves from below towards sigma_max.
  assert sigma_of(one) <= sigma_of(many) + 1e-5
  np.testing.assert_allclose(sigma_of(many), top, rtol=1e-4)
  # The layer is the plain layer with W / sigma(W): compare with the SVD's sigma.
  plain = make()
  scaled = {"params": {"kernel": kernel / top, "bias": params["bias"]}}
  got = module.apply(many, x, train=False)
  np.testing.assert_allclose(got, plain.apply(scaled, x), rtol=1e-3, atol=1e-4)


def test_u_is_updated_in_training_calls_only_and_gets_no_gradient():
  x = jax.random.normal(jax.random.PRNGKey(1), (4, 10))
  module = _Wrapped(lambda: nn.Dense(6))
  variables = module.init(jax.random.PRNGKey(0), x)
  u = lambda v: next(leaf for path, leaf in jax.tree.leaves_with_path(v["batch_stats"])
                     if "/u" in jax.tree_util.keystr(path))
  _, frozen = module.apply(variables, x, train=False, mutable=["batch_stats"])
  np.testing.assert_array_equal(u(frozen), u(variables))
  _, moved = module.apply(variables, x, train=True, mutable=["batch_stats"])
  assert not np.allclose(u(moved), u(variables))
  grads = jax.grad(lambda bs: jnp.sum(module.apply({**variables, "batch_stats": bs}, x,
                                                    mutable=["batch_stats"])[0]))(
      variables["batch_stats"])
  assert all(float(jnp.max(jnp.abs(g))) == 0.0 for g in jax.tree.leaves(grads))


def test_unsupported_layer_is_a_clear_error():
  with pytest.raises(ValueError, match="spectral normalisation supports Dense, Conv.* not LayerNorm"):
    _Wrapped(nn.LayerNorm).init(jax.random.PRNGKey(0), jnp.ones((2, 3)))


def test_a_penalty_accepts_a_spectrally_normalised_critic_and_still_refuses_batchnorm():
  config = tiny(load_config("wgangp_fmnist"))
  config.discriminator.norm = "spectral"
  families.check(config)
  config.discriminator.norm = "batch"
  with pytest.raises(ConfigError, match="BatchNorm"):
    families.check(config)


def _sn_state():
  g, d = build_models("dcgan", (16, 16, 1), 8, {"features": (8, 4)},
                      {"features": (4, 8), "norm": "spectral"})
  tx = optax.adam(1e-3, b1=0.0, b2=0.9)
  return jaxgan.create_state(g, d, tx, tx, jax.random.PRNGKey(0))


@pytest.mark.parametrize("mode", ["shard_map", "pmap"])
def test_power_iteration_vectors_are_identical_across_devices_and_equal_one_device(mode):
  state = _sn_state()
  images = np.asarray(jax.random.uniform(jax.random.PRNGKey(2), (3, 16, 16, 16, 1), minval=-1))
  single = jaxgan.make_train_step(loss="hinge")
  expected = state
  for k in range(3):
    expected, _ = single(expected, {"image": images[k]})
  dp = parallel.DataParallel(mode=mode)
  step = dp.train_step(loss="hinge")
  got = dp.replicate(state)
  for k in range(3):
    got, _ = step(got, dp.shard({"image": images[k]}))
  if mode == "pmap":   # one copy per device: every copy the same
    for leaf in jax.tree.leaves(got.d_batch_stats):
      leaf = np.asarray(leaf)
      assert leaf.shape[0] == jax.device_count()
      np.testing.assert_array_equal(leaf, np.broadcast_to(leaf[:1], leaf.shape))
  got = dp.unreplicate(got)
  # The vectors moved from their initial values, as in the single-device run.
  for a, b, c in zip(jax.tree.leaves(got.d_batch_stats), jax.tree.leaves(expected.d_batch_stats),
                     jax.tree.leaves(state.d_batch_stats)):
    np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)
    assert not np.allclose(b, c)


def _count(tree):
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def _conv(k, i, o):
  return k * k * i * o + o


def test_sngan_resnets_have_the_published_architecture_parameter_counts():
  """Miyato et al. (2018), appendix B, CIFAR-10 ResNets, counted layer by layer."""
  g, d = build_models("resnet", (32, 32, 3), 128)
  gv = g.init(jax.random.PRNGKey(0), jnp.ones((2, 128)))
  dv = d.init(jax.random.PRNGKey(0), jnp.ones((2, 32, 32, 3)))
  g_block = 2 * 256 + _conv(3, 256, 256) + 2 * 256 + _conv(3, 256, 256) + _conv(1, 256, 256)
  g_expected = (128 * 4 * 4 * 256 + 4 * 4 * 256) + 3 * g_block + 2 * 256 + _conv(3, 256, 3)
  d_expected = (_conv(3, 3, 128) + _conv(3, 128, 128) + _conv(1, 3, 128)        # optimised block
                + 2 * _conv(3, 128, 128) + _conv(1, 128, 128)                   # down
                + 2 * 2 * _conv(3, 128, 128)                                    # two plain blocks
                + 128 + 1)                                                      # Dense to a logit
  assert _count(gv["params"]) == g_expected == 4_276_739
  assert _count(dv["params"]) == d_expected == 1_053_825
  # Every D layer is spectrally normalised: one u (and sigma) per kernel.
  kernels = [p for p, _ in jax.tree.leaves_with_path(dv["params"]) if "kernel" in jax.tree_util.keystr(p)]
  us = [p for p, _ in jax.tree.leaves_with_path(dv["batch_stats"]) if "/u" in jax.tree_util.keystr(p)]
  assert len(kernels) == len(us) == 11
  images = g.apply(gv, jax.random.normal(jax.random.PRNGKey(1), (2, 128)), train=False)
  assert images.shape == (2, 32, 32, 3) and float(jnp.max(jnp.abs(images))) <= 1.0
  assert d.apply(dv, images, train=False).shape == (2,)


def test_resnet_sizes_are_checked_with_the_fix():
  g, d = build_models("resnet", (28, 28, 1), 128)
  with pytest.raises(ValueError, match="makes 32x32 images, not 28x28: set image_size to 32"):
    g.init(jax.random.PRNGKey(0), jnp.ones((1, 128)))
  _, d = build_models("resnet", (32, 32, 1), 128, discriminator_kwargs={"downsample": (True,)})
  with pytest.raises(ValueError, match="one flag per width"):
    d.init(jax.random.PRNGKey(0), jnp.ones((1, 32, 32, 1)))


@pytest.mark.parametrize("model,layers", [("cgan_dcgan", 5), ("acgan", 5)])
def test_the_label_aware_dcgan_critics_normalise_every_layer_with_norm_spectral(model, layers):
  """cGAN: 3 convolutions, the projection's embedding and its Dense; ACGAN: 3 convolutions and
  the source and class heads."""
  _, d = build_models(model, (32, 32, 1), 8, {}, {"norm": "spectral"}, num_classes=10)
  args = (jnp.ones((2, 32, 32, 1)),) + ((jnp.zeros(2, jnp.int32),) if model == "cgan_dcgan" else ())
  v = d.init(jax.random.PRNGKey(0), *args)
  kernels = [p for p, _ in jax.tree.leaves_with_path(v["params"])
             if jax.tree_util.keystr(p).endswith(("['kernel']", "['embedding']"))]
  us = [p for p, _ in jax.tree.leaves_with_path(v["batch_stats"]) if "/u" in jax.tree_util.keystr(p)]
  assert len(kernels) == len(us) == layers
