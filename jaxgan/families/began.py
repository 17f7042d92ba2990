"""BEGAN (Berthelot, Schumm & Metz, 2017): an auto-encoder discriminator and an equilibrium control.

D's outputs are per-example reconstruction energies ``L(v) = mean |v - D(v)|``;
D minimises ``L(x) - k_t L(G(z))``, G minimises ``L(G(z))``, and the control
variable ``k_t`` (this family's own state, :class:`BEGANState`) follows

    k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z))), 0, 1),   k_0 = 0,

measured on the step's real and fake energies under the pre-update D (the
paper updates D, G and k from the same measurements). Metrics add ``k_t`` and
the convergence measure ``m_global = L(x) + |gamma L(x) - L(G(z))|``.
Recipe keys: ``began.gamma``, ``began.lambda_k`` (``configs/began_fmnist.py``).
"""

from __future__ import annotations


import jax
import jax.numpy as jnp
import ml_collections
from flax import struct
from jax import lax

from jaxgan import losses, steps
from jaxgan.errors import ConfigError
from jaxgan.families.base import Family, cached_body, number
from jaxgan.state import GANState


@struct.dataclass
class BEGANState(GANState):
  """A :class:`~jaxgan.state.GANState` with BEGAN's equilibrium control variable ``k_t``."""
  k_t: jax.Array = struct.field(default_factory=lambda: jnp.zeros((), jnp.float32))

  @classmethod
  def of(cls, state: GANState, k_t: float = 0.0) -> "BEGANState":
    """``state`` (a fresh :func:`jaxgan.create_state`) with ``k_t``."""
    fields = {f: getattr(state, f) for f in GANState.__dataclass_fields__}
    return cls(**fields, k_t=jnp.asarray(k_t, jnp.float32))


def began_step_fn(state: BEGANState, batch: steps.Batch, *, axis_name: str | None = None,
                  gamma: float = 0.5, lambda_k: float = 0.001,
                  reuse_fakes: bool = True) -> tuple[BEGANState, steps.Metrics]:
  """One D update then one G update, and the ``k_t`` control step.

  ``reuse_fakes`` (default): G's update reuses D's fakes through the updated D,
  its gradient pulled back through the one forward pass
  (:func:`jaxgan.steps.reused_fakes_step_fn`); else G draws fresh noise from the
  G stream. ``d_real_acc`` / ``d_fake_acc``: the share of real images
  reconstructed better than the fakes' mean energy, and vice versa.
  """
  real = batch["image"]
  d_key = steps.step_key(state, steps.D_STREAM)
  z = steps.sample_latent(state, d_key, real.shape[0], axis_name)
  fake, pull_back, g_stats = jax.vjp(
      lambda g_params: state.replace(g_params=g_params).generate(z, train=True),
      state.g_params, has_aux=True)
  fake_d = lax.stop_gradient(fake)

  def d_loss_fn(d_params):
    real_e, stats = state.discriminate(real, d_params=d_params)
    fake_e, stats = state.discriminate(fake_d, stats, d_params=d_params)
    return losses.began_discriminator_loss(real_e, fake_e, k=state.k_t), (stats, real_e, fake_e)

  (d_loss, (stats, real_e, fake_e)), grads = jax.value_and_grad(d_loss_fn, has_aux=True)(
      state.d_params)
  new_state = steps.apply_d_update(state, grads, stats, axis_name)
  real_mean, fake_mean = steps.pmean((jnp.mean(real_e), jnp.mean(fake_e)), axis_name)
  k_t = losses.began_k_update(state.k_t, real_mean, fake_mean, gamma=gamma, lambda_k=lambda_k)
  new_state = new_state.replace(k_t=k_t)
  d_metrics = steps.pmean({
      "d_loss": d_loss,
      # Energies, not logits: a real "passes" below the fakes' mean energy and vice versa.
      "d_real_acc": jnp.mean(real_e < jnp.mean(fake_e)),
      "d_fake_acc": jnp.mean(fake_e > jnp.mean(real_e)),
      "d_real": jnp.mean(real_e), "d_fake": jnp.mean(fake_e),
      "k_t": k_t, "m_global": losses.began_convergence(real_mean, fake_mean, gamma=gamma),
  }, axis_name)
  if reuse_fakes:
    g_loss, fake_grad = jax.value_and_grad(
        lambda x: losses.began_generator_loss(new_state.discriminate(x)[0]))(fake)
    (grads,) = pull_back(fake_grad)
  else:
    z_g = steps.sample_latent(new_state, steps.step_key(new_state, steps.G_STREAM), real.shape[0],
                              axis_name)

    def g_loss_fn(g_params):
      fake_g, g_stats = new_state.replace(g_params=g_params).generate(z_g, train=True)
      return losses.began_generator_loss(new_state.discriminate(fake_g)[0]), g_stats

    (g_loss, g_stats), grads = jax.value_and_grad(g_loss_fn, has_aux=True)(new_state.g_params)
  new_state, g_metrics = steps.apply_g_update(new_state, grads, g_stats, g_loss, axis_name)
  return new_state, {**d_metrics, **g_metrics}


def make_began_step(*, gamma: float = 0.5, lambda_k: float = 0.001, reuse_fakes: bool = True,
                    axis_name: str | None = None, jit: bool = True, donate: bool = False):
  """:func:`began_step_fn` with its options bound; jitted unless ``jit=False``."""
  if not 0 <= gamma <= 1 or not lambda_k >= 0:
    raise ValueError(f"gamma must be in [0, 1] and lambda_k >= 0, got {gamma!r}, {lambda_k!r}")
  return steps.bind(began_step_fn, jit=jit, donate=donate, gamma=float(gamma),
                    lambda_k=float(lambda_k), reuse_fakes=bool(reuse_fakes), axis_name=axis_name)


class BEGAN(Family):
  name = "began"
  honours = frozenset({"data.fraction", "dtype"})   # its auto-encoder step has no DiffAugment
  models = ("began",)
  losses = ("began",)

  def check_config(self, config: ml_collections.ConfigDict) -> None:
    super().check_config(config)
    if config.get("n_critic", 1) != 1:
      raise ConfigError("config.n_critic: BEGAN makes one D and one G update per step; "
                        "set --config.n_critic=1")
    for key in ("gp_weight", "r1_weight", "clip", "label_smoothing"):
      if config.get(key, 0.0):
        raise ConfigError(f"config.{key} is not supported by config.model='began'; set it to 0")
    if "began" not in config:
      raise ConfigError("config.began is missing: BEGAN needs config.began.gamma and "
                        "config.began.lambda_k (see configs/began_fmnist.py)")
    gamma = config.began.get("gamma")
    if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or not 0 <= gamma <= 1:
      raise ConfigError(f"config.began.gamma must be in [0, 1], got {gamma!r}")
    number(config, "began.lambda_k")

  def build_state(self, config: ml_collections.ConfigDict, image_shape, num_classes: int = 0):
    return BEGANState.of(super().build_state(config, image_shape, num_classes))

  def step_options(self, config: ml_collections.ConfigDict) -> dict:
    return {"n_critic": 1, "reuse_fakes": bool(config.get("reuse_fakes", True)),
            "gamma": float(config.began.gamma), "lambda_k": float(config.began.lambda_k)}

  def step_body(self, config: ml_collections.ConfigDict):
    options = {k: v for k, v in self.step_options(config).items() if k != "n_critic"}
    return cached_body(make_began_step, tuple(sorted(options.items())))
