"""Captioned images for text-to-image GANs: coloured MNIST / Fashion-MNIST with known attributes,
and a user's folder of captioned images.

**Captioned digits and garments** (:func:`captioned`). Each grayscale image ``x`` in [-1, 1]
(intensity ``alpha = (x + 1) / 2``) is drawn in colour over a background,
``img = bg * (1 - alpha) + colour * alpha``, with two attributes drawn per image:

* ``colour``: one of :data:`PALETTE` (red, yellow, green, cyan, blue, magenta: six hues 60 degrees
  apart, each far from both backgrounds);
* MNIST: ``stroke`` ``thin`` / ``thick``. The stroke is normalised per digit so that the two are
  apart whatever the writer's pen (:func:`set_stroke`): :func:`stroke_width` (twice the ink over
  the total variation, in 28-pixel units) of a thin digit is at most 2.0 (kept, or thinned by a
  blend with its grey erosion), of a thick one at least 3.7 (kept, or grown by a blend of grey
  dilations to exactly that: more would cost the digit its shape at 16x16). The background stays
  black.
* Fashion-MNIST: ``background`` ``dark`` (black) / ``light`` (grey 0.9).

The 28x28 intensity is resized to ``image_size`` (bilinear, antialiased) before compositing, so
every pixel of an image lies on the segment from its background to its colour: what
:func:`read_attributes` relies on. Images are kept as uint8 RGB (60,000 at 32x32 are 184 MB) and
converted to float32 in [-1, 1] per batch, as :class:`~jaxgan.data.tfds_data.ImageData` does.

**Held-out combinations.** Class ``k`` in colour ``PALETTE[k % 6]`` (:data:`HELDOUT`: zero, six
red; one, seven yellow; two, eight green; three, nine cyan; four blue; five magenta: every class
and every colour, 10 of the 60 pairs) never occurs in the train split (such an image's colour
is redrawn among the class's five others); the test split has every pair, and
``CaptionedData.heldout_mask`` marks the held-out ones, so a measure can compare captions seen
in training with compositions that were not.

**Captions** come from :data:`TEMPLATES` (10 per dataset, varied word orders) over class names
with synonyms (:data:`NOUNS`: "seven" / "7", "pair of pants", "jumper", "running shoe", ...)
and attribute words ("thick" / "heavy" / "bold", "dark" / "black", ...). Each image gets
``captions_per_image`` captions of distinct templates. They are stored as a vocabulary
(``CaptionedData.captions``, sorted distinct strings) and per-example indices into it
(``caption_ids``). :func:`parse_caption` reads class, colour and attribute back from any text.

Attributes and captions are pure functions of ``(seed, split, index in the split)``: drawn from
``np.random.default_rng([seed, TAG, k, crc32(split)])`` streams in split order, so a process's
part of a split (``part``) gets the same ones as the whole split.

**Reading images back** (:func:`read_attributes`, :func:`to_gray`) uses pixel statistics only, no
learned network: the background is the median of the border pixels (snapped to the dataset's
backgrounds); the colour is the palette colour whose direction from the background holds the
most of the image's difference from it (the squared positive projections); the intensity is that
projection; the stroke is :func:`stroke_width` of the intensity against a threshold of 3.3; the
background is the nearer of dark and light. :func:`to_gray` gives the intensity in the
original polarity, which the committed grayscale classifiers
(:func:`jaxgan.metrics.classifier.load_classifier`) read. Measured on the 10,000 test images
(seed 0): colour 100 % and background 100 % at 16, 32 and 64 px, stroke 99.96 % / 99.97 % /
99.97 %; the classifier on ``to_gray`` 97.4 % / 98.9 % / 98.8 % (MNIST; uncoloured images at the
same size: 98.7 / 99.4 / 99.3 %) and 78.3 % / 92.6 % / 91.3 % (Fashion-MNIST; uncoloured: the
same), so the colours cost MNIST about one point (the normalised strokes) and Fashion-MNIST
nothing: the 16-px garments lose their detail in the resizing itself.

**A user's folder** (:func:`caption_folder`): ``path/captions.jsonl`` with one JSON object per
line, ``{"image": "a.jpg", "captions": ["...", ...]}`` (or ``"caption": "..."``), images
centre-cropped to a square and resized.

Batches (:meth:`CaptionedData.stream`) are ``{"image": float32 [B, H, W, 3], "caption": int32
[B] (index into ``captions``), "label": int32 [B]}``; batch ``i`` is a pure function of
``(seed, i)``: epoch ``e``'s order is ``default_rng([seed, e]).permutation(n)`` as in
:class:`~jaxgan.data.tfds_data.BatchStream`, and each image's caption is drawn with
``default_rng([seed, TAG, 6, i])``.
"""

from __future__ import annotations

import functools
import json
import os
import re
import zlib
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from jaxgan.data.tfds_data import BatchStream, DataError, ImageData, as_float, load

DATASETS = ("mnist", "fashion_mnist")
_TAG = 0xCA97          # the seeds of this module, kept apart from the other streams
_COLOUR, _REDRAW, _ATTRIBUTE, _TEMPLATE, _NOUN, _WORD, _BATCH, _SINGLE = range(8)

PALETTE: tuple[tuple[str, tuple[float, float, float]], ...] = (
    ("red", (1.0, 0.0, 0.0)), ("yellow", (1.0, 1.0, 0.0)), ("green", (0.0, 1.0, 0.0)),
    ("cyan", (0.0, 1.0, 1.0)), ("blue", (0.0, 0.0, 1.0)), ("magenta", (1.0, 0.0, 1.0)))
COLOUR_NAMES = tuple(n for n, _ in PALETTE)
_RGB = np.array([c for _, c in PALETTE], np.float32)
BACKGROUNDS = {"dark": (0.0, 0.0, 0.0), "light": (0.9, 0.9, 0.9)}

# The second attribute of each dataset: its name and its values (index = the attribute's value).
SECOND = {"mnist": ("stroke", ("thin", "thick")),
          "fashion_mnist": ("background", ("dark", "light"))}

# Held out of the train split: class k in colour k % 6.
HELDOUT = tuple((k, k % len(PALETTE)) for k in range(10))

CLASS_NAMES = {
    "mnist": ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
    "fashion_mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                      "Sneaker", "Bag", "Ankle boot"),
}

# The nouns captions use for each class (all are read back by parse_caption).
NOUNS = {
    "mnist": tuple((w, str(k)) for k, w in enumerate(CLASS_NAMES["mnist"])),
    "fashion_mnist": (("t-shirt", "top", "tee"), ("pair of trousers", "pair of pants"),
                      ("pullover", "sweater", "jumper"), ("dress",), ("coat", "jacket"),
                      ("sandal",), ("shirt",), ("sneaker", "trainer", "running shoe"),
                      ("bag", "handbag"), ("ankle boot", "boot")),
}
# The words captions use for each value of the second attribute.
WORDS = {
    "mnist": (("thin", "fine", "slim"), ("thick", "heavy", "bold")),
    "fashion_mnist": (("dark", "black"), ("light", "white")),
}
# More words parse_caption understands (plurals are read as their singular too).
_EXTRA_NOUNS = {
    "mnist": {},
    "fashion_mnist": {0: ("tshirt", "tee shirt"), 1: ("trousers", "trouser", "pants"),
                      2: ("sweatshirt",), 7: ("trainers", "sneakers")},
}
_EXTRA_WORDS = {
    "mnist": {0: ("narrow",), 1: ("fat", "wide")},
    "fashion_mnist": {0: ("dim",), 1: ("bright", "pale")},
}
_EXTRA_COLOURS = {5: ("purple", "pink", "violet", "fuchsia"), 3: ("turquoise", "aqua")}

# Caption templates: {noun}, {colour}, {word} (the second attribute), and {a_noun}, {a_colour},
# {a_word}: the article ("a" / "an") of the word that follows.
TEMPLATES = {
    "mnist": (
        "{a_word} {word} {colour} {noun}",
        "the digit {noun}, drawn in {colour} with {a_word} {word} stroke",
        "{noun} in {colour}, {word} lines",
        "{a_colour} {colour} {noun} written with {word} strokes",
        "{word} {colour} handwriting of the number {noun}",
        "the number {noun} in {word} {colour} ink",
        "a handwritten {noun}, {colour} and {word}",
        "{a_colour} {colour} {noun} with {word} strokes on black",
        "{colour} ink, {word} pen: the digit {noun}",
        "{noun}, written in {colour} with {a_word} {word} pen",
    ),
    "fashion_mnist": (
        "{a_colour} {colour} {noun} on {a_word} {word} background",
        "{a_word} {word} picture of {a_colour} {colour} {noun}",
        "{colour} {noun}, {word} background",
        "a photo of {a_colour} {colour} {noun} against {a_word} {word} backdrop",
        "on {a_word} {word} background, {a_colour} {colour} {noun}",
        "{a_noun} {noun} in {colour}, {word} backdrop",
        "the {noun} is {colour} and the background is {word}",
        "{a_word} {word} image showing {a_colour} {colour} {noun}",
        "{noun}, {colour}, on {a_word} {word} background",
        "{colour} {noun} over {a_word} {word} backdrop",
    ),
}
_SYNONYM_DRAW = 6   # synonyms are drawn as integers(6) % count: uniform for 1, 2 or 3 synonyms

# Stroke normalisation (MNIST), in the 28-pixel units of stroke_width.
THIN_WIDTH, THICK_WIDTH, READ_WIDTH = 2.0, 3.7, 3.3
_CHUNK_PIXELS = 1 << 22   # images per chunk of work: about 4M pixels


def _chunk(side: int) -> int:
  return max(1, _CHUNK_PIXELS // max(28 * 28, side * side))


def _dataset(name: str) -> str:
  """``"mnist"`` / ``"fashion_mnist"`` from a dataset name or a ``captioned_*`` one."""
  base = name[len("captioned_"):] if name.startswith("captioned_") else name
  if base not in DATASETS:
    raise DataError(f"no captioned dataset {name!r}: choose one of {list(DATASETS)}")
  return base


def attribute_names(name: str) -> dict[str, list[str]]:
  """The value names of ``name``'s attributes: ``{"colour": [...], "stroke" or "background":
  [...]}``."""
  second, values = SECOND[_dataset(name)]
  return {"colour": list(COLOUR_NAMES), second: list(values)}


def is_heldout(labels, colours) -> np.ndarray:
  """Whether each (class, colour) pair is held out of the train split (:data:`HELDOUT`)."""
  return np.asarray(colours) == np.asarray(labels) % len(PALETTE)


# ---------------------------------------------------------------------------------------
# Captions

def _article(word: str) -> str:
  w = word.lower()
  return "an" if (w[:1] in "aeiou" and not w.startswith("one")) or w[:1] == "8" else "a"


def _value(name: str, key: str, value) -> int:
  names = attribute_names(name)[key]
  if isinstance(value, str):
    if value not in names:
      raise DataError(f"{key} {value!r} is not one of {names}")
    return names.index(value)
  value = int(value)
  if not 0 <= value < len(names):
    raise DataError(f"{key} {value} is outside [0, {len(names)})")
  return value


def caption_for(name: str, label: int, attributes: Mapping[str, Any],
                template: int | np.random.Generator = 0, noun: int = 0, word: int = 0) -> str:
  """One caption of class ``label`` with ``attributes`` (``{"colour": "red" or 0, "stroke": ...}``
  or ``"background"``, value names or indices): template ``template`` (modulo the number of
  templates) with the ``noun``-th class noun and the ``word``-th attribute word (both modulo
  their counts); given a ``np.random.Generator``, all three are drawn from it."""
  base = _dataset(name)
  second = SECOND[base][0]
  missing = [k for k in ("colour", second) if k not in attributes]
  if missing:
    raise DataError(f"a {base} caption needs the attributes {missing} (e.g. "
                    f"{{'colour': 'red', {second!r}: {SECOND[base][1][1]!r}}})")
  label = int(label)
  if not 0 <= label < 10:
    raise DataError(f"class {label} is outside [0, 10)")
  colour = _value(base, "colour", attributes["colour"])
  value = _value(base, second, attributes[second])
  if isinstance(template, np.random.Generator):
    rng = template
    template = int(rng.integers(len(TEMPLATES[base])))
    noun, word = int(rng.integers(_SYNONYM_DRAW)), int(rng.integers(_SYNONYM_DRAW))
  return _format(base, label, colour, value, template, noun, word)


def _format(base: str, label: int, colour: int, value: int, template: int, noun: int,
            word: int) -> str:
  nouns, words = NOUNS[base][label], WORDS[base][value]
  n, w, c = nouns[noun % len(nouns)], words[word % len(words)], COLOUR_NAMES[colour]
  text = TEMPLATES[base][template % len(TEMPLATES[base])]
  return text.format(noun=n, colour=c, word=w, a_noun=_article(n), a_colour=_article(c),
                     a_word=_article(w))


def make_captions(name: str, label: int, attributes: Mapping[str, Any], n: int = 5,
                  seed: int = 0) -> list[str]:
  """``n`` captions of one image (distinct templates while there are enough), seeded."""
  base = _dataset(name)
  second = SECOND[base][0]
  colour = _value(base, "colour", attributes["colour"])
  value = _value(base, second, attributes[second])
  rng = np.random.default_rng([seed, _TAG, _SINGLE, int(label), colour, value])
  t, s, w = _draw_captions(rng, rng, rng, 1, n, len(TEMPLATES[base]))
  return [_format(base, int(label), colour, value, int(t[0, j]), int(s[0, j]), int(w[0, j]))
          for j in range(n)]


def _draw_captions(rt, rn, rw, count: int, per_image: int, num_templates: int):
  """Per image and caption: a template (distinct within an image while there are enough), a noun
  and a word choice."""
  reps = -(-per_image // num_templates)
  order = np.argsort(rt.random((count, reps * num_templates)), axis=1, kind="stable")
  templates = (order % num_templates)[:, :per_image]
  return (templates, rn.integers(_SYNONYM_DRAW, size=(count, per_image)),
          rw.integers(_SYNONYM_DRAW, size=(count, per_image)))


def _tokens(text: str) -> list[str]:
  return re.findall(r"[a-z0-9]+", text.lower())


@functools.lru_cache(maxsize=None)
def _phrases(base: str) -> tuple[dict[tuple[str, ...], tuple[str, int]], set[str]]:
  """Every phrase :func:`parse_caption` knows, as token tuples -> (key, value)."""
  second = SECOND[base][0]
  table: dict[tuple[str, ...], tuple[str, int]] = {}
  for k, nouns in enumerate(NOUNS[base]):
    for p in nouns + _EXTRA_NOUNS[base].get(k, ()):
      table[tuple(_tokens(p))] = ("label", k)
  for v, words in enumerate(WORDS[base]):
    for p in words + _EXTRA_WORDS[base].get(v, ()):
      table[tuple(_tokens(p))] = (second, v)
  for c, colour in enumerate(COLOUR_NAMES):
    for p in (colour,) + _EXTRA_COLOURS.get(c, ()):
      table[tuple(_tokens(p))] = ("colour", c)
  return table, {t for p in table for t in p}


def parse_caption(name: str, text: str) -> dict[str, int] | None:
  """The class (``"label"``), ``"colour"`` and second attribute a caption names, as indices:
  e.g. ``{"label": 7, "colour": 0, "stroke": 1}`` for "a thick red seven". Words are matched on
  the synonym lists (longest phrase first, plurals as singulars); a key named with two different
  values is left out as ambiguous, an unnamed one is absent; None when nothing is named."""
  base = _dataset(name)
  table, vocabulary = _phrases(base)
  longest = max(len(p) for p in table)
  tokens = []
  for t in _tokens(text):
    if t not in vocabulary:
      for cut in (1, 2):  # plurals: "boots", "dresses"
        if t.endswith("s" if cut == 1 else "es") and t[:-cut] in vocabulary:
          t = t[:-cut]
          break
    tokens.append(t)
  found: dict[str, set[int]] = {}
  i = 0
  while i < len(tokens):
    for size in range(min(longest, len(tokens) - i), 0, -1):
      hit = table.get(tuple(tokens[i:i + size]))
      if hit:
        found.setdefault(hit[0], set()).add(hit[1])
        i += size
        break
    else:
      i += 1
  out = {k: next(iter(v)) for k, v in found.items() if len(v) == 1}
  return out or None


# ---------------------------------------------------------------------------------------
# Rendering and reading

def _shift_extreme(a: np.ndarray, size: int, op) -> np.ndarray:
  """Grey dilation (``np.maximum``, zero padding) or erosion (``np.minimum``), ``size x size``."""
  p = size // 2
  h, w = a.shape[1:3]
  pad = np.pad(a, ((0, 0), (p, size - 1 - p), (p, size - 1 - p), (0, 0)))
  out = pad[:, :h, :w].copy()
  for dy in range(size):
    for dx in range(size):
      op(out, pad[:, dy:dy + h, dx:dx + w], out=out)
  return out


def dilate(alpha: np.ndarray, size: int = 3) -> np.ndarray:
  """Grey dilation of intensities ``[N, H, W, 1]`` in [0, 1] (max over ``size x size``)."""
  return _shift_extreme(alpha, size, np.maximum)


def erode(alpha: np.ndarray, size: int = 2) -> np.ndarray:
  """Grey erosion of intensities ``[N, H, W, 1]`` in [0, 1] (min over ``size x size``)."""
  return _shift_extreme(alpha, size, np.minimum)


def stroke_width(alpha: np.ndarray) -> np.ndarray:
  """The mean stroke width of intensities ``[N, H, W, 1]``, in pixels of a 28x28 image: a stroke of
  width ``w`` and length ``L`` holds ink ``w L`` and has total variation ``2 L``, so the width is
  ``2 ink / TV`` (0 for an empty image)."""
  a = np.asarray(alpha, np.float32)
  ink = a.sum(axis=(1, 2, 3))
  tv = (np.abs(np.diff(a, axis=1)).sum(axis=(1, 2, 3))
        + np.abs(np.diff(a, axis=2)).sum(axis=(1, 2, 3)))
  return np.where(tv > 0, 2.0 * ink / np.maximum(tv, 1e-12), 0.0) * (28.0 / a.shape[1])


def _blend_to(lo: np.ndarray, hi: np.ndarray, target: float, thicker: bool) -> np.ndarray:
  """Per image, ``(1 - t) lo + t hi`` with the smallest ``t`` in [0, 1] whose :func:`stroke_width`
  reaches ``target`` (at least it when ``thicker``, at most it otherwise; 12 bisection steps)."""
  low, high = np.zeros(len(lo), np.float32), np.ones(len(lo), np.float32)
  mix = lambda t: lo + t[:, None, None, None] * (hi - lo)  # noqa: E731
  for _ in range(12):
    t = (low + high) / 2
    w = stroke_width(mix(t))
    reached = w >= target if thicker else w <= target
    high, low = np.where(reached, t, high), np.where(reached, low, t)
  return mix(high)


def _normalise(steps: list[np.ndarray], reached: list[np.ndarray], fallback: np.ndarray,
               target: float, thicker: bool) -> np.ndarray:
  """Per image: unchanged (``steps[0]``) when ``reached[0]``; else the blend of the steps
  ``k - 1`` and ``k`` that meets ``target``, for the first ``k`` whose step reaches it; else
  ``steps[fallback]``."""
  out = np.take_along_axis(np.stack(steps), fallback[None, :, None, None, None], 0)[0]
  done = reached[0].copy()
  out[done] = steps[0][done]
  for k in range(1, len(steps)):
    take = reached[k] & ~done
    if take.any():
      out[take] = _blend_to(steps[k - 1][take], steps[k][take], target, thicker)
    done |= take
  return out


def set_stroke(alpha: np.ndarray, thick: np.ndarray) -> np.ndarray:
  """Digits' intensities ``[N, 28, 28, 1]`` in [0, 1] with the stroke normalised
  (:func:`stroke_width` in 28-pixel units). Thin ones (``thick`` False) are kept when at most
  :data:`THIN_WIDTH`, else thinned to it by grey erosion: a blend of the original and its 2x2
  erosion, or of that and the 3x3 erosion (only while the digit stays visible, a maximum of 0.6;
  the thinnest visible one when neither gets there). Thick ones are kept when at least
  :data:`THICK_WIDTH`, else grown to it by grey dilation: a blend of two neighbours of the
  original, 2x2, 3x3, 3x3+2x2 and 3x3+3x3 dilations (the largest when none gets there). The
  blends meet the width exactly, so the two
  values are apart after any resizing while no digit grows more than it must."""
  alpha = np.asarray(alpha, np.float32)
  thick = np.asarray(thick, bool)
  out = np.empty_like(alpha)
  if thick.any():
    a = alpha[thick]
    steps = [a, dilate(a, 2), dilate(a, 3)]
    steps += [dilate(steps[2], 2), dilate(steps[2], 3)]
    reached = [stroke_width(s) >= THICK_WIDTH for s in steps]
    out[thick] = _normalise(steps, reached, np.full(len(a), len(steps) - 1), THICK_WIDTH, True)
  if (~thick).any():
    a = alpha[~thick]
    steps = [a, erode(a, 2), erode(a, 3)]
    visible = [s.max(axis=(1, 2, 3)) >= 0.6 for s in steps]
    reached = [(stroke_width(s) <= THIN_WIDTH) & v for s, v in zip(steps, visible)]
    thinnest = np.where(visible[2], 2, np.where(visible[1], 1, 0))
    out[~thick] = _normalise(steps, reached, thinnest, THIN_WIDTH, False)
  return out


def _resize(alpha: np.ndarray, size: int) -> np.ndarray:
  if alpha.shape[1] == size and alpha.shape[2] == size:
    return alpha
  import tensorflow as tf
  tf.config.set_visible_devices([], "GPU")  # keep accelerators for JAX
  out = tf.image.resize(alpha, (size, size), method="bilinear", antialias=True).numpy()
  return np.clip(out, 0.0, 1.0)


def _backgrounds(base: str) -> np.ndarray:
  """The dataset's background colours, indexed by the background attribute (MNIST: black only)."""
  if base == "fashion_mnist":
    return np.array([BACKGROUNDS[v] for v in SECOND[base][1]], np.float32)
  return np.array([BACKGROUNDS["dark"]], np.float32)


def render(name: str, gray: np.ndarray, colours: np.ndarray, second: np.ndarray,
           image_size: int | None = None) -> np.ndarray:
  """Grayscale images ``[N, 28, 28, 1]`` in [-1, 1] drawn in ``colours`` (palette indices) with the
  second attribute ``second`` (MNIST stroke, Fashion-MNIST background), resized to
  ``image_size``: uint8 RGB ``[N, S, S, 3]``."""
  base = _dataset(name)
  gray = np.asarray(gray, np.float32)
  if gray.ndim != 4 or gray.shape[-1] != 1:
    raise ValueError(f"expected grayscale images [N, H, W, 1] in [-1, 1], got shape {gray.shape}")
  colours, second = np.asarray(colours, np.int64), np.asarray(second, np.int64)
  size = int(image_size or gray.shape[1])
  out = np.empty((len(gray), size, size, 3), np.uint8)
  bgs = _backgrounds(base)
  step = _chunk(size)
  for s in range(0, len(gray), step):
    e = s + step
    alpha = np.clip((gray[s:e] + 1.0) / 2.0, 0.0, 1.0)
    if base == "mnist":
      alpha = set_stroke(alpha, second[s:e] == 1)
    alpha = _resize(alpha, size)
    bg = bgs[second[s:e] if base == "fashion_mnist" else np.zeros(len(alpha), np.int64)]
    rgb = bg[:, None, None, :] + alpha * (_RGB[colours[s:e]] - bg)[:, None, None, :]
    out[s:e] = np.clip(np.round(rgb * 255.0), 0, 255).astype(np.uint8)
  return out


def _decompose(base: str, images: np.ndarray):
  """``(intensity [N, H, W], colour [N], background index [N])`` of rendered images."""
  x = as_float(np.asarray(images))
  if x.ndim != 4 or x.shape[-1] != 3:
    raise ValueError(f"expected RGB images [N, H, W, 3] in [-1, 1], got shape {x.shape}")
  x = (x.astype(np.float32) + 1.0) / 2.0
  border = np.concatenate([x[:, 0], x[:, -1], x[:, 1:-1, 0], x[:, 1:-1, -1]], axis=1)
  seen = np.median(border, axis=1)                                       # [N, 3]
  bgs = _backgrounds(base)
  bg_index = np.argmin(((seen[:, None, :] - bgs[None]) ** 2).sum(-1), axis=1)
  bg = bgs[bg_index]                                                     # [N, 3]
  u = _RGB[None] - bg[:, None, :]                                        # [N, K, 3]
  unit = u / np.linalg.norm(u, axis=-1, keepdims=True)
  n, h, w = x.shape[:3]
  d = (x - bg[:, None, None, :]).reshape(n, h * w, 3)
  proj = np.matmul(d, unit.transpose(0, 2, 1).astype(np.float32))       # [N, HW, K]
  colour = np.argmax((np.maximum(proj, 0.0) ** 2).sum(axis=1), axis=1)
  chosen = u[np.arange(n), colour]                                       # [N, 3]
  alpha = (np.matmul(d, chosen[:, :, None].astype(np.float32))[..., 0]
           / (chosen ** 2).sum(-1)[:, None])
  return np.clip(alpha, 0.0, 1.0).reshape(n, h, w), colour.astype(np.int32), bg_index


def read_attributes(name: str, images: np.ndarray) -> dict[str, np.ndarray]:
  """The colour and second attribute of rendered images (``[N, H, W, 3]`` in [-1, 1] or uint8, any
  size), read from the pixels: ``{"colour": int32 [N], "stroke" or "background": int32 [N]}``
  (value indices as :func:`attribute_names`). Generated images are read the same way."""
  base = _dataset(name)
  out = {}
  step = _chunk(np.shape(images)[1]) if np.ndim(images) == 4 else 1
  for s in range(0, len(images), step):
    alpha, colour, bg_index = _decompose(base, images[s:s + step])
    if base == "mnist":
      second = (stroke_width(alpha[..., None]) >= READ_WIDTH).astype(np.int32)
    else:
      second = bg_index.astype(np.int32)
    out.setdefault("colour", []).append(colour)
    out.setdefault(SECOND[base][0], []).append(second)
  if not out:
    return {"colour": np.zeros(0, np.int32), SECOND[base][0]: np.zeros(0, np.int32)}
  return {k: np.concatenate(v) for k, v in out.items()}


def to_gray(name: str, images: np.ndarray) -> np.ndarray:
  """The intensity of rendered images as grayscale ``[N, H, W, 1]`` in [-1, 1] in the original
  polarity (bright object on black), for the grayscale classifiers of
  :mod:`jaxgan.metrics.classifier`."""
  base = _dataset(name)
  step = _chunk(np.shape(images)[1]) if np.ndim(images) == 4 else 1
  parts = [_decompose(base, images[s:s + step])[0] for s in range(0, len(images), step)]
  if not parts:
    return np.zeros((0, *np.shape(images)[1:3], 1), np.float32)
  return (2.0 * np.concatenate(parts)[..., None] - 1.0).astype(np.float32)


# ---------------------------------------------------------------------------------------
# The data

class CaptionStream(BatchStream):
  """:class:`~jaxgan.data.tfds_data.BatchStream` of captioned images: batches ``{"image",
  "caption", "label"}``, one of each image's captions drawn per batch."""

  def batch(self, i: int) -> dict[str, np.ndarray]:
    idx = self.indices(i)
    data = self.data
    pick = np.random.default_rng([self.seed, _TAG, _BATCH, i]).random(len(idx))
    column = np.minimum((pick * data.caption_counts[idx]).astype(np.int64),
                        data.caption_counts[idx] - 1)
    return {"image": as_float(data.images[idx]),
            "caption": data.caption_ids[idx, column].astype(np.int32),
            "label": data.labels[idx]}


@dataclass
class CaptionedData(ImageData):
  """Captioned images: ``images`` uint8 RGB ``[N, H, W, 3]`` (batches are float32 in [-1, 1]),
  ``labels`` int32 ``[N]``, the distinct ``captions`` (sorted) and per example ``caption_ids``
  int32 ``[N, K]`` into them (``caption_counts[i]`` of them are the image's own; the rest of a
  row repeats its first), ``attributes`` (``{"colour": int32 [N], ...}``) with their
  ``attribute_names``, and ``heldout_mask`` bool ``[N]`` (held-out class and colour pairs)."""
  captions: list[str] = field(default_factory=list)
  caption_ids: np.ndarray = field(default_factory=lambda: np.zeros((0, 1), np.int32))
  caption_counts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
  attributes: dict[str, np.ndarray] = field(default_factory=dict)
  attribute_names: dict[str, list[str]] = field(default_factory=dict)
  heldout_mask: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
  dataset: str = ""   # "mnist" / "fashion_mnist" for the captioned sets, "" for a folder
  seed: int = 0

  @property
  def captions_per_image(self) -> int:
    """Columns of ``caption_ids``."""
    return int(self.caption_ids.shape[1])

  def captions_of(self, i: int) -> list[str]:
    """The captions of example ``i``."""
    return [self.captions[int(c)] for c in self.caption_ids[i, :int(self.caption_counts[i])]]

  def take(self, index, note: str = "") -> "CaptionedData":
    """The examples ``index`` (the caption vocabulary is kept whole)."""
    index = np.asarray(index)
    return CaptionedData(
        images=self.images[index], labels=self.labels[index], num_classes=self.num_classes,
        name=self.name, split=self.split, subset=note, captions=self.captions,
        caption_ids=self.caption_ids[index], caption_counts=self.caption_counts[index],
        attributes={k: v[index] for k, v in self.attributes.items()},
        attribute_names=self.attribute_names, heldout_mask=self.heldout_mask[index],
        dataset=self.dataset, seed=self.seed)

  def batch(self, batch_size: int, seed: int, i: int) -> dict[str, np.ndarray]:
    """Batch ``i`` of :meth:`stream` ``(batch_size, seed)``."""
    return CaptionStream(self, batch_size, seed).batch(i)

  def stream(self, batch_size: int, seed: int, start: int = 0) -> CaptionStream:
    """Endless shuffled batches ``{"image", "caption", "label"}`` from batch ``start`` on; batch
    ``i`` is a pure function of ``(seed, i)``."""
    return CaptionStream(self, batch_size, seed, start=start)


def _vocabulary(strings: np.ndarray) -> tuple[list[str], np.ndarray]:
  vocab, inverse = np.unique(strings, return_inverse=True)
  return [str(s) for s in vocab], inverse.reshape(strings.shape).astype(np.int32)


def _split_range(split: str) -> tuple[str, int]:
  """``("train", offset)`` of ``"train[a:b]"`` (offset 0 for an unsliced split)."""
  m = re.fullmatch(r"(\w+)\[(\d*):(\d*)\]", split)
  if m:
    return m.group(1), int(m.group(2) or 0)
  return split.split("[")[0], 0


def draw(name: str, labels: np.ndarray, split: str, seed: int = 0, captions_per_image: int = 5,
         offset: int = 0) -> dict[str, np.ndarray]:
  """The attributes and caption choices of examples ``offset ...`` of a split with ``labels``:
  ``{"colour", <second attribute>, "template", "noun", "word"}`` (the last three ``[N, K]``).

  Pure in ``(seed, split, index)``: each quantity is a prefix of its own stream
  ``default_rng([seed, TAG, k, crc32(split)])``. In the train split a held-out (class, colour)
  pair's colour is redrawn among the class's other five.
  """
  base = _dataset(name)
  labels = np.asarray(labels, np.int64)
  n, stop = len(labels), offset + len(labels)
  key = zlib.crc32(split.encode())
  rng = lambda k: np.random.default_rng([int(seed), _TAG, k, key])  # noqa: E731
  colours = rng(_COLOUR).integers(len(PALETTE), size=stop)[offset:]
  redraw = rng(_REDRAW).integers(len(PALETTE) - 1, size=stop)[offset:]
  if split == "train":
    bad = is_heldout(labels, colours)
    # the class's five allowed colours, in order, skipping the held-out k % 6
    held = labels % len(PALETTE)
    colours = np.where(bad, redraw + (redraw >= held), colours)
  second = rng(_ATTRIBUTE).integers(2, size=stop)[offset:]
  if captions_per_image < 1:
    raise DataError(f"captions_per_image must be at least 1, got {captions_per_image}")
  t, s, w = _draw_captions(rng(_TEMPLATE), rng(_NOUN), rng(_WORD), stop, captions_per_image,
                           len(TEMPLATES[base]))
  return {"colour": colours.astype(np.int32), SECOND[base][0]: second.astype(np.int32),
          "template": t[offset:], "noun": s[offset:], "word": w[offset:]}


def _caption_table(base: str, labels, colours, second, templates, nouns, words):
  """Caption vocabulary and ids, formatting each distinct (class, colour, value, template, noun,
  word) once."""
  labels = np.asarray(labels, np.int64)[:, None]
  nn = np.array([len(v) for v in NOUNS[base]])[labels]
  nw = np.array([len(v) for v in WORDS[base]])[np.asarray(second, np.int64)][:, None]
  nt = len(TEMPLATES[base])
  key = ((((labels * len(PALETTE) + np.asarray(colours)[:, None]) * 2
           + np.asarray(second)[:, None]) * nt + templates) * _SYNONYM_DRAW
         + nouns % nn) * _SYNONYM_DRAW + words % nw
  keys, inverse = np.unique(key, return_inverse=True)
  texts = []
  for k in keys.tolist():
    k, word = divmod(k, _SYNONYM_DRAW)
    k, noun = divmod(k, _SYNONYM_DRAW)
    k, template = divmod(k, nt)
    k, value = divmod(k, 2)
    label, colour = divmod(k, len(PALETTE))
    texts.append(_format(base, label, colour, value, template, noun, word))
  vocab, text_ids = _vocabulary(np.array(texts, dtype=object).astype(str))
  return vocab, text_ids[inverse.reshape(key.shape)].astype(np.int32)


def captioned(name: str, split: str = "train", image_size: int | None = 32,
              data_dir: str | None = None, manual_dir: str | None = None, seed: int = 0,
              captions_per_image: int = 5, part: tuple[int, int] = (0, 1)) -> CaptionedData:
  """Captioned, coloured MNIST or Fashion-MNIST (``name``): the split read through
  :func:`jaxgan.data.tfds_data.load` (``part=(i, n)``: its ``i``-th of ``n`` parts), drawn in
  colour with the attributes of :func:`draw` and rendered at ``image_size`` (None or 0: 28)."""
  base = _dataset(name)
  if isinstance(captions_per_image, bool) or int(captions_per_image) < 1:
    raise DataError(f"captions_per_image must be at least 1, got {captions_per_image!r}")
  if image_size and int(image_size) < 4:
    raise DataError(f"image_size {image_size!r}: give a side of at least 4 pixels (e.g. 32)")
  gray = load(base, split, None, data_dir, manual_dir, part)
  split_name, offset = _split_range(gray.split)
  drawn = draw(base, gray.labels, split_name, seed, int(captions_per_image), offset)
  second = SECOND[base][0]
  images = render(base, gray.images, drawn["colour"], drawn[second], image_size)
  vocab, ids = _caption_table(base, gray.labels, drawn["colour"], drawn[second],
                              drawn["template"], drawn["noun"], drawn["word"])
  return CaptionedData(
      images=images, labels=gray.labels.astype(np.int32), num_classes=gray.num_classes,
      name=f"captioned_{base}", split=gray.split, captions=vocab, caption_ids=ids,
      caption_counts=np.full(len(ids), ids.shape[1], np.int32),
      attributes={"colour": drawn["colour"], second: drawn[second]},
      attribute_names=attribute_names(base),
      heldout_mask=is_heldout(gray.labels, drawn["colour"]), dataset=base, seed=int(seed))


# ---------------------------------------------------------------------------------------
# A user's folder

CAPTIONS_FILE = "captions.jsonl"
_LINE_FORMAT = '{"image": "photo.jpg", "captions": ["a caption", ...]}'


def _read_image(path: str, side: int) -> np.ndarray:
  from PIL import Image, ImageOps
  with Image.open(path) as im:
    im = ImageOps.exif_transpose(im).convert("RGB")
    w, h = im.size
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    im = im.crop((left, top, left + s, top + s)).resize((side, side), Image.Resampling.BICUBIC)
    return np.asarray(im, np.uint8)


def caption_folder(path: str, image_size: int, seed: int = 0) -> CaptionedData:
  """A user's captioned images: ``path/captions.jsonl`` holds one JSON object per line,
  ``{"image": "a.jpg", "captions": ["...", ...]}`` (or ``"caption": "..."``; image paths
  relative to ``path`` or absolute; blank lines are skipped). Images (PNG, JPEG, anything PIL
  reads) are converted to RGB, centre-cropped to a square and resized to ``image_size`` (uint8).
  No labels or attributes (``num_classes`` 0); ``seed`` is recorded (nothing here is random)."""
  root = os.path.abspath(os.path.expanduser(path))
  file = os.path.join(root, CAPTIONS_FILE)
  if not os.path.isfile(file):
    raise DataError(f"{root} has no {CAPTIONS_FILE}: write one there with a line per image, "
                    f"{_LINE_FORMAT}")
  if image_size is None or int(image_size) < 4:
    raise DataError(f"image_size {image_size!r}: give a side of at least 4 pixels (e.g. 64)")
  side = int(image_size)
  images, per_image = [], []
  with open(file, encoding="utf-8") as f:
    lines = f.read().splitlines()
  for number, line in enumerate(lines, start=1):
    if not line.strip():
      continue
    where = f"{file} line {number}"
    try:
      entry = json.loads(line)
    except json.JSONDecodeError as e:
      raise DataError(f"{where} is not valid JSON ({e.msg}); write one object per line, "
                      f"{_LINE_FORMAT}") from None
    caps = None
    if isinstance(entry, dict):
      caps = entry.get("captions", [entry["caption"]] if "caption" in entry else None)
    if (not isinstance(entry, dict) or not isinstance(entry.get("image"), str)
        or not entry["image"] or not isinstance(caps, list) or not caps
        or not all(isinstance(c, str) for c in caps)):
      raise DataError(f"{where} needs an \"image\" path and \"captions\" (a list of strings) or "
                      f"\"caption\" (a string): {_LINE_FORMAT}")
    for j, c in enumerate(caps):
      if not c.strip():
        raise DataError(f"{where}: caption {j} is empty; write its text or remove it")
    image = os.path.join(root, os.path.expanduser(entry["image"]))
    if not os.path.isfile(image):
      raise DataError(f"{where}: image {image} does not exist; fix the path (relative paths are "
                      f"read from {root})")
    try:
      images.append(_read_image(image, side))
    except Exception as e:  # PIL's errors for unreadable or truncated files
      raise DataError(f"{where}: cannot read image {image} ({type(e).__name__}: {e}); give a "
                      f"PNG or JPEG file") from None
    per_image.append([c.strip() for c in caps])
  if not images:
    raise DataError(f"{file} has no examples: add a line per image, {_LINE_FORMAT}")
  width = max(len(c) for c in per_image)
  grid = np.array([c + [c[0]] * (width - len(c)) for c in per_image], dtype=object).astype(str)
  vocab, ids = _vocabulary(grid)
  n = len(images)
  return CaptionedData(
      images=np.stack(images), labels=np.zeros(n, np.int32), num_classes=0,
      name=f"caption_folder:{os.path.basename(root)}", split="train", captions=vocab,
      caption_ids=ids, caption_counts=np.array([len(c) for c in per_image], np.int32),
      attributes={}, attribute_names={}, heldout_mask=np.zeros(n, bool), dataset="",
      seed=int(seed))
