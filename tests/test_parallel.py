"""Data-parallel training on 8 host CPU devices (conftest forces them) against one device."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxgan
from conftest import NUM_DEVICES, load_config, tiny
from jaxgan import parallel, trainer
from jaxgan.checkpoint import Checkpointer
from jaxgan.errors import ConfigError
from jaxgan.models import build_models

MODES = ["shard_map", "pmap"]


def test_the_session_has_eight_devices():
  assert jax.local_device_count() == NUM_DEVICES


def _close(a, b, rtol=2e-5, atol=2e-6):
  leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
  assert len(leaves_a) == len(leaves_b)
  for x, y in zip(leaves_a, leaves_b):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


def _dcgan_state():
  g, d = build_models("dcgan", (16, 16, 1), 8, {"features": (8, 4)}, {"features": (4, 8)})
  tx = optax.adam(1e-3, b1=0.5)
  return jaxgan.create_state(g, d, tx, tx, jax.random.PRNGKey(0))


def _wgangp_state():
  g, d = build_models("dcgan", (16, 16, 1), 8, {"features": (8, 4)},
                      {"features": (4, 8), "norm": "layer"})
  tx = optax.adam(1e-3, b1=0.0, b2=0.9)
  return jaxgan.create_state(g, d, tx, tx, jax.random.PRNGKey(0))


def _images(*shape):
  """Random images whose brightness rises along the batch: each device's block looks different,
  so per-device BatchNorm statistics would differ clearly from the global ones."""
  noise = jax.random.uniform(jax.random.PRNGKey(1), shape + (16, 16, 1), minval=-0.2, maxval=0.2)
  ramp = np.linspace(-0.75, 0.75, shape[-1]).reshape((shape[-1], 1, 1, 1))
  return np.asarray(noise + ramp, np.float32)


@pytest.mark.parametrize("mode", MODES)
def test_eight_devices_equal_one_device_with_sync_batchnorm(mode):
  """DCGAN (BatchNorm in G and D): 3 steps, global batch 16 = 8 x 2, vs one device with 16."""
  state, images = _dcgan_state(), _images(3, 16)
  single = jaxgan.make_train_step()
  expected = state
  for k in range(3):
    expected, m_single = single(expected, {"image": images[k]})
  dp = parallel.DataParallel(mode=mode)
  step = dp.train_step()
  got = dp.replicate(state)
  for k in range(3):
    got, m = step(got, dp.shard({"image": images[k]}))
  got, m = dp.unreplicate(got), dp.metrics(m)
  assert int(got.step) == 3
  # Parameters, BatchNorm running statistics and both Adam states.
  _close(got, expected)
  for key in m_single:
    np.testing.assert_allclose(m[key], m_single[key], rtol=1e-5, atol=1e-6)


def test_without_sync_batchnorm_eight_devices_differ_from_one():
  """The control for the test above: per-device BatchNorm statistics (2 examples each) differ."""
  state, images = _dcgan_state(), _images(1, 16)
  expected, _ = jaxgan.make_train_step()(state, {"image": images[0]})
  dp = parallel.DataParallel()
  P = parallel.P
  local_bn = jax.jit(jax.shard_map(
      lambda s, b: jaxgan.steps.train_step_fn(s, b, axis_name=parallel.AXIS), mesh=dp.mesh,
      in_specs=(P(), P(parallel.AXIS)), out_specs=(P(), P()), check_vma=False))
  got = dp.unreplicate(local_bn(dp.replicate(state), dp.shard({"image": images[0]}))[0])
  diff = lambda a, b: max(float(np.max(np.abs(np.asarray(x) - np.asarray(y))))
                          for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
  # Adam moves every parameter by ~lr = 1e-3; the synced run matches to ~1e-7.
  assert diff(got.d_params, expected.d_params) > 1e-4
  assert diff(got.g_params, expected.g_params) > 1e-4


@pytest.mark.parametrize("mode", MODES)
def test_eight_devices_equal_one_device_for_the_wgan_gp_critic(mode):
  """WGAN-GP, n_critic 2: per-example interpolates and penalty, noise split over devices."""
  state, images = _wgangp_state(), _images(2, 2, 16)
  options = dict(n_critic=2, gp_weight=10.0)
  single = jaxgan.make_train_step("wasserstein", **options)
  expected = state
  for k in range(2):
    expected, m_single = single(expected, {"image": images[k]})
  dp = parallel.DataParallel(mode=mode)
  step = dp.train_step("wasserstein", **options)
  got = dp.replicate(state)
  for k in range(2):
    got, m = step(got, dp.shard({"image": images[k]}, parallel.batch_axis(n_critic=2)))
  # Four Adam updates of the critic: where a gradient component is near 0, Adam's m / sqrt(v)
  # turns the reduction order's rounding (a sum over 8 devices, not one) into a few 1e-6 of
  # parameter; a wrong sum, penalty or noise split moves parameters by a step, ~lr = 1e-3.
  _close(dp.unreplicate(got), expected, atol=2e-5)
  m = dp.metrics(m)
  for key in ("gp", "grad_norm", "wasserstein", "d_loss", "g_loss"):
    np.testing.assert_allclose(m[key], m_single[key], rtol=1e-4, atol=1e-5)


def test_devices_draw_distinct_noise_blocks_of_the_global_draw():
  from jaxgan.steps import local_draw
  dp = parallel.DataParallel()
  normal = lambda k, shape: jax.random.normal(k, shape)
  key = jax.random.PRNGKey(3)
  draw = jax.jit(jax.shard_map(
      lambda _: local_draw(normal, key, (2, 5), parallel.AXIS), mesh=dp.mesh,
      in_specs=parallel.P(parallel.AXIS), out_specs=parallel.P(parallel.AXIS)))
  z = np.asarray(draw(jnp.zeros(NUM_DEVICES)))
  np.testing.assert_array_equal(z, np.asarray(normal(key, (2 * NUM_DEVICES, 5))))
  assert len({tuple(z[i:i + 2].ravel()) for i in range(0, 2 * NUM_DEVICES, 2)}) == NUM_DEVICES


@pytest.mark.parametrize("devices", [1, NUM_DEVICES])
def test_steps_per_call_fuses_k_steps_into_one_call(devices):
  state, images = _dcgan_state(), _images(4, 16)
  expected = state
  single = jaxgan.make_train_step()
  for k in range(4):
    expected, _ = single(expected, {"image": images[k]})
  if devices == 1:
    fused = parallel.make_train_step(steps_per_call=4)
    got, metrics = fused(state, {"image": images})
  else:
    dp = parallel.DataParallel()
    fused = dp.train_step(steps_per_call=4)
    got, metrics = fused(dp.replicate(state), dp.shard({"image": images}, parallel.batch_axis(1, 4)))
    got = dp.unreplicate(got)
  assert int(got.step) == 4
  assert metrics["d_loss"].shape == (4,)
  _close(got, expected)


def test_indivisible_batch_is_a_clear_error():
  dp = parallel.DataParallel()
  with pytest.raises(ValueError, match="batch size 12 does not divide over 8 devices.*batch_size=16"):
    dp.shard({"image": np.zeros((12, 16, 16, 1), np.float32)})
  with pytest.raises(ValueError, match="unknown parallel mode"):
    parallel.DataParallel(mode="pjit")


def _config(**kw):
  config = tiny(load_config("dcgan_fmnist"))
  config.num_steps, config.log_every, config.sample_every, config.checkpoint_every = 4, 1, 4, 2
  config.batch_size = 16
  for k, v in kw.items():
    config[k] = v
  return config


@pytest.mark.parametrize("key,value,match", [
    ("batch_size", 12, r"batch_size=12 does not divide over 8 devices.*--config.batch_size=16"),
    ("num_devices", 64, r"num_devices=64 but this machine has 8 cpu device\(s\)"),
    ("steps_per_call", 3, "num_steps=4 is not a multiple of config.steps_per_call=3"),
    ("parallel", "xmap", "config.parallel='xmap' is unknown"),
])
def test_bad_device_settings_are_refused_before_any_work(tmp_path, key, value, match):
  with pytest.raises(ConfigError, match=match):
    trainer.train_and_evaluate(_config(**{key: value}), str(tmp_path / "run"))
  assert not os.path.exists(tmp_path / "run")


def _losses(workdir):
  import json
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [(r["step"], r["d_loss"], r["g_loss"]) for r in map(json.loads, f)]


def test_checkpoints_do_not_depend_on_the_device_count(tmp_path, mock_fmnist):
  """2 steps on 8 devices resumed to 4 on one (and the reverse, with pmap) = 4 steps on one."""
  reference = str(tmp_path / "reference")
  trainer.train_and_evaluate(_config(num_devices=1), reference)
  expected = _losses(reference)
  ckpt = Checkpointer(os.path.join(reference, "checkpoints"))
  for first, then in ((NUM_DEVICES, 1), (1, NUM_DEVICES)):
    run = str(tmp_path / f"run_{first}_{then}")
    trainer.train_and_evaluate(_config(num_devices=first, num_steps=2), run)
    resumed = trainer.train_and_evaluate(_config(num_devices=then, parallel="pmap"), run)
    got = _losses(run)
    assert [s for s, *_ in got] == [1, 2, 3, 4]
    np.testing.assert_allclose([r[1:] for r in got], [r[1:] for r in expected], rtol=1e-4)
    _close(resumed, ckpt.restore(resumed, ckpt.read_meta()), rtol=1e-4, atol=1e-5)


def test_trainer_steps_per_call_matches_single_steps(tmp_path, mock_fmnist):
  a, b = str(tmp_path / "a"), str(tmp_path / "b")
  trainer.train_and_evaluate(_config(log_every=2), a)
  trainer.train_and_evaluate(_config(log_every=2, steps_per_call=2), b)
  np.testing.assert_allclose([r[1:] for r in _losses(a)], [r[1:] for r in _losses(b)], rtol=1e-4)
  assert sorted(Checkpointer(os.path.join(b, "checkpoints")).all_steps()) == [2, 4]


def _free_port():
  import socket
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _two_processes(workdir, args):
  """Runs train.py as two processes (2 host CPU devices each); returns (return codes, outputs)."""
  import subprocess
  import sys
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env = {**os.environ, "JAX_PLATFORMS": "cpu",
         "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
  dist = ["--workdir", workdir, f"--coordinator_address=127.0.0.1:{_free_port()}", "--num_processes=2"]
  procs = [subprocess.Popen([sys.executable, os.path.join(repo, "train.py"), *args, *dist,
                             f"--process_id={i}"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True) for i in (1, 0)]
  outs = [p.communicate(timeout=300)[0] for p in procs]
  return [p.returncode for p in procs], outs


def test_two_processes_train_like_one(tmp_path, real_data_dir):
  """Two processes on this machine (CPU, coordinator on 127.0.0.1, gloo collectives), 2 devices
  each: they end with identical parameters (the trainer asserts it across processes). Reading the
  whole split in each process (process_split=full), they equal one process on one device with the
  same global batch; only process 0 writes. Reading one half each (process_split=shard, the
  default) they also train in lockstep."""
  import json
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  args = ["--config", os.path.join(repo, "configs", "dcgan_fmnist.py"),
          "--config.num_steps=4", "--config.batch_size=16", "--config.log_every=1",
          "--config.checkpoint_every=2", "--config.sample_every=4", "--config.latent_dim=8",
          "--config.generator.features=(16,8,4)", "--config.discriminator.features=(4,8,16)",
          "--config.progress=False", f"--config.data.data_dir={real_data_dir}"]
  multi = str(tmp_path / "multi")
  codes, outs = _two_processes(multi, args + ["--config.data.process_split=full"])
  assert codes == [0, 0], outs[1][-3000:] + outs[0][-3000:]
  assert "over 4 cpu devices in 2 processes" in outs[1]
  assert "checkpoints" in outs[1] and "checkpoints" not in outs[0]  # only process 0 reports

  single = str(tmp_path / "single")
  config = _config(num_devices=1, latent_dim=8)  # the same run as the args above, in this process
  config.data.data_dir = real_data_dir
  trainer.train_and_evaluate(config, single)
  records = lambda w: [json.loads(line) for line in open(os.path.join(w, "metrics.jsonl"))]
  got, expected = records(multi), records(single)
  assert [r["step"] for r in got] == [1, 2, 3, 4]
  for key in ("d_loss", "g_loss", "d_real_acc", "d_fake_acc"):
    np.testing.assert_allclose([r[key] for r in got], [r[key] for r in expected], rtol=1e-4)
  template = trainer.build_state(config, (32, 32, 1))
  a, b = (Checkpointer(os.path.join(w, "checkpoints")) for w in (multi, single))
  assert a.all_steps() == b.all_steps() == [2, 4]
  _close(a.restore(template, a.read_meta()), b.restore(template, b.read_meta()), rtol=1e-4, atol=1e-5)

  sharded = str(tmp_path / "sharded")
  codes, outs = _two_processes(sharded, args)
  assert codes == [0, 0], outs[1][-3000:] + outs[0][-3000:]
  assert "process 0: reads fashion_mnist/train[0:30000], feeds 8 examples per batch" in outs[1]
  assert "process 1: reads fashion_mnist/train[30000:60000], feeds 8 examples per batch" in outs[0]
  assert [r["step"] for r in records(sharded)] == [1, 2, 3, 4]
  # Other data than the full-split run: the losses differ.
  assert not np.allclose([r["d_loss"] for r in records(sharded)], [r["d_loss"] for r in got])


def _stackgan_state(text_dim):
  from jaxgan import stackgan as sg
  from jaxgan.models.stackgan import Stage1Generator, Stage2Generator, StackDiscriminator
  g1 = Stage1Generator(size=8, channels=1, width=2, latent_dim=6, condition_dim=4)
  g2 = Stage2Generator(size=16, in_size=8, channels=1, width=4, condition_dim=4, residual_blocks=1,
                       encoder_steps=1)
  tx = sg.stackgan_optimizer(1e-3)
  d = lambda **kw: StackDiscriminator(width=2, text_dim=text_dim, **kw)
  return sg.create_stackgan_state(g1, d(), g2, d(unconditional=True), tx, tx,
                                  jax.random.PRNGKey(0), 12)


@pytest.mark.parametrize("mode,text_dim", [("shard_map", 5), ("pmap", 0)])
def test_eight_devices_equal_one_device_for_stackgan(mode, text_dim):
  """StackGAN, two Stage-I then two Stage-II iterations, global batch 16 = 8 x 2: the latents,
  the conditioning-augmentation noise and the mismatched captions (the next example's, across
  devices) are the global batch's, BatchNorm synced, so 8 devices train as one. The critic reads
  the text (``text_dim``) or the generator's mu (0); the first also adds the mode-seeking term,
  a function of the global batch's mean image and latent distances."""
  from jaxgan import stackgan as sg
  state, images = _stackgan_state(text_dim), _images(4, 16)
  emb = np.asarray(jax.random.normal(jax.random.PRNGKey(2), (4, 16, 12)), np.float32)
  ms = 1.0 if text_dim else 0.0
  bodies = [sg.make_stackgan_step(stage=s, mode_seeking=ms, jit=False) for s in (1, 1, 2, 2)]
  expected = state
  for k, body in enumerate(bodies):
    expected, m_single = jax.jit(body)(expected, {"image": images[k], "embedding": emb[k]})
  dp = parallel.DataParallel(mode=mode)
  got = dp.replicate(state)
  for k, body in enumerate(bodies):
    got, m = dp.wrap(body)(got, dp.shard({"image": images[k], "embedding": emb[k]}))
  got, m = dp.unreplicate(got), dp.metrics(m)
  assert int(got.step) == 4
  _close(got, expected, atol=2e-5)
  for key in ("d_loss", "g_loss", "kl", "d_wrong", "d_fake_uncond"):
    np.testing.assert_allclose(m[key], m_single[key], rtol=1e-4, atol=1e-5)
