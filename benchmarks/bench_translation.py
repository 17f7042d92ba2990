"""A short real CycleGAN run between two known-transform MNIST domains, measured against the truth.

Domain A is ``T_a(x)``, domain B ``T_b(x)`` of the real MNIST digits
(:mod:`jaxgan.data.domains`; default: original vs inverted), unpaired (A and
B come from disjoint halves of the training set). Because the true
translation is known, the run measures on held-out test digits:

* ``mae_ab = mean|G(T_a(x)) - T_b(x)|`` and ``mae_ba = mean|F(T_b(x)) - T_a(x)|``
  (pixel values in [-1, 1]);
* ``identity_mae = mean|T_a(x) - T_b(x)|``: the error of not translating at all;
* ``cycle_a = mean|F(G(a)) - a|``, ``cycle_b``.

    python benchmarks/bench_translation.py [--steps 400] [--batch 8] [--features 16] [--blocks 2]
        [--domain_a original] [--domain_b inverted] [--eval_every 100]
        [--data_dir /tmp/tfdsdata] [--manual_dir /path/to/raw/files] [--out results.json]

Steps are :func:`jaxgan.translation.make_cyclegan_step` (the reference
iteration, history pool of 50, Adam 2e-4 (0.5, 0.999) with the learning rate
constant for the first half and decaying linearly to 0 over the second).

After a trainer run (``python train.py --config configs/cyclegan_mnist.py`` or
``configs/stargan_mnist.py``), ``--workdir`` measures its latest (or
``--step``) checkpoint instead of training: MAE against the true translation,
attribute accuracy under the independent attribute classifier, content
accuracy under the committed MNIST / Fashion-MNIST classifier, cycle /
reconstruction L1 (:class:`jaxgan.families.translation.Meter`) on
``--eval_images`` test images per dataset:

    python benchmarks/bench_translation.py --workdir runs/stargan_mnist [--eval_images 10000] [--by_target]

``--by_target`` splits StarGAN's numbers by the kind of translation (the
source's own domain, each colour, each attribute flipped): a generator that
keeps the digit for some targets and not for others shows it there.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from jaxgan import translation as tr  # noqa: E402
from jaxgan.data import domains  # noqa: E402
from jaxgan.models.translation import PatchGANDiscriminator, ResNetGenerator  # noqa: E402


def evaluate(state, data: domains.CycleGANDomains, gray: np.ndarray, batch: int = 250) -> dict:
  """Translation errors against the ground truth on the gray test images."""
  sums = {"mae_ab": 0.0, "mae_ba": 0.0, "identity_mae": 0.0, "cycle_a": 0.0, "cycle_b": 0.0}

  @jax.jit
  def errors(state, a, b):
    fake_b, fake_a = state.translate(a, "ab"), state.translate(b, "ba")
    return {"mae_ab": jnp.mean(jnp.abs(fake_b - b)), "mae_ba": jnp.mean(jnp.abs(fake_a - a)),
            "identity_mae": jnp.mean(jnp.abs(a - b)),
            "cycle_a": jnp.mean(jnp.abs(state.translate(fake_b, "ba") - a)),
            "cycle_b": jnp.mean(jnp.abs(state.translate(fake_a, "ab") - b))}

  n = len(gray) // batch
  for i in range(n):
    a, b = data.paired(gray[i * batch:(i + 1) * batch])
    for k, v in errors(state, a, b).items():
      sums[k] += float(v) / n
  return sums


def measure_run(args) -> int:
  """Loads a trainer run's checkpoint and prints its ground-truth measurements (JSON + summary)."""
  from jaxgan import sample
  from jaxgan.families import translation as translation_hooks
  state, config, step = sample.load_generator(args.workdir, args.step)
  if config.model not in ("cyclegan", "stargan"):
    print(f"{args.workdir} is a {config.model!r} run, not a translation run", file=sys.stderr)
    return 2
  for key, value in (("data_dir", args.data_dir), ("manual_dir", args.manual_dir)):
    if value:
      config.data[key] = value
  data = translation_hooks.for_config(config)
  if config.model == "cyclegan":
    train = {config.dataset: np.concatenate([data.gray_a, data.gray_b])}
  else:
    train = {name: g for name, (g, _) in zip(data.name.split("+"), data.datasets)}
  from jaxgan.metrics import default_cache_dir
  start = time.perf_counter()
  meter = translation_hooks.Meter(config, train, args.eval_images, cache_dir=default_cache_dir(),
                                  classifier_steps=int(config.get("eval_classifier_steps", 400)))
  result = {"workdir": os.path.abspath(args.workdir), "step": step, "images": meter.num,
            **meter(state), "seconds": round(time.perf_counter() - start, 1)}
  if args.by_target and config.model == "stargan":
    result["by_target"] = meter.by_target(state)
  print(json.dumps(result))
  for line in translation_hooks.summary_lines(config, result, meter.num) + meter.classifier_lines():
    print(line)
  for row in result.get("by_target", []):
    print(f"  {row['dataset']:>13s}  {row['target']:>18s}:  content acc {row['content_acc']:.4f} "
          f"(true translations {row['content_truth_acc']:.4f}; same class as the truth "
          f"{row['content_agreement']:.4f})  "
          f"attribute acc {row['attr_acc']:.4f}  MAE vs truth {row['mae']:.4f}")
  if args.out:
    pathlib.Path(args.out).write_text(json.dumps(result, indent=1))
  return 0


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--steps", type=int, default=400)
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--features", type=int, default=16)
  parser.add_argument("--blocks", type=int, default=2)
  parser.add_argument("--d_layers", type=int, default=2)
  parser.add_argument("--pool", type=int, default=50)
  parser.add_argument("--lr", type=float, default=2e-4)
  parser.add_argument("--domain_a", default="original")
  parser.add_argument("--domain_b", default="inverted")
  parser.add_argument("--eval_every", type=int, default=100)
  parser.add_argument("--eval_images", type=int, default=1000)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--data_dir", default=None)
  parser.add_argument("--manual_dir", default=None)
  parser.add_argument("--out", default=None, help="write the results as JSON here")
  parser.add_argument("--workdir", default=None, help="measure this trainer run instead of training")
  parser.add_argument("--step", type=int, default=None, help="with --workdir: the checkpoint step")
  parser.add_argument("--by_target", action="store_true",
                      help="with a StarGAN --workdir: also each kind of translation on its own (the "
                           "source's own domain, each colour, each attribute flipped)")
  args = parser.parse_args(argv)
  if args.workdir:
    return measure_run(args)

  train, _ = domains.load_gray("mnist", "train", args.data_dir, args.manual_dir)
  test, _ = domains.load_gray("mnist", "test", args.data_dir, args.manual_dir)
  test = test[:args.eval_images]
  data = domains.CycleGANDomains(train, args.domain_a, args.domain_b, "mnist")
  g = ResNetGenerator(features=args.features, num_blocks=args.blocks)
  d = PatchGANDiscriminator(features=args.features, num_layers=args.d_layers)
  g_tx = tr.adam_linear_decay(args.lr, args.steps, args.steps // 2)
  d_tx = tr.adam_linear_decay(args.lr, args.steps, args.steps // 2)
  state = tr.create_cyclegan_state(g, d, g_tx, d_tx, jax.random.PRNGKey(args.seed),
                                   data.example_shape, pool_size=args.pool)
  step = tr.make_cyclegan_step(donate=True)
  print(f"{data.name}: {args.steps} steps of batch {args.batch}, G features {args.features} "
        f"blocks {args.blocks}, PatchGAN layers {args.d_layers}, backend {jax.default_backend()}",
        flush=True)
  records = [{"step": 0, **evaluate(state, data, test)}]
  print(json.dumps(records[-1]), flush=True)
  start, compile_s = time.perf_counter(), None
  for i, batch in enumerate(data.stream(args.batch, args.seed), start=1):
    state, metrics = step(state, batch)
    if compile_s is None:
      jax.block_until_ready(state.step)
      compile_s = time.perf_counter() - start
    if i % args.eval_every == 0 or i == args.steps:
      m = {k: float(v) for k, v in metrics.items()}
      records.append({"step": i, "seconds": round(time.perf_counter() - start, 1),
                      **evaluate(state, data, test),
                      "train_g_loss": m["g_loss"], "train_d_loss": m["d_loss"]})
      print(json.dumps(records[-1]), flush=True)
    if i == args.steps:
      break
  result = {"args": vars(args), "compile_s": round(compile_s, 1), "records": records,
            "device": str(jax.devices()[0])}
  if args.out:
    pathlib.Path(args.out).write_text(json.dumps(result, indent=1))
  return 0


if __name__ == "__main__":
  sys.exit(main())
