"""SNGAN (Miyato et al., 2018) on Fashion-MNIST 32x32: the paper's ResNets at a width a CPU trains.

The architecture and setting of ``sngan_cifar10.py`` (residual blocks, the optimised first D
block, spectral normalisation of every D layer, global sum pooling, hinge loss, n_critic 5,
Adam(2e-4, b1=0, b2=0.9), batch 64, linear decay) with 64 channels in G and D instead of
256 / 128: one step (5 D updates and one G update) takes about 7 s on a 2-core CPU, against
46 s at the paper's widths (``--config.generator.widths='(256, 256, 256, 256)'
--config.discriminator.widths='(128, 128, 128, 128)'`` restores them).

    python train.py --config configs/sngan_fmnist.py
"""

from jaxgan.config import base_config, sngan_body


def get_config():
  config = sngan_body(base_config())
  config.dataset = "fashion_mnist"
  config.generator.widths = (64, 64, 64, 64)
  config.discriminator.widths = (64, 64, 64, 64)
  config.num_steps = 1000
  # Linear decay to 0 over the whole run; "* 1" makes a copy of the reference, so that
  # setting decay_steps on the command line leaves num_steps alone.
  config.decay_steps = config.get_ref("num_steps") * 1
  return config
