"""The configuration reference and the commented skeleton, both generated from the models.

The models in edge/config/ are the single source: every field's type, default, limits and
description (`Field(description=...)`). From them come

* `render_markdown()`: docs/configuration.md, one table per section;
* `render_skeleton()`: the commented TOML that `edge install-service` writes to
  /etc/trailcam/edge.toml, every key with its default and description.

Regenerate the reference with `make docs` (or `python -m edge.config.reference > docs/configuration.md`);
`python -m edge.config.reference skeleton` prints the skeleton. tests/docs/test_docs.py fails when
docs/configuration.md is not what this module renders, or when a field has no description.

Configuration layer: imports nothing above edge.config.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import sys
import textwrap
import types
import typing
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, TypeGuard

from pydantic import BaseModel, SecretStr, ValidationError
from pydantic.fields import FieldInfo

from edge.config import DEFAULT_CONFIG_PATH, ENV_PREFIX, EdgeConfig, format_validation_error

GENERATOR = "python -m edge.config.reference > docs/configuration.md"
SKELETON_WIDTH = 92


@dataclass(frozen=True)
class Key:
    """One configuration key: where it lives and what its model says about it."""

    section: str          # "station", "cameras"
    name: str             # "device_id"
    info: FieldInfo
    array: bool           # a key of an array of tables ([[cameras]])

    @property
    def dotted(self) -> str:
        return f"{self.section}[].{self.name}" if self.array else f"{self.section}.{self.name}"

    @property
    def env(self) -> str | None:
        """The environment variable that overrides it (keys of [[cameras]] have none of their own)."""
        return None if self.array else f"{ENV_PREFIX}{self.section.upper()}__{self.name.upper()}"


@dataclass(frozen=True)
class SectionInfo:
    name: str
    model: type[BaseModel]
    array: bool
    description: str

    def keys(self) -> list[Key]:
        return [Key(self.name, name, info, self.array) for name, info in self.model.model_fields.items()]

    def subtables(self) -> list[SectionInfo]:
        """Tables inside this section's tables (`[cameras.deployment]`, `[[project.contributors]]`):
        documented under their parent with the dotted name, their keys set with the parent's."""
        found = []
        for name, info in self.model.model_fields.items():
            if (table := _optional_model(info.annotation)) is not None:
                found.append(SectionInfo(f"{self.name}.{name}", table, False, info.description or ""))
            elif (table := _array_model(info.annotation)) is not None:
                found.append(SectionInfo(f"{self.name}.{name}", table, True, info.description or ""))
        return found


def _is_model(annotation: Any) -> TypeGuard[type[BaseModel]]:
    """A table type (TypeGuard: narrows a field's annotation to the model class it is)."""
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _optional_model(annotation: Any) -> type[BaseModel] | None:
    """The table type of a table field (`deployment: DeploymentConfig | None`), else None."""
    if _is_model(annotation):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        models = [arg for arg in typing.get_args(annotation) if _is_model(arg)]
        if len(models) == 1 and all(arg is type(None) or _is_model(arg) for arg in typing.get_args(annotation)):
            return models[0]
    return None


def _array_model(annotation: Any) -> type[BaseModel] | None:
    """The table type of an array of tables (`cameras: list[CameraConfig]`), else None."""
    if typing.get_origin(annotation) is list:
        args = typing.get_args(annotation)
        if args and _is_model(args[0]):
            return args[0]
    return None


def sections(root: type[BaseModel] = EdgeConfig) -> list[SectionInfo]:
    """The root's sections in their declared order ([station], [[cameras]], [model], ...)."""
    found = []
    for name, info in root.model_fields.items():
        if _is_model(info.annotation):
            found.append(SectionInfo(name, info.annotation, False, info.description or ""))
        elif (table := _array_model(info.annotation)) is not None:
            found.append(SectionInfo(name, table, True, info.description or ""))
        else:  # a scalar at the root would need its own place in both renderings
            raise TypeError(f"{root.__name__}.{name}: the root holds sections only")
    return found


def every_key(root: type[BaseModel] = EdgeConfig) -> list[Key]:
    return [key for section in sections(root) for key in section.keys()]


# ---- what a field is --------------------------------------------------------------------

_SIMPLE_TYPES: tuple[tuple[type, str], ...] = (
    (bool, "boolean"), (int, "integer"), (float, "number"), (SecretStr, "string (secret)"),
    (str, "string"), (PurePath, "path"), (datetime.datetime, "date-time"), (datetime.date, "date"),
)
_PLURALS = {"boolean": "booleans", "integer": "integers", "number": "numbers", "string": "strings", "path": "paths"}


def type_text(annotation: Any) -> str:
    """A TOML-minded name of a field's type: `number`, `path`, `"inotify" | "poll"`, `array of strings`."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        base, *metadata = typing.get_args(annotation)
        if any(getattr(item, "path_type", None) == "file" for item in metadata):
            return "path to an existing file"
        return type_text(base)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_text(arg) for arg in typing.get_args(annotation) if arg is not type(None))
    if origin is typing.Literal:
        return " | ".join(json.dumps(arg) for arg in typing.get_args(annotation))
    if origin is list:
        (item,) = typing.get_args(annotation)
        name = type_text(item)
        return f"array of {_PLURALS.get(name, name)}"
    if origin is dict:
        _, value = typing.get_args(annotation)
        name = type_text(value)
        return f"table of {_PLURALS.get(name, name)}"
    if isinstance(annotation, type):
        for kind, name in _SIMPLE_TYPES:
            if issubclass(annotation, kind):
                return name
        if issubclass(annotation, BaseModel):
            return "table"
    return str(annotation)


_BOUNDS = (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="))


def limits(info: FieldInfo) -> list[str]:
    """The field's declared limits, e.g. `> 0`, `<= 3600`, `1 to 64 characters`."""
    found: list[str] = []
    low = high = None
    for item in info.metadata:
        for attribute, sign in _BOUNDS:
            value = getattr(item, attribute, None)
            if value is not None:
                found.append(f"{sign} {value}")
        low = getattr(item, "min_length", low)
        high = getattr(item, "max_length", high)
    if low is not None or high is not None:
        found.append(f"{low or 0} to {high} characters" if high is not None else f"at least {low} characters")
    return found


def toml_value(value: Any) -> str:
    """A value as TOML writes it (paths as strings, models as inline tables)."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (str, os.PathLike)):
        return json.dumps(str(value))
    if isinstance(value, (list, tuple, set, frozenset)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    return json.dumps(str(value))


REQUIRED, UNSET, COMPUTED = "required", "unset", "computed"


def default_of(info: FieldInfo) -> tuple[str, str | None]:
    """(kind, TOML text): ("value", "60.0"), ("required", None), ("unset", None) or ("computed", None).

    "computed": a default factory whose value depends on the device (the host name), so that
    neither the reference nor the skeleton bakes in the value of the machine that wrote it.
    """
    if info.is_required():
        return REQUIRED, None
    if info.default_factory is not None:
        # get_default, not default_factory(): the factory's type also allows one taking the
        # validated data, which no factory here does (pydantic raises if one ever would).
        value = info.get_default(call_default_factory=True)
        if not isinstance(value, (list, dict, set, tuple, BaseModel)):
            return COMPUTED, None
    else:
        value = info.default
    if value is None:
        return UNSET, None
    return "value", toml_value(value)


def type_and_limits(info: FieldInfo) -> str:
    return ", ".join([type_text(info.annotation)] + limits(info))


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."


# ---- Markdown reference -----------------------------------------------------------------

def markdown_text(text: str) -> str:
    """Prose for Markdown: `<prefix>` and `>= 1` outside code spans would read as HTML."""
    parts = text.split("`")
    for index in range(0, len(parts), 2):  # the parts outside code spans
        parts[index] = parts[index].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return "`".join(parts)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _markdown_type(info: FieldInfo) -> str:
    """The Type column: the type, then each limit as code (`> 0`), choices as code too."""
    annotation = info.annotation
    if typing.get_origin(annotation) is typing.Literal:
        kind = " | ".join(_code(json.dumps(arg)) for arg in typing.get_args(annotation))
    else:
        kind = type_text(annotation)
    return ", ".join([kind] + [_code(item) for item in limits(info)])


def _code(text: str) -> str:
    return f"`{text}`"


def _example_error(data: dict[str, Any]) -> str:
    try:
        EdgeConfig.model_validate(data)
    except ValidationError as error:
        return format_validation_error(error)[0]
    raise AssertionError(f"{data} is a valid configuration")  # pragma: no cover


def _intro() -> list[str]:
    quoted = _example_error({"events": {"independence_s": "60"}})
    unknown = _example_error({"events": {"independance_s": 60}})
    choice = _example_error({"cameras": [{"name": "feeder", "path": "/srv/feeder", "mode": "polling"}]})
    return [
        f"<!-- Generated by `make docs` ({GENERATOR}) from the models in edge/config/;",
        "     do not edit: change a field's description there and regenerate. tests/docs/test_docs.py",
        "     fails when this file is stale. -->",
        "",
        "# Configuration reference",
        "",
        f"The edge daemon reads one TOML file: `{DEFAULT_CONFIG_PATH}` by default, another with",
        "`--config PATH`. Without a file (and without `--config`) every key has its default, so that",
        "`edge run --model M --watch DIR --db F` needs no file at all; only the model and the camera",
        "folders have no useful default, and `edge run` refuses to start without them.",
        "`edge install-service` writes a commented skeleton with every key below and its default;",
        "`edge check --config PATH` validates a file (and the model, cameras and database) without running.",
        "",
        "- **Strict types.** TOML has types and the configuration uses them: a number or boolean in",
        "  quotes is an error, not a string to coerce. Paths are written as strings.",
        "- **Unknown keys are errors**, so a misspelt key cannot be silently ignored.",
        f"- **Environment overrides.** `{ENV_PREFIX}SECTION__KEY=value` sets `[section] key` (double",
        "  underscores between the levels, single ones stay inside key names), e.g.",
        f"  `{ENV_PREFIX}EVENTS__INDEPENDENCE_S=1800`. The value is read as a TOML value (`90`, `true`,",
        "  `[\"a\", \"b\"]`); a JSON array or object sets a list or table (the cameras:",
        f"  `{ENV_PREFIX}CAMERAS='[{{\"name\": \"feeder\", \"path\": \"/srv/feeder\"}}]'`); a key that takes text",
        "  (a password, a path, a device id) gets the raw string. The file is read first, then the",
        "  environment, then command-line flags (`--db`, `--model`, `--watch`, ...), each overriding the one before.",
        "- **Errors name the dotted key.** Every problem is one line, and the command exits with code 2:",
        "",
        "  ```text",
        f"  {quoted}",
        f"  {unknown}",
        f"  {choice}",
        "  ```",
        "",
        "In the tables, *unset* means the key has no value unless given (the description says what",
        "happens then); *required* keys must be given in every table of their section.",
        "",
    ]


def _heading(section: SectionInfo) -> str:
    return f"[[{section.name}]]" if section.array else f"[{section.name}]"


def render_markdown() -> str:
    """docs/configuration.md."""
    lines = _intro()
    all_sections = sections()
    lines += ["Sections: " + ", ".join(f"[`{_heading(s)}`](#{s.name})" for s in all_sections) + ".", ""]
    for section in all_sections:
        lines += [f"## {_heading(section)}", "", markdown_text(section.description), ""]
        if section.array:
            lines += [f"Repeat the `[[{section.name}]]` table for each entry. Its keys have no environment",
                      f"variables of their own: `{ENV_PREFIX}{section.name.upper()}` takes the whole array as JSON.", ""]
            lines += ["| Key | Type | Default | Description |", "|---|---|---|---|"]
        else:
            lines += ["| Key | Type | Default | Environment variable | Description |", "|---|---|---|---|---|"]
        for key in section.keys():
            kind, value = default_of(key.info)
            default = _code(value) if value is not None else f"*{kind}*"
            cells = [_code(key.name), _markdown_type(key.info), default]
            if not section.array:
                cells.append(_code(key.env or ""))
            cells.append(markdown_text(_sentence(key.info.description or "")))
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        lines.append("")
        for table in section.subtables():
            lines += _subtable_markdown(table)
    return "\n".join(lines).rstrip() + "\n"


def _subtable_markdown(table: SectionInfo) -> list[str]:
    """A table inside a section's tables, under its parent: `### [cameras.deployment]`."""
    lines = [f"### {_heading(table)}", "", markdown_text(table.description), "",
             f"Keys of `{_heading(table)}` have no environment variables of their own.", "",
             "| Key | Type | Default | Description |", "|---|---|---|---|"]
    for key in table.keys():
        kind, value = default_of(key.info)
        default = _code(value) if value is not None else f"*{kind}*"
        cells = [_code(key.name), _markdown_type(key.info), default, markdown_text(_sentence(key.info.description or ""))]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return lines + [""]


# ---- commented TOML skeleton ------------------------------------------------------------

# A comment line the skeleton test would take for a key (`# word = ...`): descriptions avoid it.
_LOOKS_LIKE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]* = ")
NBSP = "\u00a0"


def _comment(text: str, prefix: str) -> list[str]:
    """`text` wrapped into comment lines, none of which could be mistaken for a commented key."""
    for width in range(SKELETON_WIDTH, 40, -1):
        lines = textwrap.wrap(text, width=width - len(prefix), break_long_words=False, break_on_hyphens=False)
        if not any(_LOOKS_LIKE_KEY.match(line) for line in lines):
            return [f"{prefix}{line}" for line in lines]
    raise ValueError(f"cannot wrap as a comment: {text!r}")  # pragma: no cover


def _key_lines(key: Key, indent: str) -> list[str]:
    kind, value = default_of(key.info)
    # No line break inside a limit ("<= 3600"): its spaces are no-break spaces while wrapping.
    kind_text = ", ".join([type_text(key.info.annotation)] + [item.replace(" ", NBSP) for item in limits(key.info)])
    about = _sentence(key.info.description or "") + " " + _sentence(kind_text[:1].upper() + kind_text[1:])
    lines = [line.replace(NBSP, " ") for line in _comment(about, f"#{indent} ")]
    if kind == REQUIRED:
        lines.append(f"#{indent} {key.name} = ...   (required)")
    elif kind == UNSET:
        lines.append(f"#{indent} {key.name} =   (unset by default)")
    elif kind == COMPUTED:
        lines.append(f"#{indent} {key.name} =   (computed at start when unset)")
    else:
        lines.append(f"#{indent} {key.name} = {value}")
    return lines


def render_skeleton(config_path: str = str(DEFAULT_CONFIG_PATH), credential_file: str | None = None) -> str:
    """The commented configuration `edge install-service` writes: every key, its default, its description.

    Valid TOML as it stands (only the section headers are live, so it loads as the defaults), and
    uncommenting any `# key = value` line gives that key its default back.
    """
    lines = [
        "# trailcam edge configuration (TOML), written by `edge install-service` (generated from the",
        "# models in edge/config/ by edge.config.reference). Every key of every section is shown with",
        "# its default, commented out: uncomment and change what you need. docs/configuration.md is",
        "# the reference with each key's type and limits. Validate this file with",
        f"#     edge check --config {config_path}",
        f"# Any key can also be set in the environment: {ENV_PREFIX}SECTION__KEY=value",
        f"# (e.g. {ENV_PREFIX}EVENTS__INDEPENDENCE_S=1800); command-line flags override both.",
    ]
    if credential_file is not None:
        lines += ["# Secrets do not belong here: the MQTT password comes from the systemd credential",
                  f"# {credential_file}."]
    lines.append("")
    for section in sections():
        lines.append(f"# ---- {_heading(section)} " + "-" * max(4, SKELETON_WIDTH - 8 - len(_heading(section))))
        lines += _comment(section.description, "# ")
        if section.array:
            lines.append(f"# [[{section.name}]]   (repeat the table for each entry)")
            for key in section.keys():
                lines += _key_lines(key, "  ") + ["#"]
            lines += _subtable_skeleton(section)
            lines[-1] = ""
            continue
        lines += [f"[{section.name}]", ""]
        for key in section.keys():
            lines += _key_lines(key, "")
            lines.append("")
        lines += _subtable_skeleton(section)
        if lines[-1] == "#":
            lines[-1] = ""
    return "\n".join(lines).rstrip() + "\n"


def _subtable_skeleton(section: SectionInfo) -> list[str]:
    """Commented sub-tables of a section (their headers commented too: an empty
    `[cameras.deployment]` would be a live table without its camera)."""
    lines: list[str] = []
    for table in section.subtables():
        lines += _comment(table.description, "# ")
        lines.append(f"# {_heading(table)}" + ("   (repeat the table for each entry)" if table.array else ""))
        for key in table.keys():
            lines += _key_lines(key, "  ") + ["#"]
    return lines


def descriptions(root: type[BaseModel] = EdgeConfig) -> Iterator[tuple[str, str]]:
    """(section or dotted key, description) for every section and key of `root`."""
    for section in sections(root):
        yield section.name, section.description
        for key in section.keys():
            yield key.dotted, key.info.description or ""
        for table in section.subtables():
            yield table.name, table.description
            for key in table.keys():
                yield key.dotted, key.info.description or ""


def undocumented(root: type[BaseModel] = EdgeConfig) -> list[str]:
    """Sections and keys without a description (tests/docs wants none)."""
    return [name for name, text in descriptions(root) if not text.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    what = args[0] if args else "markdown"
    if what == "markdown":
        sys.stdout.write(render_markdown())
    elif what == "skeleton":
        sys.stdout.write(render_skeleton())
    else:
        print("usage: python -m edge.config.reference [markdown | skeleton]", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
