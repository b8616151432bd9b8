"""[retention] section: what happens to a frame after it is recorded (owned by field operation)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class RetentionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    after_processing: Literal["keep", "archive", "delete"] = "keep"
