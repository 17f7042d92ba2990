"""jaxgan: Generative Adversarial Networks in JAX/Flax."""

from jaxgan import losses, models, parallel, steps
from jaxgan.parallel import DataParallel
from jaxgan.state import GANState, create_state
from jaxgan.steps import make_d_step, make_g_step, make_train_step

__version__ = "0.1.0"

__all__ = ["DataParallel", "GANState", "create_state", "losses", "make_d_step", "make_g_step",
           "make_train_step", "models", "parallel", "steps"]
