"""[retention] section: what happens to a frame after it is recorded, and disk limits.

Owned by field operation. Defaults keep everything where it is (the safest choice for a
first install); archive and delete are opt-in. See README.md, section "Running unattended".
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from edge.config.base import SECTION_CONFIG, TomlPath


class RetentionConfig(BaseModel):
    model_config = SECTION_CONFIG

    after_processing: Literal["keep", "archive", "delete"] = Field(
        "keep", description="what to do with a frame once its result is committed: keep | archive | delete")
    archive_dir: TomlPath | None = Field(
        None, description="archive root for after_processing = \"archive\": <archive_dir>/<YYYY-MM-DD>/<species>/")
    archive_max_gb: float | None = Field(
        None, gt=0, description="keep the archive under this many GB (oldest days removed first)")
    archive_max_percent: float | None = Field(
        None, gt=0, le=100, description="keep the archive under this percentage of its disk")
    exemplars_per_species: int = Field(
        3, ge=0, description="best (highest-confidence) archived frames per species never removed by the size limit")
    prune_frames_after_days: int | None = Field(
        None, ge=1, description="delete frame rows older than this many days (daily tallies and events are kept)")
    min_free_mb: int = Field(
        200, ge=0, description="pause processing when the state or archive disk has less free space than this")
    resume_free_mb: int | None = Field(
        None, ge=0, description="resume when free space is back above this (default: 2 x min_free_mb)")
    disk_check_interval_s: float = Field(
        10.0, gt=0, description="how often a paused daemon re-checks free space")
    housekeeping_interval_s: float = Field(
        600.0, gt=0, description="how often the archive limit and row pruning run")

    @model_validator(mode="after")
    def _coherent(self) -> "RetentionConfig":
        if self.after_processing == "archive" and self.archive_dir is None:
            raise ValueError("archive_dir is required when after_processing = \"archive\"")
        if self.resume_free_mb is not None and self.resume_free_mb < self.min_free_mb:
            raise ValueError("resume_free_mb must be >= min_free_mb")
        return self

    @property
    def resume_free_bytes(self) -> int:
        mb = self.resume_free_mb if self.resume_free_mb is not None else 2 * self.min_free_mb
        return mb * 1024 * 1024

    @property
    def min_free_bytes(self) -> int:
        return self.min_free_mb * 1024 * 1024
