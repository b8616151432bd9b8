"""All live cameras of a daemon: built from the configuration, started after the backlog is
queued, stopped first; their status for `edge status` and the metrics; and their storage:

* a frame of an episode in which nothing was counted (no bird: wind, light, a cat) is removed
  from the camera's folder right after it is recorded (`keep_empty = false`, the default: as
  Frigate's `active_objects` retention keeps only what had an object); its row stays, so the
  file is never seen as new again. Frames with a bird, and frames that failed, stay and follow
  [retention] (keep, archive, delete) like any other frame, so the web app can show them.
* `keep_days`: recorded frames older than that are removed from the folder (rows, visits and
  counts stay), checked once an hour.

Both remove only files whose row is committed, so a crash at any moment loses no count: a frame
on disk that is not recorded is processed at the next start (the backlog scan), one that is
recorded is known by its content and not counted again.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from datetime import tzinfo
from functools import partial
from pathlib import Path
from typing import Any

from edge.config.cameras import CameraConfig
from edge.live.reader import StreamReader
from edge.live.writer import FrameWriter
from edge.redact import url_secrets

log = logging.getLogger(__name__)

HOUSEKEEPING_S = 3600.0

# (path, size, mtime) of every recorded frame under a folder (edge.store.db.known_states_reader,
# handed in by the wiring: this layer knows nothing of the database).
KnownStates = Callable[[Path], Iterable[tuple[str, int | None, float | None]]]


def live_cameras(cameras: Iterable[CameraConfig]) -> list[CameraConfig]:
    """The `[[cameras]]` tables with a stream `source`."""
    return [camera for camera in cameras if camera.source is not None]


def _pending_under(busy: Callable[[], set[str]], prefix: str) -> int:
    """How many of the daemon's queued or in-flight paths are under `prefix` (one camera's folder)."""
    return sum(1 for path in busy() if path.startswith(prefix))


class LiveCameras:
    """Readers and writers of every live camera; hooks for the daemon (edge/daemon/wiring.py)."""

    def __init__(self, cameras: Iterable[CameraConfig], zone: tzinfo, *, known: KnownStates | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.cameras = {camera.name: camera for camera in live_cameras(cameras)}
        self.zone = zone
        self.known = known
        self.clock = clock
        self.readers: dict[str, StreamReader] = {}
        self.writers: dict[str, FrameWriter] = {}
        self._last_housekeeping = float("-inf")
        self.removed_empty = 0
        self.removed_old = 0

    def __bool__(self) -> bool:
        return bool(self.cameras)

    def secrets(self) -> list[str]:
        """Every password the configured URLs carry (for the log's redaction filter)."""
        return [secret for camera in self.cameras.values() for secret in url_secrets(camera.source or "")]

    def prepare(self) -> None:
        """Make the cameras' folders before the watchers start (a folder that is there is watched
        with inotify from the first frame on)."""
        for camera in self.cameras.values():
            assert camera.path is not None
            camera.path.mkdir(parents=True, exist_ok=True)

    def start(self, busy: Callable[[], set[str]]) -> None:
        """Start every camera; `busy()`: the paths the daemon has queued or is processing, from
        which each writer counts its camera's frames not yet processed (max_pending)."""
        for name, camera in self.cameras.items():
            assert camera.path is not None
            prefix = os.path.join(str(camera.path), "")
            writer = FrameWriter(name, camera.path, self.zone, quality=camera.live.jpeg_quality,
                                 queue_frames=camera.live.queue_frames, max_pending=camera.live.max_pending,
                                 pending=partial(_pending_under, busy, prefix))
            reader = StreamReader(camera, writer)
            writer.start()
            reader.start()
            self.writers[name], self.readers[name] = writer, reader
            log.info("camera %s: live from %s; frames of motion episodes go to %s", name, reader.shown, camera.path)

    def stop(self) -> None:
        """Readers first (no new frames), then the writers write what they were handed."""
        for reader in self.readers.values():
            reader._stop.set()
        for reader in self.readers.values():
            reader.stop()
        for writer in self.writers.values():
            writer.stop()

    def status(self) -> list[dict[str, Any]]:
        """One entry per live camera (URLs redacted): status.json's `streams`."""
        return [self.readers[name].status() for name in self.cameras if name in self.readers]

    # -- storage ----------------------------------------------------------------------------
    def after_frame(self, outcome: Any) -> None:
        """A committed frame: when it is a live camera's and nothing was counted in it, remove the
        file (its row stays); run before [retention], which then finds nothing to do."""
        camera = self.cameras.get(outcome.camera)
        if camera is None or camera.live.keep_empty or outcome.status != "ok" or outcome.commit is None:
            return
        if outcome.commit.frame.species is not None:
            return
        path = Path(outcome.path)
        if camera.path is None or path.parent != camera.path:
            return
        try:
            path.unlink(missing_ok=True)
            self.removed_empty += 1
        except OSError as error:
            log.warning("camera %s: cannot remove %s (nothing counted in it): %s", outcome.camera, path,
                        error.strerror or error)

    def housekeeping(self, busy: Callable[[], set[str]], force: bool = False) -> int:
        """Once an hour: remove recorded frames older than their camera's keep_days."""
        now = self.clock()
        if not force and now - self._last_housekeeping < HOUSEKEEPING_S:
            return 0
        self._last_housekeeping = now
        if self.known is None:
            return 0
        removed = 0
        waiting = busy()
        for camera in self.cameras.values():
            days = camera.live.keep_days
            if days is None or camera.path is None or not camera.path.is_dir():
                continue
            cutoff = now - days * 86400
            recorded = {path for path, _size, _mtime in self.known(camera.path)}
            here = 0
            for entry in os.scandir(camera.path):
                try:
                    old = entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mtime < cutoff
                except OSError:
                    continue
                if old and entry.path in recorded and entry.path not in waiting:
                    Path(entry.path).unlink(missing_ok=True)
                    here += 1
            if here:
                log.info("camera %s: removed %d recorded frame(s) older than %g days (keep_days)", camera.name,
                         here, days)
            removed += here
        self.removed_old += removed
        return removed
