"""The tf.data pipeline's fast path (decode every pass, unordered, uint8) gives the model the same input as before.

Before, every path yielded float32 batches of the decoded pixels in item order; now a training
set decoded every pass comes out in the order decodes finish, and batches stay uint8 until the
model's Input converts them. On real photos (../shared/data/birds25) these tests pin that the
pixels, the labels that go with them, and what the model computes from them are unchanged.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

SIZE = 224  # birds25's size: the pipeline's decode-only path, the one the benchmark measures


def _items(birds25_dir: Path):
    from trainer.data import Item, _class_folders, _files_of, is_image_name

    folders = _class_folders(birds25_dir)
    return [Item(p, label) for label, folder in enumerate(folders) for p in _files_of(folder) if is_image_name(p)]


def _reference(items) -> list[np.ndarray]:
    """Each file decoded on its own, as the pipeline before this change did (decode_image, no resize at 224)."""
    import tensorflow as tf

    return [tf.io.decode_image(tf.io.read_file(str(item.path)), channels=3, expand_animations=False).numpy()
            for item in items]


def _key(image: np.ndarray, label: int) -> tuple[str, int]:
    return hashlib.sha256(image.tobytes()).hexdigest(), int(label)


@pytest.fixture(scope="module")
def birds(birds25_dir: Path):
    items = _items(birds25_dir)
    assert len(items) == 125
    return items, _reference(items)


def test_decoding_every_pass_yields_every_photo_once_with_its_label_and_exact_pixels(birds):
    from trainer.pipeline import make_dataset

    items, reference = birds
    ds = make_dataset(items, SIZE, batch_size=32, training=True, augment=False, cache=False, seed=7)
    images, labels = [], []
    for x, y in ds:
        assert x.dtype.name == "uint8" and tuple(x.shape[1:]) == (SIZE, SIZE, 3)
        images += list(x.numpy())
        labels += list(y.numpy())
    want = Counter(_key(image, item.label) for image, item in zip(reference, items, strict=True))
    got = Counter(_key(image, label) for image, label in zip(images, labels, strict=True))
    assert got == want  # same decoder and DCT method as before: max difference 0, and no photo lost or doubled
    assert [int(v) for v in labels] != [item.label for item in items]  # shuffled, not in item order


@pytest.mark.parametrize("cache", [True, False])
def test_ordered_paths_keep_item_order_and_load_images_matches(birds, cache):
    from trainer.pipeline import load_images, make_dataset

    items, reference = birds
    ds = make_dataset(items, SIZE, batch_size=32, training=False, cache=cache)
    images = np.concatenate([x.numpy() for x, _ in ds])
    np.testing.assert_array_equal(images, np.stack(reference))
    loaded, labels = load_images(items[:40], SIZE)
    assert loaded.dtype == np.uint8
    np.testing.assert_array_equal(loaded, np.stack(reference[:40]))
    assert labels.tolist() == [item.label for item in items[:40]]


def test_model_computes_the_same_from_uint8_batches_as_from_float32(birds):
    """The cast moved from the pipeline into the model's Input: bit-identical outputs, so the
    exported model and the edge's input contract (float32 0..255, or int8's uint8) are untouched."""
    import keras
    import tensorflow as tf

    from trainer.models import build_convnet

    _, reference = birds
    batch = np.stack(reference[:16])
    keras.utils.set_random_seed(5)
    model = build_convnet(num_classes=25, image_size=SIZE, filters=(4, 4), dense_units=8)
    assert model.inputs[0].dtype == "float32"
    from_uint8 = model.predict(tf.constant(batch, tf.uint8), verbose=0)
    from_float = model.predict(batch.astype(np.float32), verbose=0)
    np.testing.assert_array_equal(from_uint8, from_float)
    assert not np.allclose(from_float[0], from_float[1])  # a real computation, not a constant


def test_augmented_batches_are_float32_in_pixel_range(birds):
    from trainer.pipeline import make_dataset

    items, _ = birds
    ds = make_dataset(items[:32], SIZE, batch_size=16, training=True, augment=True, cache=False, seed=3)
    x, y = next(iter(ds))
    assert x.dtype.name == "float32" and tuple(x.shape) == (16, SIZE, SIZE, 3) and y.dtype.name == "int32"
    values = x.numpy()
    assert values.min() >= 0.0 and values.max() <= 255.0 and values.max() > 1.0  # 0..255, not rescaled to 0..1
