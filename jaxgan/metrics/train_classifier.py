"""Trains the feature network of the quality metrics on a tfds dataset.

``python -m jaxgan.metrics.train_classifier --dataset fashion_mnist
--out jaxgan/metrics/weights/fashion_mnist.msgpack``

Data: the dataset's ``train`` split through :func:`jaxgan.data.load` at 32x32 in
[-1, 1] (the pipeline the GANs train on), evaluated on the ``test`` split.
Recipe: :class:`~jaxgan.metrics.classifier.Classifier`, optional random horizontal
flips (``--hflip``, for clothes), AdamW (weight decay 1e-4)
with a warm-up + cosine learning-rate schedule, cross-entropy, dropout 0.3 before
the logits, batch 128, a few epochs; deterministic given ``--seed`` on one machine.
Writes the weights and a manifest (architecture, sha256, test accuracy, wall time,
command, data) beside them.
"""

from __future__ import annotations

import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # noqa: E402


def train(dataset: str, epochs: int = 4, batch_size: int = 128, learning_rate: float = 3e-3,
          seed: int = 0, data_dir: str | None = None, manual_dir: str | None = None,
          hflip: bool = False, shift: int = 0, features=(32, (64, 64), 64), hidden: int = 128,
          dropout: float = 0.3, log=print):
  """Trains a :class:`Classifier` on ``dataset``; returns ``(module, variables, info)``.

  ``hflip``: flip each training image horizontally with probability 1/2 (right for
  clothes, wrong for digits). ``shift``: translate each training image by a random
  offset in ``[-shift, shift]`` pixels on each axis (edge padding).
  """
  import jax
  import jax.numpy as jnp
  import numpy as np
  import optax

  from jaxgan import data as data_lib
  from jaxgan.metrics.classifier import INPUT_SIZE, Classifier

  t0 = time.perf_counter()
  train_data = data_lib.load(dataset, "train", INPUT_SIZE, data_dir=data_dir, manual_dir=manual_dir)
  test_data = data_lib.load(dataset, "test", INPUT_SIZE, data_dir=data_dir, manual_dir=manual_dir)
  if train_data.images.shape[-1] != 1:
    raise app.UsageError(f"{dataset} has {train_data.images.shape[-1]} channels; the classifier "
                         f"is grayscale")
  t_data = time.perf_counter() - t0

  module = Classifier(num_classes=train_data.num_classes, features=tuple(features), hidden=hidden,
                      dropout=dropout)
  key = jax.random.PRNGKey(seed)
  variables = module.init(key, jnp.zeros((1, INPUT_SIZE, INPUT_SIZE, 1), jnp.float32))
  n = len(train_data.images)
  steps_per_epoch = n // batch_size
  total = epochs * steps_per_epoch
  schedule = optax.warmup_cosine_decay_schedule(0.0, learning_rate, min(500, total // 10), total)
  tx = optax.adamw(schedule, weight_decay=1e-4)
  params, batch_stats = variables["params"], variables["batch_stats"]
  opt_state = tx.init(params)

  @jax.jit
  def step(params, batch_stats, opt_state, x, y, i):
    def loss_fn(p):
      (logits, _), updates = module.apply(
          {"params": p, "batch_stats": batch_stats}, x, train=True, mutable=["batch_stats"],
          rngs={"dropout": jax.random.fold_in(key, i)})
      loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
      return loss, (updates["batch_stats"], jnp.mean(jnp.argmax(logits, -1) == y))
    (loss, (batch_stats, acc)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), batch_stats, opt_state, loss, acc

  @jax.jit
  def predict(params, batch_stats, x):
    return jnp.argmax(module.apply({"params": params, "batch_stats": batch_stats}, x)[0], -1)

  def accuracy(params, batch_stats, data, bs=1000):
    correct = 0
    for s in range(0, len(data.images), bs):
      correct += int(np.sum(np.asarray(predict(params, batch_stats, data.images[s:s + bs]))
                            == data.labels[s:s + bs]))
    return correct / len(data.images)

  t_train = time.perf_counter()
  rng = np.random.default_rng(seed)
  i = 0
  for epoch in range(epochs):
    order = rng.permutation(n)
    losses, accs = [], []
    for j in range(steps_per_epoch):
      idx = order[j * batch_size:(j + 1) * batch_size]
      x = train_data.images[idx]
      if hflip:
        flip = rng.random(len(idx)) < 0.5
        x = np.where(flip[:, None, None, None], x[:, :, ::-1], x)
      if shift:
        x = _random_shift(x, shift, rng)
      params, batch_stats, opt_state, loss, acc = step(
          params, batch_stats, opt_state, x, train_data.labels[idx], i)
      losses.append(loss)
      accs.append(acc)
      i += 1
    log(f"epoch {epoch + 1}/{epochs}: train loss {float(np.mean(jax.device_get(losses))):.4f} "
        f"acc {float(np.mean(jax.device_get(accs))):.4f}  ({time.perf_counter() - t_train:.0f} s)")
    if epoch + 1 < epochs:  # progress only; the weights are those after the last epoch
      log(f"  test accuracy {accuracy(params, batch_stats, test_data):.4f}")
  train_seconds = time.perf_counter() - t_train
  test_acc = accuracy(params, batch_stats, test_data)
  log(f"test accuracy {test_acc:.4f} on {len(test_data.images)} {dataset}/test images")
  info = {
      "dataset": dataset,
      "test_accuracy": round(test_acc, 5),
      "test_examples": len(test_data.images),
      "train_examples": n,
      "epochs": epochs, "hflip": hflip, "shift": shift, "batch_size": batch_size,
      "learning_rate": learning_rate, "seed": seed,
      "train_seconds": round(train_seconds, 1),
      "total_seconds": round(time.perf_counter() - t0, 1),
      "data_seconds": round(t_data, 1),
      "machine": f"{platform.machine()} {os.cpu_count()} CPU(s), jax {jax.__version__} "
                 f"{jax.default_backend()}",
  }
  return module, {"params": params, "batch_stats": batch_stats}, info


def _blocks(spec):
  """``["32", "64-64"]`` -> ``(32, (64, 64))``."""
  return tuple(int(b) if "-" not in b else tuple(int(f) for f in b.split("-")) for b in spec)


def _random_shift(x, shift: int, rng):
  """Each image translated by its own offset in [-shift, shift]^2 (edge-padded)."""
  import numpy as np
  n, h, w, _ = x.shape
  padded = np.pad(x, ((0, 0), (shift, shift), (shift, shift), (0, 0)), mode="edge")
  dy, dx = rng.integers(0, 2 * shift + 1, size=(2, n))
  rows = dy[:, None] + np.arange(h)[None, :]                  # [n, h]
  cols = dx[:, None] + np.arange(w)[None, :]                  # [n, w]
  return padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]


def _raw_files(dataset: str, manual_dir: str | None) -> dict[str, str]:
  """sha256 of the raw files the dataset was built from (when built from a manual dir)."""
  from jaxgan.data.tfds_data import resolve_manual_dir
  from jaxgan.metrics.classifier import sha256_of
  root = resolve_manual_dir(manual_dir)
  if not root or not os.path.isdir(os.path.join(root, dataset)):
    return {}
  d = os.path.join(root, dataset)
  return {f: sha256_of(os.path.join(d, f)) for f in sorted(os.listdir(d))}


def define_flags() -> None:
  """The command-line flags (defined only when run as a program)."""
  flags.DEFINE_string("dataset", "fashion_mnist", "tfds image dataset (grayscale, labelled).")
  flags.DEFINE_string("out", None, "Weights file (.msgpack); default jaxgan/metrics/weights/<dataset>.msgpack.")
  flags.DEFINE_integer("epochs", 4, "Passes over the train split.")
  flags.DEFINE_integer("batch_size", 128, "Batch size.")
  flags.DEFINE_float("learning_rate", 3e-3, "Peak learning rate of the cosine schedule.")
  flags.DEFINE_integer("seed", 0, "Seed of initialisation, shuffling and dropout.")
  flags.DEFINE_string("data_dir", None, "tfds data_dir (default: tfds's).")
  flags.DEFINE_string("manual_dir", None, "Raw files for offline builds (default $JAXGAN_MANUAL_DIR).")
  flags.DEFINE_bool("hflip", False, "Random horizontal flips of training images (clothes, not digits).")
  flags.DEFINE_integer("shift", 0, "Random translations of training images by up to this many pixels.")
  flags.DEFINE_list("features", ["32", "64-64", "64"], "Conv blocks, each followed by 2x2 max "
                    "pooling: channels of its convolutions joined by '-'.")
  flags.DEFINE_integer("hidden", 128, "Width of the penultimate (feature) layer.")
  flags.DEFINE_float("dropout", 0.3, "Dropout before the logits.")
  flags.DEFINE_float("min_accuracy", 0.0, "Refuse to write weights below this test accuracy.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  FLAGS = flags.FLAGS
  if not FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)
  from jaxgan.errors import JaxganError
  from jaxgan.metrics.classifier import WEIGHTS_DIR, save_classifier
  out = FLAGS.out or os.path.join(WEIGHTS_DIR, f"{FLAGS.dataset}.msgpack")
  if not out.endswith(".msgpack"):
    raise app.UsageError(f"--out must end in .msgpack, got {out}")
  try:
    module, variables, info = train(FLAGS.dataset, FLAGS.epochs, FLAGS.batch_size,
                                    FLAGS.learning_rate, FLAGS.seed, FLAGS.data_dir,
                                    FLAGS.manual_dir, FLAGS.hflip, FLAGS.shift,
                                    _blocks(FLAGS.features), FLAGS.hidden, FLAGS.dropout)
  except JaxganError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  if info["test_accuracy"] < FLAGS.min_accuracy:
    print(f"error: test accuracy {info['test_accuracy']:.4f} < --min_accuracy {FLAGS.min_accuracy}; "
          f"nothing written", file=sys.stderr)
    sys.exit(1)
  args = " ".join(a for a in sys.argv[1:])
  info["command"] = f"python -m jaxgan.metrics.train_classifier {args}".strip()
  info["data"] = {"tfds": f"{FLAGS.dataset} train/test via jaxgan.data.load at 32x32, [-1, 1]",
                  "raw_files_sha256": _raw_files(FLAGS.dataset, FLAGS.manual_dir)}
  manifest = save_classifier(out, module, variables, info)
  print(f"wrote {out} ({manifest['bytes']} bytes, sha256 {manifest['sha256']}) and its manifest")


if __name__ == "__main__":
  define_flags()
  app.run(main)
