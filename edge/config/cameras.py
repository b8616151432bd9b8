"""[[cameras]] tables: which folders hold frames, how to notice new ones, and how to read the
camera's clock (its zone and its error: trail cameras keep winter time all year, drift, or are
set by hand a few minutes off; edge/ingest/capture_time.py applies it)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BeforeValidator, Field, ValidationInfo, field_validator, model_validator

from edge.config.base import Section, TomlPath
from edge.config.deployment import DeploymentConfig
from edge.config.live import LiveConfig
from edge.redact import redact_url

# Live sources: RTSP (most IP cameras), RTSP over TLS, and HTTP(S) MJPEG.
STREAM_SCHEMES = ("rtsp", "rtsps", "http", "https")
LIVE_FOLDER = "live"  # <state folder>/live/<camera>/: where a live camera's frames are written

# A fixed offset as people write it: "+01:00", "-0530", "+1", "UTC+1", "GMT-03:30" (ISO sign:
# "UTC+1" is one hour ahead of UTC, unlike the POSIX-style IANA names "Etc/GMT-1").
_FIXED_OFFSET = re.compile(r"^(?:UTC|GMT)?\s*([+-])(\d{1,2})(?::?(\d{2}))?$", re.IGNORECASE)


def parse_zone(text: str) -> dt.tzinfo:
    """An IANA zone or a fixed UTC offset → tzinfo; ValueError naming both forms otherwise.

    A fixed offset never changes (no daylight saving): a camera kept on winter time all year
    is `+01:00` in Germany, not Europe/Berlin."""
    match = _FIXED_OFFSET.match(text.strip())
    if match:
        sign, hours, minutes = match.groups()
        delta = dt.timedelta(hours=int(hours), minutes=int(minutes or 0))
        if delta > dt.timedelta(hours=14) or int(minutes or 0) >= 60:
            raise ValueError(f"offset {text!r} is out of range (-14:00 to +14:00)")
        return dt.timezone(-delta if sign == "-" else delta)
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {text!r}: give an IANA name (e.g. 'Europe/Berlin', 'UTC') or a "
                         "fixed offset such as '+01:00' or 'UTC+1'") from None


def _moment(value: Any) -> Any:
    """A TOML date-time, or the same written as an ISO 8601 string (as people copy it from notes)."""
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"{value!r} is not a date-time such as 2026-05-01T10:00:00") from None
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        raise ValueError("needs a time of day, not only a date (e.g. 2026-05-01T10:00:00)")
    return value


Moment = Annotated[dt.datetime, BeforeValidator(_moment)]


class ClockReference(Section):
    """A known wrong/right pair, as ecologists note it at a site visit: what the camera showed and
    what the true time was at the same moment. The difference is the camera's clock error."""

    camera: Moment = Field(
        description="What the camera's clock showed, read in the camera's zone (its `timezone`, else the "
                    "station's) unless it carries an offset")
    true: Moment = Field(
        description="The true time at that moment (a phone, a GPS), read in the station's zone unless it "
                    "carries an offset")


class CameraConfig(Section):
    name: str = Field(
        min_length=1, max_length=64,
        description="The camera's name, recorded with each of its frames and events and sent in MQTT messages; "
                    "unique among the cameras, without '/', '#', '+' or control characters")
    path: TomlPath | None = Field(
        default=None,
        description="The folder the camera writes its frames into (made absolute at start); frames already "
                    "there when the daemon starts are processed as its backlog, and a folder that does not "
                    "exist yet is watched once it appears (an error for `edge run --once`). With `source`: "
                    "where the stream's frames are written (default `<state folder>/live/<name>`)")
    source: str | None = Field(
        default=None,
        description="A live camera instead of a folder: an RTSP (`rtsp://`, `rtsps://`) or HTTP MJPEG "
                    "(`http://`, `https://`) URL, read with PyAV (the `video` extra). A motion gate decides "
                    "when something moves; during a motion episode frames are written to `path` and counted "
                    "like stills ([cameras.live]). Credentials in the URL are never shown (logs, status, "
                    "MQTT, web app); to keep the password out of this file write it as `{TRAILCAM_…}`, e.g. "
                    "`rtsp://admin:{TRAILCAM_FEEDER_PASSWORD}@192.168.1.20:554/stream1`, and set that "
                    "environment variable (as Frigate does with {FRIGATE_…})")
    live: LiveConfig = Field(
        default_factory=LiveConfig,
        description="With `source`: reconnection, motion gate, sampling and storage of the live camera "
                    "(`[cameras.live]`)")
    recursive: bool = Field(
        default=False,
        description="Also watch the folder's sub-folders (including ones created later)")
    mode: Literal["inotify", "poll"] = Field(
        default="inotify",
        description='"inotify": react when a file is closed after writing or renamed into the folder '
                    '(local disks, SD cards); "poll": rescan every poll_interval_s and take a file once its '
                    "size and mtime have not changed for settle_s (network and FUSE mounts, where inotify "
                    "sees nothing)")
    poll_interval_s: float = Field(
        default=2.0, gt=0, le=3600,
        description='With mode = "poll": seconds between two scans of the folder')
    settle_s: float = Field(
        default=2.0, ge=0, le=3600,
        description='With mode = "poll": a file is taken once its size and mtime have not changed for this many '
                    "seconds. Also inotify's folder scans (the backlog at start, a new sub-folder, the periodic rescan): "
                    "a file modified less than settle_s ago may still be being written, so it is left to its "
                    "close event (at start and in a new sub-folder: taken once it has settled, if no close "
                    "event comes first)")
    rescan_interval_s: float = Field(
        default=300.0, ge=0, le=86400,
        description='With mode = "inotify": rescan the folder this often for frames inotify missed '
                    "(queue overflow, hard links, a late mount); 0 = never")
    symlinks: Literal["skip", "inside"] = Field(
        default="skip",
        description='"skip": a symbolic link is never read (logged, counted); "inside": read it when its '
                    "target is a regular file inside this camera folder")

    deployment: DeploymentConfig | None = Field(
        default=None,
        description="Where and since when this camera stands (`[cameras.deployment]`: id, latitude, longitude, "
                    "start, end, camera height, bait, habitat, ...): what the Camtrap DP export, COCO Camera "
                    "Traps export and `edge report` need; `edge check` lists what is missing")

    timezone: str | None = Field(
        default=None,
        description="The zone the camera's clock keeps, for its EXIF times without an offset: an IANA name "
                    "(\"Europe/Berlin\") or a fixed offset (\"+01:00\", \"UTC+1\": a camera kept on winter time "
                    "all year; \"UTC\": a camera set to UTC). Unset: the station's zone. An EXIF "
                    "OffsetTimeOriginal still wins; times read in this zone have time_source `exif-camera`")
    clock_offset_s: float | None = Field(
        default=None, ge=-2_000_000_000, le=2_000_000_000,
        description="Seconds to ADD to the camera's clock to get the true time (a camera 7.5 minutes slow: "
                    "450). Applied to every EXIF time, with or without an offset, not to file times "
                    "(`mtime` is the uploader's clock); such times get `+corrected` in time_source. "
                    "Exclusive with clock_reference")
    clock_reference: ClockReference | None = Field(
        default=None,
        description="The clock error as a known pair, e.g. `clock_reference = { camera = "
                    "2026-05-01T10:00:00, true = 2026-05-01T10:07:30 }`: what the camera showed and the "
                    "true time at the same moment; applied like clock_offset_s (exclusive with it)")

    @field_validator("timezone")
    @classmethod
    def _zone_exists(cls, value: str | None) -> str | None:
        if value is not None:
            parse_zone(value)
        return value

    @field_validator("clock_reference")
    @classmethod
    def _one_correction(cls, value: ClockReference | None, info: ValidationInfo) -> ClockReference | None:
        """Two corrections would be added twice or one silently ignored: refuse both."""
        if value is not None and info.data.get("clock_offset_s") is not None:
            raise ValueError("give clock_offset_s or clock_reference, not both (each is the whole correction)")
        return value

    @property
    def zone(self) -> dt.tzinfo | None:
        """The camera's own zone, None when it keeps the station's."""
        return parse_zone(self.timezone) if self.timezone is not None else None

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        """Frames are recorded by path: make it absolute so a restart from another working
        directory (or `edge run --watch relative/dir`) names the same file the same way."""
        return value.expanduser().absolute() if value is not None else None

    @field_validator("source")
    @classmethod
    def _stream_url(cls, value: str | None) -> str | None:
        """A URL PyAV can open as a live camera; the message shows it redacted (never its password)."""
        if value is None:
            return None
        shown = redact_url(value)
        if any(ch.isspace() or ord(ch) < 32 for ch in value):
            raise ValueError(f"{shown!r}: a stream URL has no spaces or control characters (percent-encode them)")
        scheme, sep, rest = value.partition("://")
        if not sep or scheme.lower() not in STREAM_SCHEMES:
            raise ValueError(f"{shown!r}: not a stream URL: give rtsp://, rtsps://, http:// or https:// "
                             "(a folder of frames is `path`)")
        host = rest.split("/", 1)[0].rpartition("@")[2]
        if not host or host.startswith(":"):
            raise ValueError(f"{shown!r}: the URL names no host")
        return value

    @property
    def is_live(self) -> bool:
        """A live camera (a stream URL) rather than a folder others write frames into."""
        return self.source is not None

    @model_validator(mode="after")
    def _folder_or_stream(self) -> CameraConfig:
        """A camera is a folder (`path`) or a stream (`source`, its frames written to `path` or to
        the state folder: edge.config.EdgeConfig fills it in)."""
        if self.path is None and self.source is None:
            raise ValueError("give path (a folder the camera writes frames into) or source (a stream URL)")
        if self.source is not None and self.name in (".", ".."):
            raise ValueError(f"name {self.name!r} cannot name a live camera's folder")
        return self

    @field_validator("timezone", "clock_offset_s", "clock_reference")
    @classmethod
    def _not_for_streams(cls, value: Any, info: ValidationInfo) -> Any:
        """A live camera's frames are timed by this device's clock: a camera clock correction
        would only shift correct times."""
        if value is not None and info.data.get("source") is not None:
            raise ValueError("a live camera's frames are timed by this device's clock; remove it (it is for "
                             "EXIF times a camera wrote itself)")
        return value

    @field_validator("name")
    @classmethod
    def _name_is_simple(cls, value: str) -> str:
        if any(ch in value for ch in "/#+\n\t"):
            raise ValueError("must not contain '/', '#', '+' or control characters")
        return value
