"""StackGAN (Zhang et al., 2017) on captioned, coloured Fashion-MNIST: text -> 16x16 -> 32x32.

Captions such as "a red pair of pants on a dark background" (:mod:`jaxgan.data.captions`);
otherwise ``configs/stackgan_mnist.py``'s recipe, on garments.

    python train.py --config configs/stackgan_fmnist.py
"""

from jaxgan.config import base_config, stackgan_body


def get_config():
  config = stackgan_body(base_config())
  config.dataset = "fashion_mnist"
  return config
