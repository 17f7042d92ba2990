"""GANState: everything stateful about a GAN, in one immutable pytree."""

from __future__ import annotations

import functools
import inspect
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

PyTree = Any


@struct.dataclass
class GANState:
  """Parameters, BatchNorm statistics, optimizer states, step and PRNG key of a GAN.

  The modules and optimizers are static (not pytree leaves): they define the
  functions, the leaves are their arguments. ``key`` is the run's base key and
  never changes; a step derives its randomness from ``fold_in(key, step)``, so
  a resumed run repeats the trajectory of an uninterrupted one. ``step`` counts
  generator updates. A family that carries more (BEGAN's control variable
  ``k_t``) subclasses it (:mod:`jaxgan.families`).
  """
  step: jax.Array
  key: jax.Array
  g_params: PyTree
  d_params: PyTree
  g_batch_stats: PyTree
  d_batch_stats: PyTree
  g_opt_state: optax.OptState
  d_opt_state: optax.OptState
  generator: nn.Module = struct.field(pytree_node=False)
  discriminator: nn.Module = struct.field(pytree_node=False)
  g_tx: optax.GradientTransformation = struct.field(pytree_node=False)
  d_tx: optax.GradientTransformation = struct.field(pytree_node=False)
  # The latent size given to create_state, for a generator without a ``latent_dim`` field.
  z_dim: int | None = struct.field(pytree_node=False, default=None, kw_only=True)
  # The networks' compute dtype (COMPUTE_DTYPES); parameters, statistics, optimizer states,
  # losses and gradients stay float32 (mixed precision).
  dtype: str = struct.field(pytree_node=False, default="float32", kw_only=True)

  @property
  def latent_dim(self) -> int:
    """The size of G's latent ``z``: the generator's ``latent_dim`` field, else ``create_state``'s."""
    return int(getattr(self.generator, "latent_dim", None) or self.z_dim)

  def generate(self, z: jax.Array, train: bool = False, label: jax.Array | None = None,
               rngs: dict[str, jax.Array] | None = None) -> tuple[jax.Array, PyTree]:
    """G(z) (G(z, y) with ``label``) and the generator's (possibly updated) batch statistics.

    In training mode G gets a ``dropout`` PRNG stream (:meth:`train_rngs`) unless ``rngs``
    names one.
    """
    rngs = self.train_rngs(rngs, G_DROPOUT) if train else rngs
    return apply_model(self.generator, self.g_params, self.g_batch_stats, z, train, label=label,
                       rngs=rngs, dtype=self.dtype)

  def discriminate(self, x: jax.Array, d_batch_stats: PyTree | None = None, *,
                   d_params: PyTree | None = None, train: bool = True,
                   label: jax.Array | None = None,
                   rngs: dict[str, jax.Array] | None = None) -> tuple[jax.Array, PyTree]:
    """D(x) (D(x, y) with ``label``) and the discriminator's (possibly updated) batch statistics.

    ``rngs``: PRNG streams of stochastic layers (e.g. the semi-supervised
    discriminator's Gaussian noise, ``{"noise": key}``); in training mode D gets a
    ``dropout`` stream (:meth:`train_rngs`) unless ``rngs`` names one.
    """
    rngs = self.train_rngs(rngs, D_DROPOUT) if train else rngs
    return apply_model(self.discriminator,
                       self.d_params if d_params is None else d_params,
                       self.d_batch_stats if d_batch_stats is None else d_batch_stats,
                       x, train, label=label, rngs=rngs, dtype=self.dtype)

  def train_rngs(self, rngs: dict[str, jax.Array] | None, tag: int) -> dict[str, jax.Array]:
    """``rngs`` with a ``dropout`` key when it has none: ``fold_in(key, step)`` folded with
    :data:`DROPOUT_STREAM` and ``tag`` (a pure function of the run key and the step, so a
    resumed run draws the same masks). The generic steps pass their own per-pass keys."""
    rngs = dict(rngs or {})
    if "dropout" not in rngs:
      key = jax.random.fold_in(jax.random.fold_in(self.key, self.step), DROPOUT_STREAM)
      rngs["dropout"] = jax.random.fold_in(key, tag)
    return rngs


# The PRNG stream of dropout (and any other layer that calls ``make_rng("dropout")``) within a
# step's randomness (:func:`jaxgan.steps.step_key`'s streams 0-3 are the noise, penalties and D's
# Gaussian noise); G's and D's passes fold in their own tags.
DROPOUT_STREAM = 4
G_DROPOUT, D_DROPOUT = 0, 1


def takes_label(module: nn.Module) -> bool:
  """Whether ``module`` is called as ``module(x, label, train=...)`` (a conditional network)."""
  return bool(getattr(module, "takes_label", False))


COMPUTE_DTYPES = ("float32", "bfloat16")


def check_dtype(dtype: str) -> None:
  """A ``ValueError`` unless ``dtype`` is one of :data:`COMPUTE_DTYPES`."""
  if dtype not in COMPUTE_DTYPES:
    raise ValueError(f"compute dtype {dtype!r} is not one of {COMPUTE_DTYPES}")


def _cast(tree: PyTree, dtype) -> PyTree:
  """The floating-point leaves of ``tree`` as ``dtype`` (integers, e.g. labels, unchanged)."""
  return jax.tree.map(lambda a: a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a,
                      tree)


def apply_model(module: nn.Module, params: PyTree, batch_stats: PyTree, x: jax.Array,
                train: bool, label: jax.Array | None = None,
                rngs: dict[str, jax.Array] | None = None,
                dtype: str = "float32") -> tuple[jax.Array, PyTree]:
  """Applies ``module``; in training mode returns the updated batch statistics.

  ``label`` (int ``[N]``) is passed to conditional modules as their second
  argument; without it the module is called exactly as an unconditional one.

  ``dtype="bfloat16"`` is mixed precision: the float32 parameters and the input are cast to
  bfloat16 for the pass (the casts' gradients bring float32 gradients back to the float32
  parameters), the output is cast back to float32 for the losses, and the statistics stay
  float32 (BatchNorm reduces in float32).
  """
  check_dtype(dtype)
  if dtype != "float32":
    out, stats = apply_model(module, _cast(params, dtype), batch_stats, _cast(x, dtype), train,
                             label=label, rngs=rngs)
    return _cast(out, jnp.float32), jax.tree.map(lambda new, old: new.astype(old.dtype),
                                                 stats, batch_stats)
  variables = {"params": params}
  if batch_stats:
    variables["batch_stats"] = batch_stats
  args = (x,) if label is None else (x, label)
  extra = {} if rngs is None else {"rngs": rngs}
  extra.update(mode(module, train))
  if train and batch_stats:
    out, mutated = module.apply(variables, *args, mutable=["batch_stats"], **extra)
    return out, mutated["batch_stats"]
  return module.apply(variables, *args, **extra), batch_stats


def mode(module: nn.Module, train: bool) -> dict[str, bool]:
  """``{"train": train}`` for a module whose ``__call__`` takes ``train`` (jaxgan's all do);
  ``{}`` for one that does not (a network without BatchNorm or dropout needs no mode)."""
  return {"train": train} if _takes_train(type(module)) else {}


@functools.lru_cache(maxsize=None)
def _takes_train(cls) -> bool:
  try:
    params = inspect.signature(cls.__call__).parameters
  except (TypeError, ValueError):
    return True
  return "train" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def run_once(fn, *args):
  """``fn(*args)`` jitted as one program; on CPU compiled without backend optimisation.

  For code that runs once, such as initialisation: run eagerly, every
  initializer of every layer compiles its own small XLA program, and XLA:CPU
  spends most of a second optimising each threefry + ``normal`` (measured on 2
  cores: a tiny DCGAN's G and D took 13 s eagerly, 7.6 s as two optimised
  programs, 1.3 s at level 0). Level 0 changes the numbers by at most one
  float32 rounding (as jitting itself does against eager). Inside a trace
  (``jax.vmap``, an outer ``jax.jit``) it simply calls ``fn``.
  """
  if any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(args)):
    return fn(*args)
  options = {"xla_backend_optimization_level": 0} if jax.default_backend() == "cpu" else None
  return jax.jit(fn, compiler_options=options)(*args)


def create_state(generator: nn.Module, discriminator: nn.Module,
                 g_tx: optax.GradientTransformation, d_tx: optax.GradientTransformation,
                 key: jax.Array, latent_dim: int | None = None, dtype: str = "float32") -> GANState:
  """Initialises both networks and optimizers.

  The model contract (jaxgan's models and a user's own Flax modules alike):

  * the generator maps ``z`` ``[N, latent_dim]`` to images ``[N, H, W, C]`` in [-1, 1] (a
    ``tanh`` output); ``latent_dim`` is the generator's field of that name, or this function's
    ``latent_dim`` argument for a generator without one;
  * the discriminator maps images to one logit per example, ``[N]`` or ``[N, 1]`` (the
    families with other heads bring their own steps);
  * ``__call__`` may take ``train`` (jaxgan passes ``train=True`` in the steps, ``False`` to
    sample and to evaluate) or not; BatchNorm statistics live in the ``batch_stats``
    collection; ``nn.Dropout(deterministic=not train)`` gets a ``dropout`` PRNG stream in every
    training step, drawn from the run key and the step (resume-exact);
  * a conditional network sets a ``takes_label = True`` attribute and is called ``(x, label)``.

  ``dtype="bfloat16"``: mixed precision, the networks compute in bfloat16 while parameters,
  statistics and optimizer states stay float32 (:func:`apply_model`).

  The discriminator's input shape is taken from the generator's output, so
  nothing about the data needs to be passed in.
  """
  check_dtype(dtype)
  key = jnp.asarray(key)
  if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
    key = jax.random.key_data(key)  # raw uint32 keys checkpoint everywhere
  own = getattr(generator, "latent_dim", None)
  if own is None and latent_dim is None:
    raise ValueError(f"{type(generator).__name__} has no latent_dim field: pass "
                     f"create_state(..., latent_dim=N), the size of its input z")
  if own is not None and latent_dim is not None and int(own) != int(latent_dim):
    raise ValueError(f"latent_dim={latent_dim} but the generator's latent_dim field is {own}")
  z_dim = int(own if own is not None else latent_dim)
  z = jnp.zeros((2, z_dim), jnp.float32)
  y = jnp.zeros((2,), jnp.int32)  # a label for the conditional networks
  g_args = (z, y) if takes_label(generator) else (z,)
  g_mode, d_mode = mode(generator, False), mode(discriminator, False)

  def rngs(k):  # a module with dropout always on draws masks at init too
    return {"params": k, "dropout": jax.random.fold_in(k, DROPOUT_STREAM)}

  fake = jax.eval_shape(lambda k: generator.init_with_output(rngs(k), *g_args, **g_mode)[0], key)
  d_args = (jnp.zeros(fake.shape, fake.dtype),) + ((y,) if takes_label(discriminator) else ())

  def init(key):
    g_key, d_key = jax.random.split(jax.random.fold_in(key, 0x5EED))
    g_vars = generator.init(rngs(g_key), *g_args, **g_mode)
    d_vars = discriminator.init(rngs(d_key), *d_args, **d_mode)
    return g_vars, d_vars, g_tx.init(g_vars["params"]), d_tx.init(d_vars["params"])

  g_vars, d_vars, g_opt_state, d_opt_state = run_once(init, key)
  g_params, d_params = g_vars["params"], d_vars["params"]
  return GANState(
      step=jnp.zeros((), jnp.int32), key=key,
      g_params=g_params, d_params=d_params,
      g_batch_stats=g_vars.get("batch_stats", {}), d_batch_stats=d_vars.get("batch_stats", {}),
      g_opt_state=g_opt_state, d_opt_state=d_opt_state,
      generator=generator, discriminator=discriminator, g_tx=g_tx, d_tx=d_tx,
      z_dim=None if own is not None else z_dim, dtype=dtype)
