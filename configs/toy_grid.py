"""2-D grid: a mixture of 25 Gaussians (std 0.05) at {-4, -2, 0, 2, 4}^2, the PacGAN benchmark.

The toy lab's fully connected LeakyReLU G and D (see ``configs/toy_ring.py``), non-saturating
GAN, Adam(1e-4, b1 0.5), batch 100; film frames and mode metrics every ``film_every`` steps.
PacGAN: ``--config.discriminator.pack=4``.

    python train.py --config configs/toy_grid.py --workdir runs/toy_grid
"""

from jaxgan.families.toy import toy_config


def get_config():
  config = toy_config("grid")
  config.num_steps = 20000
  config.film_every = 500
  return config
