"""REFERENCE ONLY: eager-PyTorch WGAN-GP critic step, for timing comparisons with jaxgan.

Not part of jaxgan and not imported by it; torch is no dependency of the project. Run it with
an interpreter of its own, e.g.

    python3 -m venv /work/torchvenv && /work/torchvenv/bin/pip install torch==2.13.0 numpy
    /work/torchvenv/bin/python benchmarks/torch_reference_gp.py --batches 64,256

It builds the same networks as ``configs/wgangp_fmnist.py`` (DCGAN-32):
  critic: 32x32x1 -> Conv(4, s2, p1) 64 + bias -> LeakyReLU(0.2)
          -> Conv 128 -> LayerNorm over (C, H, W) with a per-channel scale and offset -> LeakyReLU
          -> Conv 256 -> LayerNorm -> LeakyReLU -> Conv(4x4, valid) 1 + bias -> logit
  generator (only for the fakes): z(100) -> Linear 4x4x256 -> BN -> ReLU
          -> ConvT(4, s2, p1) 128 -> BN -> ReLU -> ConvT 64 -> BN -> ReLU -> ConvT 1 + bias -> tanh
and times, as ``benchmarks/bench_gp.py`` does for jaxgan:
  * "critic step": fakes = G(z) in training mode without gradient, then one critic update:
    loss = mean(D(fake)) - mean(D(real)) + 10 * mean((||grad_x D(x_hat)||_2 - 1)^2) with
    x_hat = eps real + (1 - eps) fake, the input gradient by
    ``torch.autograd.grad(create_graph=True)``, Adam(1e-4, betas=(0, 0.9));
  * "train step": 5 such critic updates then one generator update (-mean(D(G(z)))).
Medians of synchronous steps after warm-up, in ms; torch uses all cores it sees
(``torch.get_num_threads()``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F


class ChannelLayerNorm(nn.Module):
  """LayerNorm over (C, H, W) with a per-channel scale and offset (flax
  ``nn.LayerNorm(reduction_axes=(1, 2, 3), feature_axes=-1)``, eps 1e-5)."""

  def __init__(self, channels: int):
    super().__init__()
    self.scale = nn.Parameter(torch.ones(1, channels, 1, 1))
    self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))

  def forward(self, x):
    return F.layer_norm(x, x.shape[1:], eps=1e-5) * self.scale + self.bias


def critic(features=(64, 128, 256), channels=1, side=32):
  layers, cin = [], channels
  for i, f in enumerate(features):
    layers.append(nn.Conv2d(cin, f, 4, 2, 1, bias=(i == 0)))
    if i > 0:
      layers.append(ChannelLayerNorm(f))
    layers.append(nn.LeakyReLU(0.2))
    cin = f
  s = side // 2 ** len(features)
  layers += [nn.Conv2d(cin, 1, s), nn.Flatten(0)]
  return nn.Sequential(*layers)


class Generator(nn.Module):
  def __init__(self, latent=100, features=(256, 128, 64), channels=1, side=32):
    super().__init__()
    self.s, self.f0 = side // 2 ** len(features), features[0]
    self.fc = nn.Linear(latent, self.s * self.s * features[0], bias=False)
    self.bn0 = nn.BatchNorm2d(features[0])
    ups, cin = [], features[0]
    for f in features[1:]:
      ups += [nn.ConvTranspose2d(cin, f, 4, 2, 1, bias=False), nn.BatchNorm2d(f), nn.ReLU()]
      cin = f
    ups += [nn.ConvTranspose2d(cin, channels, 4, 2, 1), nn.Tanh()]
    self.ups = nn.Sequential(*ups)

  def forward(self, z):
    x = self.fc(z).view(z.shape[0], self.f0, self.s, self.s)
    return self.ups(F.relu(self.bn0(x)))


def init_dcgan(m):
  if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
    nn.init.normal_(m.weight, 0.0, 0.02)
    if m.bias is not None:
      nn.init.zeros_(m.bias)


def critic_step(D, G, opt_d, real, latent=100, gp_weight=10.0):
  n = real.shape[0]
  with torch.no_grad():
    fake = G(torch.randn(n, latent))
  eps = torch.rand(n, 1, 1, 1)
  x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
  (grad,) = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
  gp = ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
  loss = D(fake).mean() - D(real).mean() + gp_weight * gp
  opt_d.zero_grad(set_to_none=True)
  loss.backward()
  opt_d.step()
  return loss


def train_step(D, G, opt_d, opt_g, reals, latent=100):
  for real in reals:
    critic_step(D, G, opt_d, real, latent)
  for p in D.parameters():
    p.requires_grad_(False)
  g_loss = -D(G(torch.randn(reals[0].shape[0], latent))).mean()
  opt_g.zero_grad(set_to_none=True)
  g_loss.backward()
  opt_g.step()
  for p in D.parameters():
    p.requires_grad_(True)
  return g_loss


def build(n, n_critic=5, channels_last=False):
  D, G = critic(), Generator()
  D.apply(init_dcgan)
  G.apply(init_dcgan)
  fmt = torch.channels_last if channels_last else torch.contiguous_format
  D, G = D.to(memory_format=fmt), G.to(memory_format=fmt)
  G.train()
  opt_d = torch.optim.Adam(D.parameters(), 1e-4, betas=(0.0, 0.9))
  opt_g = torch.optim.Adam(G.parameters(), 1e-4, betas=(0.0, 0.9))
  reals = [(torch.rand(n, 1, 32, 32) * 2 - 1).contiguous(memory_format=fmt) for _ in range(n_critic)]
  return {"critic": lambda: critic_step(D, G, opt_d, reals[0]),
          "train": lambda: train_step(D, G, opt_d, opt_g, reals)}


def serve():
  """Line protocol for benchmarks/bench_gp.py: reads 'critic|train BATCH STEPS', answers the
  JSON list of the steps' wall times in seconds (the first line out is the version)."""
  import json
  import sys
  print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, NCHW", flush=True)
  models = {}
  for line in sys.stdin:
    what, n, steps = line.split()
    n, steps = int(n), int(steps)
    if n not in models:
      models[n] = build(n)
    times = []
    for _ in range(steps):
      t = time.perf_counter()
      models[n][what]()
      times.append(time.perf_counter() - t)
    print(json.dumps(times), flush=True)


def median_ms(fn, steps, warmup=3):
  for _ in range(warmup):
    fn()
  times = []
  for _ in range(steps):
    t = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t)
  return 1e3 * float(np.median(times))


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--batches", default="64,256")
  parser.add_argument("--steps", type=int, default=20, help="timed critic steps per batch size")
  parser.add_argument("--train_steps", type=int, default=5, help="timed 5-critic train steps (0: skip)")
  parser.add_argument("--n_critic", type=int, default=5)
  parser.add_argument("--channels_last", action="store_true", help="NHWC memory format")
  parser.add_argument("--serve", action="store_true", help="line protocol of bench_gp.py")
  parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: default)")
  args = parser.parse_args(argv)
  torch.manual_seed(0)
  if args.threads:
    torch.set_num_threads(args.threads)
  if args.serve:
    return serve()
  print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{'channels_last' if args.channels_last else 'NCHW'}")
  print("| batch | critic step (ms) | train step, n_critic=%d (ms) |" % args.n_critic)
  print("|---:|---:|---:|")
  for n in [int(b) for b in args.batches.split(",")]:
    fns = build(n, args.n_critic, args.channels_last)
    critic_ms = median_ms(fns["critic"], args.steps)
    train_ms = (median_ms(fns["train"], args.train_steps, warmup=1)
                if args.train_steps else float("nan"))
    print(f"| {n} | {critic_ms:.1f} | {train_ms:.1f} |", flush=True)


if __name__ == "__main__":
  main()
