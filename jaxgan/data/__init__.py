"""Input pipelines: tfds image datasets (offline through a manual directory), 2-D samplers
(:mod:`jaxgan.data.toy`), labelled subsets (:mod:`jaxgan.data.labeled`), translation domains
(:mod:`jaxgan.data.domains`, :mod:`jaxgan.data.photo`). Which one a run reads is its family's
choice (:meth:`jaxgan.families.Family.data`)."""

from jaxgan.data.tfds_data import (EXPECTED, MANUAL_DIR_ENV, BatchStream, DataError, ImageData,
                                   load, prepare, resolve_manual_dir, subset)


__all__ = ["EXPECTED", "MANUAL_DIR_ENV", "BatchStream", "DataError", "ImageData", "load",
           "prepare", "resolve_manual_dir", "subset"]
