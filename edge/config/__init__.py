"""Edge configuration: one TOML file, validated at start.

Sections live one per module (as in Frigate's frigate/config/): this module assembles them,
loads the TOML, applies environment overrides and turns validation errors into messages that
name the key and the problem. Everything has a default except what only the operator can
know (the model and the camera folders), which `edge run` checks before starting.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import Any

from pydantic import BaseModel, Field, SecretStr, ValidationError, model_validator

from edge.config.base import Section
from edge.config.cameras import LIVE_FOLDER, CameraConfig
from edge.config.classify import ClassifyConfig
from edge.config.clips import ClipsConfig
from edge.config.clock_checks import ClockChecksConfig
from edge.config.deployment import ContributorConfig, DeploymentConfig, ProjectConfig
from edge.config.detector import DetectorConfig
from edge.config.events import EventsConfig
from edge.config.health import HealthConfig
from edge.config.log import LoggingConfig
from edge.config.model import ModelConfig
from edge.config.mqtt import MqttConfig
from edge.config.notify import NotifyConfig
from edge.config.prior import PriorConfig
from edge.config.privacy import PrivacyConfig
from edge.config.repeats import RepeatsConfig
from edge.config.retention import RetentionConfig
from edge.config.sharing import SharingConfig
from edge.config.station import StationConfig
from edge.config.storage import StorageConfig
from edge.config.taxonomy import TaxonomyConfig
from edge.config.web import WebConfig
from edge.redact import redact_text

DEFAULT_CONFIG_PATH = Path("/etc/trailcam/edge.toml")
ENV_PREFIX = "TRAILCAM__"

__all__ = [
    "CameraConfig",
    "ClockChecksConfig",
    "ClassifyConfig",
    "ClipsConfig",
    "ContributorConfig",
    "DeploymentConfig",
    "ProjectConfig",
    "DetectorConfig",
    "ConfigError",
    "DEFAULT_CONFIG_PATH",
    "EdgeConfig",
    "EventsConfig",
    "LoggingConfig",
    "ModelConfig",
    "NotifyConfig",
    "PriorConfig",
    "PrivacyConfig",
    "RepeatsConfig",
    "SharingConfig",
    "StationConfig",
    "StorageConfig",
    "TaxonomyConfig",
    "WebConfig",
    "load_config",
]


class EdgeConfig(Section):
    """The whole edge configuration: one table per section, `[[cameras]]` one per camera."""

    station: StationConfig = Field(
        default_factory=StationConfig,
        description="Who this device is and which clock its reports follow.")
    cameras: list[CameraConfig] = Field(
        default_factory=list,
        description="One table per camera: a folder where frames arrive and how new ones are noticed, or a live "
                    "stream (`source`). "
                    "At least one is needed to run (or `edge run --watch DIR`, which replaces them); "
                    "camera names are unique.")
    project: ProjectConfig = Field(
        default_factory=ProjectConfig,
        description="The project the data belongs to: title, contributors, licence, sampling design. Only "
                    "the exports (Camtrap DP, COCO Camera Traps) and `edge report` read it.")
    sharing: SharingConfig = Field(
        default_factory=SharingConfig,
        description="What citizen-science portals need: eBird's country and state codes, iNaturalist's "
                    "geoprivacy. Only `edge export ebird` and `edge export inaturalist` read it.")
    model: ModelConfig = Field(
        default_factory=ModelConfig,
        description="Which classifier to load and how to read its labels.")
    detector: DetectorConfig = Field(
        default_factory=DetectorConfig,
        description="Detect, then classify: a bird detector finds each bird in a wide frame (full frame "
                    "and tiles), and the classifier names each crop; counts become counts of individuals. "
                    "Without it each frame is classified whole, as before.")
    repeats: RepeatsConfig = Field(
        default_factory=RepeatsConfig,
        description="Repeat-detection elimination with a detector: a box that recurs at the same place with the "
                    "same look over many frames and days (a rock, a stump) is suppressed, recorded with flag "
                    "`repeat` and never counted; a person may release a place (docs/edge.md, \"Repeat "
                    "detections\").")
    classify: ClassifyConfig = Field(
        default_factory=ClassifyConfig,
        description="When a prediction counts as a species. Names in thresholds, allow and deny are a "
                    "label, scientific or common name of the model, matched case-sensitively; a name the "
                    "model does not know is refused at start.")
    taxonomy: TaxonomyConfig = Field(
        default_factory=TaxonomyConfig,
        description="Doubt said honestly and names people read: the taxonomic roll-up (a bird the model is "
                    "not sure of at species level is counted as its genus, family or order when that is "
                    "certain) and the common-names pack for [station] language.")
    prior: PriorConfig = Field(
        default_factory=PriorConfig,
        description="The species prior, \"where and when\": which species can be at the station in the week of "
                    "a frame (BirdNET's range model or your checklist). An out-of-range top-1 gives way to the "
                    "best in-range prediction; a confident one is flagged as a possible rarity, never dropped. "
                    "Off by default (docs/prior.md).")
    privacy: PrivacyConfig = Field(
        default_factory=PrivacyConfig,
        description="Pictures of people: frames in which a detector with a person class (MegaDetector) found "
                    "one are kept out of exports and the web app by default (camera-trap practice).")
    clips: ClipsConfig = Field(
        default_factory=ClipsConfig,
        description="Video clips in the camera folders (MP4, MOV, AVI): sampled frames analysed like photos, "
                    "one clip one visit (docs/edge.md, \"Video clips\"). Needs the `video` extra (PyAV).")
    events: EventsConfig = Field(
        default_factory=EventsConfig,
        description="How counted frames are grouped into independent visits (events); frames with no "
                    "bird or a denied species join none.")
    clock_checks: ClockChecksConfig = Field(
        default_factory=ClockChecksConfig,
        description="Camera clocks checked frame by frame: a capture time in the future, far before the "
                    "camera's recent frames or before its deployment's start is flagged (recorded and counted, "
                    "never dropped), logged once per burst, and kept out of effort and deployment spans "
                    "(docs/edge.md, \"Camera clocks\").")
    storage: StorageConfig = Field(
        default_factory=StorageConfig,
        description="Where the SQLite database lives, and when a frame's error is final.")
    logging: LoggingConfig = Field(
        default_factory=LoggingConfig,
        description="How much the daemon says on stderr (journald picks it up).")
    # model_validate({}), not the class itself, for the sections below: their fields give the default
    # positionally (Field(0, ...)), which type checkers do not read as a default, so to mypy the
    # class would need every argument. The same validated defaults either way.
    mqtt: MqttConfig = Field(
        default_factory=lambda: MqttConfig.model_validate({}),
        description="Broker, topics, security and outbox bound. The password does not belong in this file: "
                    "give it in TRAILCAM__MQTT__PASSWORD, in password_file, or in the systemd credential "
                    "mqtt_password ($CREDENTIALS_DIRECTORY/mqtt_password).")
    notify: NotifyConfig = Field(
        default_factory=lambda: NotifyConfig.model_validate({}),
        description="Push notifications through Apprise (ntfy, Telegram, e-mail, Pushover, Home Assistant, "
                    "webhooks...): rules (new species, possible rarities, first of the day / season / year), "
                    "cooldown, quiet hours, a daily digest; queued in the database, delivered in the "
                    "background (docs/notifications.md). Off by default.")
    retention: RetentionConfig = Field(
        default_factory=lambda: RetentionConfig.model_validate({}),
        description="What happens to a frame file after it is recorded, and disk limits. The defaults keep "
                    "everything where it is; archive and delete are opt-in.")
    health: HealthConfig = Field(
        default_factory=lambda: HealthConfig.model_validate({}),
        description="Status snapshot (status.json), systemd status and the Prometheus metrics endpoint.")
    web: WebConfig = Field(
        default_factory=lambda: WebConfig.model_validate({}),
        description="`edge web`, the operator's window: pages, charts and the review of events. On "
                    "127.0.0.1 (the default) no login is needed; any other address needs users or a "
                    "password hash (or the systemd credential web_password_hash).")

    @model_validator(mode="after")
    def _camera_names_unique(self) -> EdgeConfig:
        names = [camera.name for camera in self.cameras]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"cameras: duplicate camera name(s): {', '.join(duplicates)}")
        return self

    @model_validator(mode="after")
    def _live_folders(self) -> EdgeConfig:
        """A live camera without `path` writes its frames under the state folder (beside the
        database, the service's StateDirectory): `<state>/live/<name>`."""
        for camera in self.cameras:
            if camera.path is None:
                camera.path = self.storage.database.expanduser().absolute().parent / LIVE_FOLDER / camera.name
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


# Strict mode's "wrong type" errors: a quoted number or boolean is the usual cause.
_STRICT_TYPE_ERRORS = frozenset({"int_type", "float_type", "bool_type"})


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
                # A stream URL's password never reaches the terminal or the journal.
                shown = redact_text(repr(item["input"]))
                if shown not in message:
                    message += f" (got {shown})"
            if kind in _STRICT_TYPE_ERRORS and isinstance(item.get("input"), str):
                message += ": TOML numbers and booleans are written without quotes"
        lines.append(f"{key}: {message}")
    return lines


def _accepts_text(annotation: Any) -> bool:
    """Whether a field takes text as such (str, SecretStr, paths, string literals, unknown)."""
    if annotation is None or annotation is Any:
        return True
    if isinstance(annotation, type):
        return issubclass(annotation, (str, SecretStr, PurePath))
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _accepts_text(typing.get_args(annotation)[0])
    if origin is typing.Literal:
        return any(isinstance(arg, str) for arg in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return any(_accepts_text(arg) for arg in typing.get_args(annotation) if arg is not type(None))
    return False


def _field_annotation(parts: list[str]) -> Any:
    """The annotation of the key an override names (None when no such key: validation says so)."""
    model: Any = EdgeConfig
    annotation: Any = None
    for part in parts:
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or part not in model.model_fields:
            return None
        annotation = model.model_fields[part].annotation
        model = annotation
    return annotation


def env_value(raw: str, annotation: Any = None) -> Any:
    """An environment value as the TOML file would have given it.

    Environment values are strings by nature, but the configuration is strictly typed (a TOML
    string is not a number): `TRAILCAM__EVENTS__INDEPENDENCE_S=90` must still set a number.
    So the value is read as a TOML value (`90` → 90, `true` → True, `["a", "b"]` → a list),
    JSON objects and arrays are accepted for structured keys, and anything that does not parse
    stays the string it was. A key that takes text (a password, a device id, a path) always
    gets the raw string, so `TRAILCAM__MQTT__PASSWORD=123456` stays "123456".
    """
    stripped = raw.strip()
    if stripped[:1] in "[{":
        try:
            return json.loads(stripped)
        except json.JSONDecodeError:
            pass
    if _accepts_text(annotation):
        return raw
    try:
        return tomllib.loads(f"v = {stripped}")["v"]
    except tomllib.TOMLDecodeError:
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
        node[parts[-1]] = env_value(raw, _field_annotation(parts))
        applied.append(".".join(parts))
    return applied


_SOURCE_VARIABLE = re.compile(r"\{(TRAILCAM_[A-Z0-9_]+)\}")


def substitute_source_variables(data: dict[str, Any], environ: Mapping[str, str]) -> list[str]:
    """`{TRAILCAM_…}` in a camera's `source` → that environment variable (as Frigate's
    {FRIGATE_…}): the camera's password stays out of the TOML file. Returns the problems, one line
    each naming `cameras[i].source` (a variable that is not set)."""
    problems = []
    cameras = data.get("cameras")
    for index, camera in enumerate(cameras if isinstance(cameras, list) else []):
        source = camera.get("source") if isinstance(camera, dict) else None
        if not isinstance(source, str):
            continue
        missing = [name for name in _SOURCE_VARIABLE.findall(source) if name not in environ]
        if missing:
            problems.append(f"cameras[{index}].source: environment variable(s) {', '.join(missing)} not set")
            continue
        camera["source"] = _SOURCE_VARIABLE.sub(lambda m: environ[m[1]], source)
    return problems


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
    environ = os.environ if environ is None else environ
    apply_env_overrides(data, environ)
    if overrides:
        data = _merge(data, overrides)
    problems = substitute_source_variables(data, environ)
    if problems:
        raise ConfigError(source, problems)
    try:
        return EdgeConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(source, format_validation_error(error)) from None
