"""Transfer architectures: each builds with weights=None, trains one step and exports to TFLite.

Kept light: 32x32 inputs (the backbones' minimum) and one batch of 16 images. Preprocessing is
inside each model, so the exported .tflite takes raw 0..255 pixels like the convnet.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from trainer.train_config import TrainConfig


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory) -> Path:
    from trainer.synth import SynthSpec, generate_dataset

    spec = SynthSpec(num_classes=4, train_per_class=4, valid_per_class=2, test_per_class=1, image_size=48, seed=11)
    return generate_dataset(tmp_path_factory.mktemp("tiny") / "dataset", spec)


def _config(data: Path, out: Path, arch: str, **overrides) -> TrainConfig:
    values = dict(data_dir=data, out_dir=out, arch=arch, image_size=32, weights="none", epochs=1, batch_size=16,
                  optimizer="adam", learning_rate=1e-3, augment=False, keep_checkpoints=0, seed=3)
    values.update(overrides)
    return TrainConfig(**values)


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["mobilenetv3-large", "efficientnetv2-b0", "resnet152"])
def test_transfer_architecture_trains_one_step_and_converts(arch, tiny_dataset):
    """Build (weights=None), one optimiser step on real images, convert, run with LiteRT.

    The run-folder path (train() -> best.keras -> export_bundle) is the same code for every
    architecture and is exercised end to end with mobilenetv3-small below; here the costly
    save/reload of a 240 MB ResNet152 is skipped to keep the suite within its time budget.
    """
    import keras
    from ai_edge_litert.interpreter import Interpreter

    from trainer.data import discover
    from trainer.export import convert
    from trainer.models import build_model
    from trainer.pipeline import load_images
    from trainer.train import _compile, _make_optimizer

    keras.utils.set_random_seed(0)
    data = discover(tiny_dataset)
    images, labels = load_images(data.split("train"), 32)
    built = build_model(_config(tiny_dataset, tiny_dataset / "unused", arch), len(data.class_names))
    model = built.model
    _compile(model, _make_optimizer("adam", 1e-3, 0.9))
    base_before = [w.copy() for w in built.base.get_weights()]
    head_before = model.get_layer("predictions").get_weights()[0].copy()
    model.train_on_batch(images.astype(np.float32), labels)
    assert not np.array_equal(model.get_layer("predictions").get_weights()[0], head_before)
    assert all(np.array_equal(a, b) for a, b in zip(built.base.get_weights(), base_before)), "the base must be frozen"

    interpreter = Interpreter(model_content=convert(model, "none"))
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    assert list(inp["shape"]) == [1, 32, 32, 3] and list(out["shape"]) == [1, 4]
    expected = np.asarray(model(images[:4].astype(np.float32), training=False))  # eager: no predict() tracing
    for image, want in zip(images[:4], expected):
        interpreter.set_tensor(inp["index"], image[None].astype(np.float32))  # raw 0..255 pixels
        interpreter.invoke()
        np.testing.assert_allclose(interpreter.get_tensor(out["index"])[0], want, atol=2e-4)


def test_caffe_preprocessing_layer_saves_and_reloads(tmp_path):
    import keras

    from trainer.models import CaffePreprocess, load_keras_model

    inputs = keras.Input((4, 4, 3))
    model = keras.Model(inputs, CaffePreprocess(name="resnet_preprocess")(inputs))
    model.save(tmp_path / "m.keras")
    x = np.full((1, 4, 4, 3), [10.0, 20.0, 30.0], np.float32)
    got = load_keras_model(tmp_path / "m.keras").predict(x, verbose=0)
    np.testing.assert_allclose(got[0, 0, 0], [30 - 103.939, 20 - 116.779, 10 - 123.68], rtol=1e-6)


def test_resnet152_is_the_proposals_transfer_model():
    from trainer.models import build_transfer

    built = build_transfer("resnet152", 10, 32, "none")
    layers = {layer.name: layer for layer in built.model.layers}
    assert built.base.name == "resnet152" and not built.base.trainable
    assert layers["head_dense"].units == 1000 and layers["predictions"].units == 10
    assert "resnet_preprocess" in layers  # caffe preprocessing inside the model


@pytest.mark.slow
def test_mobilenetv3_small_fine_tunes_only_the_top_layers(tiny_dataset, tmp_path):
    import keras

    from trainer.export import export_bundle
    from trainer.train import train

    config = _config(tiny_dataset, tmp_path / "run", "mobilenetv3-small", fine_tune_layers=12, fine_tune_epochs=1,
                     fine_tune_learning_rate=1e-2)
    result = train(config)
    assert result.epochs_completed == 2 and len(result.history["loss"]) == 2
    state = json.loads((tmp_path / "run" / "checkpoints" / "state.json").read_text())
    assert state["phase"] == "fine_tune"

    def base_of(path):
        model = keras.models.load_model(path)
        return next(layer for layer in model.layers if isinstance(layer, keras.Model))

    head_phase, fine_tuned = base_of(tmp_path / "run/checkpoints/epoch-0001.keras"), base_of(tmp_path / "run/checkpoints/epoch-0002.keras")
    changed = [not all(np.array_equal(a, b) for a, b in zip(x.get_weights(), y.get_weights()))
               for x, y in zip(head_phase.layers, fine_tuned.layers)]
    cut = len(changed) - 12
    assert not any(changed[:cut]), "layers below the fine-tune cut must stay frozen"
    assert any(changed[cut:]), "the top layers must have been trained"
    export_bundle(result.run_dir, tmp_path / "bundle", "int8", min_agreement=0.0)  # converts with full-integer ops
    assert (tmp_path / "bundle" / "model.tflite").stat().st_size > 0


def test_weights_from_a_local_file(tmp_path):
    import keras

    from trainer.models import build_transfer

    keras.utils.set_random_seed(1)
    source = keras.applications.MobileNetV3Small(include_top=False, weights=None, input_shape=(32, 32, 3),
                                                 pooling="avg", include_preprocessing=True)
    path = tmp_path / "mnv3-small-notop.weights.h5"
    source.save_weights(path)
    keras.utils.set_random_seed(2)
    built = build_transfer("mobilenetv3-small", 3, 32, str(path))
    for got, want in zip(built.base.get_weights(), source.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_transfer("mobilenetv3-small", 3, 32, str(tmp_path / "missing.h5"))
