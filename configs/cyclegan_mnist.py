"""CycleGAN (Zhu et al., 2017) between two known transforms of MNIST: original <-> inverted.

Unpaired domains from ``jaxgan.data.domains``: A = the gray digits of one half
of the MNIST train split, B = the inverted digits of the other half (RGB,
28x28). The paper's objective and optimiser: least-squares adversarial loss
(the reference's ``lsgan`` criteria), cycle consistency lambda = 10, identity
0.5 * lambda, a history pool of 50 fakes per critic, Adam 2e-4 / (0.5, 0.999),
constant for the first half of training and linearly to 0 over the second
(``decay_steps``, by default ``num_steps // 2``). The networks keep the
paper's layout (ResNet generator c7s1-F, d2F, d4F, R4F x n, u2F, uF, c7s1-3;
PatchGAN critic) at a CPU-sized width: F = 16 with 3 residual blocks (the
paper: 64 and 6 / 9 blocks at 128 / 256 px), a 2-layer PatchGAN (5x5 patches
at 28 px), batch 8 (the paper: 1). Other pairs:
``--config.cyclegan.domain_b=red`` (any of original, red, green, blue,
inverted, thick).

    python train.py --config configs/cyclegan_mnist.py --workdir runs/cyclegan_mnist

Writes samples/step_*.png (each row: a, G(a), F(G(a)) | b, F(b), G(F(b)) on
held-out test digits) and, every eval_every steps, the error against the true
translation, attribute and content accuracy and the cycle L1 to
metrics.jsonl (see docs/translation.md).
"""

import ml_collections

from jaxgan.config import base_config


def get_config():
  config = base_config()
  config.model = "cyclegan"
  config.dataset = "mnist"
  config.image_size = 28                 # a multiple of 4: the generator halves the side twice
  config.loss = "least_squares"          # LSGAN (Mao et al., 2017), as the paper
  config.cyclegan = ml_collections.ConfigDict({
      "domain_a": "original", "domain_b": "inverted",
      "lambda_cycle": 10.0, "lambda_identity": 0.5, "pool_size": 50})
  config.generator = ml_collections.ConfigDict({"features": 16, "num_blocks": 3})
  config.discriminator = ml_collections.ConfigDict({"features": 16, "num_layers": 2})
  config.learning_rate = 2e-4
  config.b1 = 0.5
  config.b2 = 0.999
  config.batch_size = 8
  config.num_steps = 2000
  config.decay_steps = config.get_ref("num_steps") // 2   # linear decay to 0 over the second half
  config.log_every = 50
  config.sample_every = 250
  config.checkpoint_every = 500
  config.eval_every = 500                # truth metrics on eval_samples test digits
  config.eval_samples = 1000
  config.eval_classifier_steps = 400     # Adam steps of the attribute classifier (cached)
  return config
