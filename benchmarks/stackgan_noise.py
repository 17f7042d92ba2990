"""Where a StackGAN run's conditioning-augmentation noise goes, and what it costs the caption.

For the Stage-I generator of a run's checkpoint, on the caption meter's test captions (half seen,
half held-out (class, colour) pairs): the spread of ``mu`` over the captions and the per-dimension
``sigma``; the dimensions whose sigma stands out (above ``--factor`` times the median, or above
``--sigma``); and whole-caption accuracy with the noise as drawn, with the noise switched off on
those dimensions only, with the noise on those dimensions only, and with ``c = mu``; with ``--truncation``, with ``z`` and the noise drawn
from the truncated normal.

    python benchmarks/stackgan_noise.py --workdir runs/stackgan_mnist [--step N] [--num 1000] \
        [--truncation 0.5,0.25]

Results: docs/text-to-image.md ("Where the noise goes").
"""

from absl import app, flags, logging

flags.DEFINE_string("workdir", None, "A StackGAN run directory.")
flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).")
flags.DEFINE_integer("num", 1000, "Test captions scored.")
flags.DEFINE_float("factor", 3.0, "A dimension stands out above this times the median sigma...")
flags.DEFINE_float("sigma", 0.0, "... or, when > 0, above this sigma.")
flags.DEFINE_list("truncation", [], "Also score z and the noise drawn from the normal truncated "
                  "to [-psi, psi], for each psi of this list (what jaxgan.sample --truncation does).")
FLAGS = flags.FLAGS


def main(argv):
  del argv
  logging.set_verbosity(logging.ERROR)
  import jax
  import jax.numpy as jnp
  import numpy as np

  from jaxgan.families.stackgan import CaptionMeter
  from jaxgan.sample import load_generator

  state, config, step = load_generator(FLAGS.workdir, FLAGS.step)
  meter = CaptionMeter(config, num=FLAGS.num)
  emb = jnp.asarray(meter.table[meter.caption_ids], jnp.float32)
  z = jax.random.normal(jax.random.PRNGKey(3), (len(emb), state.latent_dim))
  eps = jax.random.normal(jax.random.PRNGKey(4), (len(emb), int(state.generator.condition_dim)))
  variables = {"params": state.g_params["stage1"], "batch_stats": state.g_batch_stats["stage1"]}
  stage1 = jax.jit(lambda e, sample=True, latents=z: state.generator.apply(
      variables, latents, emb, train=False, eps=e, sample_condition=sample), static_argnums=1)

  _, mu, logvar = stage1(eps)
  sigma = np.asarray(jnp.exp(0.5 * logvar)).mean(axis=0)
  spread = np.asarray(jnp.std(mu, axis=0))
  limit = FLAGS.sigma if FLAGS.sigma > 0 else FLAGS.factor * float(np.median(sigma))
  out = sigma > limit
  print(f"{FLAGS.workdir} step {step}: mu's spread over captions {spread.mean():.2f} "
        f"(median {np.median(spread):.2f}); sigma median {np.median(sigma):.2f}, "
        f"mean {sigma.mean():.2f}")
  print(f"dimensions with sigma > {limit:.2f}: "
        + (", ".join(f"{i} (sigma {sigma[i]:.1f}, mu spread {spread[i]:.2f})"
                     for i in np.flatnonzero(out)) or "none"))

  def accuracy(e, sample=True, latents=z):
    scores = meter.score(np.asarray(stage1(e, sample, latents)[0]))[0]
    return f"{100 * scores['caption_acc_seen']:.1f} % / {100 * scores['caption_acc_heldout']:.1f} %"

  keep = jnp.asarray(~out, jnp.float32)
  print("whole captions right (seen / held-out):")
  print(f"  noise as drawn:                      {accuracy(eps)}")
  print(f"  noise off on those dimensions:       {accuracy(eps * keep)}")
  print(f"  noise on those dimensions only:      {accuracy(eps * (1 - keep))}")
  print(f"  c = mu:                              {accuracy(eps, False)}")
  for psi in [None, *map(float, FLAGS.truncation)]:
    m = meter(state, stage2=False, truncation=psi)
    print(f"the caption meter, z and noise {'as drawn' if psi is None else f'truncated at {psi:g}'}: "
          f"{100 * m['stage1_caption_acc_seen']:.1f} % / {100 * m['stage1_caption_acc_heldout']:.1f} %, "
          f"diversity {m['stage1_diversity']:.2f}")

if __name__ == "__main__":
  flags.mark_flag_as_required("workdir")
  app.run(main)
