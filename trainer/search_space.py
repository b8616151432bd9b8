"""What `trainer tune` and `trainer sagemaker tune` search over: one definition per architecture.

Both tuning back ends read the same `SearchSpace`: the local Optuna study asks it to suggest
values for a trial, the SageMaker request builder turns it into `ParameterRanges`. Parameter
names are `TrainConfig` field names, so a tuned value feeds straight back into training
(`trainer train --params best.json`).

Defaults for `convnet` are the research proposal's ranges (epochs 5–20, learning rate
0.001–0.1, dense units 10–50) plus optimizer and dropout. The proposal sampled the learning
rate on SageMaker's *reverse*-logarithmic scale, which crowds samples near 0.1, where every
one of its 20 jobs diverged to chance accuracy; we default to a plain log scale and let a
search-space file set `scaling = "ReverseLogarithmic"` to reproduce the original.

A search-space file (TOML or JSON) overrides ranges by name::

    arch = "convnet"                       # optional; must match --arch when given
    [params.learning_rate]
    type = "float"                         # int | float | categorical
    low = 0.0005
    high = 0.05
    scaling = "Logarithmic"                # Auto | Linear | Logarithmic | ReverseLogarithmic
    [params.optimizer]
    type = "categorical"
    choices = ["adam"]
    [fixed]                                # take a parameter out of the search
    dense_units = 32

Kept free of TensorFlow and Optuna imports: request building and `--dry-run` stay cheap.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainer.train_config import ARCHITECTURES, OPTIMIZERS, TrainConfig

SCALINGS = ("Auto", "Linear", "Logarithmic", "ReverseLogarithmic")
PARAM_TYPES = ("int", "float", "categorical")

# Fields a search may not touch: where data and results live, and run control.
_NOT_TUNABLE = {"data_dir", "out_dir", "arch", "resume", "checkpoint_dir", "extra", "filters", "taxonomy"}


class SearchSpaceError(ValueError):
    """A search-space definition or file is invalid; the message names the key and the problem."""


@dataclass(frozen=True)
class IntParam:
    """An integer range, inclusive at both ends (SageMaker IntegerParameterRange semantics)."""

    low: int
    high: int
    scaling: str = "Auto"

    @property
    def log(self) -> bool:
        return self.scaling == "Logarithmic"


@dataclass(frozen=True)
class FloatParam:
    """A continuous range; `scaling` is SageMaker's name for how values are sampled."""

    low: float
    high: float
    scaling: str = "Auto"

    @property
    def log(self) -> bool:
        # Optuna has no reverse-log sampler; a log scale is the closer of its two choices.
        return self.scaling in ("Logarithmic", "ReverseLogarithmic")


@dataclass(frozen=True)
class CategoricalParam:
    """A finite set of choices (strings or numbers)."""

    choices: tuple[Any, ...]


Param = IntParam | FloatParam | CategoricalParam


@dataclass(frozen=True)
class SearchSpace:
    """Named ranges over `TrainConfig` fields, plus fixed values applied to every trial."""

    arch: str
    params: Mapping[str, Param]
    fixed: Mapping[str, Any] = field(default_factory=dict)

    def suggest(self, trial: Any) -> dict[str, Any]:
        """Draw one configuration from an Optuna trial (the trial is passed in, not imported)."""
        values: dict[str, Any] = dict(self.fixed)
        for name, param in self.params.items():
            if isinstance(param, IntParam):
                values[name] = trial.suggest_int(name, param.low, param.high, log=param.log)
            elif isinstance(param, FloatParam):
                values[name] = trial.suggest_float(name, param.low, param.high, log=param.log)
            else:
                values[name] = trial.suggest_categorical(name, list(param.choices))
        return values

    def sagemaker_parameter_ranges(self) -> dict[str, list[dict[str, Any]]]:
        """The `ParameterRanges` member of a CreateHyperParameterTuningJob request.

        SageMaker passes every value to the container as a string; the entry point converts
        them back with the `TrainConfig` field types.
        """
        ranges: dict[str, list[dict[str, Any]]] = {
            "IntegerParameterRanges": [],
            "ContinuousParameterRanges": [],
            "CategoricalParameterRanges": [],
        }
        for name, param in self.params.items():
            if isinstance(param, IntParam):
                ranges["IntegerParameterRanges"].append(
                    {"Name": name, "MinValue": str(param.low), "MaxValue": str(param.high),
                     "ScalingType": param.scaling}
                )
            elif isinstance(param, FloatParam):
                ranges["ContinuousParameterRanges"].append(
                    {"Name": name, "MinValue": _float_str(param.low), "MaxValue": _float_str(param.high),
                     "ScalingType": param.scaling}
                )
            else:
                ranges["CategoricalParameterRanges"].append(
                    {"Name": name, "Values": [_hp_str(choice) for choice in param.choices]}
                )
        return {key: value for key, value in ranges.items() if value}

    def sdk_parameter_ranges(self) -> dict[str, Any]:
        """The same ranges as SageMaker Python SDK 3.x parameter objects (imported lazily)."""
        from sagemaker.core.parameter import CategoricalParameter, ContinuousParameter, IntegerParameter

        out: dict[str, Any] = {}
        for name, param in self.params.items():
            if isinstance(param, IntParam):
                out[name] = IntegerParameter(param.low, param.high, scaling_type=param.scaling)
            elif isinstance(param, FloatParam):
                out[name] = ContinuousParameter(param.low, param.high, scaling_type=param.scaling)
            else:
                out[name] = CategoricalParameter([_hp_str(choice) for choice in param.choices])
        return out

    def describe(self) -> list[str]:
        """One human-readable line per parameter, for `trainer tune --show-space`."""
        lines = []
        for name, param in self.params.items():
            if isinstance(param, CategoricalParam):
                lines.append(f"{name}: one of {list(param.choices)}")
            else:
                lines.append(f"{name}: {param.low} .. {param.high} ({param.scaling})")
        for name, value in self.fixed.items():
            lines.append(f"{name} = {value!r} (fixed)")
        return lines


def _float_str(value: float) -> str:
    return repr(float(value))


def _hp_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# ---------------------------------------------------------------- defaults, defined once

_PROPOSAL_CONVNET: dict[str, Param] = {
    "epochs": IntParam(5, 20),
    "learning_rate": FloatParam(0.001, 0.1, "Logarithmic"),
    "dense_units": IntParam(10, 50),
    "optimizer": CategoricalParam(("adam", "sgd")),
    "dropout": FloatParam(0.0, 0.5, "Linear"),
}

# Transfer backbones: the head trains on a frozen base at a moderate rate, then the top
# layers fine-tune; depth 0 means "head only". Ranges follow common Keras transfer recipes.
_TRANSFER: dict[str, Param] = {
    "learning_rate": FloatParam(1e-4, 1e-2, "Logarithmic"),
    "dropout": FloatParam(0.0, 0.5, "Linear"),
    "fine_tune_layers": IntParam(0, 60),
}
# Architectures whose head has a hidden Dense(head_units) layer in trainer/models.py (the
# proposal's ResNet152 head). The edge backbones go straight from pooled features to the
# classes, so a head-width range there would spend trials on a setting that does nothing.
HEAD_WIDTH_ARCHS = ("resnet152",)
_TRANSFER_FIXED: dict[str, Any] = {"optimizer": "adam", "fine_tune_epochs": 3}


def default_search_space(arch: str) -> SearchSpace:
    """The built-in search space for one architecture."""
    if arch not in ARCHITECTURES:
        raise SearchSpaceError(f"arch: unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    if arch == "convnet":
        return SearchSpace(arch, dict(_PROPOSAL_CONVNET), {})
    params = dict(_TRANSFER)
    if arch in HEAD_WIDTH_ARCHS:
        # The proposal's head is Dense(1000); search around it.
        params["head_units"] = IntParam(256, 2048, "Logarithmic")
    if arch == "resnet152":
        params["fine_tune_layers"] = IntParam(0, 100)
    return SearchSpace(arch, params, dict(_TRANSFER_FIXED))


# ---------------------------------------------------------------- validation and loading

_FIELD_TYPES: dict[str, Any] = {f.name: f.type for f in dataclasses.fields(TrainConfig)}
_CONFIG_DEFAULTS: dict[str, Any] = {
    f.name: f.default for f in dataclasses.fields(TrainConfig) if f.default is not dataclasses.MISSING
}


def _field_kind(name: str) -> str:
    """'int' | 'float' | 'bool' | 'str' for a tunable TrainConfig field (from its default)."""
    default = _CONFIG_DEFAULTS.get(name)
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, int):
        return "int"
    if isinstance(default, float):
        return "float"
    return "str"


def tunable_fields() -> list[str]:
    return sorted(name for name in _FIELD_TYPES if name not in _NOT_TUNABLE)


def _check_name(where: str, name: str) -> None:
    if name in _NOT_TUNABLE:
        raise SearchSpaceError(f"{where}: {name!r} cannot be tuned (it is not a model or training setting)")
    if name not in _FIELD_TYPES:
        raise SearchSpaceError(
            f"{where}: unknown parameter {name!r}; tunable parameters are: {', '.join(tunable_fields())}"
        )


def _number(where: str, value: Any, integer: bool) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SearchSpaceError(f"{where}: expected a number, got {value!r}")
    if integer and not (isinstance(value, int) or float(value).is_integer()):
        raise SearchSpaceError(f"{where}: expected an integer, got {value!r}")
    if not math.isfinite(float(value)):
        raise SearchSpaceError(f"{where}: must be finite, got {value!r}")
    return int(value) if integer else float(value)


def _check_value(where: str, name: str, value: Any) -> Any:
    """A fixed value or categorical choice must fit the TrainConfig field's type."""
    kind = _field_kind(name)
    if kind == "bool":
        if not isinstance(value, bool):
            raise SearchSpaceError(f"{where}: {name} expects true or false, got {value!r}")
        return value
    if kind in ("int", "float"):
        return _number(where, value, integer=(kind == "int"))
    if not isinstance(value, str):
        raise SearchSpaceError(f"{where}: {name} expects a string, got {value!r}")
    if name == "optimizer" and value not in OPTIMIZERS:
        raise SearchSpaceError(f"{where}: optimizer {value!r} is not one of {', '.join(OPTIMIZERS)}")
    return value


def validate_param(name: str, param: Param, where: str = "params") -> Param:
    """Check one range against its field and SageMaker's rules; return it normalised."""
    here = f"{where}.{name}"
    _check_name(where, name)
    kind = _field_kind(name)
    if isinstance(param, CategoricalParam):
        if not param.choices:
            raise SearchSpaceError(f"{here}.choices: must list at least one value")
        if len(param.choices) > 30:
            raise SearchSpaceError(f"{here}.choices: SageMaker allows at most 30 values, got {len(param.choices)}")
        choices = tuple(_check_value(f"{here}.choices", name, c) for c in param.choices)
        return CategoricalParam(choices)
    if kind not in ("int", "float"):
        raise SearchSpaceError(f"{here}.type: {name} is a {kind} setting; use type = \"categorical\"")
    if isinstance(param, IntParam) and kind != "int":
        raise SearchSpaceError(f"{here}.type: {name} is a float setting; use type = \"float\"")
    if isinstance(param, FloatParam) and kind != "float":
        raise SearchSpaceError(f"{here}.type: {name} is an integer setting; use type = \"int\"")
    integer = isinstance(param, IntParam)
    low = _number(f"{here}.low", param.low, integer)
    high = _number(f"{here}.high", param.high, integer)
    if not low < high:
        raise SearchSpaceError(f"{here}: low ({low}) must be smaller than high ({high})")
    if param.scaling not in SCALINGS:
        raise SearchSpaceError(f"{here}.scaling: {param.scaling!r} is not one of {', '.join(SCALINGS)}")
    if param.scaling == "Logarithmic" and low <= 0:
        raise SearchSpaceError(f"{here}.low: must be > 0 for a logarithmic scale, got {low}")
    if param.scaling == "ReverseLogarithmic":
        if integer:
            raise SearchSpaceError(f"{here}.scaling: ReverseLogarithmic applies to float ranges only")
        if not (0 <= low and high < 1):
            raise SearchSpaceError(f"{here}: ReverseLogarithmic needs 0 <= low < high < 1, got {low} .. {high}")
    if name in ("epochs", "batch_size", "dense_units", "head_units") and low < 1:
        raise SearchSpaceError(f"{here}.low: {name} must be at least 1, got {low}")
    if name in ("dropout",) and not (0 <= low and high < 1):
        raise SearchSpaceError(f"{here}: dropout must lie in [0, 1), got {low} .. {high}")
    if name in ("learning_rate", "fine_tune_learning_rate") and low <= 0:
        raise SearchSpaceError(f"{here}.low: a learning rate must be > 0, got {low}")
    if name == "fine_tune_layers" and low < 0:
        raise SearchSpaceError(f"{here}.low: fine_tune_layers cannot be negative, got {low}")
    return type(param)(low, high, param.scaling)  # type: ignore[arg-type]


def _param_from_mapping(where: str, name: str, raw: Any) -> Param:
    here = f"{where}.{name}"
    if not isinstance(raw, Mapping):
        raise SearchSpaceError(f"{here}: expected a table with type/low/high or type/choices, got {raw!r}")
    kind = raw.get("type")
    if kind is None:
        kind = "categorical" if "choices" in raw else None
    if kind not in PARAM_TYPES:
        raise SearchSpaceError(f"{here}.type: must be one of {', '.join(PARAM_TYPES)}, got {kind!r}")
    allowed = {"type", "choices"} if kind == "categorical" else {"type", "low", "high", "scaling"}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise SearchSpaceError(f"{here}: unknown key(s) {', '.join(unknown)} for a {kind} range; allowed: {', '.join(sorted(allowed))}")
    if kind == "categorical":
        choices = raw.get("choices")
        if not isinstance(choices, list):
            raise SearchSpaceError(f"{here}.choices: expected a list, got {choices!r}")
        return CategoricalParam(tuple(choices))
    for key in ("low", "high"):
        if key not in raw:
            raise SearchSpaceError(f"{here}.{key}: missing")
    scaling = raw.get("scaling", "Auto")
    if kind == "int":
        return IntParam(raw["low"], raw["high"], scaling)
    return FloatParam(raw["low"], raw["high"], scaling)


def _read_mapping(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise SearchSpaceError(f"search space file {path}: not found")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        elif path.suffix.lower() == ".toml":
            data = tomllib.loads(text)
        else:
            raise SearchSpaceError(f"search space file {path}: use a .toml or .json file")
    except json.JSONDecodeError as exc:
        raise SearchSpaceError(f"search space file {path}: invalid JSON at line {exc.lineno}: {exc.msg}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SearchSpaceError(f"search space file {path}: invalid TOML: {exc}") from exc
    if not isinstance(data, dict):
        raise SearchSpaceError(f"search space file {path}: the top level must be a table/object")
    return data


def apply_overrides(space: SearchSpace, data: Mapping[str, Any], source: str = "search space") -> SearchSpace:
    """Merge an override mapping (the parsed file) over `space`; every error names its key."""
    unknown = sorted(set(data) - {"arch", "params", "fixed"})
    if unknown:
        raise SearchSpaceError(f"{source}: unknown top-level key(s) {', '.join(unknown)}; allowed: arch, params, fixed")
    if "arch" in data and data["arch"] != space.arch:
        raise SearchSpaceError(f"{source}: arch is {data['arch']!r} but the search is for {space.arch!r}")
    params = dict(space.params)
    fixed = dict(space.fixed)
    raw_params = data.get("params", {})
    if not isinstance(raw_params, Mapping):
        raise SearchSpaceError(f"{source}: params must be a table of ranges")
    for name, raw in raw_params.items():
        param = validate_param(name, _param_from_mapping(f"{source}: params", name, raw), f"{source}: params")
        params[name] = param
        fixed.pop(name, None)
    raw_fixed = data.get("fixed", {})
    if not isinstance(raw_fixed, Mapping):
        raise SearchSpaceError(f"{source}: fixed must be a table of values")
    for name, value in raw_fixed.items():
        _check_name(f"{source}: fixed", name)
        if name in raw_params:
            raise SearchSpaceError(f"{source}: {name} is both in params and in fixed")
        fixed[name] = _check_value(f"{source}: fixed.{name}", name, value)
        params.pop(name, None)
    if not params:
        raise SearchSpaceError(f"{source}: nothing left to tune (every parameter is fixed)")
    return SearchSpace(space.arch, params, fixed)


def load_search_space(arch: str, path: Path | str | None = None) -> SearchSpace:
    """The default space for `arch`, overridden by the file at `path` when given."""
    space = default_search_space(arch)
    if path is None:
        return space
    path = Path(path)
    return apply_overrides(space, _read_mapping(path), source=f"search space file {path}")


def coerce_hyperparameter(name: str, value: Any) -> Any:
    """Turn a hyperparameter (a string on SageMaker) into the TrainConfig field's type.

    Raises SearchSpaceError naming the key when the value does not parse.
    """
    kind = _field_kind(name)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1", "yes", "on"):
            return True
        if text in ("false", "0", "no", "off"):
            return False
        raise SearchSpaceError(f"{name}: expected true or false, got {value!r}")
    if kind in ("int", "float"):
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise SearchSpaceError(f"{name}: expected a number, got {value!r}") from None
        if kind == "int":
            if not number.is_integer():
                raise SearchSpaceError(f"{name}: expected an integer, got {value!r}")
            return int(number)
        return number
    if _FIELD_TYPES.get(name) in ("Path | None", "Path") or name in ("data_dir", "out_dir", "checkpoint_dir"):
        return Path(str(value))
    return str(value)
