"""[logging] section: how much the daemon says on stderr (journald picks it up)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from edge.config.base import Section


class LoggingConfig(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO",
        description="Lowest level of the log lines `edge run` writes to stderr (journald under systemd); "
                    "`edge run --log-level` overrides it")
