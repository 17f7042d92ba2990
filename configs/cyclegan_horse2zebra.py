"""CycleGAN (Zhu et al., 2017) on real photos: tfds ``cycle_gan/horse2zebra`` at 256 x 256.

The paper's and the reference implementation's settings: ResNet generator
with 9 residual blocks (ngf 64, instance norm without affine parameters),
70x70 PatchGAN critic (ndf 64, 3 layers), least-squares adversarial loss,
cycle consistency lambda = 10, identity 0.5 * lambda, a history pool of 50
fakes per critic, Adam 2e-4 / (0.5, 0.999), batch 1, 200 epochs of 1,334
iterations (the reference's epoch is the larger domain: trainB), constant for
the first 100 and linearly to 0 over the last 100. Preprocessing as the
reference's ``resize_and_crop``: resize to 286, random 256 crop, random flip
(``jaxgan.data.photo``). Any other pair: ``--config.dataset=cycle_gan/monet2photo``
(``num_steps`` then should follow its size).

Offline: put ``horse2zebra.zip`` (the file tfds downloads) in
``$JAXGAN_MANUAL_DIR/cycle_gan/``. There is no ground truth for real photos,
so ``eval_every`` stays 0; the figure rows are a, G(a), F(G(a)) | b, F(b), G(F(b))
on the first test images of each domain. This is a GPU/TPU recipe (11.4 M +
2.8 M parameters per direction at 256 px).

    python train.py --config configs/cyclegan_horse2zebra.py --workdir runs/cyclegan_horse2zebra
"""

import ml_collections

from jaxgan.config import base_config

EPOCH = 1334  # iterations per epoch: max(|trainA| = 1,067, |trainB| = 1,334)


def get_config():
  config = base_config()
  config.model = "cyclegan"
  config.dataset = "cycle_gan/horse2zebra"
  config.image_size = 256                # crop side; the cache holds 286 x 286 (data.load_size 0 = auto)
  config.data.load_size = 0
  config.loss = "least_squares"
  config.cyclegan = ml_collections.ConfigDict({
      "domain_a": "original", "domain_b": "inverted",   # unused with real photos (A/B splits)
      "lambda_cycle": 10.0, "lambda_identity": 0.5, "pool_size": 50})
  config.generator = ml_collections.ConfigDict({"features": 64, "num_blocks": 9})
  config.discriminator = ml_collections.ConfigDict({"features": 64, "num_layers": 3})
  config.learning_rate = 2e-4
  config.b1 = 0.5
  config.b2 = 0.999
  config.batch_size = 1
  config.num_steps = 200 * EPOCH
  config.decay_steps = config.get_ref("num_steps") // 2   # the second half (100 epochs) decays
  config.log_every = 100
  config.sample_every = EPOCH
  config.checkpoint_every = 5 * EPOCH
  config.eval_every = 0                  # no ground truth for real photos
  return config
