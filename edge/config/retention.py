"""[retention] section: what happens to a frame after it is recorded, and disk limits.

Owned by field operation. Defaults keep everything where it is (the safest choice for a
first install); archive and delete are opt-in. See README.md, section "Running unattended".
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from edge.config.base import Section, TomlPath


class RetentionConfig(Section):
    after_processing: Literal["keep", "archive", "delete"] = Field(
        "keep", description='What happens to a frame file once its result is committed: "keep" leaves it; '
                            '"archive" moves it to `<archive_dir>/<YYYY-MM-DD>/<species>/` (frames that '
                            'failed to `<archive_dir>/<YYYY-MM-DD>/_errors/`); "delete" removes it (frames that failed '
                            "are kept). Archive and delete need the camera folder (and the archive) writable "
                            "by the service: rerun `edge install-service` after changing this (it writes the "
                            "systemd drop-in with ReadWritePaths=)")
    archive_dir: TomlPath | None = Field(
        None, description='Archive root; required when after_processing = "archive"')
    archive_max_gb: float | None = Field(
        None, gt=0, description="Keep the archive under this many GB: the oldest days are removed first, "
                                "except the exemplars. Unset: no size limit")
    archive_max_percent: float | None = Field(
        None, gt=0, le=100, description="Keep the archive under this percentage of its disk's size (with "
                                        "archive_max_gb as well, the smaller limit wins). Unset: no limit")
    exemplars_per_species: int = Field(
        3, ge=0, description="The best (highest-confidence) archived frames per species that the size limit "
                             "and row pruning never remove")
    prune_frames_after_days: int | None = Field(
        None, ge=1, description="Delete frame rows (and their predictions) older than this many days, once "
                                "their file has left the camera folder; events and daily tallies are kept, and so "
                                "are the frames whose birds a person reviewed. Unset: rows are kept forever")
    snapshot_days: int | None = Field(
        90, ge=1, description="Delete the best-crop JPEG of an event this many days after it was made (counted "
                              "from when the picture was written, not from when the bird was seen: a backlog's "
                              "visits keep theirs; the event and its counts stay; a detector writes one small "
                              "file per visit). Unset: keep them all")
    min_free_mb: int = Field(
        200, ge=0, description="Pause processing when the disk of the database (or of the archive) has less "
                               "free space than this many MB")
    resume_free_mb: int | None = Field(
        None, ge=0, description="Resume processing when free space is back above this many MB; at least "
                                "min_free_mb. Unset: 2 x min_free_mb")
    disk_check_interval_s: float = Field(
        10.0, gt=0, description="How often a paused daemon checks free space again")
    housekeeping_interval_s: float = Field(
        600.0, gt=0, description="How often the archive size limit and row pruning run")

    @model_validator(mode="after")
    def _coherent(self) -> RetentionConfig:
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
