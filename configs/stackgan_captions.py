"""StackGAN (Zhang et al., 2017) at the paper's sizes on your own captioned images: text ->
64x64 (Stage I) -> 256x256 (Stage II). A GPU/TPU recipe.

The folder holds the images and ``captions.jsonl``, one JSON object per line,
``{"image": "birds/0001.jpg", "captions": ["a small bird with a red head", ...]}`` (CUB-200 or
Oxford-102 flowers with their captions, for instance); point the recipe at it:

    python train.py --config configs/stackgan_captions.py --config.stackgan.folder=/data/cub

The networks and setting of the reference code's ``coco_s1.yml`` / ``coco_s2.yml``: GF_DIM 192,
DF_DIM 96, two residual blocks, a 128-d condition with the KL term weighted 2, Adam(2e-4,
b1=0.5) with the rate halved every 20 epochs' worth of updates. One batch size serves both
stages here (the reference: 128 for Stage I, 40 for Stage II), and the sentence embeddings are
all-MiniLM-L6-v2's 384-d ones (the paper's: a char-CNN-RNN's 1024-d).
"""

from jaxgan.config import base_config, stackgan_body


def get_config():
  config = stackgan_body(base_config())
  config.dataset = "caption_folder"
  config.stackgan.folder = "data/captions"   # the folder with captions.jsonl (override it)
  config.image_size = 256
  config.stackgan.stage1_size = 64
  config.generator.width, config.generator.stage2_width, config.generator.residual_blocks = 192, 192, 2
  config.generator.stage2_encoder_steps = 2   # the paper: 64x64 encoded to a 16x16 grid
  config.discriminator.width, config.discriminator.stage2_width = 96, 96
  config.stackgan.ca_activation = "relu"     # the released StackGAN code's
  # The paper's critics: concatenating heads, none unconditional in Stage I (the CPU recipes'
  # projection critics follow the caption far better on the captioned digits: set
  # --config.stackgan.d_head=projection --config.discriminator.stage1_unconditional=True).
  config.stackgan.d_head = "concat"
  config.discriminator.stage1_unconditional = False
  config.batch_size = 64
  config.num_steps = 100_000
  config.stackgan.lr_decay_steps = 20_000
  config.sample_every = 2000
  config.checkpoint_every = 5000
  config.eval_every = 0                      # the caption measures need the captioned digits
  return config
