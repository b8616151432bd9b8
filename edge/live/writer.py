"""Sampled stream frames onto disk, where the still pipeline takes them.

The reader hands frames over with `offer()`, which never blocks: the hand-off holds at most
`queue_frames` frames, and a frame that finds it full is dropped and counted (a slow SD card
must not stall decoding, nor queue frames in memory without limit). A frame is also dropped,
and counted, when `max_pending` of this camera's frames are already written but not processed
(the detector cannot keep up, or the daemon paused for low disk space): the folder then does not
fill without limit either.

Each frame is written as JPEG with its capture time in EXIF (DateTimeOriginal, OffsetTimeOriginal
and SubSecTimeOriginal, in the station's zone: edge/ingest/capture_time.py reads it back as
time_source `exif`), first to a hidden `.<name>.partial`, fsynced, then renamed into the folder
and the folder fsynced: the watcher sees only complete frames (the rename), and a frame that
was renamed is on disk, so a crash loses nothing the folder shows.
"""

from __future__ import annotations

import io
import logging
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DROP_REASONS = ("queue", "backlog", "write_error")


@dataclass(frozen=True)
class Sample:
    """One frame to write: when it was read (aware), which episode it belongs to, the picture
    (a PyAV VideoFrame or a PIL image: anything with `to_image()` or `save()`)."""

    captured_at: datetime
    episode: int
    picture: Any


def utc_text(moment: datetime) -> str:
    """The stored time format (edge/store/times.py), for status: UTC with milliseconds and Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def frame_name(captured_at: datetime) -> str:
    """`20261128T045930.123Z.jpg`: UTC, so names sort in time order across a change of clocks."""
    moment = captured_at.astimezone(UTC)
    return moment.strftime("%Y%m%dT%H%M%S") + f".{moment.microsecond // 1000:03d}Z.jpg"


def jpeg_with_time(picture: Any, captured_at: datetime, zone: tzinfo, quality: int) -> bytes:
    """The JPEG of one frame, its capture time in EXIF in the station's zone, with the offset."""
    from PIL import ExifTags, Image

    image = picture.to_image() if hasattr(picture, "to_image") else picture
    if not isinstance(image, Image.Image):
        raise TypeError(f"not a picture: {type(picture).__name__}")
    local = captured_at.astimezone(zone)
    offset = local.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign = "-" if minutes < 0 else "+"
    exif = Image.Exif()
    ifd = exif.get_ifd(ExifTags.IFD.Exif)
    ifd[ExifTags.Base.DateTimeOriginal] = local.strftime("%Y:%m:%d %H:%M:%S")
    ifd[ExifTags.Base.OffsetTimeOriginal] = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    ifd[ExifTags.Base.SubsecTimeOriginal] = f"{local.microsecond // 1000:03d}"
    # Set the sub-IFD back explicitly: Pillow before 11 writes a fresh Exif's get_ifd() dict only
    # when it is assigned (10.3, the floor, silently dropped the time: frames fell back to mtime).
    exif[ExifTags.IFD.Exif] = ifd
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=quality, exif=exif)
    return buffer.getvalue()


def write_atomically(folder: Path, name: str, data: bytes) -> Path:
    """`data` as `folder/name`, complete or not at all: hidden partial file, fsync, rename,
    fsync of the folder. An existing name gets `-1`, `-2`… (never overwritten)."""
    target = folder / name
    stem, suffix = name[:-4], name[-4:]
    number = 0
    while target.exists():
        number += 1
        target = folder / f"{stem}-{number}{suffix}"
    partial = folder / f".{target.name}.partial"
    try:
        with open(partial, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    return target


class FrameWriter:
    """The bounded hand-off and the thread that writes; its figures go into `edge status`."""

    def __init__(self, camera: str, folder: Path, zone: tzinfo, *, quality: int = 90, queue_frames: int = 8,
                 max_pending: int = 50, pending: Callable[[], int] = lambda: 0) -> None:
        self.camera = camera
        self.folder = Path(folder)
        self.zone = zone
        self.quality = quality
        self.max_pending = max_pending
        self.pending = pending  # this camera's frames written and not yet processed
        self._queue: queue.Queue[Sample | None] = queue.Queue(maxsize=queue_frames)
        self._lock = threading.Lock()
        self.written = 0
        self.dropped = dict.fromkeys(DROP_REASONS, 0)
        self.last_written: str | None = None
        self._complained = False
        self._thread = threading.Thread(target=self._run, name=f"trailcam-live-writer-{camera}", daemon=True)

    # -- the reader's side ------------------------------------------------------------------
    def offer(self, sample: Sample) -> bool:
        """Hand one frame over without waiting; False when it was dropped (and counted)."""
        try:
            self._queue.put_nowait(sample)
            return True
        except queue.Full:
            self._drop("queue")
            return False

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Write what was handed over (a frame of an episode is worth the wait), then end."""
        if not self._thread.is_alive():
            return
        while True:
            try:
                self._queue.put(None, timeout=timeout)
                break
            except queue.Full:
                continue
        self._thread.join(timeout=timeout)

    def figures(self) -> dict[str, Any]:
        with self._lock:
            return {"written": self.written, "dropped": dict(self.dropped), "last_written_at": self.last_written,
                    "queued": self._queue.qsize()}

    # -- the writer thread ------------------------------------------------------------------
    def _drop(self, reason: str) -> None:
        with self._lock:
            self.dropped[reason] += 1
            total = self.dropped[reason]
        if total == 1 or total % 100 == 0:
            why = {"queue": f"the hand-off to the writer is full ({self._queue.maxsize} frames: the disk is slow)",
                   "backlog": f"{self.max_pending} of its frames wait to be processed (the detector cannot keep "
                              "up, or processing is paused)",
                   "write_error": "it could not be written"}[reason]
            log.warning("camera %s: frame dropped: %s; %d dropped so far for this reason", self.camera, why, total)

    def _run(self) -> None:
        while True:
            sample = self._queue.get()
            if sample is None:
                return
            try:
                self.write(sample)
            except Exception as error:  # noqa: BLE001 - one bad frame or a full disk must not end the thread
                self._drop("write_error")
                if not self._complained:
                    log.error("camera %s: cannot write a frame to %s: %s", self.camera, self.folder, error)
                    self._complained = True

    def write(self, sample: Sample) -> Path | None:
        """Write one frame now (the thread's work; None when dropped for the backlog)."""
        if self.pending() >= self.max_pending:
            self._drop("backlog")
            return None
        data = jpeg_with_time(sample.picture, sample.captured_at, self.zone, self.quality)
        self.folder.mkdir(parents=True, exist_ok=True)  # a folder removed by hand comes back
        path = write_atomically(self.folder, frame_name(sample.captured_at), data)
        self._complained = False
        with self._lock:
            self.written += 1
            self.last_written = utc_text(sample.captured_at)
        log.debug("camera %s: episode %d: wrote %s", self.camera, sample.episode, path.name)
        return path
