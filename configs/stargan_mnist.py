"""StarGAN (Choi et al., 2018) on MNIST with four known attributes; Fashion-MNIST joins with the mask vector.

Every training image is ``T_c(x)`` of a real digit for a random attribute
label ``c`` (``jaxgan.data.domains``): three mutually exclusive stroke
colours (red, green, blue; like CelebA's hair colours) and one binary
attribute (thick strokes), classified with per-attribute BCE. The fifth
transform, ``inverted`` (dark strokes on white), is left out by default
(``--config.stargan.attributes=red,green,blue,thick,inverted`` adds it): with
it, the generator keeps the digit for the translations of one polarity
relation only (those that flip the inversion, or those that keep it,
depending on the run) and redraws it for the other, whatever the learning
rate, an identity term or a label-conditioned instance norm (docs/translation.md); CycleGAN's recipe translates original <->
inverted. The paper's objective and optimiser: WGAN-GP (``gp_weight`` = lambda_gp = 10),
domain classification lambda_cls = 1, reconstruction lambda_rec = 10,
n_critic = 5, Adam (0.5, 0.999), constant for the first half and linearly
to 0 over the second (``decay_steps``), with a learning rate of 4e-4 (the
paper's 1e-4 reaches 94.8 % content accuracy in 2,000 steps, 4e-4 96.3 %
in 1,000) over 4,000 steps, a CPU-sized run. The networks keep the
paper's layout at a CPU-sized width: generator F = 16 with 2 residual blocks
(the paper: 64, 6), critic F = 32 with 4 stride-2 layers on the digits
resized to 32 x 32 (32 -> 2: a 2x2 D_src map whose every output sees the
whole image, as the paper's 6 layers at 128 px; D_cls a 2x2 convolution),
batch 16 (the paper's). A 2-layer critic at 28 px (a 7x7 map of 18-px
patches) left the adversarial term too weak to keep the digits: the
gradient penalty bounds the gradient of the map's sum, while G's loss is its
mean, so G's adversarial gradient shrinks with the number of patches.

``--config.multi_dataset=True`` adds Fashion-MNIST with three colour domains
(softmax; the role of RaFD in the paper) through the mask vector: batches
alternate datasets, the label is the joint vector and the generator also
reads the mask. ``--config.stargan.attributes=red,green,blue`` picks a subset
(single-label domains when a non-attribute transform such as ``original`` is
named).

    python train.py --config configs/stargan_mnist.py --workdir runs/stargan_mnist

Writes samples/step_*.png (each row: an input test image, then its
translation to each target domain) and, every eval_every steps, the error
against the true translation, attribute and content accuracy and the
reconstruction L1 to metrics.jsonl.
"""

import ml_collections

from jaxgan.config import base_config


def get_config():
  config = base_config()
  config.model = "stargan"
  config.dataset = "mnist"
  config.image_size = 32                 # multiple of 4 (generator) and of 2**num_layers (critic)
  config.loss = "wasserstein"            # WGAN-GP (Gulrajani et al., 2017)
  config.gp_weight = 10.0                # lambda_gp
  config.n_critic = 5
  config.multi_dataset = False           # True: + Fashion-MNIST through the mask vector
  config.stargan = ml_collections.ConfigDict({
      "attributes": "red,green,blue,thick",  # '' = red,green,blue,thick,inverted (all of MNIST's)
      "extra_datasets": "fashion_mnist",  # joined in multi-dataset mode
      "lambda_cls": 1.0, "lambda_rec": 10.0,
      "lambda_id": 0.0})                 # > 0: + identity L1 ||x - G(x, c_own)|| (not in the paper)
  # num_domains 0 = the label length (plus the mask in multi-dataset mode for the generator).
  config.generator = ml_collections.ConfigDict({"features": 16, "num_blocks": 2, "num_domains": 0,
                                               "label_norm": False})  # True: + conditional instance norm
  config.discriminator = ml_collections.ConfigDict({"features": 32, "num_layers": 4, "num_domains": 0})
  config.learning_rate = 4e-4           # the paper: 1e-4 (over 200k iterations)
  config.b1 = 0.5
  config.b2 = 0.999
  config.batch_size = 16
  config.num_steps = 4000
  config.decay_steps = config.get_ref("num_steps") // 2
  config.log_every = 50
  config.sample_every = 250
  config.checkpoint_every = 500
  config.eval_every = 500
  config.eval_samples = 1000
  config.eval_classifier_steps = 400     # Adam steps of the attribute classifier (cached)
  return config
