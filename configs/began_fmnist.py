"""BEGAN (Berthelot, Schumm & Metz, 2017) on Fashion-MNIST 32x32.

Auto-encoder discriminator with L1 energies L(v) = mean |v - D(v)|:
L_D = L(x) - k_t L(G(z)), L_G = L(G(z)), and the equilibrium control
k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z))), 0, 1) with k_0 = 0,
lambda_k = 0.001 (the paper's) and gamma = 1.0, the top of the paper's range
for the diversity ratio gamma = E[L(G(z))] / E[L(x)] (its faces use 0.5,
PyTorch-GAN's MNIST 0.75); the convergence measure
M_global = L(x) + |gamma L(x) - L(G(z))| is logged as ``m_global``.
Why not 0.5: on Fashion-MNIST a flat grey image is reconstructed with about
0.6 x the energy of a real one, above 0.5 x, so with gamma = 0.5 k_t fell to 0
within 500 steps and stayed there (n = 64 and n = 16 alike), D only
auto-encoded real images and G stayed a grey texture. Why not 0.75: at n = 16
it left the grey image but collapsed to footwear by 15,000 steps (FID 457,
recall 0.12); gamma = 1.0, which asks the fakes to be as hard to reconstruct
as real images, drew tops, trousers, dresses, pullovers and coats instead
(FID 284 and recall 0.157 at 10,000 steps; docs/metrics.md).
Architecture as in the paper's Fig. 1 at 32x32: 3x3 convolutions with ELU,
two per resolution, widths n, 2n, 3n in the encoder, embedding h = 64 and
z of the same size (N_z = h), resize-convolution (nearest-neighbour upsample
then 3x3 conv) in the decoder and the generator; n = 64 here (the reference
implementation uses 128 at 64x64). Adam(1e-4, b1=0.5, b2=0.999) and batch 16
as in the paper and its reference code; the paper's learning-rate halving when
M_global stalls is not implemented.

    python train.py --config configs/began_fmnist.py
"""

import ml_collections

from jaxgan.config import base_config


def get_config():
  config = base_config()
  config.model = "began"
  config.dataset = "fashion_mnist"
  config.image_size = 32
  config.loss = "began"
  config.latent_dim = 64
  config.generator.filters = 64
  config.discriminator.filters = 64
  config.discriminator.embedding = 64
  config.began = ml_collections.ConfigDict({"gamma": 1.0, "lambda_k": 0.001})
  config.optimizer = "adam"
  config.learning_rate = 1e-4
  config.b1, config.b2 = 0.5, 0.999
  config.batch_size = 16
  config.num_steps = 5000
  return config
