"""The vanilla GAN (Goodfellow et al., 2014) as in the classic PyTorch-GAN tutorial.

32x32 Fashion-MNIST in [-1, 1], latent 100. G: Linear 128 + LeakyReLU(0.2),
then Linear-BatchNorm-LeakyReLU(0.2) blocks of 256, 512, 1024, then Linear to
1024 + tanh. D: 512-LeakyReLU(0.2)-256-LeakyReLU(0.2)-1. BCE with the
non-saturating generator loss; Adam(2e-4, betas (0.5, 0.999)); batch 64.

The tutorial writes ``nn.BatchNorm1d(out_feat, 0.8)``, whose second positional
argument is ``eps``: its BatchNorm layers use epsilon 0.8, and so do we.
"""

from jaxgan.config import base_config


def get_config():
  config = base_config()
  config.model = "mlp"
  config.dataset = "fashion_mnist"
  config.image_size = 32
  config.generator.hidden = (128, 256, 512, 1024)
  config.generator.batchnorm = True
  config.generator.negative_slope = 0.2
  config.generator.batchnorm_epsilon = 0.8
  config.discriminator.hidden = (512, 256)
  config.discriminator.negative_slope = 0.2
  config.num_steps = 10000
  return config
