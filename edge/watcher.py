"""Noticing new frames: inotify through watchdog, or polling with a size-settle check.

- inotify (local disks, SD cards): a frame is ready when the writer closes it
  (IN_CLOSE_WRITE) or when it is renamed into the folder (uploaders write `x.jpg.part` or
  `.x.jpg` and rename). Creation and modification events are ignored: reacting to them would
  read files that are still being written.
- poll (NFS, SMB, FUSE, where inotify sees nothing): rescan every `poll_interval_s`; a file is
  ready once its size and mtime have not changed for `settle_s`. Our own scan loop rather than
  watchdog's PollingObserver, because that one stops for good when a network mount briefly
  reports ENOENT; a field device must keep trying.
- backlog: at start, every image already in the folder is queued, oldest first, so frames that
  arrived while the daemon was down are counted (the store skips those already recorded).

Entries are offered by name, whatever they are (symlinks, FIFOs included): edge.frame_file decides
what is read, so live watching and the backlog treat a non-frame alike (skipped, logged).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from watchdog.events import DirMovedEvent, FileClosedEvent, FileMovedEvent, FileSystemEvent, FileSystemEventHandler
from watchdog.observers.inotify import InotifyObserver

from edge.config.cameras import CameraConfig
from edge.imaging import IMAGE_SUFFIXES

log = logging.getLogger(__name__)


def is_frame_name(path: str | Path) -> bool:
    """Image suffix, not hidden (temporary upload names are usually hidden or `.part`)."""
    name = os.path.basename(str(path))
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES


def iter_frames(folder: Path, recursive: bool) -> Iterator[os.DirEntry]:
    """Entries with a frame name in a folder (hidden folders skipped, symlinked folders not
    followed). Not only regular files: a symlink or FIFO named x.jpg is yielded too, so that the
    pipeline skips it with a log line, as it does when live watching offers it."""
    try:
        entries = list(os.scandir(folder))
    except OSError as error:
        # The daemon reports a missing camera folder once; a poll every few seconds would spam.
        log.debug("cannot list %s: %s", folder, error.strerror or error)
        return
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                if recursive and not entry.name.startswith("."):
                    yield from iter_frames(Path(entry.path), recursive)
            elif is_frame_name(entry.name):
                yield entry
        except OSError:
            continue


def scan_backlog(cameras: Iterable[CameraConfig]) -> list[tuple[str, str]]:
    """(path, camera) of every frame present now, oldest mtime first (ties by path)."""
    found = []
    for camera in cameras:
        for entry in iter_frames(camera.path, camera.recursive):
            try:
                found.append((entry.stat(follow_symlinks=False).st_mtime, entry.path, camera.name))
            except OSError:
                continue
    found.sort()
    return [(path, name) for _, path, name in found]


@dataclass(frozen=True)
class QueuedFrame:
    path: str
    camera: str


class FrameQueue:
    """FIFO of frames to process; a path already waiting is not queued twice."""

    def __init__(self) -> None:
        self._queue: queue.Queue[QueuedFrame] = queue.Queue()
        self._pending: set[str] = set()
        self._lock = threading.Lock()

    def put(self, path: str, camera: str) -> bool:
        with self._lock:
            if path in self._pending:
                return False
            self._pending.add(path)
        self._queue.put(QueuedFrame(path, camera))
        return True

    def get(self, timeout: float | None = None) -> QueuedFrame | None:
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
        with self._lock:
            self._pending.discard(item.path)
        return item

    def __len__(self) -> int:
        return self._queue.qsize()


class _InotifyHandler(FileSystemEventHandler):
    def __init__(self, camera: CameraConfig, frames: FrameQueue):
        self.camera = camera
        self.frames = frames
        self.root = os.path.realpath(camera.path)

    def _inside(self, path: str) -> bool:
        parent = os.path.realpath(os.path.dirname(path))
        if self.camera.recursive:
            return parent == self.root or parent.startswith(self.root + os.sep)
        return parent == self.root

    def _offer(self, path: str) -> None:
        if path and is_frame_name(path) and self._inside(path):
            self.frames.put(path, self.camera.name)

    def dispatch(self, event: FileSystemEvent) -> None:
        if isinstance(event, FileClosedEvent):
            self._offer(os.fsdecode(event.src_path))
        elif isinstance(event, FileMovedEvent):
            self._offer(os.fsdecode(event.dest_path))
        elif isinstance(event, DirMovedEvent) and event.dest_path and self.camera.recursive:
            # A whole folder renamed into the tree: its files are complete, take them all.
            for entry in iter_frames(Path(os.fsdecode(event.dest_path)), True):
                self._offer(entry.path)


class InotifyWatcher:
    """All inotify cameras on one watchdog observer (one thread, one inotify fd)."""

    def __init__(self, cameras: list[CameraConfig], frames: FrameQueue):
        self.observer = InotifyObserver(generate_full_events=True)
        for camera in cameras:
            self.observer.schedule(
                _InotifyHandler(camera, frames), str(camera.path), recursive=camera.recursive,
                event_filter=[FileClosedEvent, FileMovedEvent, DirMovedEvent],
            )

    def start(self) -> None:
        self.observer.start()

    def stop(self) -> None:
        self.observer.stop()
        self.observer.join(timeout=10)


class PollingWatcher:
    """Rescans folders and queues files whose size and mtime have settled."""

    def __init__(self, cameras: list[CameraConfig], frames: FrameQueue, known: Iterable[str] = ()):
        self.cameras = cameras
        self.frames = frames
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="trailcam-poll", daemon=True)
        # path → (size, mtime) when queued; path → (size, mtime, since) while settling.
        self._queued: dict[str, tuple[int, float]] = {}
        self._settling: dict[str, tuple[int, float, float]] = {}
        self._seed = set(known)

    def start(self) -> None:
        # Files present at start belong to the backlog scan; remember their state.
        for camera in self.cameras:
            for entry in iter_frames(camera.path, camera.recursive):
                if entry.path in self._seed:
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    self._queued[entry.path] = (st.st_size, st.st_mtime)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        next_scan = {camera.name: 0.0 for camera in self.cameras}
        while not self._stop.is_set():
            now = time.monotonic()
            for camera in self.cameras:
                if now >= next_scan[camera.name]:
                    self.poll_once(camera, now)
                    next_scan[camera.name] = now + camera.poll_interval_s
            wait = min(next_scan.values()) - time.monotonic()
            self._stop.wait(max(0.05, min(wait, 0.5)))

    def poll_once(self, camera: CameraConfig, now: float) -> None:
        seen = set()
        for entry in iter_frames(camera.path, camera.recursive):
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            path = entry.path
            seen.add(path)
            state = (st.st_size, st.st_mtime)
            if self._queued.get(path) == state:
                continue
            settling = self._settling.get(path)
            if settling is None or settling[:2] != state:
                self._settling[path] = (*state, now)
                settling = self._settling[path]
            if now - settling[2] >= camera.settle_s:
                del self._settling[path]
                self._queued[path] = state
                self.frames.put(path, camera.name)
        # Forget files that are gone (moved away by retention, deleted by the operator).
        prefix = os.path.join(str(camera.path), "")
        for table in (self._queued, self._settling):
            for path in [p for p in table if p.startswith(prefix) and p not in seen]:
                del table[path]
