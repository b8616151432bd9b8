"""Pictures served by database id, never by a path from the request.

A snapshot is the event's `snapshot` file name joined to the snapshot folder; a frame is the
frame row's `stored_path` or `path`; a crop is cut from its frame. Each resolved path (symlinks
followed) must lie inside an allowed folder (the snapshot folder; a camera folder or the archive)
and be a regular file, or the answer is "not found": a name like `../x`, an absolute path or a
symlink pointing out of the folder in the database reads nothing outside.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from pathlib import Path

from PIL import Image

from edge.detect.annotate import draw
from edge.detect.finder import crop_birds
from edge.detect.model import Box
from edge.ingest.imaging import FrameError, load_oriented, open_image

MAX_IMAGE_BYTES = 64 * 1024 * 1024
DISPLAY_WIDTH = 1280
CROP_SIZE = (224, 224)


def inside(path: str | Path, folders: Iterable[Path]) -> Path | None:
    """`path` resolved, when it is a regular file inside one of `folders` (resolved); else None."""
    try:
        resolved = Path(path).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    for folder in folders:
        try:
            root = Path(folder).resolve(strict=True)
        except (OSError, RuntimeError):
            continue
        if resolved.is_relative_to(root) and resolved.is_file():
            return resolved
    return None


def snapshot_path(folder: Path, name: str | None) -> Path | None:
    """The snapshot file of an event, inside `folder`, or None."""
    if not name or "/" in name or "\\" in name or name in (".", ".."):
        return None
    return inside(folder / name, [folder])


def private_placeholder(size: tuple[int, int] = (320, 180)) -> bytes:
    """What a picture of people ([privacy] hide_people) is served as: a plain grey JPEG, made
    here from nothing, so no path from the request reaches the frame's file."""
    return _jpeg(Image.new("RGB", size, (96, 96, 96)), 60)


def _read(path: Path) -> bytes | None:
    with path.open("rb") as handle:
        data = handle.read(MAX_IMAGE_BYTES + 1)
    return data if len(data) <= MAX_IMAGE_BYTES else None


def _decode(path: Path, clip_offset_s: float | None = None) -> Image.Image | None:
    if clip_offset_s is not None:
        return _clip_picture(path, clip_offset_s)
    data = _read(path)
    if data is None:
        return None
    try:
        return load_oriented(open_image(data), None)
    except FrameError:
        return None


def _clip_picture(path: Path, offset_s: float) -> Image.Image | None:
    """A video clip's sampled frame, decoded from the clip (edge/ingest/clips.py; PyAV, the
    `video` extra, imported only here): what the daemon analysed at that offset."""
    from edge.ingest.clips import ClipError, ClipReader

    try:
        with ClipReader(str(path)) as reader:
            return reader.picture_at(offset_s)
    except ClipError:
        return None


def _jpeg(image: Image.Image, quality: int = 82) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def _box(row: dict) -> Box:
    return Box(row["ymin"], row["xmin"], row["ymax"], row["xmax"], row.get("score") or 0.0, 0,
               row.get("detector_label") or "bird")


def frame_jpeg(path: Path, boxes: Sequence[dict] = (), captions: Sequence[str] | None = None,
               clip_offset_s: float | None = None) -> bytes | None:
    """The frame as displayed (EXIF orientation), at most DISPLAY_WIDTH wide, boxes drawn with
    `captions` (the app's: the names the visit counts) or, without them, the stored label and
    confidence; a clip's sampled frame is decoded at its offset."""
    image = _decode(path, clip_offset_s)
    if image is None:
        return None
    if boxes:
        if captions is None:
            captions = [f"{b['rank']}: {b['species'] or b['kind']}"
                        + (f" {b['confidence']:.2f}" if b.get("confidence") is not None else "") for b in boxes]
        image = draw(image, [_box(b) for b in boxes], list(captions))
    if image.width > DISPLAY_WIDTH:
        image = image.resize((DISPLAY_WIDTH, round(image.height * DISPLAY_WIDTH / image.width)), Image.Resampling.BILINEAR)
    return _jpeg(image)


def crop_jpeg(path: Path, detection: dict, clip_offset_s: float | None = None) -> bytes | None:
    """The detection's crop as the classifier saw it (edge.detect.finder.crop_birds)."""
    image = _decode(path, clip_offset_s)
    if image is None:
        return None
    crop = crop_birds(image, [_box(detection)], CROP_SIZE)[0]
    return _jpeg(Image.fromarray(crop), 88)
