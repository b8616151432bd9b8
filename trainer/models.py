"""Model builders: the proposal's convnet, its ResNet152 transfer model, and edge-sized backbones.

Every model takes raw RGB 0..255 (float32) at its input size and does its own normalisation
(Rescaling, or the backbone's preprocessing), so the exported .tflite is fed the same pixels
on the edge as in training. The last layer is a float32 softmax even under mixed precision.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras

from trainer.train_config import ARCHITECTURES, MIN_IMAGE_SIZE, TrainConfig


@keras.saving.register_keras_serializable(package="trailcam")
class CaffePreprocess(keras.layers.Layer):
    """ResNet's 'caffe' preprocessing (RGB->BGR, minus the ImageNet mean) as a real layer.

    A Lambda around keras.applications.resnet.preprocess_input would not reload in safe
    mode; this layer saves and loads with the model and converts to TFLite as plain ops.
    """

    MEAN_BGR = (103.939, 116.779, 123.68)

    def call(self, inputs):
        bgr = keras.ops.flip(inputs, axis=-1)
        return bgr - keras.ops.convert_to_tensor(self.MEAN_BGR, dtype=inputs.dtype)


@dataclass
class BuiltModel:
    model: keras.Model
    base: keras.Model | None  # the transfer backbone (None for the convnet)


def _weights_arg(weights: str) -> str | None:
    if weights == "none":
        return None
    if weights == "imagenet":
        return "imagenet"
    path = Path(weights).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist (use imagenet, none or a local .h5 file)")
    return str(path)


def build_convnet(num_classes: int, image_size: int, filters=(64, 32), dense_units: int = 32, dropout: float = 0.2) -> keras.Model:
    """INPUT -> CONV2D -> MAXPOOL -> CONV2D -> MAXPOOL -> FLATTEN -> DENSE -> DROPOUT -> DENSE (the proposal)."""
    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = keras.layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)  # the proposal's ImageDataGenerator(rescale=1/255)
    x = keras.layers.Conv2D(filters[0], (3, 3), activation="relu", name="conv1")(x)
    x = keras.layers.MaxPooling2D((2, 2), name="pool1")(x)
    x = keras.layers.Conv2D(filters[1], (3, 3), activation="relu", name="conv2")(x)
    x = keras.layers.MaxPooling2D((2, 2), name="pool2")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(dense_units, activation="relu", name="dense")(x)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name="predictions")(x)
    return keras.Model(inputs, outputs, name="convnet")


def _backbone(arch: str, image_size: int, weights: str | None) -> tuple[keras.Model, Callable[[Any], Any] | None]:
    """(base model without top, function applying the base's preprocessing to raw 0..255 input)."""
    shape = (image_size, image_size, 3)
    apps = keras.applications
    if arch == "resnet152":
        base = apps.ResNet152(include_top=False, weights=weights, input_shape=shape, pooling="avg")
        return base, CaffePreprocess(name="resnet_preprocess")
    if arch == "mobilenetv3-large":
        base = apps.MobileNetV3Large(include_top=False, weights=weights, input_shape=shape, pooling="avg", include_preprocessing=True)
    elif arch == "mobilenetv3-small":
        base = apps.MobileNetV3Small(include_top=False, weights=weights, input_shape=shape, pooling="avg", include_preprocessing=True)
    elif arch == "efficientnetv2-b0":
        base = apps.EfficientNetV2B0(include_top=False, weights=weights, input_shape=shape, pooling="avg", include_preprocessing=True)
    else:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    return base, None


def build_transfer(arch: str, num_classes: int, image_size: int, weights: str, dropout: float = 0.2, head_units: int = 1000) -> BuiltModel:
    """Backbone (frozen here; train.py unfreezes for fine-tuning) + classification head."""
    base, preprocess = _backbone(arch, image_size, _weights_arg(weights))
    base.trainable = False
    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = preprocess(inputs) if preprocess is not None else inputs
    # training=False keeps BatchNorm in inference mode even while fine-tuning (Keras's advice).
    x = base(x, training=False)
    if arch == "resnet152":
        x = keras.layers.Dense(head_units, activation="relu", name="head_dense")(x)  # the proposal's Dense(1000)
    x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name="predictions")(x)
    return BuiltModel(keras.Model(inputs, outputs, name=arch.replace("-", "_")), base)


def build_model(config: TrainConfig, num_classes: int) -> BuiltModel:
    """The model a TrainConfig describes, uncompiled."""
    if config.arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {config.arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    minimum = MIN_IMAGE_SIZE[config.arch]
    if config.image_size < minimum:
        raise ValueError(f"image_size {config.image_size} is below {config.arch}'s minimum of {minimum}")
    if config.arch == "convnet":
        model = build_convnet(num_classes, config.image_size, tuple(config.filters), config.dense_units, config.dropout)
        return BuiltModel(model, None)
    return build_transfer(config.arch, num_classes, config.image_size, config.weights, config.dropout, config.head_units)


def unfreeze_top(base: keras.Model, layers: int) -> int:
    """Make the top `layers` layers of the backbone trainable, BatchNorm excepted. Returns how many."""
    base.trainable = True
    count = 0
    cut = max(0, len(base.layers) - layers)
    for i, layer in enumerate(base.layers):
        trainable = i >= cut and not isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = trainable
        count += int(trainable)
    return count


def load_keras_model(path: Path) -> keras.Model:
    """A saved run's model, uncompiled (export, evaluation and fine-tuning compile their own).
    Beside the builders because loading needs this module's custom layers registered."""
    return keras.models.load_model(path, compile=False)
