"""Quality of a trained run: ``python -m jaxgan.evaluate --workdir runs/dcgan_fmnist [--num 10000] [--step N]``.

Samples ``--num`` images from the checkpoint as :mod:`jaxgan.sample` does (the same
uint8 images ``python -m jaxgan.sample`` would write with the same ``--seed``),
measures them against the real ``--split`` of the run's dataset with
:class:`jaxgan.metrics.Evaluator` (FID, KID, precision, recall, classifier score),
prints a table and writes ``eval.json`` into the workdir.
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from jaxgan.errors import JaxganError  # noqa: E402


def evaluate(workdir: str, num: int = 10_000, step: int | None = None, seed: int = 0,
             batch_size: int = 500, split: str = "test", cache_dir: str | None = None,
             data_dir: str | None = None, manual_dir: str | None = None,
             out: str | None = None, log=print, best: bool = False,
             features: str = "classifier", raw: bool = False) -> dict:
  """Samples ``workdir``'s checkpoint, computes all metrics, writes ``eval.json``; returns its dict.

  ``data_dir`` / ``manual_dir`` default to the run's ``config.data``. ``features``: the feature
  space of FID, KID and precision/recall, ``"classifier"`` or ``"inception"``
  (:class:`jaxgan.metrics.Evaluator`).
  """
  from jaxgan import families
  from jaxgan.metrics import Evaluator
  from jaxgan.sample import load_generator

  from jaxgan.fid import FEW_IMAGES
  if features == "inception" and num < FEW_IMAGES:
    log(f"warning: {num} samples: Inception FID is biased upwards at small N (the bias falls as "
        f"1/N), so compare only FIDs of equal --num; papers use 10,000 or 50,000")
  t0 = time.perf_counter()
  state, config, step = load_generator(workdir, step, best, raw)
  images = families.for_config(config).draw(state, config, num, seed, batch_size).arrays["images"]
  if images.ndim != 4:
    raise JaxganError(f"{workdir} is a {config.model} run: it translates test images, which "
                      f"jaxgan.evaluate does not score; its measurements are logged every "
                      f"config.eval_every steps (metrics.jsonl)")
  evaluator = Evaluator(config.dataset, config.image_size, num_samples=num, split=split,
                        data_dir=data_dir or config.data.get("data_dir") or None,
                        manual_dir=manual_dir or config.data.get("manual_dir") or None,
                        cache_dir=cache_dir, log=log, features=features)
  metrics = evaluator.evaluate(images, with_shares=True)
  shares = metrics.pop("class_shares", [])
  result = {"workdir": os.path.abspath(workdir), "step": int(step), "best": bool(best),
            "generator": "raw" if raw or not config.get("g_ema", 0.0) else "average",
            "num_samples": int(num),
            "seed": int(seed), "model": config.model, "loss": config.loss,
            "metrics": {k: float(v) for k, v in metrics.items() if k != "num_samples"},
            "class_shares": [float(v) for v in shares],
            "reference": evaluator.info(), "seconds": round(time.perf_counter() - t0, 1)}
  out = out or os.path.join(workdir, "eval.json")
  with open(out, "w") as f:
    json.dump(result, f, indent=2)
    f.write("\n")
  log(format_table(result))
  log(f"wrote {out}")
  return result


# Datasets whose labels are not their own names (MNIST's are: the fallback prints the index).
CLASS_NAMES = {"fashion_mnist": ("T-shirt/top", "trouser", "pullover", "dress", "coat", "sandal",
                                  "shirt", "sneaker", "bag", "ankle boot")}


def format_table(result: dict) -> str:
  """A plain-text table of an ``eval.json`` dict."""
  m, ref = result["metrics"], result["reference"]
  rows = [("FID", f"{m['fid']:.4f}"),
          ("KID", f"{m['kid']:.5f} ± {m['kid_std']:.5f}"),
          ("precision (k=%d)" % ref["k"], f"{m['precision']:.4f}"),
          ("recall (k=%d)" % ref["k"], f"{m['recall']:.4f}")]
  if "classifier_score" in m:   # datasets without a classifier (Inception space only) have none
    rows.append(("classifier score", f"{m['classifier_score']:.4f}  "
                                     f"(real {ref['split']}: {ref['classifier_score_real']:.4f})"))
  if "class_tv" in m:  # eval.json files written before the class balance have none
    rows.append(("class TV", f"{m['class_tv']:.4f}  (0: the real class balance; "
                             f"{1 - min(ref['class_shares_real']):.2f}: one class only)"))
    names = CLASS_NAMES.get(ref["dataset"]) or [str(k) for k in range(len(result["class_shares"]))]
    rows.append(("class shares", ", ".join(f"{name} {100 * v:.1f} %"
                                           for name, v in zip(names, result["class_shares"]))))
  width = max(len(r[0]) for r in rows)
  accuracy = (f", classifier accuracy on real {ref['split']} {ref['classifier_accuracy_real']:.4f}"
              if "classifier_accuracy_real" in ref else "")
  head = (f"{result['workdir']} step {result['step']}: {result['num_samples']} samples vs "
          f"{ref['dataset']}/{ref['split']} ({ref['reference_examples']} images), features of "
          f"{ref['feature_network']} (sha256 {ref['feature_network_sha256'][:12]}{accuracy})")
  lines = [head, f"{'metric':<{width}}  value", f"{'-' * width}  {'-' * 24}"]
  lines += [f"{name:<{width}}  {value}" for name, value in rows]
  return "\n".join(lines)


def define_flags() -> None:
  """The command-line flags (defined only when run as a program)."""
  flags.DEFINE_string("workdir", None, "Run directory written by train.py.")
  flags.DEFINE_integer("num", 10_000, "Number of samples (and at most as many real reference images "
                       "for KID and precision/recall).")
  flags.DEFINE_integer("step", None, "Checkpoint step (default: latest).")
  flags.DEFINE_bool("best", False, "Evaluate the lowest-FID checkpoint (best/, kept by eval_every runs).")
  flags.DEFINE_integer("seed", 0, "Seed of the latent noise.")
  flags.DEFINE_integer("batch_size", 500, "Images per generator call.")
  flags.DEFINE_string("split", "test", "Real split to compare with.")
  flags.DEFINE_string("cache_dir", None, "Reference-statistics cache (default $JAXGAN_CACHE_DIR "
                      "or ~/.cache/jaxgan).")
  flags.DEFINE_string("data_dir", None, "tfds data_dir (default: the run's config.data.data_dir).")
  flags.DEFINE_string("manual_dir", None, "Raw files for offline builds (default: the run's "
                      "config, else $JAXGAN_MANUAL_DIR).")
  flags.DEFINE_string("out", None, "Output JSON (default <workdir>/eval.json).")
  flags.DEFINE_bool("raw", False, "A run trained with config.g_ema: evaluate the current "
                    "generator instead of its parameter average.")
  flags.DEFINE_enum("features", "classifier", ["classifier", "inception"], "Feature space of FID, "
                    "KID and precision/recall: the dataset's classifier (fast) or the FID "
                    "Inception network (the field's numbers).")


def main(argv):
  from jaxgan.sample import cli_flags, fail
  FLAGS = cli_flags(argv)
  if FLAGS.num < 4 or FLAGS.batch_size <= 0:
    fail(f"--num must be at least 4 (a few thousand for meaningful numbers) and --batch_size "
         f"positive (got --num={FLAGS.num} --batch_size={FLAGS.batch_size})")
  try:
    evaluate(FLAGS.workdir, FLAGS.num, FLAGS.step, FLAGS.seed, FLAGS.batch_size, FLAGS.split,
             FLAGS.cache_dir, FLAGS.data_dir, FLAGS.manual_dir, FLAGS.out, best=FLAGS.best,
             features=FLAGS.features, raw=FLAGS.raw)
  except JaxganError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
  define_flags()
  app.run(main)
