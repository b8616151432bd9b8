"""Edge configuration: one TOML file, validated at start.

Sections live one per module (as in Frigate's frigate/config/): this module assembles them,
loads the TOML, applies environment overrides and turns validation errors into messages that
name the key and the problem. Everything has a default except what only the operator can
know (the model and the camera folders), which `edge run` checks before starting.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from edge.config.cameras import CameraConfig
from edge.config.classify import ClassifyConfig
from edge.config.events import EventsConfig
from edge.config.health import HealthConfig
from edge.config.log import LoggingConfig
from edge.config.model import ModelConfig
from edge.config.mqtt import MqttConfig
from edge.config.retention import RetentionConfig
from edge.config.station import StationConfig
from edge.config.storage import StorageConfig

DEFAULT_CONFIG_PATH = Path("/etc/trailcam/edge.toml")
ENV_PREFIX = "TRAILCAM__"

__all__ = [
    "CameraConfig",
    "ClassifyConfig",
    "ConfigError",
    "DEFAULT_CONFIG_PATH",
    "EdgeConfig",
    "EventsConfig",
    "LoggingConfig",
    "ModelConfig",
    "StationConfig",
    "StorageConfig",
    "load_config",
]


class EdgeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    station: StationConfig = Field(default_factory=StationConfig)
    cameras: list[CameraConfig] = Field(default_factory=list)
    model: ModelConfig = Field(default_factory=ModelConfig)
    classify: ClassifyConfig = Field(default_factory=ClassifyConfig)
    events: EventsConfig = Field(default_factory=EventsConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    health: HealthConfig = Field(default_factory=HealthConfig)

    @model_validator(mode="after")
    def _camera_names_unique(self) -> "EdgeConfig":
        names = [camera.name for camera in self.cameras]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"cameras: duplicate camera name(s): {', '.join(duplicates)}")
        return self


class ConfigError(Exception):
    """A configuration problem; `problems` are lines that each name a dotted key.

    The CLI prints them and exits with code 2.
    """

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__("\n".join(f"{source}: {problem}" for problem in problems))


def _dotted(loc: tuple[Any, ...]) -> str:
    key = ""
    for part in loc:
        if isinstance(part, int):
            key += f"[{part}]"
        else:
            key += ("." if key else "") + str(part)
    return key or "(root)"


def format_validation_error(error: ValidationError) -> list[str]:
    """One line per problem: `dotted.key: what is wrong (got ...)`."""
    lines = []
    for item in error.errors(include_url=False):
        key = _dotted(item["loc"])
        kind = item["type"]
        if kind == "extra_forbidden":
            message = "unknown key (check the spelling; see docs for the keys of this section)"
        elif kind == "missing":
            message = "required key is missing"
        else:
            message = item["msg"].removeprefix("Value error, ")
            if "input" in item and not isinstance(item["input"], (dict, list)):
                shown = repr(item["input"])
                if shown not in message:
                    message += f" (got {shown})"
        lines.append(f"{key}: {message}")
    return lines


def _env_value(raw: str) -> Any:
    """Environment values are strings; JSON lists/objects are accepted for structured keys."""
    stripped = raw.strip()
    if stripped[:1] in "[{":
        try:
            return json.loads(stripped)
        except json.JSONDecodeError:
            return raw
    return raw


def apply_env_overrides(data: dict[str, Any], environ: Mapping[str, str]) -> list[str]:
    """TRAILCAM__MQTT__PASSWORD=x sets data["mqtt"]["password"]; returns the keys it set.

    Double underscore separates levels so that single underscores stay inside key names.
    Secrets belong here (or in files), not in a world-readable TOML.
    """
    applied = []
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX):
            continue
        parts = [part.lower() for part in name[len(ENV_PREFIX):].split("__") if part]
        if not parts:
            continue
        node = data
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[parts[-1]] = _env_value(raw)
        applied.append(".".join(parts))
    return applied


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(str(path), ["file not found (pass --config PATH or create it)"]) from None
    except PermissionError:
        raise ConfigError(str(path), ["permission denied reading the file"]) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(str(path), [f"not valid TOML: {error}"]) from None


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_config(
    path: Path | None = None,
    *,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> EdgeConfig:
    """Read the TOML (if any), apply environment then command-line overrides, validate.

    `path=None` reads DEFAULT_CONFIG_PATH when it exists and otherwise starts from the
    defaults, so that `edge run --model M --watch DIR --db F` needs no file at all. An
    explicit path that does not exist is an error.
    """
    if path is None:
        source_path = DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.exists() else None
    else:
        source_path = Path(path)
    data = read_toml(source_path) if source_path is not None else {}
    source = str(source_path) if source_path is not None else "configuration"
    apply_env_overrides(data, os.environ if environ is None else environ)
    if overrides:
        data = _merge(data, overrides)
    try:
        return EdgeConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(source, format_validation_error(error)) from None
