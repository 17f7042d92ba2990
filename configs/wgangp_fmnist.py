"""WGAN-GP (Gulrajani et al., 2017), DCGAN-32 body with a LayerNorm critic.

Critic loss mean(D(G(z))) - mean(D(x)) + lambda * mean((||grad D(x_hat)||_2 - 1)^2)
on per-example interpolates x_hat = eps x + (1 - eps) G(z), eps ~ U[0, 1];
generator loss -mean(D(G(z))). The paper's Algorithm 1 defaults: lambda = 10,
n_critic = 5, Adam(1e-4, b1=0, b2=0.9), batch 64. The penalty is per example,
so the critic has no BatchNorm: the paper recommends layer normalisation as
the drop-in replacement (``discriminator.norm = "layer"``).

    python train.py --config configs/wgangp_fmnist.py
"""

from jaxgan.config import base_config, dcgan_body


def get_config():
  config = dcgan_body(base_config())
  config.dataset = "fashion_mnist"
  config.loss = "wasserstein"
  config.discriminator.norm = "layer"
  config.optimizer = "adam"
  config.learning_rate = 1e-4
  config.b1, config.b2 = 0.0, 0.9
  config.gp_weight = 10.0
  config.n_critic = 5
  config.batch_size = 64
  config.num_steps = 5000
  return config
