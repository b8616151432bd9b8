"""Wrong input gets one clear message and exit code 2, before any TensorFlow work starts."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def _error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if "error:" in line]


def test_help_lists_every_subcommand_without_importing_tensorflow(run_trainer):
    result = run_trainer("--help")
    assert result.returncode == 0
    for command in ("synth", "data", "train", "evaluate", "export"):
        assert command in result.stdout
    code = "import sys, trainer.cli, trainer.train_config, trainer.train; trainer.cli.build_parser(); print('tensorflow' in sys.modules)"
    probe = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert probe.stdout.strip() == "False"


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--data", "{tmp}/missing", "--out", "{tmp}/run"], "does not exist"),
        (["train", "--data", "{single}", "--out", "{tmp}/run"], "at least 2 class folders"),
        (["train", "--data", "{empty}", "--out", "{tmp}/run"], "has no image files"),
        (["train", "--data", "{data}", "--out", "{tmp}/run", "--arch", "vgg16"], "invalid choice: 'vgg16'"),
        (["train", "--out", "{tmp}/run"], "--data is required"),
        (["train", "--data", "{data}", "--out", "{tmp}/run", "--epochs", "0"], "must be at least 1"),
        (["train", "--data", "{data}", "--out", "{tmp}/run", "--arch", "resnet152", "--image-size", "16"], "minimum of 32"),
        (["train", "--data", "{data}", "--out", "{tmp}/run", "--params", "{tmp}/bad_key.json"], "unknown key 'learning_rat'"),
        (["train", "--data", "{data}", "--out", "{tmp}/run", "--params", "{tmp}/bad_type.json"], "epochs must be an integer"),
        (["train", "--data", "{data}", "--out", "{tmp}/run", "--params", "{tmp}/missing.json"], "does not exist"),
        (["export", "{tmp}/run", "--out", "{tmp}/b", "--quantize", "int4"], "invalid choice: 'int4'"),
        (["export", "{tmp}/run", "--out", "{tmp}/b", "--min-agreement", "1.5"], "1.5 must be in (0, 1]"),
        (["export", "{tmp}/run", "--out", "{tmp}/b", "--min-agreement", "0"], "0.0 must be in (0, 1]"),
        (["export", "{tmp}/not-a-run", "--out", "{tmp}/b"], "not a trained run"),
        (["evaluate", "{tmp}/nothing"], "does not exist"),
        (["data", "check", "{tmp}/missing"], "does not exist"),
        (["synth", "--out", "{tmp}/s", "--classes", "9"], "between 2 and 8"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_bad_input_exits_2_with_one_clear_message(run_trainer, tmp_path, synthetic_dataset, args, message):
    single = tmp_path / "single" / "ONLY_CLASS"
    single.mkdir(parents=True)
    (single / "a.jpg").write_bytes((synthetic_dataset / "train" / "BLUE_SQUARE" / "0001.jpg").read_bytes())
    empty = tmp_path / "empty"
    for name in ("A", "B"):
        (empty / name).mkdir(parents=True)
    (empty / "A" / "a.jpg").write_bytes(single.joinpath("a.jpg").read_bytes())
    (tmp_path / "not-a-run").mkdir()
    (tmp_path / "bad_key.json").write_text(json.dumps({"learning_rat": 0.1}))
    (tmp_path / "bad_type.json").write_text(json.dumps({"epochs": "ten"}))
    paths = {"tmp": tmp_path, "single": single.parent, "empty": empty, "data": synthetic_dataset}
    result = run_trainer(*[a.format(**paths) for a in args], timeout=120)
    assert result.returncode == 2, result.stderr
    errors = _error_lines(result)
    assert len(errors) == 1 and message in errors[0], result.stderr
    assert "Traceback" not in result.stderr


def test_train_refuses_to_overwrite_an_existing_run(run_trainer, trained_run, synthetic_dataset):
    result = run_trainer("train", "--data", synthetic_dataset, "--out", trained_run)
    assert result.returncode == 2
    assert "already holds a run" in result.stderr and "--resume" in result.stderr
