"""SNGAN (Miyato et al., 2018) on CIFAR-10: the paper's ResNets and setting, for a GPU.

G: z(128) -> 4x4x256 -> 3 residual up-sampling blocks (256) -> BN, ReLU, 3x3 conv -> tanh;
D: 4 residual blocks (128; the first two halve the image), every layer spectrally
normalised, ReLU, global sum pooling, Dense. Hinge loss, 5 D updates per G update,
Adam(2e-4, b1=0, b2=0.9), batch 64, 50,000 G updates with both rates decaying linearly
to 0 (the paper's CIFAR-10 ResNet run; its Inception FID 21.7 with these settings, Table 2).

    python train.py --config configs/sngan_cifar10.py

tfds builds ``cifar10`` (162 MB download, or ``cifar-10-binary.tar.gz`` in the manual
directory's ``cifar10/`` folder). One step takes about 46 s on a 2-core CPU; this recipe is
meant for a GPU. Evaluate it in Inception space (``--config.eval_features=inception``).
"""

from jaxgan.config import base_config, sngan_body


def get_config():
  config = sngan_body(base_config())
  config.dataset = "cifar10"
  config.num_steps = 50_000
  # Linear decay to 0 over the whole run; "* 1" makes a copy of the reference, so that
  # setting decay_steps on the command line leaves num_steps alone.
  config.decay_steps = config.get_ref("num_steps") * 1
  config.eval_features = "inception"
  return config
