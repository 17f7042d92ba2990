"""The conditional ResNets: conditional BatchNorm, the projection head, self-attention."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan.models import build_models
from jaxgan.models.resnet import ConditionalBatchNorm, SelfAttention


def test_conditional_batchnorm_starts_plain_and_scales_by_one_plus_a_linear_gain():
  x = jax.random.normal(jax.random.PRNGKey(0), (6, 4, 4, 3)) * 3 + 1
  e = jax.random.normal(jax.random.PRNGKey(1), (6, 5))
  cbn = ConditionalBatchNorm()
  v = cbn.init(jax.random.PRNGKey(2), x, e)
  out, _ = cbn.apply(v, x, e, mutable=["batch_stats"])
  mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
  x_hat = (x - mean) / jnp.sqrt(var + 1e-5)
  np.testing.assert_allclose(out, x_hat, atol=1e-4)    # gain 1, bias 0 at initialisation
  wg = jax.random.normal(jax.random.PRNGKey(3), (5, 3))
  wb = jax.random.normal(jax.random.PRNGKey(4), (5, 3))
  params = {"gain": {"kernel": wg, "bias": jnp.zeros(3)}, "bias": {"kernel": wb, "bias": jnp.zeros(3)}}
  out, _ = cbn.apply({**v, "params": params}, x, e, mutable=["batch_stats"])
  expected = x_hat * (1 + e @ wg)[:, None, None, :] + (e @ wb)[:, None, None, :]
  np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)


def test_projection_discriminator_adds_the_inner_product_of_the_class_embedding():
  _, d = build_models("cgan_resnet", (16, 16, 1), 8, {"widths": (8, 8, 8)},
                      {"widths": (8, 8, 8), "spectral": False}, num_classes=3)
  x = jax.random.normal(jax.random.PRNGKey(0), (4, 16, 16, 1))
  v = d.init(jax.random.PRNGKey(1), x, jnp.zeros(4, jnp.int32))
  params = jax.tree.map(lambda a: a, v["params"])
  kernel, bias = params["Dense_0"]["kernel"][:, 0], params["Dense_0"]["bias"][0]
  # Class 0: no embedding; class 1: the embedding row equals psi's weights.
  params["Embed_0"]["embedding"] = jnp.zeros_like(params["Embed_0"]["embedding"]).at[1].set(kernel)
  d0 = d.apply({"params": params}, x, jnp.zeros(4, jnp.int32), train=False)
  d1 = d.apply({"params": params}, x, jnp.ones(4, jnp.int32), train=False)
  np.testing.assert_allclose(d1 - d0, d0 - bias, rtol=1e-4, atol=1e-4)  # <w, h> = psi(h) - b
  assert float(jnp.abs(d1 - d0).max()) > 1e-3


def _attention_reference(x, p, gamma):
  n, h, w, c = x.shape
  conv = lambda t, k: t @ np.asarray(k)[0, 0]
  pool = lambda t: t.reshape(n, h // 2, 2, w // 2, 2, -1).max(axis=(2, 4))
  theta = conv(x, p["theta"]["kernel"]).reshape(n, h * w, -1)
  phi = pool(conv(x, p["phi"]["kernel"])).reshape(n, h * w // 4, -1)
  g = pool(conv(x, p["g"]["kernel"])).reshape(n, h * w // 4, -1)
  logits = theta @ phi.transpose(0, 2, 1)
  a = np.exp(logits - logits.max(-1, keepdims=True))
  a /= a.sum(-1, keepdims=True)
  o = conv((a @ g).reshape(n, h, w, -1), p["v"]["kernel"])
  return x + gamma * o


def test_self_attention_matches_the_formula_and_starts_as_the_identity():
  x = np.asarray(jax.random.normal(jax.random.PRNGKey(0), (2, 4, 6, 16)))
  sa = SelfAttention(spectral=False)
  v = sa.init(jax.random.PRNGKey(1), x)
  np.testing.assert_array_equal(sa.apply(v, x), x)     # gamma starts at 0
  params = {**v["params"], "gamma": jnp.asarray(0.7)}
  np.testing.assert_allclose(sa.apply({"params": params}, x), _attention_reference(x, params, 0.7),
                             rtol=1e-4, atol=1e-4)


def test_attention_goes_where_asked_and_a_wrong_side_is_a_clear_error():
  g, d = build_models("cgan_resnet", (32, 32, 1), 16, {"widths": (16, 16, 16, 16), "attention": 16},
                      {"widths": (16, 16, 16, 16), "attention": 8}, num_classes=10)
  y = jnp.zeros(2, jnp.int32)
  gv = g.init(jax.random.PRNGKey(0), jnp.ones((2, 16)), y)
  dv = d.init(jax.random.PRNGKey(0), jnp.ones((2, 32, 32, 1)), y)
  assert "SelfAttention_0" in gv["params"] and "SelfAttention_0" in dv["params"]
  # SAGAN's attention convolutions are spectrally normalised in G as in D.
  assert "SelfAttention_0" in gv["batch_stats"] and "SelfAttention_0" in dv["batch_stats"]
  bad, _ = build_models("resnet", (32, 32, 1), 16, {"widths": (16, 16, 16, 16), "attention": 12})
  with pytest.raises(ValueError, match=r"attention=12: .* one of the sides \[8, 16, 32\]"):
    bad.init(jax.random.PRNGKey(0), jnp.ones((2, 16)))
