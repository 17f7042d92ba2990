"""Class-conditional SNGAN (Miyato & Koyama, 2018) on Fashion-MNIST 32x32, at a CPU width.

G: the SNGAN ResNet generator with conditional BatchNorm: every BatchNorm's gain and bias
are linear in one shared 128-d class embedding (BigGAN's form of cBN). D: the SNGAN ResNet
discriminator with a projection head, ``psi(h) + <embed(y), h>``, every layer (the class
embedding too) spectrally normalised. Hinge loss, n_critic 5, Adam(2e-4, b1=0, b2=0.9),
batch 64, linear decay, 64 channels (the paper's: 256 in G, 128 in D). A self-attention
block (SAGAN) is one override away: ``--config.generator.attention=16
--config.discriminator.attention=16``.

    python train.py --config configs/cgan_resnet_fmnist.py
"""

import ml_collections

from jaxgan.config import base_config, sngan_body


def get_config():
  config = sngan_body(base_config())
  config.model = "cgan_resnet"
  config.dataset = "fashion_mnist"
  config.generator.widths = (64, 64, 64, 64)
  config.generator.attention = 0
  config.discriminator.widths = (64, 64, 64, 64)
  config.discriminator.attention = 0
  config.num_steps = 1000
  # Linear decay to 0 over the whole run ("* 1": a copy, so decay_steps can be set alone).
  config.decay_steps = config.get_ref("num_steps") * 1
  config.num_samples = 100               # class-by-row grid: 10 classes x 10 noise vectors
  # Conditional correctness (committed classifier) and intra-FID during training.
  config.conditional = ml_collections.ConfigDict({"eval_every": 0, "samples_per_class": 500})
  return config
