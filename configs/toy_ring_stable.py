"""2-D ring: the lab's stable recipe, which beats every row of PacGAN's Table 1 on the ring (10 seeds).

The unconditional non-saturating GAN, no packing, with a light R1 penalty on D
(gamma 0.01: a mode of std 0.01-0.05 needs a sharp D, which gamma 1 forbids).
G: 2-D N(0, I) latent -> 4 x [Dense(128) -> BatchNorm -> ReLU] -> Dense(2);
D: 2 -> 3 x [Dense(128) -> LeakyReLU(0.2)] -> Dense(1), as the PacGAN benchmark's
networks scaled to a CPU (``benchmarks/bench_toy.py``). Adam(1e-3, b1 0.5),
batch 100, 120000 steps: the rate is constant for the first half and falls
linearly to 0 over the second (``decay_steps = num_steps // 2``, so
``--config.num_steps=N`` alone keeps the shape). docs/lab2d.md has its 10-seed
numbers and the ``bench_toy.py`` command that measures them.

    python train.py --config configs/toy_ring_stable.py --workdir runs/toy_ring_stable
"""

from jaxgan.families.toy import toy_config


def get_config():
  config = toy_config("ring")
  config.generator.hidden = (128, 128, 128, 128)
  config.generator.batchnorm = True
  config.generator.negative_slope = 0.0   # ReLU
  config.discriminator.hidden = (128, 128, 128)
  config.discriminator.maxout = 1         # LeakyReLU hidden layers (PacGAN's maxout: 5)
  config.r1_weight = 0.01
  config.learning_rate = 1e-3
  config.b1, config.b2 = 0.5, 0.999
  config.batch_size = 100
  config.num_steps = 120000
  config.decay_steps = config.get_ref("num_steps") // 2
  config.film_every = 2500
  config.checkpoint_every = 10000
  return config
