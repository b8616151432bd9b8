"""When a frame was taken, in UTC.

Trail cameras write EXIF DateTimeOriginal in their own clock, which the owner sets to local
time; few write OffsetTimeOriginal. So: DateTimeOriginal with OffsetTimeOriginal when present
(`exif`), DateTimeOriginal read in the station's time zone when not (`exif-local`), and the
file's mtime when there is no usable EXIF time (`mtime`: uploaders may reset it, hence last).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from PIL import Image

EXIF_IFD = 0x8769
DATETIME_ORIGINAL = 36867
DATETIME_DIGITIZED = 36868
OFFSET_TIME_ORIGINAL = 36881
SUBSEC_TIME_ORIGINAL = 37521

_OFFSET = re.compile(r"^([+-])(\d{2}):?(\d{2})$")


def parse_exif_datetime(value: object) -> datetime | None:
    """'2026:11:28 23:59:30' → naive datetime; None for blanks and placeholders like 0000:00:00."""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if not isinstance(value, str):
        return None
    text = value.strip().rstrip("\x00").strip()
    for pattern in ("%Y:%m:%d %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y:%m:%dT%H:%M:%S"):
        try:
            return datetime.strptime(text[:19], pattern)
        except ValueError:
            continue
    return None


def parse_offset(value: object) -> timezone | None:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if not isinstance(value, str):
        return None
    match = _OFFSET.match(value.strip().rstrip("\x00"))
    if not match:
        return None
    sign, hours, minutes = match.groups()
    delta = timedelta(hours=int(hours), minutes=int(minutes))
    if delta > timedelta(hours=14):
        return None
    return timezone(-delta if sign == "-" else delta)


def capture_time(image: Image.Image | None, mtime: float, station_tz: ZoneInfo) -> tuple[datetime, str]:
    """(aware UTC datetime, source) for one frame; never fails (falls back to mtime)."""
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
            offset = parse_offset(sub.get(OFFSET_TIME_ORIGINAL))
            if offset is not None:
                return taken.replace(tzinfo=offset).astimezone(timezone.utc), "exif"
            return taken.replace(tzinfo=station_tz).astimezone(timezone.utc), "exif-local"
    return datetime.fromtimestamp(mtime, tz=timezone.utc), "mtime"


