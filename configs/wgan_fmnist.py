"""WGAN with weight clipping (Arjovsky, Chintala & Bottou, 2017), DCGAN-32 body.

Critic loss mean(D(G(z))) - mean(D(x)), generator loss -mean(D(G(z))).
The paper's Algorithm 1 defaults: clipping c = 0.01 of every critic
parameter (applied right after each critic update, inside the jitted step),
RMSProp lr 5e-5, n_critic = 5 critic updates (each on a fresh batch) per
generator update, batch 64. The critic is the DCGAN discriminator with
BatchNorm, as in the paper's DCGAN experiments. (The reference code also runs
100 critic updates for the first 25 and every 500th generator update; that
warm-up schedule is not reproduced here.) ``num_steps`` counts generator
updates: 5000 of them read 25000 batches.

    python train.py --config configs/wgan_fmnist.py
"""

from jaxgan.config import base_config, dcgan_body


def get_config():
  config = dcgan_body(base_config())
  config.dataset = "fashion_mnist"
  config.loss = "wasserstein"
  config.optimizer = "rmsprop"
  config.learning_rate = 5e-5
  config.clip = 0.01
  config.n_critic = 5
  config.batch_size = 64
  config.num_steps = 5000
  return config
