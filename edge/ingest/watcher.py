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
  arrived while the daemon was down are counted (the store skips those already recorded); one
  modified less than `settle_s` ago may still be being written, and waits until it is closed or
  has settled (`offer_backlog`).
- new sub-folders (inotify, recursive): watchdog watches a new folder only once it has seen it
  appear, so files copied into it before that (`cp -r`, rsync, a camera's new DCIM folder) have
  no close event. The folder is scanned when it appears: files already complete are queued, young
  ones (modified less than `settle_s` ago) are queued once they have settled; a file still being
  written gets its close event as well (the queue and the store dedupe).
- periodic rescan (inotify, `rescan_interval_s`): whatever inotify did not report (a queue
  overflow, a hard link, a folder mounted late) is found by comparing the folder with the store's
  (path, size, mtime), logged, counted and queued.

Entries are offered by name, whatever they are (symlinks, FIFOs included): edge.ingest.frame_file decides
what is read, so live watching, the backlog and rescans treat a non-frame alike (skipped, logged).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from watchdog.events import (
    DirCreatedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers.inotify import InotifyObserver

from edge.config.cameras import CameraConfig
from edge.ingest.clips import CLIP_SUFFIXES
from edge.ingest.imaging import IMAGE_SUFFIXES

# What the watchers offer: photos and video clips ([clips] enabled = false: the daemon leaves clips alone).
FRAME_SUFFIXES = IMAGE_SUFFIXES | CLIP_SUFFIXES

log = logging.getLogger(__name__)


def is_frame_name(path: str | Path) -> bool:
    """Image or video clip suffix (edge/ingest/clips.py), not hidden (temporary upload names are
    usually hidden or `.part`)."""
    name = os.path.basename(str(path))
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in FRAME_SUFFIXES


def camera_folder(camera: CameraConfig) -> Path:
    """The camera's folder. A validated EdgeConfig gives every camera one (a live camera's is
    filled in under the state folder), so a missing one is a CameraConfig built around that
    validation: said plainly rather than failing later inside os.scandir(None)."""
    if camera.path is None:
        raise ValueError(f"camera {camera.name}: cameras[].path is not set (EdgeConfig's validation fills it in)")
    return camera.path


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


def _state(entry: os.DirEntry, camera: CameraConfig) -> tuple[int, float]:
    """(size, mtime) as the pipeline will record it: the target's for a symlink the camera
    allows (`symlinks = "inside"`), else the entry's own."""
    info = entry.stat(follow_symlinks=camera.symlinks == "inside")
    return info.st_size, info.st_mtime


def _young(mtime: float, settle_s: float, now: float) -> bool:
    """Modified less than settle_s ago: it may still be being written."""
    return abs(now - mtime) < settle_s


def scan_backlog(cameras: Iterable[CameraConfig]) -> list[tuple[str, str]]:
    """(path, camera) of every frame present now, oldest mtime first (ties by path)."""
    found = []
    for camera in cameras:
        for entry in iter_frames(camera_folder(camera), camera.recursive):
            try:
                found.append((entry.stat(follow_symlinks=False).st_mtime, entry.path, camera.name))
            except OSError:
                continue
    found.sort()
    return [(path, name) for _, path, name in found]


def offer_backlog(backlog: Iterable[tuple[str, str]], cameras: Iterable[CameraConfig], frames: FrameQueue,
                  rescanner: Rescanner | None, watching: bool, now: float | None = None) -> tuple[list[str], int]:
    """Queue the backlog, except what may still be being written; returns (queued, left to settle).

    A file modified less than its camera's settle_s ago when the daemon starts may be one the
    camera is writing right now (a 0-byte photo, created and not yet filled): read at once, it
    would be recorded as an error row, superseded once it is whole. An inotify camera's such
    file is left to its close event, and to the rescanner once its size and mtime have settled
    (a file closed just before the watch began has no close event to come); a polled camera's
    is left to the poller, which takes files once they have settled. Without `watching`
    (`edge run --once`: nothing watches afterwards) everything is queued at once.
    """
    by_name = {camera.name: camera for camera in cameras}
    now = time.time() if now is None else now
    queued: list[str] = []
    settling = 0
    for path, name in backlog:
        camera = by_name.get(name)
        # Left to settle only where something takes it later: the poller, or the rescanner (inotify).
        if (watching and camera is not None and camera.settle_s > 0
                and (camera.mode == "poll" or rescanner is not None)):
            try:
                info = os.stat(path, follow_symlinks=camera.symlinks == "inside")
            except OSError:
                info = None
            if info is not None and _young(info.st_mtime, camera.settle_s, now):
                if camera.mode == "inotify" and rescanner is not None:
                    rescanner.settle_later(path, name, (info.st_size, info.st_mtime))
                settling += 1
                continue
        frames.put(path, name)
        queued.append(path)
    return queued, settling


@dataclass(frozen=True)
class QueuedFrame:
    path: str
    camera: str


class FrameQueue:
    """FIFO of frames to process; a path already waiting is not queued twice.

    A path taken with get() stays "in flight" until done(): a rescan must not take a frame that
    is being processed right now (not waiting, not yet recorded) for one inotify missed.
    """

    def __init__(self) -> None:
        self._queue: queue.Queue[QueuedFrame] = queue.Queue()
        self._pending: set[str] = set()
        self._in_flight: set[str] = set()
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
            self._in_flight.add(item.path)
        return item

    def done(self, path: str) -> None:
        """The processing of a path taken with get() is finished (recorded or not)."""
        with self._lock:
            self._in_flight.discard(path)

    def busy(self) -> set[str]:
        """Paths waiting or being processed now (a copy)."""
        with self._lock:
            return self._pending | self._in_flight

    def __len__(self) -> int:
        return self._queue.qsize()


class _InotifyHandler(FileSystemEventHandler):
    def __init__(self, camera: CameraConfig, frames: FrameQueue, rescanner: Rescanner | None = None):
        self.camera = camera
        self.frames = frames
        self.rescanner = rescanner
        self.root = os.path.realpath(camera_folder(camera))

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
        elif isinstance(event, DirCreatedEvent) and self.camera.recursive:
            self._scan_new_folder(Path(os.fsdecode(event.src_path)))

    def _scan_new_folder(self, folder: Path) -> None:
        """Files that were in a new folder before its watch was added have no close event.

        watchdog added the watch before this event reached us, so a file still being written
        now will get its close event. Which files are complete cannot be told from outside; a
        file not modified for settle_s is taken as complete, a younger one is queued once its
        size and mtime have stayed unchanged that long (or by its close event, whichever is first).
        """
        try:
            relative = Path(os.path.realpath(folder)).relative_to(self.root)
        except ValueError:
            return
        if any(part.startswith(".") for part in relative.parts):
            return  # a hidden folder (an upload in progress): the backlog and rescans skip it too
        now = time.time()
        offered = settling = 0
        for entry in iter_frames(folder, True):
            if not self._inside(entry.path):
                continue
            try:
                size, mtime = _state(entry, self.camera)
                regular = entry.is_file(follow_symlinks=False)
            except OSError:
                continue
            if regular and self.rescanner is not None and _young(mtime, self.camera.settle_s, now):
                self.rescanner.settle_later(entry.path, self.camera.name, (size, mtime))
                settling += 1
            else:
                self._offer(entry.path)
                offered += 1
        if offered or settling:
            log.debug("camera %s: new folder %s: %d file(s) queued, %d left to settle",
                      self.camera.name, folder, offered, settling)


class InotifyWatcher:
    """All inotify cameras on one watchdog observer (one thread, one inotify fd)."""

    def __init__(self, cameras: list[CameraConfig], frames: FrameQueue, rescanner: Rescanner | None = None):
        self.observer = InotifyObserver(generate_full_events=True)
        for camera in cameras:
            # DirCreatedEvent only where sub-folders are watched (it needs IN_CREATE, which a
            # flat folder would otherwise not ask for: one more event per file for nothing).
            events = [FileClosedEvent, FileMovedEvent, DirMovedEvent] + ([DirCreatedEvent] if camera.recursive else [])
            self.observer.schedule(
                _InotifyHandler(camera, frames, rescanner), str(camera.path), recursive=camera.recursive,
                event_filter=events,
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
            for entry in iter_frames(camera_folder(camera), camera.recursive):
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
        for entry in iter_frames(camera_folder(camera), camera.recursive):
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


def _utc_now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# (path, size, mtime) of every recorded frame under a folder: what a rescan compares against.
KnownStates = Callable[[Path], Iterable[tuple[str, int | None, float | None]]]


class Rescanner:
    """inotify mode's safety net, on its own thread (a slow folder walk never holds up frames or
    the watchdog ping):

    - files of a new sub-folder that were too young to take at once are queued once their size
      and mtime have stayed unchanged for the camera's settle_s;
    - every `rescan_interval_s` (0 = never) each inotify camera's folder is compared with the
      store: a file not recorded with its (path, size, mtime), not waiting, not being processed
      and not modified within settle_s is one inotify missed. It is logged, counted
      (`found_total`: `edge status`, metrics) and queued.

    What is recorded comes from `known(folder)`: the (path, size, mtime) of every recorded frame
    under a folder. The daemon passes edge.store.db.known_states_reader (a read-only connection
    of this thread's own, one range query per camera, never a query per file); ingest itself
    knows nothing of the database. Files processed without a row of
    their own (a copy of a frame recorded elsewhere, a skipped symlink or FIFO) are remembered
    with their (size, mtime) via note_handled(), so a rescan does not take them again and again.
    """

    SETTLE_CHECK_S = 0.25

    def __init__(self, cameras: Iterable[CameraConfig], frames: FrameQueue, known: KnownStates,
                 clock=time.monotonic) -> None:
        self.cameras = {c.name: c for c in cameras if c.mode == "inotify"}
        self.frames = frames
        self.known = known
        self.clock = clock
        self.found_total = 0
        self.last_rescan_at: str | None = None
        self._lock = threading.Lock()
        self._settling: dict[str, tuple[str, tuple[int, float], float]] = {}  # path → (camera, state, since)
        self._handled: dict[str, tuple[int, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="trailcam-rescan", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    # -- called from other threads -----------------------------------------------------------

    def settle_later(self, path: str, camera: str, state: tuple[int, float]) -> None:
        """Queue `path` once its (size, mtime) has stayed `state` for the camera's settle_s."""
        with self._lock:
            if path not in self._settling:
                self._settling[path] = (camera, state, self.clock())

    def note_handled(self, path: str, camera: str) -> None:
        """`path` was processed and left no row with its (path, size, mtime) (a duplicate of a
        frame recorded elsewhere, a skipped non-frame): a rescan must not count it as missed."""
        config = self.cameras.get(camera)
        if config is None or config.rescan_interval_s <= 0:
            return  # no rescan to mislead: remember nothing
        try:
            info = os.stat(path, follow_symlinks=config.symlinks == "inside")
        except OSError:
            return
        with self._lock:
            self._handled[path] = (info.st_size, info.st_mtime)

    # -- the thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        now = self.clock()
        due = {name: now + c.rescan_interval_s for name, c in self.cameras.items() if c.rescan_interval_s > 0}
        while not self._stop.wait(self.SETTLE_CHECK_S):
            try:
                self.check_settling()
                for name, when in list(due.items()):
                    if self.clock() >= when and not self._stop.is_set():
                        self.rescan_once(self.cameras[name])
                        due[name] = self.clock() + self.cameras[name].rescan_interval_s
            except Exception:  # noqa: BLE001 - a safety net must not die of one bad walk
                log.exception("folder rescan failed; retrying at the next interval")

    def check_settling(self) -> int:
        """Queue the young files of new folders that have settled; returns how many."""
        now = self.clock()
        with self._lock:
            items = list(self._settling.items())
        queued = 0
        for path, (camera, state, since) in items:
            config = self.cameras.get(camera)
            try:
                info = os.stat(path, follow_symlinks=config is not None and config.symlinks == "inside")
                current = (info.st_size, info.st_mtime)
            except OSError:
                current = None
            with self._lock:
                if current is None:
                    self._settling.pop(path, None)
                elif current != state:
                    self._settling[path] = (camera, current, now)
                elif now - since >= (config.settle_s if config else 0):
                    self._settling.pop(path, None)
                    queued += self.frames.put(path, camera)
        return queued

    def rescan_once(self, camera: CameraConfig) -> list[str]:
        """Compare the folder with the store now; queue and return what inotify missed."""
        started = self.clock()
        now = time.time()
        found: dict[str, tuple[int, float]] = {}
        seen: set[str] = set()
        for entry in iter_frames(camera_folder(camera), camera.recursive):
            try:
                state = _state(entry, camera)
            except OSError:  # vanished, or a dangling symlink: nothing to read
                continue
            seen.add(entry.path)
            if not _young(state[1], camera.settle_s, now):
                found[entry.path] = state
        # Waiting or in flight first, then the store: a frame finished between the two looks is
        # already recorded when the store is read, so it is never taken for a missed one.
        for path in self.frames.busy():
            found.pop(path, None)
        prefix = os.path.join(str(camera.path), "")
        with self._lock:
            # Forget what left this camera's folder (other cameras' entries are theirs to prune).
            self._handled = {p: s for p, s in self._handled.items() if p in seen or not p.startswith(prefix)}
            for path, state in self._handled.items():
                if found.get(path) == state:
                    del found[path]
        if found:
            try:
                for path, size, mtime in self.known(camera_folder(camera)):
                    if found.get(path) == (size, mtime):
                        del found[path]
            except Exception as error:  # noqa: BLE001 - the safety net must outlive a locked or missing database
                log.warning("camera %s: rescan cannot read the recorded frames: %s", camera.name, error)
                return []
        missed = [p for p in sorted(found, key=lambda p: (found[p][1], p)) if self.frames.put(p, camera.name)]
        self.found_total += len(missed)
        self.last_rescan_at = _utc_now_iso()
        if missed:
            log.warning("camera %s: rescan found %d frame(s) that inotify did not report (e.g. %s); queued "
                        "(%d found by rescans since start)", camera.name, len(missed), missed[0], self.found_total)
        else:
            log.debug("camera %s: rescan of %d file(s) in %.2f s: nothing missed", camera.name, len(seen),
                      self.clock() - started)
        return missed
