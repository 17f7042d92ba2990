"""Captioned, coloured MNIST / Fashion-MNIST (jaxgan.data.captions): rendering, captions, held-out
pairs, the pixel reader, resumable streams, and a user's captioned folder."""

import json

import numpy as np
import pytest

from conftest import MANUAL_DIR, _need_raw
from jaxgan.data import DataError
from jaxgan.data import captions as C


@pytest.fixture(scope="module")
def dirs(real_data_dir):
  _need_raw("mnist")
  return {"data_dir": real_data_dir, "manual_dir": MANUAL_DIR}


@pytest.fixture(scope="module")
def mnist16(dirs):
  return C.captioned("mnist", "test", 16, **dirs)


@pytest.fixture(scope="module")
def fmnist16(dirs):
  return C.captioned("fashion_mnist", "test", 16, **dirs)


def _second(data):
  return C.SECOND[data.dataset][0]


def test_shapes_and_ranges(mnist16, fmnist16):
  for data, name, second in ((mnist16, "captioned_mnist", "stroke"),
                             (fmnist16, "captioned_fashion_mnist", "background")):
    n = 10_000
    assert data.name == name and data.split == "test" and data.num_classes == 10
    assert data.images.shape == (n, 16, 16, 3) and data.images.dtype == np.uint8
    assert data.example_shape == (16, 16, 3)
    assert data.labels.shape == (n,) and data.labels.dtype == np.int32
    assert data.caption_ids.shape == (n, 5) and data.caption_ids.dtype == np.int32
    assert data.captions == sorted(set(data.captions))
    assert 0 <= data.caption_ids.min() and data.caption_ids.max() < len(data.captions)
    assert all(len(set(row)) == 5 for row in data.caption_ids[:500])   # distinct templates
    assert set(data.attributes) == {"colour", second} == set(data.attribute_names)
    assert data.attribute_names["colour"] == list(C.COLOUR_NAMES) and len(C.PALETTE) >= 6
    for key, values in data.attribute_names.items():
      a = data.attributes[key]
      assert a.shape == (n,) and a.dtype == np.int32 and set(np.unique(a)) == set(range(len(values)))
    assert data.heldout_mask.dtype == bool and data.heldout_mask.shape == (n,)
    batch = data.batch(64, seed=0, i=3)
    assert batch["image"].shape == (64, 16, 16, 3) and batch["image"].dtype == np.float32
    assert -1.0 <= batch["image"].min() < -0.9 and 0.9 < batch["image"].max() <= 1.0
    assert batch["caption"].dtype == np.int32 and batch["label"].dtype == np.int32
  # MNIST stays on black; Fashion-MNIST has dark and light backgrounds
  assert np.median(mnist16.images[:, 0]) == 0 and np.mean(mnist16.images[:, 0]) < 5
  light = fmnist16.attributes["background"] == 1
  assert np.median(fmnist16.images[light][:, 0, 0]) > 200 > 30 > np.median(fmnist16.images[~light][:, 0, 0])


def test_same_seed_same_data_other_seed_other(mock_fmnist):
  """Served by tfds's mock data: 256 random examples are enough to compare draws."""
  a = C.captioned("fashion_mnist", "train", 16, seed=0)
  b = C.captioned("fashion_mnist", "train", 16, seed=0)
  c = C.captioned("fashion_mnist", "train", 16, seed=1, captions_per_image=3)
  assert a.captions == b.captions
  np.testing.assert_array_equal(a.caption_ids, b.caption_ids)
  np.testing.assert_array_equal(a.images, b.images)
  for k in a.attributes:
    np.testing.assert_array_equal(a.attributes[k], b.attributes[k])
  assert c.caption_ids.shape == (256, 3)
  assert np.mean(a.attributes["colour"] != c.attributes["colour"]) > 0.5
  assert [a.captions_of(i) for i in range(20)] != [c.captions_of(i)[:3] for i in range(20)]


def test_draws_are_pure_in_the_index():
  """A part of a split draws what the whole split draws at those indices."""
  labels = np.random.default_rng(0).integers(10, size=3000)
  whole = C.draw("mnist", labels, "train", seed=5)
  part = C.draw("mnist", labels[1000:2000], "train", seed=5, offset=1000)
  for k in whole:
    np.testing.assert_array_equal(whole[k][1000:2000], part[k])
  other = C.draw("mnist", labels, "test", seed=5)
  assert np.mean(whole["stroke"] != other["stroke"]) > 0.3
  assert len(np.unique(whole["template"])) == len(C.TEMPLATES["mnist"]) >= 8


def test_train_holds_out_pairs_that_test_has(dirs, fmnist16):
  train = C.captioned("fashion_mnist", "train", 16, part=(1, 6), **dirs)
  assert train.split == "train[10000:20000]" and len(train.labels) == 10_000
  assert not train.heldout_mask.any()
  assert not C.is_heldout(train.labels, train.attributes["colour"]).any()
  pairs = set(zip(train.labels.tolist(), train.attributes["colour"].tolist()))
  assert len(pairs) == 60 - len(C.HELDOUT)
  # ...the same draws as the whole train split's at those indices
  drawn = C.draw("fashion_mnist", train.labels, "train", seed=0, offset=10_000)
  np.testing.assert_array_equal(drawn["colour"], train.attributes["colour"])
  # held-out pairs cover every class and every colour; the test split has all 60 pairs
  assert {k for k, _ in C.HELDOUT} == set(range(10))
  assert {c for _, c in C.HELDOUT} == set(range(len(C.PALETTE)))
  test_pairs = set(zip(fmnist16.labels.tolist(), fmnist16.attributes["colour"].tolist()))
  assert len(test_pairs) == 60
  np.testing.assert_array_equal(fmnist16.heldout_mask,
                                C.is_heldout(fmnist16.labels, fmnist16.attributes["colour"]))
  assert 0.12 < fmnist16.heldout_mask.mean() < 0.22


def test_every_caption_parses_back_to_its_example(mnist16, fmnist16):
  for data in (mnist16, fmnist16):
    second = _second(data)
    parsed = [C.parse_caption(data.dataset, c) for c in data.captions]
    for key, truth in (("label", data.labels), ("colour", data.attributes["colour"]),
                       (second, data.attributes[second])):
      read = np.array([p.get(key, -1) for p in parsed])[data.caption_ids]
      np.testing.assert_array_equal(read, np.repeat(truth[:, None], 5, axis=1), err_msg=key)


def test_synonyms_and_word_orders_occur(mnist16, fmnist16):
  text = "\n".join(fmnist16.captions)
  for word in ("t-shirt", " tee", " top", "pair of pants", "pair of trousers", "jumper", "sweater",
               "jacket", "running shoe", "trainer", "handbag", "ankle boot", " boot", "dark",
               "black", "light", "white"):
    assert word in text, word
  digits = "\n".join(mnist16.captions)
  for word in ("seven", " 7", "the digit", "the number", "thick", "heavy", "bold", "thin", "fine"):
    assert word in digits, word
  assert "a thick red seven" in digits and "an eight" in digits and "an 8" in digits


def test_caption_functions_and_free_text():
  assert C.caption_for("mnist", 7, {"colour": "red", "stroke": "thick"}) == "a thick red seven"
  assert C.caption_for("fashion_mnist", 1, {"colour": 5, "background": 0}, template=0, noun=1) \
      == "a magenta pair of pants on a dark background"
  drawn = C.caption_for("mnist", 3, {"colour": "blue", "stroke": 0}, np.random.default_rng(0))
  assert C.parse_caption("mnist", drawn) == {"label": 3, "colour": 4, "stroke": 0}
  caps = C.make_captions("fashion_mnist", 9, {"colour": "green", "background": "light"}, n=6, seed=2)
  assert len(set(caps)) == 6
  assert caps == C.make_captions("fashion_mnist", 9, {"colour": 2, "background": 1}, n=6, seed=2)
  assert all(C.parse_caption("fashion_mnist", c) == {"label": 9, "colour": 2, "background": 1}
             for c in caps)
  parse = C.parse_caption
  assert parse("fashion_mnist", "Two red BOOTS on white!") == {"label": 9, "colour": 0, "background": 1}
  assert parse("fashion_mnist", "a t-shirt") == {"label": 0}
  assert parse("fashion_mnist", "a shirt") == {"label": 6}
  assert parse("fashion_mnist", "a red and blue dress") == {"label": 3}   # colour ambiguous
  assert parse("mnist", "The digit 4, bold purple") == {"label": 4, "colour": 5, "stroke": 1}
  assert parse("mnist", "hello world") is None
  with pytest.raises(DataError, match="mnist"):
    C.parse_caption("cifar10", "a red cat")
  with pytest.raises(DataError, match="stroke"):
    C.caption_for("mnist", 1, {"colour": "red"})


def test_reader_reads_colour_and_attribute(dirs, mnist16, fmnist16):
  """The pixel reader on real rendered test images (2,000 at 16x16 and at 32x32)."""
  for data in (mnist16, fmnist16, C.captioned("mnist", "test", 32, part=(0, 5), **dirs),
               C.captioned("fashion_mnist", "test", 32, part=(0, 5), **dirs)):
    second = _second(data)
    images = data.images[:2000].astype(np.float32) / 127.5 - 1.0   # [-1, 1], as batches
    read = C.read_attributes(data.dataset, images)
    for key in ("colour", second):
      acc = np.mean(read[key] == data.attributes[key][:2000])
      print(f"{data.name} {data.example_shape[0]}px {key}: {acc:.4f}")
      assert acc >= 0.98, (data.name, data.example_shape, key, acc)


def test_classifier_reads_the_class_of_to_gray(dirs, mnist16, fmnist16):
  """The committed grayscale classifiers (which resize their input to 32x32) on to_gray(images),
  2,000 test images. At 16x16 Fashion-MNIST loses detail (the classifier reads ~77 % of the
  uncoloured images resized the same way): its bar is those images' accuracy."""
  import tensorflow as tf
  from jaxgan.data import load
  from jaxgan.metrics.classifier import load_classifier

  def accuracy(clf, gray, labels):
    return float(np.mean(clf(gray)[1].argmax(-1) == labels))

  n = 2000
  for name, bar16, bar32 in (("mnist", 0.95, 0.95), ("fashion_mnist", None, 0.85)):
    clf = load_classifier(name)
    for size in (16, 32):
      data = {("mnist", 16): mnist16, ("fashion_mnist", 16): fmnist16}.get((name, size))
      data = data or C.captioned(name, "test", size, part=(0, 5), **dirs)
      acc = accuracy(clf, C.to_gray(name, data.images[:n]), data.labels[:n])
      bar = bar16 if size == 16 else bar32
      if bar is None:   # the uncoloured images at this size
        plain = load(name, "test", None, part=(0, 5), **dirs)
        small = tf.image.resize(plain.images[:n], (size, size), method="bilinear", antialias=True)
        bar = accuracy(clf, small.numpy(), plain.labels[:n]) - 0.02
      print(f"{name} {size}px classifier on to_gray: {acc:.4f} (bar {bar:.4f})")
      assert acc >= bar, (name, size, acc, bar)


def test_stream_is_pure_in_seed_and_index_and_resumes(mnist16):
  data = mnist16.take(np.arange(1000))
  it = iter(data.stream(64, seed=3))
  first = [next(it) for _ in range(20)]   # 15 batches an epoch: crosses into the second
  resumed = iter(data.stream(64, seed=3, start=12))
  for i in range(12, 20):
    again = next(resumed)
    for k in ("image", "caption", "label"):
      np.testing.assert_array_equal(again[k], first[i][k])
      np.testing.assert_array_equal(data.batch(64, 3, i)[k], first[i][k])
  other = data.batch(64, 4, 0)
  assert not np.array_equal(other["label"], first[0]["label"])
  # each caption is one of its image's own, and they vary from batch to batch
  for b in first[:3]:
    read = [C.parse_caption("mnist", data.captions[c])["label"] for c in b["caption"]]
    np.testing.assert_array_equal(read, b["label"])
  assert len({c for b in first for c in b["caption"].tolist()}) > 600


def _png(path, size, colour):
  from PIL import Image
  Image.new("RGB", size, colour).save(path)


def test_caption_folder_reads_images_and_captions(tmp_path):
  from PIL import Image
  img = Image.new("RGB", (60, 20), (255, 0, 0))           # red | green | blue thirds
  img.paste((0, 255, 0), (20, 0, 40, 20))
  img.paste((0, 0, 255), (40, 0, 60, 20))
  (tmp_path / "sub").mkdir()
  img.save(tmp_path / "sub" / "wide.png")
  Image.new("L", (10, 30), 128).save(tmp_path / "gray.png")
  _png(tmp_path / "abs.png", (16, 16), (10, 20, 30))
  lines = [{"image": "sub/wide.png", "captions": ["a green square", "green "]},
           {"image": "gray.png", "caption": "a grey square"},
           {"image": str(tmp_path / "abs.png"), "captions": ["dark blue"]}]
  (tmp_path / "captions.jsonl").write_text(
      "\n".join(json.dumps(x) for x in lines[:2]) + "\n\n" + json.dumps(lines[2]) + "\n")
  data = C.caption_folder(str(tmp_path), 8)
  assert data.images.shape == (3, 8, 8, 3) and data.images.dtype == np.uint8
  assert data.num_classes == 0 and data.attributes == {} and data.example_shape == (8, 8, 3)
  np.testing.assert_array_equal(data.images[0, 4, 4], [0, 255, 0])   # the centre third
  np.testing.assert_array_equal(data.images[1, 4, 4], [128, 128, 128])
  assert data.captions_of(0) == ["a green square", "green"] and data.captions_of(2) == ["dark blue"]
  assert data.caption_counts.tolist() == [2, 1, 1] and data.caption_ids.shape == (3, 2)
  batch = data.batch(3, seed=0, i=0)
  assert batch["image"].shape == (3, 8, 8, 3) and -1 <= batch["image"].min() <= batch["image"].max() <= 1
  assert data.captions[batch["caption"][2]] == "dark blue"


@pytest.mark.parametrize("content, message", [
    (None, "no captions.jsonl"),
    ("", "has no examples"),
    ('{"image": "a.png", "captions": ["x"]}\n{"image": "a.png", "captions": [x]}', "line 2 is not valid JSON"),
    ('{"image": "a.png"}', "line 1 needs an \"image\" path and \"captions\""),
    ('{"image": "a.png", "captions": ["ok"]}\n{"image": "gone.png", "caption": "x"}', "line 2: image .*gone.png does not exist"),
    ('{"image": "a.png", "captions": ["fine", "  "]}', "line 1: caption 1 is empty"),
])
def test_caption_folder_errors_name_the_line(tmp_path, content, message):
  _png(tmp_path / "a.png", (8, 8), (0, 0, 0))
  if content is not None:
    (tmp_path / "captions.jsonl").write_text(content)
  with pytest.raises(DataError, match=message) as e:
    C.caption_folder(str(tmp_path), 8)
  assert "\n" not in str(e.value)
