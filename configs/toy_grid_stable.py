"""2-D grid: the lab's stable recipe, which beats every row of PacGAN's Table 1 on the grid (10 seeds).

GAN + R1 (gamma 0.01), Adam 1e-3, 100,000 steps, the second half decaying to 0
(:func:`jaxgan.families.toy.stable_config` describes the networks). docs/lab2d.md has its
10-seed numbers and the ``benchmarks/bench_toy.py`` command that measures them.

    python train.py --config configs/toy_grid_stable.py --workdir runs/toy_grid_stable
"""

from jaxgan.families.toy import stable_config


def get_config():
  return stable_config("grid", num_steps=100_000)
