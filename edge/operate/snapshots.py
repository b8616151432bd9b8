"""Evidence people can look at: each event's best crop as a small JPEG in the state folder.

With a detector, the store picks each event's best detection (the highest classifier
confidence of the event's species) inside the frame's transaction and names its file
(`<event uid>.jpg`, in `events.snapshot`); this module writes the crop the classifier saw
right after the commit, under `<state dir>/snapshots/`, and hands it to the MQTT publisher,
which publishes it retained on `snapshot/<camera>` (a Home Assistant camera entity shows the
last bird). A better crop later in the visit replaces the file.

Written after the commit, not inside it: a JPEG is not part of the count, and a failure to write
one (a full disk) must not roll a frame back. Such a failure is logged and the event keeps
its file name; a reader finds no file there and shows none. [retention] snapshot_days removes
old files.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

log = logging.getLogger(__name__)

SNAPSHOT_FOLDER = "snapshots"
JPEG_QUALITY = 85  # a 224 px crop: about 10-20 KB


def snapshot_folder(database: Path | str) -> Path:
    """Where the crops live: beside the database, in the state folder the daemon owns."""
    return Path(database).parent / SNAPSHOT_FOLDER


class SnapshotWriter:
    """Writes the crops a commit names (`Commit.snapshots`) and tells whoever publishes them."""

    def __init__(self, folder: Path, on_written: Callable[[str, Path], None] | None = None) -> None:
        self.folder = Path(folder)
        self.on_written = on_written  # (camera, file): e.g. Publisher.snapshot_changed
        self.written = 0
        self.failed = 0

    def write(self, camera: str, commit: Any, crops: Sequence[np.ndarray]) -> list[Path]:
        """Write each (name, rank) of `commit.snapshots` from `crops` (rank order); returns the files."""
        if commit is None or not getattr(commit, "snapshots", None):
            return []
        written = []
        for name, rank in commit.snapshots:
            target = self.folder / name
            if target.parent != self.folder or not 1 <= rank <= len(crops):
                log.error("snapshot %r (rank %d) does not fit this frame's %d crop(s); skipped", name, rank, len(crops))
                continue
            partial = self.folder / f".{name}.partial"
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                Image.fromarray(np.asarray(crops[rank - 1], dtype=np.uint8)).save(partial, "JPEG", quality=JPEG_QUALITY)
                os.replace(partial, target)
            except OSError as error:
                self.failed += 1
                partial.unlink(missing_ok=True)
                log.warning("snapshot %s not written: %s (the count is recorded)", target, error.strerror or error)
                continue
            self.written += 1
            written.append(target)
            if self.on_written is not None:
                self.on_written(camera, target)
        return written
