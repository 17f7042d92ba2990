"""ACGAN (Odena, Olah & Shlens, 2017) on Fashion-MNIST at 32x32.

G: [z(100), embed(y)(10)] -> the DCGAN-32 generator (4x4x256 -> 8x8x128 ->
16x16x64 -> 32x32x1). D: the DCGAN-32 convolution stack with two heads, a
source logit and 10 class logits. D minimises the adversarial loss plus the
class cross-entropy on real images, G the adversarial loss plus the class
cross-entropy of its fakes (``acgan.class_weight`` = 1, the paper's equal
weighting). **One departure from the paper**: D's class loss on the fakes is
off (``acgan.fake_class_weight`` = 0, as in the Keras ACGAN example). With it
on (``--config.acgan.fake_class_weight=1``, the paper's loss) D's class head
learns to read the intended label from the fakes' own quirks (it was right on
93 % of them) and G satisfies it without drawing the class: 41-59 % of the
samples were their class after 1,500-3,000 steps; with it off, 96 % after
1,500 (docs/label-aware.md). Adam(2e-4, b1=0.5) and batch 100 as in the paper's
experiments. Logs ``d_class_acc_real`` / ``d_class_acc_fake``. Sample grids
are class-by-row. MNIST: ``--config.dataset=mnist``.

    python train.py --config configs/acgan_fmnist.py --workdir runs/acgan_fmnist
"""

import ml_collections

from jaxgan.config import base_config, dcgan_body


def get_config():
  config = dcgan_body(base_config())
  config.model = "acgan"
  config.dataset = "fashion_mnist"
  config.loss = "nonsaturating"
  config.generator.embed_dim = 10
  config.generator.label_join = "concat"  # or "multiply": z * embed(y) (set embed_dim=0)
  config.learning_rate = 2e-4
  config.b1 = 0.5
  config.batch_size = 100
  config.num_steps = 10000
  config.num_samples = 100               # 10 classes x 10 noise vectors
  # fake_class_weight: D's class loss on the fakes (1 = the paper; 0 = D classifies real images only).
  config.acgan = ml_collections.ConfigDict({"class_weight": 1.0, "fake_class_weight": 0.0})
  config.conditional = ml_collections.ConfigDict({"eval_every": 5000, "samples_per_class": 500})
  return config
