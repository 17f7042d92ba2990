"""Input pipelines."""

from jaxgan.data.tfds_data import (EXPECTED, MANUAL_DIR_ENV, BatchStream, DataError, ImageData,
                                   load, prepare, resolve_manual_dir)


def for_config(config, process_index: int = 0, process_count: int = 1):
  """The dataset of a run: ``config.dataset``'s train split, decoded at ``config.image_size``.

  In a multi-process run with ``config.data.process_split == "shard"`` (the
  default) each process reads only its own even part of the split; with
  ``"full"`` every process reads all of it.

  Every dataset object has ``example_shape``, ``num_classes`` (0 = no labels),
  ``name`` and ``stream(batch_size, seed, start=0)``: an endless iterator of
  dict batches in which batch ``i`` is a pure function of ``(seed, i)``, so a
  resumed run reads exactly the batches an uninterrupted one would.
  """
  from jaxgan.data import toy
  if config.dataset in toy.DISTRIBUTIONS:  # 2-D toy distributions, sampled in JAX
    return toy.ToyData(config.dataset)
  from jaxgan import translation_hooks
  if translation_hooks.is_translation(config):  # CycleGAN / StarGAN: known-transform domains
    return translation_hooks.for_config(config)
  from jaxgan import models
  if models.family(config.get("model", "")) == "sgan":  # unlabelled stream + a cycled labelled subset
    from jaxgan.data import labeled
    return labeled.for_config(config)
  shard = process_count > 1 and config.data.get("process_split", "shard") == "shard"
  return load(config.dataset, "train", config.image_size or None,
              data_dir=config.data.data_dir or None, manual_dir=config.data.manual_dir or None,
              part=(process_index, process_count) if shard else (0, 1))


__all__ = ["for_config", "EXPECTED", "MANUAL_DIR_ENV", "BatchStream", "DataError", "ImageData", "load",
           "prepare", "resolve_manual_dir"]
