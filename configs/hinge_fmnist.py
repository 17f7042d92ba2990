"""Hinge-loss GAN (Lim & Ye, 2017; the SNGAN objective, Miyato et al., 2018), DCGAN-32 body.

D: mean(relu(1 - D(x))) + mean(relu(1 + D(G(z)))), G: -mean(D(G(z))).
Optimisation is SNGAN's setting C (Miyato et al., Table 1): Adam(2e-4,
b1=0.5, b2=0.999), one D update per G update, batch 64. This recipe keeps
the DCGAN critic with BatchNorm, which trains stably with one D step per G
step; ``--config.discriminator.norm=spectral`` makes it SNGAN's SN-DCGAN
critic, and ``sngan_fmnist.py`` is SNGAN with its ResNets.

    python train.py --config configs/hinge_fmnist.py
"""

from jaxgan.config import base_config, dcgan_body


def get_config():
  config = dcgan_body(base_config())
  config.dataset = "fashion_mnist"
  config.loss = "hinge"
  config.optimizer = "adam"
  config.learning_rate = 2e-4
  config.b1, config.b2 = 0.5, 0.999
  config.n_critic = 1
  config.batch_size = 64
  config.num_steps = 5000
  return config
