"""[logging] section: how much the daemon says on stderr (journald picks it up)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from edge.config.base import SECTION_CONFIG


class LoggingConfig(BaseModel):
    model_config = SECTION_CONFIG

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
