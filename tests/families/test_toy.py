"""The 2-D GAN lab: samplers, mode metrics, packing, the film, the vmapped multi-seed trainer."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from PIL import Image

import jaxgan
from conftest import REPO, load_config
from jaxgan import config as config_lib
from jaxgan import families, film, parallel, steps, viz
from jaxgan.data import toy
from jaxgan.errors import ConfigError
from jaxgan.metrics.modes import mode_metrics_np
from jaxgan.models import build_models
from jaxgan.families.toy import MultiSeed, check_toy_config, eval_points, unstack

HQ_EXPECTED = 100 * (1 - math.exp(-4.5))  # 98.89 %: 2-D Gaussian mass within 3 std


def _tree_close(a, b, **kw):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), **kw)


def _toy(name="ring", **overrides):
  c = load_config(f"toy_{name}")
  c.generator.hidden = (16, 16)
  c.discriminator.hidden = (16, 16)
  c.batch_size = 8
  c.progress = False
  return config_lib.override(c, overrides)


# -- samplers ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,num_modes,std", [("ring", 8, 0.01), ("grid", 25, 0.05)])
def test_mixture_samplers_put_equal_mass_on_the_right_modes(name, num_modes, std):
  centers, s = toy.modes(name)
  assert centers.shape == (num_modes, 2) and s == std
  if name == "ring":
    np.testing.assert_allclose(np.linalg.norm(centers, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(centers[2], [0.0, 1.0], atol=1e-6)  # angle 2 pi 2/8
  else:
    assert sorted(set(centers[:, 0].tolist())) == [-4, -2, 0, 2, 4]
  n = 20000
  x = np.asarray(toy.sample(name, jax.random.PRNGKey(0), n))
  assert x.shape == (n, 2) and x.dtype == np.float32
  d = np.linalg.norm(x[:, None] - centers[None], axis=-1)
  nearest, dist = d.argmin(1), d.min(1)
  counts = np.bincount(nearest, minlength=num_modes)
  p = 1 / num_modes
  assert np.all(np.abs(counts / n - p) < 5 * math.sqrt(p * (1 - p) / n))  # equal weights
  # Offsets from the nearest centre are N(0, std^2 I): per-axis std and the 3-std mass.
  offsets = x - centers[nearest]
  np.testing.assert_allclose(offsets.std(0), std, rtol=0.03)
  assert abs(100 * np.mean(dist <= 3 * std) - HQ_EXPECTED) < 0.5


def _distance_to_curve(x, curve):
  return np.min(np.linalg.norm(x[:, None] - curve[None], axis=-1), axis=1)


def test_curve_samplers_lie_on_their_curves():
  u = np.linspace(0, 1, 3000)
  r = np.sqrt(u)
  spiral = r[:, None] * np.stack([np.cos(3 * np.pi * r), np.sin(3 * np.pi * r)], 1)
  t = 1.5 * np.pi * (1 + 2 * u)
  roll = (t / (4.5 * np.pi))[:, None] * np.stack([np.cos(t), np.sin(t)], 1)
  for name, curve, noise in (("spiral", spiral, 0.02), ("swissroll", roll, 0.03)):
    x = np.asarray(toy.sample(name, jax.random.PRNGKey(1), 1000))
    assert x.shape == (1000, 2)
    dist = _distance_to_curve(x, curve)
    # Gaussian noise of std `noise` around the curve: median |normal offset| ~ 0.67 noise.
    assert np.median(dist) < noise and np.quantile(dist, 0.99) < 4 * noise
    # ... and the points cover the curve (no piece of it is empty).
    assert np.quantile(_distance_to_curve(curve[::10], x), 0.99) < 0.1
  uniform = np.asarray(jax.random.uniform(jax.random.PRNGKey(2), (1000, 2), minval=-1, maxval=1))
  assert np.median(_distance_to_curve(uniform, spiral)) > 3 * 0.02  # the test can fail
  with pytest.raises(ConfigError, match="choose one of"):
    toy.sample("moons", jax.random.PRNGKey(0), 4)


def test_sampler_is_pure_and_jittable_and_the_stream_resumes():
  key = jax.random.PRNGKey(3)
  eager = toy.sample("grid", key, 64)
  jitted = jax.jit(toy.sample, static_argnames=("name", "n"))("grid", key, 64)
  np.testing.assert_allclose(eager, jitted, rtol=1e-6, atol=1e-6)  # XLA fusion: last-ulp differences
  data = toy.ToyData("ring")
  assert data.example_shape == (2,) and data.num_classes == 0 and data.name == "ring"
  stream = data.stream(16, seed=7)
  first = [next(stream)["image"] for _ in range(4)]
  resumed = next(data.stream(16, seed=7, start=2))["image"]
  np.testing.assert_array_equal(resumed, first[2])
  np.testing.assert_allclose(
      first[3], toy.sample("ring", jax.random.fold_in(toy.stream_key(7), 3), 16), rtol=1e-6, atol=1e-6)
  assert not np.array_equal(first[0], first[1])
  assert not np.array_equal(first[0], next(data.stream(16, seed=8))["image"])


def test_for_config_and_validate_accept_the_toy_recipes():
  for name in ("ring", "grid", "spiral", "spiral_stable"):
    c = load_config(f"toy_{name}")
    family = families.check(c)
    assert c.model == "toy2d" and c.image_size == 0 and c.film_every > 0
    assert isinstance(family.data(c), toy.ToyData)
  stable = load_config("toy_spiral_stable")
  assert (stable.g_learning_rate, stable.b1, stable.learning_rate) == (2e-4, 0.5, 1e-3)
  collapsing = load_config("toy_spiral")
  assert (collapsing.learning_rate, collapsing.b1, collapsing.g_learning_rate) == (1e-3, 0.9, 0.0)


# -- mode metrics --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["ring", "grid"])
def test_metrics_on_exact_samples_give_all_modes_98_9_percent_and_kl_near_0(name):
  centers, std = toy.modes(name)
  m = mode_metrics_np(toy.sample(name, jax.random.PRNGKey(11), 2500), centers, std)
  assert m["modes"] == len(centers)
  assert abs(m["high_quality"] - HQ_EXPECTED) < 1.0  # binomial sd 0.21 %
  assert 0 <= m["reverse_kl"] < 0.03                  # ~(M - 1) / (2N) = 0.0014 / 0.0048


def test_metrics_on_one_mode_and_by_hand():
  centers, std = toy.modes("ring")
  one = np.asarray(centers[5] + std * jax.random.normal(jax.random.PRNGKey(0), (2500, 2)))
  m = mode_metrics_np(one, centers, std)
  assert m["modes"] == 1
  assert m["reverse_kl"] == pytest.approx(math.log(8), rel=1e-5)
  # By hand: 3 high-quality samples on mode 0, 1 on mode 2, one far outlier, one just outside 3 std.
  x = np.array([centers[0], centers[0] + [0.02, 0.0], centers[0] - [0.0, 0.029], centers[2],
                [0.0, 0.0], centers[4] + [0.031, 0.0]], np.float32)
  m = mode_metrics_np(x, centers, std)
  assert m["modes"] == 2
  assert m["high_quality"] == pytest.approx(100 * 4 / 6, rel=1e-5)
  p = np.array([0.75, 0.25])
  assert m["reverse_kl"] == pytest.approx(float(np.sum(p * np.log(8 * p))), rel=1e-5)
  # No high-quality sample at all: defined as log M (finite, the worst case).
  m = mode_metrics_np(np.full((10, 2), 50.0, np.float32), centers, std)
  assert (m["modes"], m["high_quality"]) == (0, 0.0)
  assert m["reverse_kl"] == pytest.approx(math.log(8), rel=1e-5)


# -- the toy2d model and packing -----------------------------------------------------------------

def test_toy2d_shapes_linear_output_and_packing():
  g, d = build_models("toy2d", (2,), 3, {"hidden": (8, 8)}, {"hidden": (8,), "pack": 4})
  tx = optax.adam(1e-3)
  state = jaxgan.create_state(g, d, tx, tx, jax.random.PRNGKey(0))
  assert state.d_params["Dense_0"]["kernel"].shape == (8, 8)  # 4 packed points of 2 coordinates
  z = 10 * jax.random.normal(jax.random.PRNGKey(1), (12, 3))
  x, _ = state.generate(z)
  assert x.shape == (12, 2) and float(jnp.max(jnp.abs(x))) > 1.0  # linear, not tanh
  logits, _ = state.discriminate(x)
  assert logits.shape == (3,)
  # A pack is `pack` consecutive rows: same as an unpacked D on the reshaped [B/m, 2m] batch.
  _, plain = build_models("toy2d", (2,), 3, {}, {"hidden": (8,), "pack": 1})
  expected = plain.apply({"params": state.d_params}, x.reshape(3, 8))
  np.testing.assert_allclose(logits, expected, rtol=1e-6)
  with pytest.raises(ConfigError, match="multiple of 4"):
    state.discriminate(x[:6])
  # A whole train step works on packed logits and moves D.
  new, metrics = steps.make_train_step()(state, {"image": x})
  assert np.isfinite(float(metrics["d_loss"]))
  assert not np.allclose(new.d_params["Dense_0"]["kernel"], state.d_params["Dense_0"]["kernel"])


def test_packing_under_data_parallelism_checks_the_per_device_batch():
  g, d = build_models("toy2d", (2,), 2, {"hidden": (8,)}, {"hidden": (8,), "pack": 4})
  tx = optax.adam(1e-3)
  state = jaxgan.create_state(g, d, tx, tx, jax.random.PRNGKey(0))
  batch = {"image": np.asarray(toy.sample("ring", jax.random.PRNGKey(0), 8))}
  dp = parallel.DataParallel(devices=jax.devices()[:4])
  with pytest.raises(ConfigError, match="per device"):  # 2 points per device, packs of 4
    dp.train_step()(dp.replicate(state), dp.shard(batch))
  # 2 devices x 4 points: each device's block is one pack, as on one device.
  dp = parallel.DataParallel(devices=jax.devices()[:2])
  new, _ = dp.train_step()(dp.replicate(state), dp.shard(batch))
  one, _ = steps.make_train_step()(state, batch)
  _tree_close(dp.unreplicate(new).d_params, one.d_params, rtol=1e-5, atol=1e-6)
  c = _toy(**{"discriminator.pack": 4, "num_devices": 4})
  with pytest.raises(ConfigError, match="multiple of 16"):
    check_toy_config(c)
  c.batch_size = 16
  check_toy_config(c)


# -- the film ------------------------------------------------------------------------------------

def test_a_frame_renders_and_the_grids_are_d_of_the_points(tmp_path):
  g, d = build_models("toy2d", (2,), 5, {"hidden": (8,)}, {"hidden": (8,), "pack": 2})
  tx = optax.adam(1e-3)
  state = jaxgan.create_state(g, d, tx, tx, jax.random.PRNGKey(0))
  view = film.FilmView.for_dataset("ring", resolution=16, num_points=64)
  # The vmapped grid values are D of a pack of copies of each point / of G(z).
  pts = jnp.asarray(view.grid[:3])
  by_hand = [state.discriminate(jnp.stack([p, p]), train=False)[0][0] for p in pts]
  np.testing.assert_allclose(film.sample_space_values(state, pts), by_hand, rtol=1e-5)
  zs = film.latent_grid(5, 4)
  assert zs.shape == (16, 5) and np.all(zs[:, 2:] == 0) and zs[0, 0] == -3 and zs[0, 1] == 3
  gz = state.generate(jnp.asarray(zs[:1]))[0][0]
  np.testing.assert_allclose(film.latent_space_values(state, jnp.asarray(zs[:1]))[0],
                             state.discriminate(jnp.stack([gz, gz]), train=False)[0][0], rtol=1e-5)
  history = [{"step": s, "d_loss": 1.3, "g_loss": 0.7, "d_real_acc": 0.6, "d_fake_acc": 0.4}
             for s in (10, 20)]
  path = str(tmp_path / "frame.png")
  image = film.render_frame(state, view, history, 20, path=path,
                            scores={"modes": 3, "high_quality": 50.0, "reverse_kl": 0.5})
  png = np.asarray(Image.open(path).convert("RGB"))
  assert png.shape == (film.FRAME_SIZE[1], film.FRAME_SIZE[0], 3)
  np.testing.assert_array_equal(png, image)
  assert png.std() > 20 and len(np.unique(png.reshape(-1, 3), axis=0)) > 100  # not blank
  reds = (png[..., 0] > 180) & (png[..., 2] < 100)
  blues = (png[..., 2] > 150) & (png[..., 0] < 100)
  assert reds.sum() > 50 and blues.sum() > 50  # generated and real points are drawn
  gif, other = str(tmp_path / "film.gif"), str(tmp_path / "other.png")
  Image.fromarray(255 - png).save(other)
  assert viz.assemble_film([path, other], gif, fps=4)[0] == gif
  assert Image.open(gif).n_frames == 2


# -- the vmapped multi-seed trainer --------------------------------------------------------------

def test_multiseed_run_for_seed_s_equals_a_single_run_with_seed_s():
  from jaxgan.trainer import build_state
  config = _toy("grid", **{"r1_weight": 1.0, "discriminator.pack": 2})
  ms = MultiSeed(config, seeds=[3, 5])
  states, metrics = ms.run(ms.init(), 3)
  assert metrics["d_loss"].shape == (2,)
  k = config.n_critic
  step = steps.make_train_step(config.loss, **families.for_config(config).step_options(config))
  for i, seed in enumerate((3, 5)):
    config.seed = seed
    single = build_state(config, (2,))
    stream = toy.ToyData("grid").stream(config.batch_size, seed)
    for _ in range(3):
      group = [next(stream)["image"] for _ in range(k)]
      single, _ = step(single, {"image": group[0] if k == 1 else np.stack(group)})
    mine = unstack(states, i)
    assert int(mine.step) == 3
    _tree_close((mine.g_params, mine.d_params, mine.g_opt_state), (single.g_params, single.d_params,
                                                                    single.g_opt_state),
                rtol=2e-4, atol=1e-6)
  assert not np.allclose(unstack(states, 0).g_params["Dense_0"]["kernel"],
                         unstack(states, 1).g_params["Dense_0"]["kernel"])
  scores = ms.mode_metrics(states)
  assert scores["modes"].shape == (2,)
  by_one = mode_metrics_np(eval_points(unstack(states, 1)), *toy.modes("grid"))
  assert int(scores["modes"][1]) == by_one["modes"]
  assert float(scores["high_quality"][1]) == pytest.approx(by_one["high_quality"], abs=0.05)


# -- end to end ----------------------------------------------------------------------------------

def test_toy_ring_recipe_trains_and_writes_frames_gif_and_mode_metrics(tmp_path, capsys):
  from jaxgan.trainer import train_and_evaluate
  config = _toy("ring", num_steps=20, film_every=10, log_every=10, checkpoint_every=20)
  config.film_grid, config.film_points = 16, 64
  workdir = tmp_path / "run"
  train_and_evaluate(config, str(workdir))
  frames = sorted(p.name for p in (workdir / "film").glob("frame_*.png"))
  assert frames == ["frame_0000010.png", "frame_0000020.png"]
  assert (workdir / "film" / "final.png").exists()
  assert Image.open(workdir / "film.gif").n_frames == 2
  records = [json.loads(line) for line in open(workdir / "metrics.jsonl")]
  mode_records = [r for r in records if "modes" in r]
  assert [r["step"] for r in mode_records] == [10, 20]
  for r in mode_records:
    assert 0 <= r["modes"] <= 8 and 0 <= r["high_quality"] <= 100
    assert 0 <= r["reverse_kl"] <= math.log(8) + 1e-6
  assert not (workdir / "samples").exists() or not list((workdir / "samples").glob("*.png"))
  out = capsys.readouterr().out
  assert "modes " in out and "/8 covered" in out and "film.gif" in out


def test_bench_toy_rows_and_set_overrides():
  import importlib.util
  path = REPO / "benchmarks" / "bench_toy.py"
  spec = importlib.util.spec_from_file_location("bench_toy", path)
  bench = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(bench)

  def args(*sets):
    return bench.argparse.Namespace(g_width=8, d_width=8, d_maxout=1, lr=1e-3, b1=0.5, steps=10,
                                    decay_steps=5, set=list(sets))

  c = bench.row_config("grid", "pacgan4", "r1_small", args("n_critic=2", "generator.hidden=(4, 4)",
                                                           "loss=hinge", "d_learning_rate=3e-3"))
  assert c.discriminator.pack == 4 and c.n_critic == 2 and c.loss == "hinge"
  assert tuple(c.generator.hidden) == (4, 4) and c.d_learning_rate == 3e-3
  stable = bench.row_config("ring", "stable", "r1_small", args())
  assert stable.r1_weight == 0.01 and stable.discriminator.pack == 1
  # --set runs after the row: it can override what the row chose.
  assert bench.row_config("ring", "pacgan2", "r1", args("discriminator.pack=1")).discriminator.pack == 1
  with pytest.raises(SystemExit, match="has no key 'n_critc'"):
    bench.row_config("ring", "gan", "r1", args("n_critc=2"))
  with pytest.raises(SystemExit, match="discriminator has no key 'packs'"):
    bench.row_config("ring", "gan", "r1", args("discriminator.packs=2"))
  with pytest.raises(SystemExit, match="KEY=VALUE"):
    bench.row_config("ring", "gan", "r1", args("n_critic"))


def test_bench_toy_json_holds_the_per_seed_scores_behind_the_table(tmp_path, capsys):
  import importlib.util
  import json
  path = REPO / "benchmarks" / "bench_toy.py"
  spec = importlib.util.spec_from_file_location("bench_toy_json", path)
  bench = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(bench)
  out = tmp_path / "rows.json"
  assert bench.main(["--datasets", "ring", "--rows", "gan", "--seeds", "3", "--steps", "20",
                     "--chunk", "10", "--g_width", "8", "--d_width", "8", "--json", str(out)]) == 0
  (row,) = json.loads(out.read_text())["rows"]
  assert (row["dataset"], row["row"], row["seeds"], row["steps"]) == ("ring", "gan", 3, 20)
  assert len(row["modes"]) == len(row["high_quality"]) == len(row["reverse_kl"]) == 3
  assert all(0 <= m <= 8 for m in row["modes"]) and all(0 <= h <= 100 for h in row["high_quality"])
  # The printed table is the mean of these seeds.
  table = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| GAN (jaxgan)")]
  mean_modes = sum(row["modes"]) / 3
  assert table and table[0].split("|")[2].strip().startswith(f"{mean_modes:.1f}")


@pytest.mark.parametrize("dataset,steps", [("ring", 120_000), ("grid", 100_000)])
def test_stable_configs_are_the_benchmarked_stable_row(dataset, steps):
  # configs/toy_<dataset>_stable.py trains, through train.py, the row bench_toy.py measured over
  # 10 seeds: every key that changes what is computed is the same.
  import sys
  sys.path.insert(0, str(REPO / "benchmarks"))
  import bench_toy
  args = bench_toy.parse_args(["--stable", "r1_small", "--steps", str(steps), "--lr", "1e-3",
                               "--b1", "0.5", "--decay_steps", str(steps // 2)])
  bench = config_lib.flat(bench_toy.row_config(dataset, "stable", "r1_small", args))
  mine = config_lib.flat(load_config(f"toy_{dataset}_stable"))
  ignore = set(config_lib.BOOKKEEPING_KEYS) | {"film_every"}
  assert {k: v for k, v in mine.items() if k not in ignore} == {
      k: v for k, v in bench.items() if k not in ignore}
  assert mine["r1_weight"] == 0.01 and mine["decay_steps"] == steps // 2
  families.check(load_config(f"toy_{dataset}_stable"))
