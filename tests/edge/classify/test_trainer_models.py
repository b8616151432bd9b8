"""The trainer's real models on the edge: uint8 (bundle_int8), float (bundle_float) and a
signed-int8 model with a separate labels file; frames larger than the model input (draft
decoding); both runtimes agree."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edge.classify.model import Classifier, resolve_model, sha256_file
from edge.daemon.wiring import build
from edge.ingest.imaging import decode


@pytest.fixture(scope="module")
def int8_io_model(trained_run: Path, synthetic_dataset: Path, tmp_path_factory) -> Path:
    """The trained convnet converted with int8 (not uint8) input and output, labels beside it."""
    import tensorflow as tf
    from PIL import Image

    from trainer.export import _representative
    from trainer.models import load_keras_model

    model = load_keras_model(trained_run / "best.keras")
    size = model.input_shape[1:3]
    images = np.stack([np.asarray(Image.open(p).convert("RGB").resize(size[::-1], Image.BILINEAR), np.float32)
                       for p in sorted(synthetic_dataset.glob("train/*/*.jpg"))[::4][:60]])
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = _representative(images)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    folder = tmp_path_factory.mktemp("int8io")
    (folder / "convnet-int8io.tflite").write_bytes(converter.convert())
    names = json.loads((trained_run / "class_names.json").read_text())
    (folder / "classes.txt").write_text("\n".join(names) + "\n")
    return folder


def _top1(classifier: Classifier, frames: list[tuple[Path, str]]) -> list[str]:
    return [classifier.classify(decode(p.read_bytes(), classifier.input_size).rgb, 1)[0][0].label for p, _ in frames]


def test_uint8_float_and_int8_models_classify_camera_frames(bundle_int8, bundle_float, int8_io_model, camera_frames) -> None:
    expected = [name for _, name in camera_frames]
    uint8 = Classifier(resolve_model(bundle_int8))
    floaty = Classifier(resolve_model(bundle_float))
    int8 = Classifier(resolve_model(int8_io_model / "convnet-int8io.tflite", int8_io_model / "classes.txt"))
    assert (uint8.input_dtype, floaty.input_dtype, int8.input_dtype) == (np.uint8, np.float32, np.int8)
    manifest = json.loads((bundle_int8 / "manifest.json").read_text())
    assert uint8.model_id == manifest["model_id"]
    assert int8.model_id.startswith("convnet-int8io-")
    # MQTT's model_version: the bundle's build time, else the bare .tflite's content hash.
    assert uint8.spec.model_version == manifest["created_at"]
    assert int8.spec.model_version == sha256_file(int8_io_model / "convnet-int8io.tflite")[:12]
    results = {name: _top1(c, camera_frames) for name, c in (("uint8", uint8), ("float", floaty), ("int8", int8))}
    for name, top1 in results.items():
        right = sum(a == b for a, b in zip(top1, expected))
        assert right >= len(expected) - 2, f"{name}: {right}/{len(expected)}"
    assert sum(a == b for a, b in zip(results["int8"], results["float"])) >= len(expected) - 1
    scores = floaty.scores(decode(camera_frames[0][0].read_bytes(), floaty.input_size).rgb)
    assert abs(float(scores.sum()) - 1.0) < 1e-3


def test_daemon_with_bundle_counts_frames(tmp_path, bundle_int8, camera_frames, make_config) -> None:
    camera = tmp_path / "cam"
    camera.mkdir()
    for path, _ in camera_frames:
        shutil.copy(path, camera / path.name)
    config = make_config([{"name": "cam", "path": str(camera)}], model={"path": str(bundle_int8)}, classify={"threshold": 0.3})
    assert build(config, once=True, field=False).run() == 0
    conn = sqlite3.connect(config.storage.database)
    rows = dict(conn.execute("SELECT path, species FROM frames WHERE status = 'ok'").fetchall())
    conn.close()
    right = sum(rows[str(camera / p.name)] == name for p, name in camera_frames)
    assert len(rows) == len(camera_frames) and right >= len(camera_frames) - 2


def test_tflite_runtime_agrees_on_trainer_models(bundle_int8, int8_io_model, camera_frames, edge_venv_python, cli_env) -> None:
    paths = [str(p) for p, _ in camera_frames]
    for model, labels in ((bundle_int8, None), (int8_io_model / "convnet-int8io.tflite", int8_io_model / "classes.txt")):
        args = [str(edge_venv_python), "-m", "edge", "classify", "--model", str(model), "--format", "json", "--top-k", "1"]
        if labels:
            args += ["--labels", str(labels)]
        result = subprocess.run([*args, *paths], env=cli_env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert report["runtime"] == "tflite-runtime"
        litert = Classifier(resolve_model(model, labels))
        assert [i["top"][0]["label"] for i in report["images"]] == _top1(litert, camera_frames)
