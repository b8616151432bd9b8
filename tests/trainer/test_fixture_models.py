"""The shared model fixtures are real and consistent: what the edge and MQTT areas rely on."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image


def test_bundles_have_the_documented_files_and_io_types(bundle_int8, bundle_float):
    for bundle, dtype in ((bundle_int8, "uint8"), (bundle_float, "float32")):
        manifest = json.loads((bundle / "manifest.json").read_text())
        labels = (bundle / "labels.txt").read_text().splitlines()
        assert manifest["format"] == "trailcam-bundle" and manifest["format_version"] == 1
        assert manifest["num_classes"] == len(labels) == 4
        assert manifest["input"]["dtype"] == dtype and manifest["output"]["dtype"] == dtype
        assert manifest["input"]["shape"] == [1, 64, 64, 3]
        assert manifest["metrics"]["agreement"] >= manifest["metrics"]["min_agreement"]


def test_int8_bundle_classifies_unseen_camera_frames(bundle_int8, camera_frames):
    """Decoded and resized as the edge does (Pillow bilinear), the frames get their true class."""
    from edge.classify.model import TFLiteModel

    classifier = TFLiteModel(bundle_int8 / "model.tflite")
    labels = (bundle_int8 / "labels.txt").read_text().splitlines()
    correct = 0
    for path, true_class in camera_frames:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB").resize(classifier.input_size, Image.BILINEAR))
        correct += labels[int(classifier.probabilities(pixels).argmax())] == true_class
    assert correct / len(camera_frames) >= 0.9, f"{correct}/{len(camera_frames)} frames classified correctly"
