"""StarGAN (Choi et al., 2018) on CelebA with the paper's five attributes, 128 x 128.

The paper's and the reference implementation's settings: generator with 6
residual blocks (64 filters, affine instance norm, the label replicated
spatially and concatenated with the image), critic with 6 stride-2 layers
(64 ... 2048, LeakyReLU 0.01, no normalisation; D_src a 3x3 patch head,
D_cls a 2x2 head over the remaining 2x2 map), WGAN-GP lambda_gp = 10, domain
classification lambda_cls = 1 (per-attribute BCE), reconstruction
lambda_rec = 10, n_critic = 5, Adam 1e-4 / (0.5, 0.999), batch 16, 200,000
iterations with the rate falling linearly to 0 over the last 100,000 (the
reference decays in steps of 1/10,000; linear here), target labels by
shuffling the batch's labels. Preprocessing: center crop 178, resize to 128,
random horizontal flip (``jaxgan.data.photo``). Attributes:
``--config.stargan.attributes=Black_Hair,Blond_Hair,Brown_Hair,Male,Young``
(any of tfds's 40; hair colours form the exclusive group of the figure).

Offline: put the five files tfds downloads (``img_align_celeba.zip``,
``list_attr_celeba.txt``, ``list_eval_partition.txt``,
``list_landmarks_align_celeba.txt``, ``identity_CelebA.txt``) in
``$JAXGAN_MANUAL_DIR/celeb_a/``. The decoded 128-px training split is cached
memory-mapped (10 GB) next to the tfds build. No ground truth for real photos:
``eval_every`` stays 0; the figure rows are an input test face then its
translation to each hair colour and with male / young flipped. A GPU/TPU
recipe (8.4 M + 44.8 M parameters).

    python train.py --config configs/stargan_celeba.py --workdir runs/stargan_celeba
"""

import ml_collections

from jaxgan.config import base_config


def get_config():
  config = base_config()
  config.model = "stargan"
  config.dataset = "celeb_a"
  config.image_size = 128
  config.loss = "wasserstein"
  config.gp_weight = 10.0
  config.n_critic = 5
  config.multi_dataset = False
  config.stargan = ml_collections.ConfigDict({
      "attributes": "Black_Hair,Blond_Hair,Brown_Hair,Male,Young",
      "extra_datasets": "",
      "lambda_cls": 1.0, "lambda_rec": 10.0,
      "lambda_id": 0.0})                 # > 0: + identity L1 ||x - G(x, c_own)|| (not in the paper)
  config.generator = ml_collections.ConfigDict({"features": 64, "num_blocks": 6, "num_domains": 0})
  config.discriminator = ml_collections.ConfigDict({"features": 64, "num_layers": 6, "num_domains": 0})
  config.learning_rate = 1e-4
  config.b1 = 0.5
  config.b2 = 0.999
  config.batch_size = 16
  config.num_steps = 200_000
  config.decay_steps = config.get_ref("num_steps") // 2   # the second half decays
  config.log_every = 100
  config.sample_every = 1000
  config.checkpoint_every = 10_000
  config.eval_every = 0
  return config
