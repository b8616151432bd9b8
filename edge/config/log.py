"""[logging] section: how much the daemon says on stderr (journald picks it up)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class LoggingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
