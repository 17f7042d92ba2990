"""Train a GAN: ``python train.py --config configs/dcgan_fmnist.py [--workdir DIR] [--config.KEY=VALUE ...]``."""

import os
import sys
import traceback

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow only serves tfds here

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

_HERE = os.path.dirname(os.path.abspath(__file__))


def _fail(message: str, code: int = 2):
  print(f"error: {message}", file=sys.stderr)
  sys.exit(code)


def _unknown_key(e: BaseException):
  """One line for an override naming a key the config does not have."""
  while e.args and isinstance(e.args[0], BaseException):
    e = e.args[0]
  detail = str(e.args[0] if e.args else e).replace("\n", "; ")
  overrides = [a.split("=")[0] for a in sys.argv[1:] if a.startswith("--config.")]
  _fail(f"unknown config key {detail} (overrides given: {' '.join(overrides)}); the keys are "
        f"those of the config file (python train.py --helpfull lists them)")


def _parse_flags(argv):
  """absl's parser; a bad flag, an override of an unknown key (raised while parsing when
  ``--config`` names a file) or a recipe that does not load is one line instead of a traceback."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:  # absl's own message, without its second line of help
    _fail(f"{e} (python train.py --helpfull lists the flags)")
  except (AttributeError, KeyError) as e:
    _unknown_key(e)
  except Exception as e:  # noqa: BLE001 - the recipe file itself failed: its error, in one line
    _bad_recipe(e)


def _bad_recipe(e: BaseException):
  """One line for a --config file that does not load (a syntax error, an error in get_config)."""
  if isinstance(e, SyntaxError):
    _fail(f"cannot load --config {e.filename}: syntax error at line {e.lineno}: {e.msg}")
  frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename.endswith(".py")
            and "-packages" not in f.filename and f.filename != __file__]
  where = f" {frames[-1].filename}" if frames else ""
  line = f" (line {frames[-1].lineno})" if frames else ""
  detail = str(e).splitlines()[0] if str(e) else ""
  _fail(f"cannot load --config{where}: {type(e).__name__}: {detail}{line}")


try:
  # config_flags applies --config.KEY=VALUE overrides while defining the flag (default config)
  # or while parsing (a --config file): both paths end in _unknown_key.
  _CONFIG = config_flags.DEFINE_config_file(
      "config", os.path.join(_HERE, "configs", "dcgan_fmnist.py"),
      "Training recipe (a configs/*.py file); override keys with --config.KEY=VALUE.",
      lock_config=True)
except (AttributeError, KeyError) as e:
  _unknown_key(e)
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Output directory (default: runs/<config name>). Re-running with the "
    "same workdir resumes from its latest checkpoint.")
_DISTRIBUTED = flags.DEFINE_bool(
    "distributed", False, "Multi-process run: let jax.distributed.initialize() detect the "
    "cluster (TPU pod slice, SLURM, Open MPI). Implied by --coordinator_address.")
_COORDINATOR = flags.DEFINE_string(
    "coordinator_address", None, "host:port of process 0's coordinator for a multi-process run "
    "(default: $JAX_COORDINATOR_ADDRESS); with --num_processes and --process_id.")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Processes in a multi-process run "
                                      "(default: $JAX_NUM_PROCESSES).")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index, 0 .. num_processes-1 "
                                   "(default: $JAX_PROCESS_ID).")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
  try:
    config = _CONFIG.value
    config.keys()  # a config file that failed to load raises here
  except (OSError, ImportError, SyntaxError) as e:
    _fail(f"cannot load --config: {str(e).splitlines()[-1].strip() or e}")
  from jaxgan import parallel, trainer
  from jaxgan.errors import Interrupted, JaxganError

  try:
    parallel.initialize_distributed(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value,
                                    auto=_DISTRIBUTED.value)
  except (RuntimeError, ValueError) as e:
    _fail(f"cannot start the multi-process runtime: {str(e).splitlines()[0]} (check "
          f"--coordinator_address, --num_processes and --process_id)")

  config_file = config_flags.get_config_filename(flags.FLAGS["config"])
  name = os.path.splitext(os.path.basename(config_file))[0]
  workdir = _WORKDIR.value or os.path.join("runs", name)
  try:
    trainer.train_and_evaluate(config, workdir)
  except Interrupted as e:
    print(f"\ninterrupted: {e}", file=sys.stderr)
    sys.exit(128 + e.signum)
  except JaxganError as e:
    _fail(str(e))


if __name__ == "__main__":
  app.run(main, flags_parser=_parse_flags)
