"""The small GAN of the Keras book (Chollet-style MNIST GAN) on 28x28 MNIST.

G: z(100) -> 128 LeakyReLU(0.01) -> 784 tanh. D: 128 LeakyReLU(0.01) -> 1.
BCE with the non-saturating generator loss; Adam.
"""

from jaxgan.config import base_config


def get_config():
  config = base_config()
  config.model = "mlp"
  config.dataset = "mnist"
  config.image_size = 0          # keep 28x28
  config.generator.hidden = (128,)
  config.generator.batchnorm = False
  config.generator.negative_slope = 0.01
  config.discriminator.hidden = (128,)
  config.discriminator.negative_slope = 0.01
  config.learning_rate = 1e-3
  config.b1 = 0.9
  config.batch_size = 128
  config.num_steps = 20000
  return config
