"""StackGAN (Zhang et al., 2017) on captioned, coloured MNIST: text -> 16x16 (Stage I) -> 32x32
(Stage II), a CPU-sized recipe.

Captions such as "a thick red seven" or "the digit 7, drawn in red with a heavy stroke"
(:mod:`jaxgan.data.captions`; some (digit, colour) pairs never appear in training) are embedded once
by the frozen all-MiniLM-L6-v2 sentence encoder (:mod:`jaxgan.text`). One run trains Stage I for
``stackgan.stage1_steps`` iterations (4,000: two fifths of the run), then 6,000 of Stage II on top
of the frozen Stage I. The critics read the caption through a projection head (Miyato & Koyama,
2018; the paper's concatenation: ``--config.stackgan.d_head=concat``), Stage I's with an
unconditional head too (StackGAN++). The conditioning augmentation is a 128-d code (gated, as
StackGAN++) whose KL term is weighted 0.5 (the paper: 2, which leaves more of the digit to the CA
noise: whole captions right 80 % against 87 % of the seen pairs after 3,000 Stage-I iterations,
docs/text-to-image.md). Stage II's conditioning augmentation applies the noise that made its Stage-I
image (``stackgan.stage2_noise``; the paper draws it afresh, which lets Stage II redraw part of the
digit Stage I drew). The paper's setting otherwise: matching-aware discriminators, Adam(2e-4,
b1=0.5) with the rate halved every ``stackgan.lr_decay_steps`` updates; widths cut for a CPU (G 32,
Stage-I D 64, Stage-II D 32; the paper: 128 / 64).

    python train.py --config configs/stackgan_mnist.py
    python -m jaxgan.sample --workdir runs/stackgan_mnist --caption "a thick blue seven" --num 16
"""

from jaxgan.config import base_config, stackgan_body


def get_config():
  config = stackgan_body(base_config())
  config.dataset = "mnist"
  config.num_steps = 10000
  # Stage I for two fifths of the run (4,000 iterations), Stage II for the rest; the split
  # follows --config.num_steps alone.
  config.stackgan.stage1_steps = config.get_ref("num_steps") * 2 // 5
  config.stackgan.kl_weight = 0.5
  config.stackgan.stage2_noise = "stage1"
  return config
