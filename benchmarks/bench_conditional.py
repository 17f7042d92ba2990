"""Quality of label-aware runs: conditional correctness, intra-FID, semi-supervised test accuracy.

For each ``--workdir`` written by ``train.py`` (the latest checkpoint, or ``--step``):

* conditional GAN / ACGAN: ``--samples_per_class`` samples ``G(z, y)`` of
  every class; **conditional correctness** = the share that the dataset's
  committed classifier (``jaxgan/metrics/weights/<dataset>.msgpack``, hash
  checked) assigns to ``y``, per class and overall, and the **intra-FID**
  (mean over classes of the FID of class ``k``'s samples against the real test
  images of class ``k``, in that classifier's feature space);
* semi-supervised GAN: the discriminator's accuracy on the real test split
  (all of it; D's Polyak-averaged parameters when the run kept them,
  ``config.d_ema``, and the current ones beside), its accuracy per class and
  its three largest confusions (true class read as another), and the labels
  it was trained with.

    python benchmarks/bench_conditional.py --workdir runs/cgan_mnist [--workdir runs/acgan_fmnist ...]
        [--samples_per_class 1000] [--data_dir /tmp/tfdsdata] [--json out.json]

Prints one Markdown row per run (with the command that trained it, from its
``config.json``) for the tables of docs/label-aware.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def measure(workdir: str, samples_per_class: int, step: int | None, data_dir: str | None,
            seed: int = 0) -> dict:
  from jaxgan import data as data_lib
  from jaxgan import families
  from jaxgan.families import conditional as ch
  from jaxgan.families import sgan as semi
  from jaxgan.metrics import load_classifier
  from jaxgan.sample import load_generator

  t0 = time.perf_counter()
  state, config, step = load_generator(workdir, step)
  fam = families.for_config(config).name
  test = data_lib.load(config.dataset, "test", config.image_size or None,
                       data_dir=data_dir or config.data.data_dir or None,
                       manual_dir=config.data.manual_dir or None)
  row = {"workdir": workdir, "model": config.model, "dataset": config.dataset, "step": step,
         "family": fam}
  if fam in ("cgan", "acgan"):
    k = int(state.generator.num_classes)
    labels = np.repeat(np.arange(k, dtype=np.int32), samples_per_class)
    images = ch.generate_conditional(state, labels, seed)
    metric = ch.ConditionalCorrectness(load_classifier(config.dataset), test.images, test.labels, k)
    row.update(metric(images, labels))
    row["samples_per_class"] = samples_per_class
    row["classifier_real_accuracy"] = metric.real_accuracy
  elif fam == "sgan":
    from jaxgan.ema import ema_params
    averaged = ema_params(state.d_opt_state, state.d_params)  # config.d_ema: Polyak average
    predicted = semi.discriminator_predictions(state, test.images, d_params=averaged)
    truth = np.asarray(test.labels)
    acc = float(np.mean(predicted == truth))
    k = int(test.num_classes)
    confusion = np.zeros((k, k), np.int64)  # rows: true class, columns: predicted
    np.add.at(confusion, (truth, predicted), 1)
    row["class_acc"] = [float(confusion[c, c] / max(confusion[c].sum(), 1)) for c in range(k)]
    off = confusion * (1 - np.eye(k, dtype=np.int64))
    top = np.argsort(off, axis=None)[::-1][:3]
    row["top_confusions"] = [[int(t // k), int(t % k), int(off.flat[t])] for t in top if off.flat[t]]
    if averaged is not None:
      row["test_acc_raw"] = semi.discriminator_accuracy(state, test.images, test.labels)
    sgan = config.get("sgan", {})
    row.update({"test_acc": acc, "test_error": 1 - acc, "averaged": averaged is not None,
                "labels": int(sgan.get("labels_per_class", 10)) * int(test.num_classes),
                "unsupervised_weight": float(sgan.get("unsupervised_weight", 0.5))})
  else:
    raise SystemExit(f"{workdir}: model {config.model!r} is not label-aware")
  row["seconds"] = round(time.perf_counter() - t0, 1)
  return row


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--workdir", action="append", required=True, help="a run directory (repeatable)")
  p.add_argument("--samples_per_class", type=int, default=1000)
  p.add_argument("--step", type=int, default=None)
  p.add_argument("--data_dir", default=None)
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--json", default=None, help="also write the rows here")
  args = p.parse_args(argv)
  rows = [measure(w, args.samples_per_class, args.step, args.data_dir, args.seed) for w in args.workdir]
  print("| run | model | data | step | result | measured in |")
  print("|---|---|---|---|---|---|")
  for r in rows:
    if r["family"] == "sgan":
      result = (f"test error {100 * r['test_error']:.2f}% ({r['labels']} labels, "
                f"unsupervised weight {r['unsupervised_weight']}"
                + (f"; averaged D, current D {100 * (1 - r['test_acc_raw']):.2f}%" if r["averaged"] else "")
                + "); worst class " + f"{100 * min(r['class_acc']):.1f}% (class {int(np.argmin(r['class_acc']))})"
                + "".join(f"; {t} read as {p}: {n}" for t, p, n in r["top_confusions"]))
    else:
      per = [r[f"cond_acc_{k}"] for k in range(10) if f"cond_acc_{k}" in r]
      result = (f"correctness {100 * r['cond_acc']:.2f}% (worst class {100 * min(per):.1f}%), "
                f"intra-FID {r['intra_fid']:.2f} ({r['samples_per_class']}/class)")
    print(f"| {r['workdir']} | {r['model']} | {r['dataset']} | {r['step']} | {result} | {r['seconds']} s |")
  if args.json:
    with open(args.json, "w") as f:
      json.dump(rows, f, indent=2)


if __name__ == "__main__":
  main()
