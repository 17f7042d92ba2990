"""Semi-supervised GAN (Odena, 2016; Salimans et al., 2016) on 28x28 MNIST with 100 labels.

D: a 10-way classifier with the fake class implicit (D(x) = Z / (Z + 1),
Z = sum_k exp l_k): MLP 1000-500-250-250-250 with ReLU, weight normalisation
and Gaussian noise (std 0.3 on the input, 0.5 after every layer), as in
Salimans et al.'s MNIST model. G: z(100) -> 500 -> 500 (BatchNorm, softplus)
-> 784 tanh, trained by feature matching on D's last hidden layer. D's loss:
cross-entropy on a labelled minibatch + 1/2 x (the unsupervised real/fake
loss) on the rest. Adam(b1=0.5) at 3e-3 for D and 1e-3 for G, batch 100 (and
100 labelled). Their code runs G at 3e-3 too; here that diverged on one seed of
four (seed 3: 16 % test error, against 1.4 % with G at 1e-3; docs/label-aware.md); ``--config.g_learning_rate=0.003`` restores it.
``sgan.labels_per_class`` picks a balanced subset with ``config.seed``; the
rest of the train split is used without labels. The supervised-only baseline
is ``--config.sgan.unsupervised_weight=0``. Test accuracy on the 10,000 real
test images is logged every ``sgan.eval_every`` steps. Fashion-MNIST:
``--config.dataset=fashion_mnist`` (and e.g. ``--config.sgan.labels_per_class=100``).

    python train.py --config configs/sgan_mnist.py --workdir runs/sgan_mnist
"""

import ml_collections

from jaxgan.config import base_config


def get_config():
  config = base_config()
  config.model = "sgan"
  config.dataset = "mnist"
  config.image_size = 0                  # keep 28x28
  config.latent_dim = 100
  config.loss = "nonsaturating"
  config.generator.hidden = (500, 500)
  config.generator.uniform_latent = False  # True: G reads Phi(z) ~ U[0, 1]^100, their noise
  config.discriminator.hidden = (1000, 500, 250, 250, 250)
  config.discriminator.unit_pixels = True  # D sees (x + 1) / 2: their [0, 1] pixels (background 0)
  config.discriminator.input_noise = 0.3
  config.discriminator.hidden_noise = 0.5
  config.discriminator.weight_norm = True  # data-dependent init on 500 images before step 1
  config.learning_rate = 3e-3
  config.g_learning_rate = 1e-3             # G at a third of D's rate (theirs: 3e-3 for both)
  config.b1 = 0.5
  config.adam_eps = 0.0                    # their Adam: g / sqrt(v + 1e-8)
  config.adam_eps_root = 1e-8
  config.d_ema = 0.999                     # test accuracy of D's Polyak average (theirs: 0.9999)
  config.batch_size = 100
  config.num_steps = 30000               # 50 epochs of the unlabelled set (the paper: 300)
  config.sgan = ml_collections.ConfigDict({
      "labels_per_class": 10,            # 100 labels in all
      "labeled_batch_size": 100,         # labelled examples per step (0 = batch_size)
      "unsupervised_weight": 0.5,        # Salimans et al.'s 1/2 on the real/fake terms; 0 = baseline
      "feature_matching": True,          # G matches D's last hidden layer statistics
      "matching_batch": False,           # True: on an independent unlabelled batch (their trainx_unl2)
      "eval_every": 1000,                # test accuracy on the real test split (0 = off)
  })
  return config
