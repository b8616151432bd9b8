"""Export: every quantisation mode, loaded with ai-edge-litert, agrees with Keras; failures refuse."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from tests.fixtures.models import FIXTURE_CLASSES, FIXTURE_VALID_PER_CLASS
from trainer.export import DEFAULT_MIN_AGREEMENT, export_bundle

EXPECTED_IO = {"none": "float32", "float16": "float32", "dynamic": "float32", "int8": "uint8"}


@pytest.fixture(scope="module")
def bundles(bundle_int8, bundle_float, trained_run, tmp_path_factory):
    out = {"int8": bundle_int8, "none": bundle_float}
    for mode in ("float16", "dynamic"):
        out[mode] = export_bundle(trained_run, tmp_path_factory.mktemp(mode) / "bundle", mode)
    return out


@pytest.mark.parametrize("mode", ["none", "float16", "dynamic", "int8"])
def test_every_mode_exports_a_verified_bundle(bundles, trained_run, synthetic_dataset, mode):
    from ai_edge_litert.interpreter import Interpreter

    from trainer.data import discover
    from trainer.models import load_keras_model
    from trainer.pipeline import load_images

    bundle = bundles[mode]
    assert sorted(p.name for p in bundle.iterdir()) == ["labels.txt", "manifest.json", "model.keras", "model.tflite"]
    manifest = json.loads((bundle / "manifest.json").read_text())
    # The trainable model rides along for `trainer train --init-from BUNDLE`: the run's own best.keras.
    assert manifest["keras_model"] == "model.keras"
    assert manifest["keras_sha256"] == hashlib.sha256((trained_run / "best.keras").read_bytes()).hexdigest()
    assert manifest["run_config"]["image_size"] == 64 and manifest["init_from"] is None
    tflite = (bundle / "model.tflite").read_bytes()
    assert manifest["tflite_sha256"] == hashlib.sha256(tflite).hexdigest()
    assert manifest["model_id"] == f"convnet-{mode}-{manifest['tflite_sha256'][:8]}"
    assert manifest["quantization"] == mode and manifest["architecture"] == "convnet"
    assert manifest["labels_file"] == "labels.txt" and manifest["num_classes"] == 4
    assert (bundle / "labels.txt").read_text().splitlines() == json.loads((trained_run / "class_names.json").read_text())
    assert manifest["data_fingerprint"] == json.loads((trained_run / "data.json").read_text())["train_fingerprint"]
    assert manifest["input"]["color"] == "RGB" and manifest["input"]["value_range"] == [0, 255]
    assert manifest["output"]["activation"] == "softmax"
    metrics = manifest["metrics"]
    assert metrics["eval_images"] == FIXTURE_CLASSES * FIXTURE_VALID_PER_CLASS
    assert metrics["agreement"] >= DEFAULT_MIN_AGREEMENT[mode] == metrics["min_agreement"]
    assert metrics["tflite_top1"] >= 0.9

    # Independently: load with LiteRT, feed raw 0..255 pixels, compare with the Keras model.
    interpreter = Interpreter(model_path=str(bundle / "model.tflite"))
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    assert np.dtype(inp["dtype"]).name == np.dtype(out["dtype"]).name == EXPECTED_IO[mode] == manifest["input"]["dtype"]
    assert list(inp["shape"]) == manifest["input"]["shape"] == [1, 64, 64, 3]
    if mode == "int8":
        assert inp["quantization"] == (1.0, 0)  # raw pixels go in unchanged
        assert out["quantization"] == (pytest.approx(1 / 256), 0)
    images, _ = load_images(discover(synthetic_dataset).split("test"), 64)
    keras_top1 = load_keras_model(trained_run / "best.keras").predict(images.astype(np.float32), verbose=0).argmax(1)
    lite_top1 = []
    for image in images:
        interpreter.set_tensor(inp["index"], image[None].astype(inp["dtype"]))
        interpreter.invoke()
        lite_top1.append(int(interpreter.get_tensor(out["index"])[0].argmax()))
    assert np.mean(np.array(lite_top1) == keras_top1) >= DEFAULT_MIN_AGREEMENT[mode] - 1 / len(images)


def test_sizes_shrink_with_quantisation(bundles):
    size = {mode: (path / "model.tflite").stat().st_size for mode, path in bundles.items()}
    assert size["int8"] < size["float16"] < size["none"]
    assert size["dynamic"] < size["float16"]


@pytest.fixture(scope="module")
def untrained_run(synthetic_dataset, tmp_path_factory):
    """A run whose model was never trained: near-uniform softmax, which int8 cannot reproduce."""
    import keras

    from trainer.models import build_convnet
    from trainer.train_config import TrainConfig

    run = tmp_path_factory.mktemp("untrained") / "run"
    run.mkdir()
    keras.utils.set_random_seed(0)
    model = build_convnet(4, 64, (8, 8), 8, 0.0)
    head = model.get_layer("predictions")
    kernel, bias = head.get_weights()
    head.set_weights([kernel * 1e-3, bias])  # probabilities within 1/256 of each other: int8 ties them all
    model.save(run / "best.keras")
    config = TrainConfig(data_dir=synthetic_dataset, out_dir=run, image_size=64)
    (run / "config.json").write_text(config.to_json())
    (run / "class_names.json").write_text(json.dumps(["BLUE_SQUARE", "GREEN_TRIANGLE", "RED_CIRCLE", "YELLOW_CROSS"]))
    return run


def test_export_below_the_agreement_threshold_fails_and_publishes_nothing(run_trainer, untrained_run, tmp_path):
    out = tmp_path / "bundle"
    result = run_trainer("export", untrained_run, "--out", out, "--quantize", "int8")
    assert result.returncode == 1, result.stderr[-2000:]
    message = [line for line in result.stderr.splitlines() if line.startswith("trainer: export failed verification")]
    assert len(message) == 1 and "below the required 98.00%" in message[0]
    assert not out.exists()
    rejected = tmp_path / "bundle.rejected"
    assert json.loads((rejected / "manifest.json").read_text())["metrics"]["agreement"] < 0.98


def test_export_refuses_an_existing_bundle_folder_and_unknown_no_bird_label(run_trainer, trained_run, bundle_int8, tmp_path):
    result = run_trainer("export", trained_run, "--out", bundle_int8)
    assert result.returncode == 2 and "not empty" in result.stderr
    result = run_trainer("export", trained_run, "--out", tmp_path / "b", "--no-bird-label", "NOTHING")
    assert result.returncode == 2 and "no_bird_label 'NOTHING'" in result.stderr


def test_cli_export_prints_the_bundle_and_its_verified_accuracy(run_trainer, trained_run, tmp_path):
    result = run_trainer("export", trained_run, "--out", tmp_path / "b", "--quantize", "int8", "--no-bird-label", "RED_CIRCLE",
                         "--calibration-images", "50")
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"bundle: {tmp_path / 'b'}" in result.stdout
    assert "tflite top-1" in result.stdout and "agreement" in result.stdout
    assert json.loads((tmp_path / "b" / "manifest.json").read_text())["no_bird_label"] == "RED_CIRCLE"
