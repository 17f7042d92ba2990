"""Input pipelines."""

from jaxgan.data.tfds_data import (EXPECTED, MANUAL_DIR_ENV, BatchStream, DataError, ImageData,
                                   load, prepare, resolve_manual_dir)

__all__ = ["EXPECTED", "MANUAL_DIR_ENV", "BatchStream", "DataError", "ImageData", "load",
           "prepare", "resolve_manual_dir"]
