"""When a frame was taken, in UTC, where that time came from, and what is doubtful about it.

Trail cameras write EXIF DateTimeOriginal in their own clock, which the owner sets to local
time; few write OffsetTimeOriginal. So (the `time_source` vocabulary, docs/schema.md):

- `exif`: DateTimeOriginal with its OffsetTimeOriginal (the camera's own claim of its zone);
- `exif-camera`: read in the camera's configured zone (`[[cameras]] timezone`);
- `exif-local`: read in the station's zone (the camera keeps the station's local time);
- `mtime`: the file's modification time when there is no usable EXIF time (uploaders may reset
  it, hence last).

A camera's clock correction (`clock_offset_s` / `clock_reference`) is added to every EXIF time,
with or without an offset (an offset says which zone the clock claims, not that it is right);
such a source gets `+corrected` (`exif-local+corrected`). File times are never corrected: they
are the file system's or the uploader's clock, not the camera's.

A wall time read in a zone with daylight saving may be doubtful, and says so in its flags:

- `ambiguous`: the repeated hour when the clocks go back (Europe/Berlin 2026-10-25 02:00-02:59
  happens twice). Both readings are kept in the `CaptureReading`; `resolve_ambiguous` picks
  the one that keeps the camera's own order (sequence number in the file name, then file
  mtime, then arrival) against the camera's frames already recorded in that hour, the first
  (summer) reading when nothing tells them apart.
- `nonexistent`: the skipped hour when the clocks go forward (02:30 on 2026-03-29 in Berlin).
  Rule: read with the offset in force before the gap, i.e. moved forward by the gap (02:30 →
  03:30 CEST), which is what a camera that has not yet switched to summer time means.
- `malformed-offset`: an OffsetTimeOriginal that is there but not an offset (`+2:00`, `+0200x`,
  `+15:00`); the time is read in the camera's (else the station's) zone instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from pathlib import PurePath

from PIL import Image

from edge.config.cameras import CameraConfig

EXIF_IFD = 0x8769
DATETIME_ORIGINAL = 36867
DATETIME_DIGITIZED = 36868
OFFSET_TIME_ORIGINAL = 36881
SUBSEC_TIME_ORIGINAL = 37521

_OFFSET = re.compile(r"^([+-])(\d{2}):?(\d{2})$")
# What cameras write for "offset unknown" (EXIF 2.31: blanks, colon kept): absent, not malformed.
_BLANK_OFFSET = re.compile(r"^[\s:]*$")
# A camera's sequence number: the last run of digits of the file name's stem (IMG_0123 → IMG_, 123).
_SEQUENCE = re.compile(r"^(.*?)(\d+)$")

AMBIGUOUS, NONEXISTENT, MALFORMED_OFFSET = "ambiguous", "nonexistent", "malformed-offset"
CORRECTED = "+corrected"


# Years an EXIF time may have. A damaged or placeholder date outside them (0001:01:01, 9999:...)
# is no camera's clock, and the arithmetic on it (its zone or offset to UTC, the camera's
# correction, the visit window) would leave datetime's range: OverflowError, a lost frame.
# Clock resets (1970, 2000) stay inside and are flagged by the clock checks instead.
PLAUSIBLE_YEARS = range(1900, 3000)


def parse_exif_datetime(value: object) -> datetime | None:
    """'2026:11:28 23:59:30' → naive datetime; None for blanks, placeholders like 0000:00:00 or
    `    :  :     :  :  `, impossible dates (month 13) and years outside PLAUSIBLE_YEARS."""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if not isinstance(value, str):
        return None
    text = value.strip().rstrip("\x00").strip()
    for pattern in ("%Y:%m:%d %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y:%m:%dT%H:%M:%S"):
        try:
            parsed = datetime.strptime(text[:19], pattern)
        except ValueError:
            continue
        return parsed if parsed.year in PLAUSIBLE_YEARS else None
    return None


def parse_offset(value: object) -> timezone | None:
    """'+02:00' or '+0200' → a fixed zone; None for anything else (-14:00 to +14:00 only)."""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if not isinstance(value, str):
        return None
    match = _OFFSET.match(value.strip().rstrip("\x00"))
    if not match:
        return None
    sign, hours, minutes = match.groups()
    delta = timedelta(hours=int(hours), minutes=int(minutes))
    if delta > timedelta(hours=14) or int(minutes) >= 60:
        return None
    return timezone(-delta if sign == "-" else delta)


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return value.strip().rstrip("\x00").strip() if isinstance(value, str) else None


@dataclass(frozen=True)
class CameraClock:
    """How to read one camera's clock: the zone of its EXIF times without an offset, whether
    that zone is the camera's own (`exif-camera`) or the station's (`exif-local`), and the
    correction added to its EXIF times."""

    zone: tzinfo
    own_zone: bool = False
    correction: timedelta = timedelta(0)


def camera_clock(camera: CameraConfig, station_tz: tzinfo) -> CameraClock:
    """A [[cameras]] table's clock. A `clock_reference` pair is read as people note it: what the
    camera showed in the camera's zone, the true time in the station's (either may carry its
    own offset); its difference, in elapsed seconds, is the correction."""
    own = camera.zone
    zone = own if own is not None else station_tz
    correction = timedelta(0)
    if camera.clock_offset_s is not None:
        correction = timedelta(seconds=camera.clock_offset_s)
    elif camera.clock_reference is not None:
        shown, true = camera.clock_reference.camera, camera.clock_reference.true
        shown = shown if shown.tzinfo is not None else shown.replace(tzinfo=zone)
        true = true if true.tzinfo is not None else true.replace(tzinfo=station_tz)
        # In UTC: two datetimes with the same tzinfo object would subtract as wall times.
        correction = true.astimezone(UTC) - shown.astimezone(UTC)
    return CameraClock(zone, own_zone=own is not None, correction=correction)


@dataclass(frozen=True)
class CaptureReading:
    """One frame's capture time as read, before an ambiguous one is resolved.

    `at`: UTC, corrected; for an ambiguous wall time the first (summer) reading, with `later`
    the second. `wall`: the camera's own reading (naive) when it was read in a zone, for the
    log. `offset_text`: a malformed OffsetTimeOriginal as written."""

    at: datetime
    source: str
    flags: tuple[str, ...] = ()
    wall: datetime | None = None
    later: datetime | None = None
    offset_text: str | None = None
    zone: tzinfo | None = None


def localise(wall: datetime, zone: tzinfo) -> tuple[datetime, datetime | None, str | None]:
    """(UTC, the second UTC reading or None, flag) of a naive wall time in a zone.

    An ambiguous time (the repeated hour) has two readings, first (fold=0) and second; a
    nonexistent one (the skipped hour) is read with the offset before the gap (fold=0, as
    zoneinfo does), i.e. moved forward by the gap's length."""
    first = wall.replace(tzinfo=zone, fold=0)
    second = wall.replace(tzinfo=zone, fold=1)
    early = first.astimezone(UTC)
    if first.utcoffset() == second.utcoffset():
        return early, None, None
    if early.astimezone(zone).replace(tzinfo=None) != wall:
        return early, None, NONEXISTENT
    late = second.astimezone(UTC)
    return min(early, late), max(early, late), AMBIGUOUS


def read_capture_time(image: Image.Image | None, mtime: float, clock: CameraClock) -> CaptureReading:
    """The frame's capture time as its camera's clock says; never fails (falls back to mtime)."""
    if image is not None:
        try:
            exif = image.getexif()
            sub = exif.get_ifd(EXIF_IFD)
        except Exception:  # noqa: BLE001 - damaged EXIF must not lose the frame
            sub = {}
        taken = parse_exif_datetime(sub.get(DATETIME_ORIGINAL)) or parse_exif_datetime(sub.get(DATETIME_DIGITIZED))
        if taken is not None:
            subsec = str(sub.get(SUBSEC_TIME_ORIGINAL) or "").strip().rstrip("\x00")
            if subsec.isdigit():
                taken = taken.replace(microsecond=int((subsec + "000000")[:6]))
            corrected = CORRECTED if clock.correction else ""
            written = _text(sub.get(OFFSET_TIME_ORIGINAL))
            offset = parse_offset(written)
            if offset is not None:
                return CaptureReading(taken.replace(tzinfo=offset).astimezone(UTC) + clock.correction,
                                      "exif" + corrected)
            flags: list[str] = []
            malformed = written if written and not _BLANK_OFFSET.match(written) else None
            if malformed is not None:
                flags.append(MALFORMED_OFFSET)
            at, later, flag = localise(taken, clock.zone)
            if flag is not None:
                flags.append(flag)
            return CaptureReading(
                at + clock.correction, ("exif-camera" if clock.own_zone else "exif-local") + corrected,
                tuple(flags), wall=taken, later=later + clock.correction if later is not None else None,
                offset_text=malformed, zone=clock.zone)
    return CaptureReading(datetime.fromtimestamp(mtime, tz=UTC), "mtime")


def capture_time(image: Image.Image | None, mtime: float, station_tz: tzinfo) -> tuple[datetime, str]:
    """(aware UTC datetime, source) for one frame in the station's zone, no camera clock; an
    ambiguous time is read as its first reading (`edge classify`, which has no camera)."""
    reading = read_capture_time(image, mtime, CameraClock(station_tz))
    return reading.at, reading.source


@dataclass(frozen=True)
class Neighbour:
    """A frame of the same camera already recorded: its capture time (UTC), path and mtime."""

    at: datetime
    path: str
    mtime: float | None


def camera_order(path: str, mtime: float | None, other: Neighbour) -> int:
    """+1: this frame was taken after `other` by the camera's own account, -1: before.

    The camera's sequence number first (same folder, same name prefix: IMG_0124 after
    IMG_0123), then the file's mtime (a camera's FAT mtime is its wall clock too, so it comes
    second), then arrival: a frame recorded earlier was taken earlier."""
    this, that = PurePath(path), PurePath(other.path)
    if this.parent == that.parent:
        mine, theirs = _SEQUENCE.match(this.stem), _SEQUENCE.match(that.stem)
        if mine and theirs and mine.group(1) == theirs.group(1) and int(mine.group(2)) != int(theirs.group(2)):
            return 1 if int(mine.group(2)) > int(theirs.group(2)) else -1
    if mtime is not None and other.mtime is not None and mtime != other.mtime:
        return 1 if mtime > other.mtime else -1
    return 1


@dataclass(frozen=True)
class Resolution:
    """The reading chosen for an ambiguous time: `at`, whether it is the second one, and the
    neighbour that decided it (None: nothing told them apart, the first reading)."""

    at: datetime
    second: bool
    because: Neighbour | None = None


def resolve_ambiguous(reading: CaptureReading, path: str, mtime: float | None,
                      neighbours: Iterable[Neighbour]) -> Resolution:
    """Choose the reading of an ambiguous time that agrees with the camera's own order.

    `neighbours`: the camera's recorded frames whose times fall between the two readings (those
    outside are on the same side of both and decide nothing). Each reading is scored by how
    many of them it would put on the wrong side (a frame taken later stored earlier, or the
    reverse); the one with fewer wins, the first reading on a tie (no neighbours: a burst's
    first frame, or frames of the repeated hour's first pass)."""
    if reading.later is None:
        return Resolution(reading.at, False)
    ordered = [(n, camera_order(path, mtime, n)) for n in neighbours]

    def wrong(candidate: datetime) -> list[Neighbour]:
        return [n for n, order in ordered if (order > 0 and candidate < n.at) or (order < 0 and candidate > n.at)]

    against_first, against_second = wrong(reading.at), wrong(reading.later)
    if len(against_second) < len(against_first):
        return Resolution(reading.later, True, max(against_first, key=lambda n: n.at))
    return Resolution(reading.at, False, min(against_second, key=lambda n: n.at) if against_second else None)


