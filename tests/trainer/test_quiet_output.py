"""What the trainer prints, read from the real commands: no TensorFlow start-up noise on a CPU
machine (one line says there is no GPU), the epoch line on a line of its own under Keras's
progress bar (a terminal), and the warnings of `trainer evaluate` (a model that predicts one
class for everything) and `trainer data check` (a held-out split too small to measure)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures.models import _tensorflow

NOISE = ("absl::InitializeLog", "cuInit", "Could not find cuda drivers", "cpu_feature_guard", "oneDNN custom operations")


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory) -> Path:
    from trainer.synth import SynthSpec, generate_dataset

    spec = SynthSpec(num_classes=3, train_per_class=8, valid_per_class=2, test_per_class=1, image_size=32, seed=4)
    return generate_dataset(tmp_path_factory.mktemp("small") / "dataset", spec)


def trainer(args: list[str], env: dict[str, str], *, terminal: bool = False, timeout: float = 300) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `python -m trainer ARGS`; with `terminal`, stdout is a pty
    (so Keras draws its progress bar, as for a person at a terminal)."""
    if not terminal:
        result = subprocess.run([sys.executable, "-m", "trainer", *args], env=env, capture_output=True, text=True,
                                timeout=timeout)
        return result.returncode, result.stdout, result.stderr
    master, slave = os.openpty()
    process = subprocess.Popen([sys.executable, "-m", "trainer", *args], env=env, stdout=slave,
                               stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    os.close(slave)
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    stderr = process.communicate(timeout=timeout)[1].decode("utf-8", errors="replace")
    reader.join(timeout=30)
    os.close(master)
    return process.returncode, b"".join(chunks).decode("utf-8", errors="replace"), stderr


def test_train_on_a_terminal_is_quiet_and_its_epoch_lines_start_lines(small_dataset, tmp_path, cli_env) -> None:
    _tensorflow()
    code, stdout, stderr = trainer(
        ["train", "--data", str(small_dataset), "--out", str(tmp_path / "run"), "--image-size", "32", "--filters", "4",
         "4", "--dense-units", "8", "--epochs", "2", "--batch-size", "8", "--seed", "1"], cli_env, terminal=True)
    assert code == 0, stderr[-3000:]
    text = stdout.replace("\r\n", "\n")
    epochs = [index for index in range(len(text)) if text.startswith("epoch=", index)]
    assert len(epochs) == 2
    assert all(index == 0 or text[index - 1] == "\n" for index in epochs), text[-2000:]
    assert "━" in text or "/step" in text  # the progress bar was drawn (a terminal)
    assert stderr.count("trainer: no GPU found, training on the CPU") == 1
    for noise in NOISE:
        assert noise not in stderr, stderr[-3000:]


def test_evaluate_warns_when_the_model_predicts_one_class(small_dataset, tmp_path, cli_env) -> None:
    tf = _tensorflow()
    import keras

    from trainer.synth import class_names

    # A real .tflite whose output ignores its input: the first class, always.
    inputs = keras.Input((32, 32, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    outputs = keras.layers.Dense(3, activation="softmax", kernel_initializer="zeros",
                                 bias_initializer=keras.initializers.Constant([4.0, 0.0, 0.0]))(pooled)
    model = keras.Model(inputs, outputs)
    folder = tmp_path / "constant"
    folder.mkdir()
    (folder / "model.tflite").write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    (folder / "labels.txt").write_text("\n".join(class_names(3)) + "\n")
    code, stdout, stderr = trainer(["evaluate", str(folder / "model.tflite"), "--data", str(small_dataset),
                                    "--split", "train", "--out", str(tmp_path / "eval")], cli_env)
    assert code == 0, stderr[-3000:]
    assert f"trainer: warning: the model predicts {class_names(3)[0]!r} for all 24 images of 3 classes" in stderr
    assert "INFO: Created TensorFlow Lite XNNPACK delegate" not in stdout + stderr
    for noise in NOISE:
        assert noise not in stderr, stderr[-3000:]


def test_evaluate_metrics_have_no_warning_for_a_model_that_discriminates() -> None:
    from trainer.evaluate import metrics_from

    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    assert metrics_from(probabilities, np.array([0, 1, 1]), ["a", "b"])["warnings"] == []
    assert metrics_from(np.array([[0.9, 0.1], [0.7, 0.3]]), np.array([0, 1]), ["a", "b"])["warnings"]


def test_data_check_warns_about_a_split_too_small_to_measure(small_dataset, cli_env) -> None:
    code, stdout, stderr = trainer(["data", "check", str(small_dataset), "--expect-size", "32"], cli_env)
    assert code == 0, stderr
    assert "trainer: warning: split 'test' has 3 images, fewer than 20: too few to measure anything" in stderr
    assert "trainer: warning: split 'valid' has 6 images, fewer than 20" in stderr
    assert "split 'train'" not in stderr
