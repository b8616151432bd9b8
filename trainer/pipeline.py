"""The tf.data input pipeline: parallel decode, resize, cache, shuffle, batch, prefetch.

Images come out as uint8 RGB at the model's size (float32 in 0..255 after augmentation):
normalisation is the model's job (its first layers), so the edge feeds the same raw pixels and
never re-implements it. Even the uint8 -> float32 cast is the model's: its Input is float32 and
Keras converts a uint8 batch on entry, exactly (every uint8 value is a float32), so a pipeline
that decodes every pass spends its CPU on decoding rather than on writing 4x the bytes.
Resizing is bilinear with antialiasing, which matches Pillow's BILINEAR downscale on the edge.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from trainer.data import Item

log = logging.getLogger(__name__)
AUTOTUNE = tf.data.AUTOTUNE


def decode_and_resize(path: tf.Tensor, image_size: int) -> tf.Tensor:
    """One file -> uint8 [size, size, 3]. Kept uint8 so that a cache holds 4x fewer bytes.

    Images already at the model's size (the Kaggle set at 224) skip the resize: the
    antialiased resize is the pipeline's most expensive step and would be an identity.
    """
    raw = tf.io.read_file(path)
    image = tf.io.decode_image(raw, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    shape = tf.shape(image)

    def resized() -> tf.Tensor:
        scaled = tf.image.resize(image, (image_size, image_size), method="bilinear", antialias=True)
        return tf.cast(tf.clip_by_value(tf.round(scaled), 0.0, 255.0), tf.uint8)

    already = tf.logical_and(tf.equal(shape[0], image_size), tf.equal(shape[1], image_size))
    out = tf.cond(already, lambda: image, resized)
    out.set_shape([image_size, image_size, 3])
    return out


def augmentation(seed: int) -> tf.keras.Sequential:
    """Keras preprocessing layers for training only: flips, small rotations, zoom and contrast."""
    import keras

    return keras.Sequential(
        [
            keras.layers.RandomFlip("horizontal", seed=seed),
            keras.layers.RandomRotation(0.05, fill_mode="reflect", seed=seed + 1),
            keras.layers.RandomZoom(0.1, fill_mode="reflect", seed=seed + 2),
        ],
        name="augmentation",
    )


def make_dataset(
    items: Sequence[Item],
    image_size: int,
    batch_size: int,
    training: bool = False,
    augment: bool = False,
    cache: bool = True,
    seed: int = 42,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """(images [b, s, s, 3], labels int32 [b]) batches: uint8 images, float32 in 0..255 after augmentation.

    Files that TensorFlow cannot decode are dropped (after trainer.data already dropped what
    Pillow could not read), so one bad file never stops a long run.
    """
    if not items:
        raise ValueError("no images to build a dataset from")
    paths = [str(item.path) for item in items]
    labels = np.array([item.label for item in items], dtype=np.int32)
    ds = tf.data.Dataset.from_tensor_slices((paths, labels))
    # Decoding every pass for training, the order after the seeded shuffle is already random:
    # letting the parallel decode hand images over as they finish (deterministic=False) stops one
    # slow decode from holding up the batch. Everywhere else the order is kept: the cache's order
    # makes a seeded run reproducible, and evaluation pairs images with their labels in item order.
    # (tf.config.experimental.enable_op_determinism() overrides this for a bit-exact --no-cache run.)
    reorder = training and not cache
    if reorder:
        ds = ds.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(lambda p, y: (decode_and_resize(p, image_size), y), num_parallel_calls=AUTOTUNE,
                deterministic=not reorder)
    ds = ds.ignore_errors(log_warning=True)
    if cache:
        ds = ds.cache()
        if training:
            ds = ds.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    if training and augment:
        layers = augmentation(seed)
        ds = ds.map(lambda x, y: (layers(tf.cast(x, tf.float32), training=True), y), num_parallel_calls=AUTOTUNE)
    return ds.prefetch(AUTOTUNE)


def load_images(items: Sequence[Item], image_size: int) -> tuple[np.ndarray, np.ndarray]:
    """All items as (uint8 [n, s, s, 3], labels [n]) in order: for calibration and verification."""
    ds = make_dataset(items, image_size, batch_size=64, training=False, cache=False)
    xs, ys = [], []
    for x, y in ds:
        xs.append(x.numpy())
        ys.append(y.numpy())
    if not xs:
        return np.zeros((0, image_size, image_size, 3), np.uint8), np.zeros((0,), np.int32)
    return np.concatenate(xs), np.concatenate(ys)
