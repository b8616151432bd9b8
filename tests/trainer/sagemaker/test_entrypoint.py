"""The SageMaker entry point in a subprocess, with SM_* variables pointing at temporary folders:
it writes a loadable SavedModel, a bundle the edge loads and a report; killed mid-run (a spot
interruption) and started again, it resumes from the checkpoint folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures.waiting import wait_for
from trainer.entrypoint import EntryPointError, SageMakerEnv, configure_multiworker, resolve_hyperparameters, run

IMAGE_SIZE = 32


def sm_env(cli_env: dict, root: Path, data: Path, hps: dict, channels=("train", "valid", "test")) -> dict:
    env = {k: v for k, v in cli_env.items() if not k.startswith("SM_")}
    env.update({
        "SM_MODEL_DIR": str(root / "model"),
        "SM_OUTPUT_DATA_DIR": str(root / "output"),
        "SM_HPS": json.dumps(hps),
        "TRAILCAM_CHECKPOINT_DIR": str(root / "checkpoints"),  # stands in for /opt/ml/checkpoints
        "TRAINING_JOB_NAME": "trailcam-test-job",
    })
    names = {"train": "SM_CHANNEL_TRAIN", "valid": "SM_CHANNEL_VALIDATION", "test": "SM_CHANNEL_TEST"}
    for channel in channels:
        env[names[channel]] = str(data / channel)
    return env


def entrypoint(repo_root: Path) -> list[str]:
    # Exactly how the container starts it: a script path, not `-m`.
    return [sys.executable, str(repo_root / "trainer" / "entrypoint.py")]


@pytest.fixture(scope="module")
def finished_job(synthetic_dataset: Path, tmp_path_factory, cli_env, repo_root) -> tuple[Path, subprocess.CompletedProcess]:
    root = tmp_path_factory.mktemp("sm-job")
    hps = {"epochs": "4", "image_size": str(IMAGE_SIZE), "optimizer": "adam", "learning-rate": "0.003",
           "filters": "ignored-by-design", "sagemaker_program": "trainer/entrypoint.py"}
    proc = subprocess.run(
        [*entrypoint(repo_root), "--batch_size", "16", "--dense-layer", "24", "--quantize", "float16",
         "--model_dir", "s3://bucket/should-be-ignored", "--seed=3"],
        env=sm_env(cli_env, root, synthetic_dataset, hps), capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return root, proc


def test_model_dir_holds_savedmodel_bundle_and_report(finished_job, synthetic_dataset: Path):
    root, proc = finished_job
    model_dir = root / "model"
    assert "ignoring unknown hyperparameters/arguments: filters, model_dir, sagemaker_program" in proc.stdout
    lines = [line for line in proc.stdout.splitlines() if line.startswith("epoch=")]
    assert [line.split()[0] for line in lines] == ["epoch=1", "epoch=2", "epoch=3", "epoch=4"]

    # SavedModel in TF-Serving layout, loadable and serving raw 0-255 RGB.
    import tensorflow as tf

    loaded = tf.saved_model.load(str(model_dir / "1"))
    serve = loaded.signatures["serving_default"]
    images = np.random.default_rng(0).integers(0, 256, (2, IMAGE_SIZE, IMAGE_SIZE, 3)).astype("float32")
    (probabilities,) = serve(tf.constant(images)).values()
    assert probabilities.shape == (2, 4)
    np.testing.assert_allclose(probabilities.numpy().sum(axis=1), 1.0, rtol=1e-4)

    # Hyperparameters arrived: arguments, SM_HPS, the proposal's alias, dashes.
    config = json.loads((root / "output" / "run" / "config.json").read_text())
    assert (config["epochs"], config["image_size"], config["batch_size"], config["dense_units"], config["seed"]) == \
        (4, IMAGE_SIZE, 16, 24, 3)
    assert config["learning_rate"] == pytest.approx(0.003)

    # The bundle loads in the edge (manifest, checksum, labels) and classifies test images.
    bundle = model_dir / "bundle"
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["quantization"] == "float16" and manifest["num_classes"] == 4
    labels = (bundle / "labels.txt").read_text().splitlines()
    assert labels == sorted(p.name for p in (synthetic_dataset / "test").iterdir())
    correct = classify_test_images(bundle, synthetic_dataset, labels)
    assert correct >= 3, f"the exported bundle classified only {correct}/4 test images"

    report = json.loads((model_dir / "report.json").read_text())
    assert report["split"] == "test" and 0.0 <= report["top1"] <= 1.0
    assert report["bundle"]["tflite_sha256"] == manifest["tflite_sha256"]
    assert report["epochs_completed"] == 4 and report["job_name"] == "trailcam-test-job"
    assert (model_dir / "evaluation" / "confusion.png").is_file()
    assert (root / "output" / "run" / "history.json").is_file()
    assert not (root / "output" / "run" / "checkpoints").exists()  # checkpoints stay in the checkpoint dir


def test_fetch_unpacks_the_bundle_from_the_model_artefact(finished_job, synthetic_dataset: Path, tmp_path: Path, capsys):
    from trainer.cli import main as trainer_main
    from trainer.sagemaker.artifacts import pack_model_dir

    root, _ = finished_job
    tar = pack_model_dir(root / "model", tmp_path / "model.tar.gz")  # what SageMaker uploads
    out = tmp_path / "models" / "birds"
    assert trainer_main(["sagemaker", "fetch", "--from-file", str(tar), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["labels.txt", "manifest.json", "model.keras", "model.tflite", "report.json"]
    assert (out / "model.tflite").read_bytes() == (root / "model" / "bundle" / "model.tflite").read_bytes()
    labels = (out / "labels.txt").read_text().splitlines()
    assert classify_test_images(out, synthetic_dataset, labels) >= 3  # what the edge will run
    # A second fetch into the same folder refuses unless asked to replace it.
    assert trainer_main(["sagemaker", "fetch", "--from-file", str(tar), "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    # A corrupted artefact is caught by the manifest's checksum and leaves the old bundle alone.
    import tarfile

    bad = tmp_path / "bad.tar.gz"
    with tarfile.open(bad, "w:gz") as archive:
        for path in sorted((root / "model" / "bundle").iterdir()):
            if path.name == "model.tflite":
                corrupt = tmp_path / "model.tflite"
                corrupt.write_bytes(path.read_bytes()[:-16] + b"\0" * 16)
                archive.add(corrupt, arcname="bundle/model.tflite")
            else:
                archive.add(path, arcname=f"bundle/{path.name}")
    assert trainer_main(["sagemaker", "fetch", "--from-file", str(bad), "--out", str(out), "--overwrite"]) == 1
    assert "sha256" in capsys.readouterr().err
    assert (out / "model.tflite").read_bytes() == (root / "model" / "bundle" / "model.tflite").read_bytes()


def classify_test_images(bundle: Path, dataset: Path, labels: list[str]) -> int:
    """How many of one test image per class the edge's own classifier gets right."""
    from edge.classify.model import load_classifier
    from edge.ingest.imaging import decode

    classifier = load_classifier(bundle)
    assert classifier.input_size == (IMAGE_SIZE, IMAGE_SIZE)
    correct = 0
    for label in labels:
        path = sorted((dataset / "test" / label).iterdir())[0]
        predictions, _ = classifier.classify(decode(path.read_bytes(), classifier.input_size).rgb)
        correct += int(predictions[0].label == label)
    return correct


def test_spot_interruption_resumes_from_the_checkpoint_dir(synthetic_dataset: Path, tmp_path: Path, cli_env, repo_root):
    hps = {"epochs": "6", "image_size": str(IMAGE_SIZE), "optimizer": "adam", "learning_rate": "0.003",
           "early_stopping_patience": "10", "quantize": "none", "batch_size": "16"}
    env = sm_env(cli_env, tmp_path, synthetic_dataset, hps)
    state = tmp_path / "checkpoints" / "run" / "checkpoints" / "state.json"

    def checkpointed_epoch() -> int:
        try:
            return int(json.loads(state.read_text())["epoch"])
        except (OSError, ValueError, KeyError):
            return 0

    first = subprocess.Popen(entrypoint(repo_root), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, start_new_session=True)
    try:
        wait_for(lambda: checkpointed_epoch() >= 2 or first.poll() is not None, 240, interval=0.1,
                 what="the second checkpoint")
        assert first.poll() is None, "the job finished before it could be interrupted"
        os.killpg(first.pid, signal.SIGKILL)  # no warning, like a reclaimed spot instance
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    interrupted_at = checkpointed_epoch()
    assert 2 <= interrupted_at < 6
    assert not (tmp_path / "model" / "bundle").exists()

    second = subprocess.run(entrypoint(repo_root), env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert f"trailcam: resuming from checkpoint after epoch {interrupted_at}" in second.stdout
    epochs = [int(line.split()[0].split("=")[1]) for line in second.stdout.splitlines() if line.startswith("epoch=")]
    assert epochs == list(range(interrupted_at + 1, 7)), "the rerun must continue, not start over"
    history = json.loads((tmp_path / "output" / "run" / "history.json").read_text())
    assert len(history["loss"]) == 6  # epochs before and after the interruption, once each
    assert (tmp_path / "model" / "bundle" / "model.tflite").is_file()


def test_missing_channel_is_a_clear_error_exit_2(tmp_path: Path, capsys):
    environ = {"SM_MODEL_DIR": str(tmp_path / "m"), "SM_CHANNEL_TRAIN": str(tmp_path), "SM_HPS": "{}",
               "TRAILCAM_CHECKPOINT_DIR": str(tmp_path / "c")}
    assert run(environ, []) == 2
    err = capsys.readouterr().err
    assert "missing channel(s): valid" in err and "SM_CHANNEL_VALID" in err
    environ["SM_CHANNEL_VALID"] = str(tmp_path / "does-not-exist")
    assert run(environ, []) == 2
    assert "channel valid" in capsys.readouterr().err


@pytest.mark.parametrize("argv, expected", [
    (["--epochs", "ten"], "epochs"),
    (["--learning-rate", "fast"], "learning_rate"),
    (["--arch", "vgg16"], "vgg16"),
    (["--quantize", "int4"], "quantize"),
    (["--calibration-images", "many"], "calibration_images"),
    (["--optimizer", "rmsprop"], "optimizer"),
    (["--eval-split", "test"], "no test channel"),
])
def test_bad_hyperparameters_exit_2_naming_the_key(tmp_path: Path, capsys, argv, expected):
    (tmp_path / "train").mkdir()
    (tmp_path / "valid").mkdir()
    environ = {"SM_CHANNEL_TRAIN": str(tmp_path / "train"), "SM_CHANNEL_VALID": str(tmp_path / "valid"),
               "TRAILCAM_CHECKPOINT_DIR": str(tmp_path / "c")}
    assert run(environ, argv) == 2
    assert expected in capsys.readouterr().err


def test_data_that_cannot_train_exits_2(tmp_path: Path, capsys):
    for split in ("train", "valid"):
        (tmp_path / split / "ONLY_ONE_CLASS").mkdir(parents=True)
    environ = {"SM_CHANNEL_TRAIN": str(tmp_path / "train"), "SM_CHANNEL_VALID": str(tmp_path / "valid"),
               "SM_MODEL_DIR": str(tmp_path / "m"), "TRAILCAM_CHECKPOINT_DIR": str(tmp_path / "c")}
    assert run(environ, ["--epochs", "1"]) == 2
    assert "data:" in capsys.readouterr().err


def test_hyperparameters_from_sm_hps_and_arguments():
    overrides, options, ignored = resolve_hyperparameters(
        {"epochs": "5", "dense-layer": "12", "sagemaker_region": "us-east-1"},
        ["--epochs", "7", "--augment", "false", "--quantize=dynamic", "stray"],
    )
    assert overrides == {"epochs": 7, "dense_units": 12, "augment": False}
    assert options["quantize"] == "dynamic"
    assert set(ignored) == {"sagemaker_region", "stray"}


def test_several_hosts_train_with_multiworker_mirrored_strategy(monkeypatch):
    # setenv first so that monkeypatch restores the original (absent) TF_CONFIG afterwards:
    # a leaked TF_CONFIG would make later training in this process look for other workers.
    monkeypatch.setenv("TF_CONFIG", "placeholder")
    monkeypatch.delenv("TF_CONFIG")
    env = SageMakerEnv.from_environ({"SM_HOSTS": '["algo-2", "algo-1"]', "SM_CURRENT_HOST": "algo-2"})
    assert configure_multiworker(env) is True
    tf_config = json.loads(os.environ["TF_CONFIG"])
    assert tf_config == {"cluster": {"worker": ["algo-1:2222", "algo-2:2222"]}, "task": {"type": "worker", "index": 1}}
    assert not env.is_chief
    single = SageMakerEnv.from_environ({"SM_HOSTS": '["algo-1"]', "SM_CURRENT_HOST": "algo-1"})
    assert configure_multiworker(single) is False and single.is_chief


def test_tuning_jobs_keep_checkpoints_per_training_job(tmp_path: Path):
    """A tuning job's training jobs may share one checkpoint URI; each resumes only its own run."""
    from trainer.entrypoint import checkpoint_root

    env = SageMakerEnv.from_environ({"SM_TRAINING_ENV": json.dumps({"job_name": "tune-1-007-abc"})})
    assert env.job_name == "tune-1-007-abc"
    tuned = checkpoint_root(env, {"checkpoint_dir": tmp_path}, {"_tuning_objective_metric": "validation_accuracy"})
    assert tuned == tmp_path / "tune-1-007-abc"
    assert checkpoint_root(env, {"checkpoint_dir": tmp_path}, {}) == tmp_path  # a plain job: the dir itself


def test_bad_sm_hps_json_is_an_entrypoint_error():
    with pytest.raises(EntryPointError, match="SM_HPS"):
        SageMakerEnv.from_environ({"SM_HPS": "{not json"})
