"""Errors that reach the user as one clear message (``train.py`` prints them, exits non-zero)."""


class JaxganError(Exception):
  """Base class: the message says what is wrong and how to fix it."""


class ConfigError(JaxganError):
  """A config key or value is wrong."""


class RunDirError(JaxganError):
  """The run directory cannot be used: not writable, not a directory, or held by a live run."""


class TrainingError(JaxganError):
  """Training cannot go on (e.g. non-finite losses)."""


class Interrupted(JaxganError):
  """Training was stopped by a signal after saving a checkpoint."""

  def __init__(self, signum: int, message: str):
    super().__init__(message)
    self.signum = signum
