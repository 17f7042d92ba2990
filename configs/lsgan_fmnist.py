"""LSGAN (Mao et al., 2017) with the DCGAN-32 body on Fashion-MNIST 32x32.

Least-squares objective with the 0-1 coding of the paper's experiments
(a = 0 for fakes, b = 1 for reals, c = 1 for the generator), with the paper's
1/2 factors (``jaxgan.losses.least_squares_discriminator_loss``); D's last
layer is linear (no sigmoid). Adam(2e-4, b1=0.5) as in DCGAN, which the LSGAN
experiments follow (b1 = 0.5); batch 64.

    python train.py --config configs/lsgan_fmnist.py
"""

from jaxgan.config import base_config, dcgan_body


def get_config():
  config = dcgan_body(base_config())
  config.dataset = "fashion_mnist"
  config.loss = "least_squares"
  config.optimizer = "adam"
  config.learning_rate = 2e-4
  config.b1, config.b2 = 0.5, 0.999
  config.batch_size = 64
  config.num_steps = 5000
  return config
