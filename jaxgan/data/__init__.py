"""Input pipelines: tfds image datasets (offline through a manual directory), 2-D samplers
(:mod:`jaxgan.data.toy`), labelled subsets (:mod:`jaxgan.data.labeled`), translation domains
(:mod:`jaxgan.data.domains`, :mod:`jaxgan.data.photo`), captioned images for text-to-image
(:mod:`jaxgan.data.captions`). Which one a run reads is its family's
choice (:meth:`jaxgan.families.Family.data`)."""

from jaxgan.data import captions, photo, tfds_data
from jaxgan.data.captions import CaptionedData, caption_folder, captioned
from jaxgan.data.tfds_data import (EXPECTED, MANUAL_DIR_ENV, BatchStream, DataError, ImageData,
                                   prepare, resolve_manual_dir, subset)


def load(name: str, split: str = "train", image_size: int | None = None,
         data_dir: str | None = None, manual_dir: str | None = None,
         part: tuple[int, int] = (0, 1)) -> ImageData:
  """A whole split of the tfds image dataset ``name`` (:func:`jaxgan.data.tfds_data.load`), or
  CelebA's faces without labels (:func:`jaxgan.data.photo.faces`) for ``"celeb_a"``."""
  if name == photo.CELEBA:
    return photo.faces(split, image_size, data_dir, manual_dir, part)
  return tfds_data.load(name, split, image_size, data_dir, manual_dir, part)


__all__ = ["EXPECTED", "MANUAL_DIR_ENV", "BatchStream", "CaptionedData", "DataError", "ImageData",
           "caption_folder", "captioned", "load", "prepare", "resolve_manual_dir", "subset"]
