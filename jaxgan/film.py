"""The training film of a 2-D GAN: four-panel frames, an animated GIF (and MP4 with ffmpeg).

One frame (:func:`render_frame`), after the figure popularised by "This will
change the way you look at GANs":

1. top left: D and G losses and D's accuracy on real and fake batches against step;
2. top right: real samples (blue) and generated samples (red) in sample space;
3. bottom left: D's output over the latent space: each grid point ``z`` goes
   through G then D (diverging colour map: blue = "real", red = "fake",
   white = unsure). For ``latent_dim > 2`` the grid is the 2-D slice
   ``z = (u, v, 0, ..., 0)``, ``u, v`` in ``[-3, 3]`` (the plane of the first
   two latent coordinates through the origin);
4. bottom right: D's output over the sample space as a heat map, with the real
   and generated points over it.

The grids are computed by jitted, vmapped functions (:func:`sample_space_values`,
:func:`latent_space_values`): one frame's ~33k network evaluations take
milliseconds; drawing the figure is most of a frame's cost.

D's output is shown as ``sigmoid(D)`` (a probability, white at 0.5) for the
logistic objectives (``nonsaturating``, ``minimax``); for the others (LSGAN,
WGAN, hinge) the raw output is shown, centred (white) halfway between the mean
output on the frame's real and generated points. A packing discriminator
(PacGAN, ``pack = m``) judges each grid point as a pack of ``m`` copies of itself.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Sequence

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import TwoSlopeNorm  # noqa: E402

from jaxgan.data import toy  # noqa: E402
from jaxgan.state import GANState  # noqa: E402

FILM_REAL = 2**31 - 4  # fold_in tag of the frames' fixed real points
LATENT_EXTENT = 3.0
EXTENTS = {"ring": 1.6, "grid": 5.5, "spiral": 1.3, "swissroll": 1.3}
PROBABILITY_LOSSES = ("nonsaturating", "minimax")
FRAME_SIZE = (960, 960)  # pixels of a frame (width, height)


@dataclasses.dataclass(frozen=True)
class FilmView:
  """What every frame of a run shows: the sample-space window, the fixed real points, the grids."""
  name: str
  extent: float
  real: np.ndarray          # [P, 2] fixed real points
  grid: np.ndarray          # [R * R, 2] sample-space grid, row-major from the top-left
  resolution: int
  num_points: int
  loss: str = "nonsaturating"

  @classmethod
  def for_dataset(cls, name: str, resolution: int = 128, num_points: int = 512, seed: int = 0,
                  loss: str = "nonsaturating") -> "FilmView":
    toy.check_name(name)
    extent = EXTENTS[name]
    real = np.asarray(toy.sample(name, jax.random.fold_in(jax.random.PRNGKey(seed), FILM_REAL),
                                 num_points))
    return cls(name, extent, real, square_grid(extent, resolution), resolution, num_points, loss)


def square_grid(extent: float, resolution: int) -> np.ndarray:
  """``[R * R, 2]`` points of ``[-extent, extent]^2``; row ``r`` (top = largest ``y``) first."""
  axis = np.linspace(-extent, extent, resolution, dtype=np.float32)
  xs, ys = np.meshgrid(axis, axis[::-1])
  return np.stack([xs.ravel(), ys.ravel()], 1)


def _pack(state: GANState) -> int:
  return int(getattr(state.discriminator, "pack", 1))


def _judge(state: GANState, x: jax.Array) -> jax.Array:
  """D's output for one point ``[2]`` (judged as a pack of ``pack`` copies of itself)."""
  copies = jnp.broadcast_to(x[None], (_pack(state),) + x.shape)
  return state.discriminate(copies, train=False)[0][0]


@jax.jit
def sample_space_values(state: GANState, points: jax.Array) -> jax.Array:
  """D's output at every point of ``points [N, 2]`` (vmapped): ``[N]``."""
  return jax.vmap(lambda x: _judge(state, x))(points)


@jax.jit
def latent_space_values(state: GANState, zs: jax.Array) -> jax.Array:
  """D(G(z)) for every ``z`` of ``zs [N, latent_dim]`` (vmapped, G in inference mode): ``[N]``."""
  return jax.vmap(lambda z: _judge(state, state.generate(z[None], train=False)[0][0]))(zs)


def latent_grid(latent_dim: int, resolution: int, extent: float = LATENT_EXTENT) -> np.ndarray:
  """``[R * R, latent_dim]``: the square grid in the first two latent coordinates, zeros elsewhere."""
  plane = square_grid(extent, resolution)
  return np.concatenate([plane, np.zeros((len(plane), latent_dim - 2), np.float32)], 1) \
      if latent_dim >= 2 else plane[:, :latent_dim]


@functools.partial(jax.jit, static_argnames=("num",))
def _fakes(state: GANState, num: int) -> jax.Array:
  from jaxgan.hooks import fixed_noise
  return state.generate(fixed_noise(state, num), train=False)[0]


def frame_data(state: GANState, view: FilmView) -> dict[str, np.ndarray]:
  """The arrays a frame shows (fakes, both grids, D on the real and fake points), on the host."""
  fake = _fakes(state, view.num_points)
  zs = latent_grid(state.latent_dim, view.resolution)
  out = {
      "fake": fake,
      "sample_values": sample_space_values(state, jnp.asarray(view.grid)),
      "latent_values": latent_space_values(state, jnp.asarray(zs)),
      "real_values": sample_space_values(state, jnp.asarray(view.real)),
      "fake_values": sample_space_values(state, fake),
  }
  return {k: np.asarray(v) for k, v in jax.device_get(out).items()}


def _color_scale(data: dict[str, np.ndarray], loss: str):
  """``(transform, norm, label)`` of the heat maps: sigmoid for logistic D, else centred raw output."""
  if loss in PROBABILITY_LOSSES:
    return (lambda v: 1.0 / (1.0 + np.exp(-v.astype(np.float64))),
            TwoSlopeNorm(vcenter=0.5, vmin=0.0, vmax=1.0), "D(x) = P(real)")
  center = 0.5 * (float(np.mean(data["real_values"])) + float(np.mean(data["fake_values"])))
  spread = max(float(np.max(np.abs(np.concatenate([data["sample_values"], data["latent_values"]])
                                   - center))), 1e-6)
  return (lambda v: v, TwoSlopeNorm(vcenter=center, vmin=center - spread, vmax=center + spread),
          "D(x) (raw)")


def render_frame(state: GANState, view: FilmView, history: Sequence[dict], step: int,
                 path: str | None = None, scores: dict | None = None) -> np.ndarray:
  """Draws one four-panel frame, writes it to ``path`` (PNG) if given, returns it (uint8 ``[H, W, 3]``)."""
  data = frame_data(state, view)
  transform, norm, label = _color_scale(data, view.loss)
  r, e, le = view.resolution, view.extent, LATENT_EXTENT
  fig, axes = plt.subplots(2, 2, figsize=(FRAME_SIZE[0] / 80, FRAME_SIZE[1] / 80), dpi=80)
  (curves, scatter), (latent, heat) = axes

  # 1. losses and accuracies against step
  steps = [h["step"] for h in history if "d_loss" in h]
  if steps:
    curves.plot(steps, [h["d_loss"] for h in history if "d_loss" in h], color="tab:purple",
                label="D loss", lw=1.2)
    curves.plot(steps, [h["g_loss"] for h in history if "d_loss" in h], color="tab:green",
                label="G loss", lw=1.2)
    acc = curves.twinx()
    acc.plot(steps, [h.get("d_real_acc", np.nan) for h in history if "d_loss" in h],
             color="tab:blue", ls="--", lw=1, label="D acc real")
    acc.plot(steps, [h.get("d_fake_acc", np.nan) for h in history if "d_loss" in h],
             color="tab:red", ls="--", lw=1, label="D acc fake")
    acc.set_ylim(-0.02, 1.02)
    acc.set_ylabel("D accuracy")
    acc.legend(loc="upper right", fontsize=8)
    curves.legend(loc="upper left", fontsize=8)
  curves.axvline(step, color="gray", lw=0.8, ls=":")
  curves.set_xlabel("step")
  curves.set_ylabel("loss")
  curves.set_title("losses and D accuracy")

  # 2. real and generated samples
  scatter.scatter(view.real[:, 0], view.real[:, 1], s=4, c="tab:blue", alpha=0.6, label="real")
  scatter.scatter(data["fake"][:, 0], data["fake"][:, 1], s=4, c="tab:red", alpha=0.6,
                  label="generated")
  scatter.set_xlim(-e, e)
  scatter.set_ylim(-e, e)
  scatter.set_aspect("equal")
  scatter.legend(loc="upper right", fontsize=8, markerscale=3)
  scatter.set_title("sample space")

  # 3. D(G(z)) over the latent plane
  slice_note = "" if state.latent_dim == 2 else f" (slice z[2:] = 0 of {state.latent_dim}-D)"
  im = latent.imshow(transform(data["latent_values"]).reshape(r, r), cmap="RdBu", norm=norm,
                     extent=(-le, le, -le, le), interpolation="bilinear")
  latent.set_xlabel("z[0]")
  latent.set_ylabel("z[1]")
  latent.set_title("D(G(z)) over latent space" + slice_note, fontsize=10)

  # 4. D over sample space, points on top
  heat.imshow(transform(data["sample_values"]).reshape(r, r), cmap="RdBu", norm=norm,
              extent=(-e, e, -e, e), interpolation="bilinear")
  heat.scatter(view.real[:, 0], view.real[:, 1], s=3, c="navy", alpha=0.5)
  heat.scatter(data["fake"][:, 0], data["fake"][:, 1], s=3, c="darkred", alpha=0.5)
  heat.set_xlim(-e, e)
  heat.set_ylim(-e, e)
  heat.set_title("D over sample space")
  fig.colorbar(im, ax=[latent, heat], shrink=0.8, label=f"{label}: blue = real, red = fake")

  title = f"{view.name}   step {step}"
  if scores:
    title += (f"   modes {int(scores['modes'])}   high quality {scores['high_quality']:.1f}%   "
              f"reverse KL {scores['reverse_kl']:.3f}")
  fig.suptitle(title)
  fig.canvas.draw()
  image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
  plt.close(fig)
  if path:
    from PIL import Image
    Image.fromarray(image).save(path)
  return image
