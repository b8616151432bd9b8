"""Training: the run folder, the epoch line, --params, broken files skipped, and --resume."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from trainer.train import EPOCH_LINE_KEYS, format_epoch_line

EPOCH_LINE = re.compile(r"^epoch=(\d+) loss=(\d+\.\d{6}) accuracy=(\d+\.\d{6}) val_loss=(\d+\.\d{6}) val_accuracy=(\d+\.\d{6})$")


def test_epoch_line_format_is_the_documented_one():
    logs = {"val_accuracy": 0.85, "loss": 0.4123449, "accuracy": 0.8765432, "val_loss": 0.501234, "learning_rate": 0.01}
    assert format_epoch_line(3, logs) == "epoch=3 loss=0.412345 accuracy=0.876543 val_loss=0.501234 val_accuracy=0.850000"
    assert EPOCH_LINE_KEYS == ("epoch", "loss", "accuracy", "val_loss", "val_accuracy")
    assert format_epoch_line(1, {"loss": 1.0}) == "epoch=1 loss=1.000000"


def test_convnet_learns_the_synthetic_set_and_writes_a_complete_run(trained_run):
    for name in ("config.json", "class_names.json", "data.json", "history.json", "history.png", "best.keras", "train.log"):
        assert (trained_run / name).is_file(), name
    history = json.loads((trained_run / "history.json").read_text())
    assert max(history["val_accuracy"]) > 0.9
    assert len(history["loss"]) == 10 and history["loss"][-1] < history["loss"][0]
    log_lines = [line.split(": ", 1)[1] for line in (trained_run / "train.log").read_text().splitlines() if ": epoch=" in line]
    assert [EPOCH_LINE.match(line).group(1) for line in log_lines] == [str(i) for i in range(1, 11)]
    state = json.loads((trained_run / "checkpoints" / "state.json").read_text())
    assert state["epoch"] == 10 and (trained_run / "checkpoints" / "epoch-0010.keras").is_file()
    assert len(list((trained_run / "checkpoints").glob("epoch-*.keras"))) == 3  # keep_checkpoints
    config = json.loads((trained_run / "config.json").read_text())
    assert config["arch"] == "convnet" and config["filters"] == [16, 16]


def test_proposal_convnet_is_exact_by_default():
    from trainer.models import build_convnet

    model = build_convnet(10, 224)
    summary = [(layer.__class__.__name__, tuple(layer.output.shape[1:])) for layer in model.layers[2:]]
    assert summary == [
        ("Conv2D", (222, 222, 64)), ("MaxPooling2D", (111, 111, 64)), ("Conv2D", (109, 109, 32)),
        ("MaxPooling2D", (54, 54, 32)), ("Flatten", (93312,)), ("Dense", (32,)), ("Dropout", (32,)), ("Dense", (10,)),
    ]
    assert model.count_params() == 3_006_602  # the proposal's model.summary()


@pytest.fixture(scope="module")
def cli_run(run_trainer, broken_dataset, tmp_path_factory):
    """`trainer train --params` (a tuner's best.json) on the data set with broken files, 2 epochs."""
    root, _ = broken_dataset
    tmp = tmp_path_factory.mktemp("cli-train")
    params = tmp / "best.json"
    params.write_text(json.dumps({"image_size": 32, "filters": [8, 8], "dense_units": 16, "optimizer": "adam",
                                  "learning_rate": 0.003, "batch_size": 32, "epochs": 5, "augment": False}))
    run_dir = tmp / "run"
    result = run_trainer("train", "--data", root, "--out", run_dir, "--params", params, "--epochs", "2",
                         "--distribution", "mirrored", "--seed", "5")
    return result, run_dir


def test_cli_train_applies_params_prints_epoch_lines_and_skips_broken_files(cli_run, broken_dataset):
    result, run_dir = cli_run
    _, broken = broken_dataset
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in result.stdout.splitlines() if line.startswith("epoch=")]
    assert [EPOCH_LINE.match(line).group(1) for line in lines] == ["1", "2"]
    config = json.loads((run_dir / "config.json").read_text())
    # --params values, overridden by explicit options (--epochs 2 beats the file's 5)
    assert (config["image_size"], config["filters"], config["optimizer"], config["epochs"], config["seed"]) == (32, [8, 8], "adam", 2, 5)
    skipped = {Path(p).name for p, _ in json.loads((run_dir / "data.json").read_text())["skipped"]}
    assert {"corrupt.jpg", "truncated.jpg", "notes.txt", "fake.png"} <= skipped
    assert f"skipping {broken['truncated']}" in result.stderr


def test_resume_continues_epoch_count_and_weights(cli_run):
    import keras

    from trainer.train import train
    from trainer.train_config import TrainConfig

    result, run_dir = cli_run
    assert result.returncode == 0
    checkpoint = keras.models.load_model(run_dir / "checkpoints" / "epoch-0002.keras")
    seen: dict[str, list[np.ndarray]] = {}

    class CaptureStart(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen["weights"] = [w.copy() for w in self.model.get_weights()]
            seen["iterations"] = int(self.model.optimizer.iterations.numpy())

    config = TrainConfig.from_json((run_dir / "config.json").read_text())
    config.resume, config.epochs, config.distribution = True, 3, "none"
    resumed = train(config, extra_callbacks=[CaptureStart()])
    assert resumed.epochs_completed == 3
    assert len(resumed.history["loss"]) == 3
    for got, want in zip(seen["weights"], checkpoint.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)
    assert seen["iterations"] == int(checkpoint.optimizer.iterations.numpy()) > 0  # optimizer state too
    assert json.loads((run_dir / "checkpoints" / "state.json").read_text())["epoch"] == 3


def test_mixed_precision_trains_and_exports_with_a_float32_softmax(synthetic_dataset, tmp_path):
    """What a GPU run gets by default (forced on here: this machine has no GPU)."""
    import keras

    from trainer.export import export_bundle
    from trainer.train import train
    from trainer.train_config import TrainConfig

    config = TrainConfig(data_dir=synthetic_dataset, out_dir=tmp_path / "run", image_size=32, filters=(8, 8),
                         dense_units=16, optimizer="adam", learning_rate=3e-3, epochs=1, mixed_precision="on",
                         augment=False)
    result = train(config)
    assert keras.mixed_precision.global_policy().name == "float32"  # restored for whoever trains next
    model = keras.models.load_model(result.model_path)
    assert model.get_layer("conv1").compute_dtype == "float16"
    assert model.get_layer("predictions").compute_dtype == "float32"
    bundle = export_bundle(result.run_dir, tmp_path / "bundle", "none", eval_images=20)
    assert json.loads((bundle / "manifest.json").read_text())["output"]["dtype"] == "float32"


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory) -> Path:
    from trainer.synth import SynthSpec, generate_dataset

    spec = SynthSpec(num_classes=3, train_per_class=10, valid_per_class=5, test_per_class=1, image_size=32, seed=3)
    return generate_dataset(tmp_path_factory.mktemp("tiny") / "dataset", spec)


def test_resume_continues_early_stopping_exactly(tiny_dataset, tmp_path):
    """Interrupted between its best epoch and its stop, a resumed run stops where an uninterrupted one does.

    Before, --resume started EarlyStopping's patience (and best value) over, so the resumed run
    trained `patience` epochs past the uninterrupted run's stop.
    """
    import keras
    import tensorflow as tf

    from trainer.train import train
    from trainer.train_config import TrainConfig

    tf.config.experimental.enable_op_determinism()  # same seed -> same numbers, run after run

    def config(out: Path, epochs: int, resume: bool = False) -> TrainConfig:
        return TrainConfig(data_dir=tiny_dataset, out_dir=out, image_size=32, filters=(4, 4), dense_units=8, dropout=0.0,
                           augment=False, optimizer="adam", learning_rate=0.01, batch_size=8, epochs=epochs,
                           early_stopping_monitor="val_accuracy", early_stopping_patience=2, seed=3, resume=resume,
                           distribution="none", mixed_precision="off")

    full = train(config(tmp_path / "full", 20))
    assert full.stopped_early and full.epochs_completed < 20
    assert full.epochs_completed == full.best_epoch + 2  # patience 2: stopped two epochs after the best

    # Killed one epoch after the best: one epoch of patience used up, one left.
    interrupted = train(config(tmp_path / "resumed", full.best_epoch + 1))
    assert not interrupted.stopped_early and interrupted.best_epoch == full.best_epoch
    resumed = train(config(tmp_path / "resumed", 20, resume=True))

    assert resumed.stopped_early
    assert resumed.epochs_completed == full.epochs_completed
    assert resumed.best_epoch == full.best_epoch
    assert resumed.best_metrics == full.best_metrics  # the same best value, to the last bit
    assert resumed.history == full.history  # and the same training: data order continued too
    for got, want in zip(keras.models.load_model(resumed.model_path).get_weights(),
                         keras.models.load_model(full.model_path).get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)

    # Resuming a run that early stopping already ended trains nothing more.
    again = train(config(tmp_path / "resumed", 20, resume=True))
    assert again.stopped_early and again.epochs_completed == full.epochs_completed
    assert len(again.history["loss"]) == full.epochs_completed
