"""What every configuration model shares: unknown keys and wrong types are errors, every key is described.

TOML has types, so the configuration uses them: `independence_s = "60"` or `recursive = "no"`
is a mistake to report (naming the key), not a string to coerce. Pydantic's lax mode would
turn "no" into False and "60" into 60.0 silently; strict mode refuses both. Two exceptions:

* paths: TOML has no path type, so Path fields accept strings (`TomlPath`, `TomlFilePath`);
* environment overrides (TRAILCAM__SECTION__KEY=60) are strings by nature: edge.config
  parses them as TOML values before validation (see `env_value`), so they keep working.

Every section model (and the root `EdgeConfig`) derives from `Section`, and every field says
what it does in `Field(description=...)`: edge.config.reference turns the models into the
configuration reference (docs/configuration.md) and the commented skeleton that
`edge install-service` writes, and tests/docs fails when a field has no description.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, FilePath, Strict

# extra="forbid": a misspelt key is an error, not a silently ignored line.
SECTION_CONFIG = ConfigDict(extra="forbid", strict=True)


class Section(BaseModel):
    """The base of every configuration model: unknown keys and wrong types are errors."""

    model_config = SECTION_CONFIG


# A path written as a TOML string (strict mode alone would want a Path object).
TomlPath = Annotated[Path, Strict(False)]
TomlFilePath = Annotated[FilePath, Strict(False)]
