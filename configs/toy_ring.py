"""2-D ring: a mixture of 8 Gaussians (std 0.01) on the unit circle, the VEEGAN / PacGAN benchmark.

Fully connected LeakyReLU(0.2) G (2-D latent -> 128 -> 128 -> 128 -> 2, linear) and
D (2 -> 128 -> 128 -> 128 -> 1), non-saturating GAN, Adam(1e-4, b1 0.5), batch 100.
Every ``film_every`` steps a four-panel frame goes to ``film/`` and the mode metrics
(modes covered, % high quality, reverse KL on 2,500 samples) to ``metrics.jsonl``;
``film.gif`` is assembled at the end. PacGAN: ``--config.discriminator.pack=4``.

    python train.py --config configs/toy_ring.py --workdir runs/toy_ring
"""

from jaxgan.families.toy import toy_config


def get_config():
  config = toy_config("ring")
  config.num_steps = 10000
  return config
