"""Video clips from the camera folders: recognise, open, sample and time them.

Trail cameras in video mode and feeder cameras write MP4, MOV or AVI clips (H.264, H.265,
MJPEG). They are decoded with PyAV (FFmpeg inside its wheels for x86-64 and aarch64), the
`video` extra, imported only when a clip is opened: a stills-only edge never loads it.

    ClipReader(file object)          opens the container (ClipError: not a clip PyAV can read,
                                     no video stream, a codec this FFmpeg has no decoder for)
      .info                          container, codec, size, duration, rate, metadata
      .samples(rate, keyframes_only, max_samples, progress)
                                     one RGB picture per 1/rate step of the video (the first
                                     decoded frame at or after each step), decoded one at a time
                                     (memory: one picture and the decoder's few reference
                                     frames, whatever the clip's length); a fault in the middle
                                     ends the samples, `fault` says why, and what was yielded stands
    read_clip_time(metadata, mtime, duration_s, clock, container_time)
                                     when the clip began, by the camera's clock

Sampling is by presentation time, so the same clip gives the same samples (and offsets) on
every run: a clip interrupted by a restart resumes with the offsets it has not recorded.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Any

from PIL import Image

from edge.ingest.capture_time import CORRECTED, CameraClock, CaptureReading, localise, parse_offset

CLIP_SUFFIXES = frozenset({".mp4", ".mov", ".avi"})
MEDIA_TYPES = {".mp4": "video/mp4", ".mov": "video/quicktime", ".avi": "video/x-msvideo"}
# Larger than any camera frame, far below what a Pi's memory allows: a clip of "40000x40000"
# is refused before a frame is decoded (each sampled picture is one RGB copy of this size).
MAX_CLIP_PIXELS = 40_000_000
# A clip whose last decoded frame ends this much before its announced duration was cut short.
TRUNCATION_SLACK_S = 0.5
# Creation times that say "not set" (the QuickTime and Unix epochs).
_UNSET_TIMES = ("1904-01-01T00:00:00", "1970-01-01T00:00:00", "1904-01-01 00:00:00", "1970-01-01 00:00:00")
_CLIP_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(\.\d+)?\s*(Z|[+-]\d{2}:?\d{2})?$")


class ClipError(Exception):
    """A clip that cannot be decoded (at all, or from some point on); the message says why."""


class ClipDecoderMissing(ClipError):
    """PyAV (the `video` extra) is not installed: no clip can be read on this device."""


def is_clip_name(path: str | Path) -> bool:
    """A clip suffix (.mp4, .mov, .avi in any case), not hidden (an upload in progress)."""
    name = os.path.basename(str(path))
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in CLIP_SUFFIXES


def media_type(path: str | Path) -> str:
    """The clip's MIME type by its suffix (Camtrap DP fileMediatype, the web app's <video>)."""
    return MEDIA_TYPES.get(os.path.splitext(str(path))[1].lower(), "video/mp4")


def load_av() -> Any:
    """PyAV, imported now (lazily: only a device with clips pays for it). Raises ClipDecoderMissing."""
    try:
        import av
    except ImportError as error:
        raise ClipDecoderMissing("video clips need PyAV, the `video` extra (pip install 'trailcam[video]'); "
                                 f"not installed: {error}") from None
    return av


@dataclass(frozen=True)
class ClipInfo:
    """What the container says of a clip before any frame is decoded."""

    container: str
    codec: str
    width: int
    height: int
    duration_s: float | None  # None: the container does not say (a stream being written, some AVIs)
    fps: float | None
    metadata: Mapping[str, str]  # container metadata, then the video stream's for keys it lacks


@dataclass(frozen=True)
class Sample:
    """One sampled frame: its time from the clip's start and the picture (RGB, upright)."""

    index: int  # 0, 1, 2 ... in the order sampled
    offset_s: float  # presentation time from the stream's start, rounded to the millisecond
    picture: Image.Image


class ClipReader:
    """An open clip. Use as a context manager; `samples()` may be iterated once."""

    def __init__(self, source: IO[bytes] | str, *, threads: int = 0) -> None:
        av = load_av()
        self._av = av
        try:
            self._container = av.open(source, mode="r", metadata_errors="ignore")
        except av.error.FFmpegError as error:
            raise ClipError(f"not a clip FFmpeg can read: {_ffmpeg_reason(error)}") from None
        except (OSError, ValueError, EOFError) as error:
            raise ClipError(f"not a clip FFmpeg can read: {error}") from None
        try:
            self.info = self._open_stream(threads)
        except BaseException:
            self._container.close()
            raise
        self.fault: str | None = None  # why decoding stopped early (None: it reached the end)
        self.decoded = 0  # frames the decoder produced (all, not only the sampled)
        self.last_time_s: float | None = None  # presentation time of the last frame decoded
        self.capped = False  # max_samples reached before the end of the clip

    def _open_stream(self, threads: int) -> ClipInfo:
        container = self._container
        if not container.streams.video:
            raise ClipError("no video stream in the file (audio only, or not a video container)")
        stream = container.streams.video[0]
        context = stream.codec_context
        if context is None or getattr(context, "codec", None) is None:
            raise ClipError("unsupported video codec: this FFmpeg (PyAV "
                            f"{getattr(self._av, '__version__', '?')}) has no decoder for the clip's video stream")
        width, height = int(context.width or 0), int(context.height or 0)
        if width <= 0 or height <= 0:
            raise ClipError(f"invalid video size {width}x{height}")
        if width * height > MAX_CLIP_PIXELS:
            raise ClipError(f"video of {width}x{height} refused: more than {MAX_CLIP_PIXELS / 1e6:.0f} MP a frame")
        if threads:
            context.thread_count = threads
        self._stream = stream
        duration = None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / 1_000_000
        rate = stream.average_rate or stream.guessed_rate
        metadata = {str(k).lower(): str(v) for k, v in dict(stream.metadata).items()}
        metadata.update({str(k).lower(): str(v) for k, v in dict(container.metadata).items()})
        return ClipInfo(container=str(container.format.name), codec=str(context.codec.name), width=width,
                        height=height, duration_s=duration if duration and duration > 0 else None,
                        fps=float(rate) if rate else None, metadata=metadata)

    def samples(self, rate: float, keyframes_only: bool = False, max_samples: int | None = None,
                progress: Callable[[], Any] | None = None) -> Iterator[Sample]:
        """The sampled frames, in order: the first decoded frame at or after each step of 1/rate
        seconds (keyframes_only: the keyframes, at most `rate` a second). `progress` is called
        after every decoded frame (the daemon feeds its watchdog there: decoding the frames
        between two samples can take a while on a Pi). A decoding fault ends the iteration
        quietly and is kept in `fault`; so is a clip that ends well before its announced duration."""
        stream = self._stream
        if keyframes_only:
            stream.codec_context.skip_frame = "NONKEY"
        start = stream.start_time * stream.time_base if stream.start_time is not None else 0
        step = 1.0 / rate
        due = 0.0
        index = 0
        try:
            for frame in self._container.decode(stream):
                self.decoded += 1
                if progress is not None:
                    progress()
                if frame.pts is None or frame.time is None:
                    continue
                at = max(0.0, float(frame.time - start))
                self.last_time_s = at
                if at + 1e-6 < due:
                    continue
                if max_samples is not None and index >= max_samples:
                    self.capped = True
                    return
                yield Sample(index, round(at, 3), frame.to_image().convert("RGB"))
                index += 1
                due = (math.floor(at / step + 1e-6) + 1) * step
        except self._av.error.FFmpegError as error:
            self.fault = f"decoding stopped after {self._seconds()}: {_ffmpeg_reason(error)} (truncated or corrupt)"
            return
        except (OSError, ValueError, EOFError) as error:
            self.fault = f"decoding stopped after {self._seconds()}: {error} (truncated or corrupt)"
            return
        duration = self.info.duration_s
        fps = self.info.fps or 0.0
        if self.decoded == 0:
            self.fault = "no frame could be decoded (empty or corrupt video stream)"
        elif duration is not None and not keyframes_only and self.last_time_s is not None and \
                self.last_time_s + (1.0 / fps if fps else 0.0) < duration - TRUNCATION_SLACK_S:
            self.fault = (f"the video ends after {self._seconds()} of the {duration:.1f} s its container "
                          "announces (truncated)")

    def picture_at(self, offset_s: float) -> Image.Image | None:
        """The frame at `offset_s` from the start (the first decoded at or after it, as sampled):
        seeks to the keyframe before it and decodes from there. None past the end. For the web
        app's sampled frames; the daemon samples in one pass instead."""
        stream = self._stream
        start = stream.start_time * stream.time_base if stream.start_time is not None else 0
        if stream.time_base is not None and offset_s > 0:
            try:
                self._container.seek(int((float(start) + offset_s) / stream.time_base), stream=stream, backward=True)
            except self._av.error.FFmpegError:
                pass  # not seekable: decode from the start
        try:
            for frame in self._container.decode(stream):
                if frame.time is not None and float(frame.time - start) + 0.0005 >= offset_s:
                    return frame.to_image().convert("RGB")
        except (self._av.error.FFmpegError, OSError, ValueError, EOFError):
            return None
        return None

    def _seconds(self) -> str:
        return f"{self.last_time_s:.1f} s" if self.last_time_s is not None else "0 frames"

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> ClipReader:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _ffmpeg_reason(error: BaseException) -> str:
    """FFmpeg's own words, without the errno and the file name PyAV adds."""
    text = getattr(error, "strerror", None) or str(error)
    return str(text).strip()


def clip_creation_text(metadata: Mapping[str, str]) -> tuple[str, str] | None:
    """(key, value) of the clip's creation time as its metadata gives it, best first: QuickTime's
    creationdate (has its offset), the container's creation_time (MP4/MOV mvhd; an AVI's IDIT),
    then a date-time under `date` (an AVI's ICRD); None when absent or an epoch placeholder."""
    for key in ("com.apple.quicktime.creationdate", "creation_time", "date"):
        value = (metadata.get(key) or "").strip()
        if value and not value.startswith(_UNSET_TIMES) and len(value) >= 16:
            return key, value
    return None


def _parse(value: str) -> tuple[datetime, timezone | None, bool] | None:
    """('2026-05-01T07:30:00.000000Z' | '2026-05-01 07:30:00' | '...+0200') → (naive wall time,
    its offset or None, whether it ends in Z); None when it is not a date and time."""
    match = _CLIP_TIME.match(value.strip())
    if match is None:
        return None
    day, clock_time, fraction, zone = match.groups()
    try:
        wall = datetime.fromisoformat(f"{day}T{clock_time}{(fraction or '')[:7]}")
    except ValueError:
        return None
    if not 1900 <= wall.year < 3000:
        return None
    if zone is None or zone == "Z":
        return wall, None, zone == "Z"
    offset = parse_offset(zone)
    return (wall, offset, False) if offset is not None else None


def read_clip_time(metadata: Mapping[str, str], mtime: float, duration_s: float | None, clock: CameraClock,
                   container_time: str = "local") -> CaptureReading:
    """When the clip began, by its camera's clock; never fails. Sources (`time_source`):

    - `container`: a creation time with its own offset (QuickTime creationdate), or creation_time
      read as UTC ([clips] container_time = "utc");
    - `container-local` / `container-camera`: creation_time read as the camera's wall clock in the
      station's / the camera's zone (container_time = "local", the default);
    - `mtime`: none of these; the file's time minus the clip's duration (a camera closes the file
      when the clip ends, so its time is the clip's end).

    A camera's clock correction is added to container times (`+corrected`), never to the file's."""
    found = clip_creation_text(metadata)
    parsed = _parse(found[1]) if found is not None else None
    if parsed is not None:
        wall, offset, zulu = parsed
        corrected = CORRECTED if clock.correction else ""
        if offset is not None or (zulu and container_time == "utc"):
            zone = offset if offset is not None else UTC
            return CaptureReading(wall.replace(tzinfo=zone).astimezone(UTC) + clock.correction,
                                  "container" + corrected)
        at, later, flag = localise(wall, clock.zone)
        return CaptureReading(at + clock.correction,
                              ("container-camera" if clock.own_zone else "container-local") + corrected,
                              (flag,) if flag else (), wall=wall,
                              later=later + clock.correction if later is not None else None, zone=clock.zone)
    end = datetime.fromtimestamp(mtime, tz=UTC)
    return CaptureReading(end - timedelta(seconds=duration_s or 0.0), "mtime")
