"""DCGAN (Radford et al., 2016) on CelebA faces at 64x64, the paper's face experiment.

G: z(100) -> 4x4x512 -> 8x8x256 -> 16x16x128 -> 32x32x64 -> 64x64x3 (kernel 4, stride 2,
BatchNorm + ReLU, tanh); D mirrors it with LeakyReLU(0.2) (the widths of PyTorch's DCGAN
example, ngf = ndf = 64). Non-saturating loss, Adam(2e-4, b1=0.5), batch 128 (the paper's).
The faces are center-cropped to 178x178 and resized to 64 (``jaxgan.data`` decodes them once
into a uint8 cache beside the tfds build). Evaluate in Inception space
(``--config.eval_features=inception``): CelebA has no committed classifier.

    python train.py --config configs/dcgan_celeba.py

tfds builds ``celeb_a`` from its download, or offline from ``img_align_celeba.zip`` and the four
``list_*`` / ``identity_*`` files in the manual directory's ``celeb_a/`` folder. Meant for a GPU.
"""

from jaxgan.config import base_config


def get_config():
  config = base_config()
  config.model = "dcgan"
  config.dataset = "celeb_a"
  config.image_size = 64
  config.latent_dim = 100
  config.generator.features = (512, 256, 128, 64)
  config.generator.upsample = "auto"
  config.discriminator.features = (64, 128, 256, 512)
  config.batch_size = 128
  config.num_steps = 20_000
  config.eval_features = "inception"
  return config
