"""A photo's EXIF made to say where and when it was taken, without re-encoding the picture.

iNaturalist's uploader (and every photo tool) reads the time from DateTimeOriginal with its
OffsetTimeOriginal, the place from the GPS tags and their precision from GPSHPositioningError.
Trail cameras write none of the GPS tags and often a clock without zone, so the export copies
each photo with these tags set from what the station knows (the corrected capture time, the
deployment's coordinates). A JPEG's compressed picture is copied byte for byte: only its APP1
EXIF segment is replaced (re-saving through Pillow would re-compress it and lose detail that
identifiers look for). Other formats are converted to JPEG once, with the tags.
"""

from __future__ import annotations

from datetime import datetime
from fractions import Fraction
from pathlib import Path

_SOI, _SOS, _APP0, _APP1 = 0xD8, 0xDA, 0xE0, 0xE1
_EXIF_HEADER = b"Exif\x00\x00"
_MAX_SEGMENT = 0xFFFF - 2  # a segment's length field counts itself
IMAGE_DESCRIPTION, DATE_TIME = 0x010E, 0x0132
DATE_TIME_ORIGINAL, OFFSET_TIME_ORIGINAL = 0x9003, 0x9011
MAKER_NOTE = 0x927C


class ExifError(Exception):
    """The photo cannot be read or its tags cannot be written."""


def _dms(value: float):
    """Decimal degrees as EXIF's three rationals (degrees, minutes, seconds to 1/10000 s)."""
    from PIL.TiffImagePlugin import IFDRational

    value = abs(value)
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = Fraction(round((value - degrees - minutes / 60) * 3600 * 10000), 10000)
    return (IFDRational(degrees, 1), IFDRational(minutes, 1), IFDRational(seconds.numerator, seconds.denominator))


def _offset(moment: datetime) -> str:
    text = moment.strftime("%z")  # +0200
    return f"{text[:3]}:{text[3:]}"


def exif_bytes(source_exif, *, taken: datetime, latitude: float, longitude: float,
               uncertainty_m: float | None, description: str) -> bytes:
    """The APP1 payload (`Exif\\0\\0` + TIFF): the photo's own tags with time, place and note set.
    `taken` is aware, in the zone the photo should say (the station's)."""
    from PIL import ExifTags
    from PIL.TiffImagePlugin import IFDRational

    exif = source_exif
    stamp = taken.strftime("%Y:%m:%d %H:%M:%S")
    exif[IMAGE_DESCRIPTION] = description
    exif[DATE_TIME] = stamp
    sub = exif.get_ifd(ExifTags.IFD.Exif)
    sub[DATE_TIME_ORIGINAL] = stamp
    sub[OFFSET_TIME_ORIGINAL] = _offset(taken)
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps.clear()
    gps.update({0: b"\x02\x03\x00\x00", 1: "N" if latitude >= 0 else "S", 2: _dms(latitude),
                3: "E" if longitude >= 0 else "W", 4: _dms(longitude), 18: "WGS-84"})
    if uncertainty_m is not None:
        gps[31] = IFDRational(Fraction(uncertainty_m).limit_denominator(100))
    data = exif.tobytes()
    if len(data) > _MAX_SEGMENT:  # a camera's maker note can be large: it is what goes first
        sub.pop(MAKER_NOTE, None)
        data = exif.tobytes()
    if len(data) > _MAX_SEGMENT:
        raise ExifError(f"the EXIF block would be {len(data)} bytes, more than a JPEG segment holds")
    return data


def splice_exif(jpeg: bytes, payload: bytes) -> bytes:
    """The JPEG with every EXIF APP1 segment replaced by `payload`, put after the JFIF APP0 when
    there is one (else right after SOI); the scan data is copied unchanged."""
    if jpeg[:2] != b"\xff\xd8":
        raise ExifError("not a JPEG (no SOI marker)")
    kept: list[bytes] = []
    position = 2
    insert_at = 0
    while position + 4 <= len(jpeg):
        if jpeg[position] != 0xFF:
            raise ExifError(f"broken JPEG: no marker at byte {position}")
        marker = jpeg[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker == _SOS:
            break
        length = int.from_bytes(jpeg[position + 2:position + 4], "big")
        segment = jpeg[position:position + 2 + length]
        if marker == _APP1 and segment[4:10] == _EXIF_HEADER:
            pass  # replaced
        else:
            kept.append(segment)
            if marker == _APP0 and insert_at == len(kept) - 1:
                insert_at = len(kept)
        position += 2 + length
    else:
        raise ExifError("broken JPEG: no image data (SOS) found")
    app1 = b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload
    kept.insert(insert_at, app1)
    return b"\xff\xd8" + b"".join(kept) + jpeg[position:]


def write_tagged_copy(source: Path, target: Path, *, taken: datetime, latitude: float, longitude: float,
                      uncertainty_m: float | None, description: str) -> None:
    """Copy the photo `source` to `target` (a .jpg) with its time, place and note in EXIF."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(source) as image:
            payload = exif_bytes(image.getexif(), taken=taken, latitude=latitude, longitude=longitude,
                                 uncertainty_m=uncertainty_m, description=description)
            if image.format == "JPEG":
                target.write_bytes(splice_exif(source.read_bytes(), payload))
            else:
                image.convert("RGB").save(target, "JPEG", quality=95, exif=payload)
    except (OSError, UnidentifiedImageError, ValueError) as error:
        raise ExifError(f"{source}: {error}") from None
