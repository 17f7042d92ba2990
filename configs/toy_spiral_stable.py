"""2-D spiral, the classic experiment's "exploring" variant: G at lr 2e-4, Adam beta1 0.5.

D stays at lr 1e-3; everything else as ``configs/toy_spiral.py`` (the same as
``--config.g_learning_rate=2e-4 --config.b1=0.5`` on that recipe; see its docstring
for what we measured: with our nets this variant is slower, not better).

    python train.py --config configs/toy_spiral_stable.py --workdir runs/toy_spiral_stable
"""

from jaxgan.families.toy import toy_config


def get_config():
  config = toy_config("spiral")
  config.learning_rate = 1e-3       # D (and the default)
  config.g_learning_rate = 2e-4     # G
  config.b1, config.b2 = 0.5, 0.999
  config.num_steps = 10000
  return config
