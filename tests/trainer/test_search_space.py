"""The search space: the proposal's ranges by default, file overrides, and clear errors (exit 2)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from trainer.search_space import (
    HEAD_WIDTH_ARCHS,
    CategoricalParam,
    FloatParam,
    IntParam,
    SearchSpaceError,
    default_search_space,
    load_search_space,
)
from trainer.train_config import ARCHITECTURES

TRANSFER = [a for a in ARCHITECTURES if a != "convnet"]


def test_convnet_default_is_the_proposals_ranges_plus_optimizer_and_dropout():
    space = default_search_space("convnet")
    assert space.params["epochs"] == IntParam(5, 20)
    assert space.params["dense_units"] == IntParam(10, 50)
    lr = space.params["learning_rate"]
    assert (lr.low, lr.high, lr.log) == (0.001, 0.1, True)
    assert set(space.params["optimizer"].choices) == {"adam", "sgd"}
    dropout = space.params["dropout"]
    assert isinstance(dropout, FloatParam) and 0 <= dropout.low < dropout.high < 1


@pytest.mark.parametrize("arch", TRANSFER)
def test_transfer_backbones_tune_rate_dropout_head_and_fine_tune_depth(arch):
    space = default_search_space(arch)
    assert {"learning_rate", "dropout", "fine_tune_layers"} <= set(space.params)
    # head width only where the trainer's head has a hidden layer of that width
    assert ("head_units" in space.params) == (arch in HEAD_WIDTH_ARCHS)
    assert space.params["fine_tune_layers"].low == 0  # "head only" stays a candidate
    assert space.fixed["fine_tune_epochs"] > 0  # otherwise the fine-tune depth would mean nothing


def test_head_width_is_searched_only_where_the_model_has_that_layer():
    """If a backbone's head stops using head_units, its search space must stop offering it."""
    import keras

    from trainer.models import build_transfer

    for arch in TRANSFER:
        model = build_transfer(arch, 3, 32, "none", 0.1, head_units=77).model
        has_head_layer = any(getattr(layer, "units", None) == 77 for layer in model.layers)
        assert has_head_layer == (arch in HEAD_WIDTH_ARCHS), arch
        keras.backend.clear_session()


def test_sagemaker_ranges_carry_every_parameter_with_its_scale():
    ranges = default_search_space("convnet").sagemaker_parameter_ranges()
    ints = {r["Name"]: r for r in ranges["IntegerParameterRanges"]}
    floats = {r["Name"]: r for r in ranges["ContinuousParameterRanges"]}
    assert (ints["epochs"]["MinValue"], ints["epochs"]["MaxValue"]) == ("5", "20")
    assert (ints["dense_units"]["MinValue"], ints["dense_units"]["MaxValue"]) == ("10", "50")
    assert floats["learning_rate"] == {"Name": "learning_rate", "MinValue": "0.001", "MaxValue": "0.1",
                                       "ScalingType": "Logarithmic"}
    assert ranges["CategoricalParameterRanges"] == [{"Name": "optimizer", "Values": ["adam", "sgd"]}]


def test_toml_override_merges_changes_and_fixes(tmp_path: Path):
    path = tmp_path / "space.toml"
    path.write_text(
        'arch = "convnet"\n'
        '[params.learning_rate]\ntype = "float"\nlow = 0.001\nhigh = 0.1\nscaling = "ReverseLogarithmic"\n'
        '[params.batch_size]\ntype = "categorical"\nchoices = [16, 32]\n'
        '[fixed]\noptimizer = "adam"\n'
    )
    space = load_search_space("convnet", path)
    assert space.params["learning_rate"].scaling == "ReverseLogarithmic"
    assert space.params["batch_size"] == CategoricalParam((16, 32))
    assert "optimizer" not in space.params and space.fixed == {"optimizer": "adam"}
    assert space.params["epochs"] == IntParam(5, 20)  # untouched defaults stay


def test_json_override_is_read_the_same_way(tmp_path: Path):
    path = tmp_path / "space.json"
    path.write_text(json.dumps({"params": {"epochs": {"type": "int", "low": 2, "high": 4}}}))
    assert load_search_space("convnet", path).params["epochs"] == IntParam(2, 4)


BAD_FILES = {
    "unknown_param": ('[params.learning_speed]\ntype = "float"\nlow = 0.1\nhigh = 1.0\n', "learning_speed"),
    "low_not_below_high": ('[params.epochs]\ntype = "int"\nlow = 20\nhigh = 5\n', "params.epochs"),
    "log_scale_needs_positive_low": ('[params.learning_rate]\ntype = "float"\nlow = 0.0\nhigh = 0.1\nscaling = "Logarithmic"\n',
                                     "params.learning_rate.low"),
    "reverse_log_below_one": ('[params.learning_rate]\ntype = "float"\nlow = 0.1\nhigh = 2.0\nscaling = "ReverseLogarithmic"\n',
                              "params.learning_rate"),
    "unknown_scaling": ('[params.dropout]\ntype = "float"\nlow = 0.1\nhigh = 0.3\nscaling = "Cubic"\n', "params.dropout.scaling"),
    "int_range_for_float_field": ('[params.learning_rate]\ntype = "int"\nlow = 1\nhigh = 3\n', "params.learning_rate.type"),
    "unknown_key_in_range": ('[params.epochs]\ntype = "int"\nlow = 5\nhigh = 20\nstep = 2\n', "step"),
    "bad_optimizer_choice": ('[params.optimizer]\ntype = "categorical"\nchoices = ["adam", "rmsprop"]\n', "rmsprop"),
    "unknown_top_level": ('[ranges.epochs]\ntype = "int"\n', "ranges"),
    "arch_mismatch": ('arch = "resnet152"\n', "resnet152"),
    "not_tunable": ('[fixed]\ndata_dir = "/tmp"\n', "data_dir"),
    "fixed_wrong_type": ('[fixed]\nepochs = "ten"\n', "fixed.epochs"),
    "toml_syntax": ('[params.epochs\ntype = "int"\n', "invalid TOML"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_search_space_file_names_the_problem(tmp_path: Path, name: str):
    text, expected = BAD_FILES[name]
    path = tmp_path / "space.toml"
    path.write_text(text)
    with pytest.raises(SearchSpaceError) as info:
        load_search_space("convnet", path)
    assert expected in str(info.value)
    assert str(path) in str(info.value)


def test_missing_file_and_wrong_suffix_are_errors(tmp_path: Path):
    with pytest.raises(SearchSpaceError, match="not found"):
        load_search_space("convnet", tmp_path / "nope.toml")
    yaml = tmp_path / "space.yaml"
    yaml.write_text("params: {}\n")
    with pytest.raises(SearchSpaceError, match=r"\.toml or \.json"):
        load_search_space("convnet", yaml)


@pytest.mark.parametrize("command", [
    ["tune", "--show-space"],
    ["sagemaker", "tune", "--dry-run", "--data", "s3://bucket/birds"],
])
def test_cli_exits_2_on_a_bad_search_space_file(tmp_path: Path, cli_env, command):
    path = tmp_path / "space.toml"
    path.write_text('[params.epochs]\ntype = "int"\nlow = 0\nhigh = 5\n')
    proc = subprocess.run([sys.executable, "-m", "trainer", *command, "--search-space", str(path)],
                          env=cli_env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "params.epochs.low" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_show_space_prints_the_effective_ranges(cli_env):
    proc = subprocess.run([sys.executable, "-m", "trainer", "tune", "--show-space"], env=cli_env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "epochs: 5 .. 20" in proc.stdout and "learning_rate: 0.001 .. 0.1 (Logarithmic)" in proc.stdout
