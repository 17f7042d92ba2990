"""DCGAN (Radford et al., 2016) on Fashion-MNIST at 32x32.

G: z(100) -> 4x4x256 -> 8x8x128 -> 16x16x64 -> 32x32x1 (kernel 4, stride 2,
BatchNorm + ReLU, tanh output). D mirrors it with LeakyReLU(0.2), no BatchNorm
on the first layer, and a 4x4 convolution to one logit. Non-saturating loss,
Adam(2e-4, b1=0.5), batch 64.

    python train.py --config configs/dcgan_fmnist.py [--config.num_steps=...]
"""

from jaxgan.config import base_config, dcgan_body


def get_config():
  config = dcgan_body(base_config())
  config.dataset = "fashion_mnist"
  config.num_steps = 5000
  return config
