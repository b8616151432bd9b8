"""`edge export coco-ct`: the station's frames and birds as COCO Camera Traps JSON.

COCO Camera Traps (https://lila.science/coco-camera-traps) is what the detection ecosystem
reads: MegaDetector's tools, Timelapse, the LILA data sets. One JSON object:

- `info`: what exported it, when, for which station and period;
- `images`: one per frame (status ok): `id` (the frame's sha256, as Camtrap DP's mediaID),
  `file_name` (`<camera>/<path relative to the camera folder>`: one image root for every
  camera, so two cameras' IMG_0001.JPG stay apart), `width`/`height` (from the file's header
  when the file is still there, EXIF orientation applied; absent otherwise), `location` (the
  deploymentID), `datetime` (station-local "YYYY-MM-DD HH:MM:SS"), `seq_id` (the event's uid;
  a frame of no event is a sequence of its own), `seq_num_frames`, `frame_num` (0-based);
- `annotations`: one per detected bird: `category_id`, `bbox` [x, y, width, height] in absolute
  pixels (COCO's convention; only when the image size is known), `bbox_relative` (the same box
  normalised 0..1, MegaDetector's batch-output convention, always), `conf` (the detector's
  score) and `classification_confidence`; an empty frame (the detector found nothing) gets one
  annotation of category 0, and a frame classified whole (no detector) one without a box;
- `categories`: 0 = "empty", then one per label (`name` = the label, `scientific_name` and
  `common_name` from the taxa table when known).

Written streaming (images in one pass, annotations spooled to a temporary file and appended),
into a temporary file renamed into place.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlite_utils

import edge
from edge.config import EdgeConfig
from edge.ecology.deployments import resolve_deployments
from edge.ecology.media import Frame, Selection, camera_folders, deployment_window, frames, relative_path, utc_now
from edge.store.taxa import taxa

EMPTY = "empty"
_ORIENTATION = 0x0112


class CocoError(Exception):
    """The export cannot be written as asked (the CLI exits 2; nothing was written)."""


@dataclass
class CocoSummary:
    out: Path
    images: int = 0
    annotations: int = 0
    empty: int = 0
    sized: int = 0
    categories: list[str] = field(default_factory=list)
    outside: int = 0

    def lines(self) -> list[str]:
        lines = [f"wrote COCO Camera Traps {self.out}",
                 f"images: {self.images} ({self.sized} with width and height: absolute bbox; the others have "
                 "bbox_relative only)",
                 f"annotations: {self.annotations} ({self.empty} empty)",
                 f"categories: {', '.join(self.categories) or 'none'}"]
        if self.outside:
            lines.append(f"left out: {self.outside} frames outside their deployment's start and end")
        return lines


def image_size(frame: Frame) -> tuple[int, int] | None:
    """(width, height) of the oriented frame from the file's header, or None when it is gone or
    unreadable (retention may have deleted it). Boxes are normalised to the oriented frame."""
    from PIL import Image

    for candidate in (frame.stored_path, frame.path):
        if not candidate:
            continue
        try:
            with Image.open(candidate) as image:
                width, height = image.size
                if image.getexif().get(_ORIENTATION) in (5, 6, 7, 8):
                    width, height = height, width
                return width, height
        except (OSError, ValueError):
            continue
    return None


def _survey(conn, selection: Selection, cameras: list[str], windows) -> tuple[list[str], dict[str, int]]:
    """(every label the annotations will use, frames per event among the exported frames): one
    pass before the stream, since categories come first in the file and seq_num_frames with
    each image."""
    found: set[str] = set()
    sizes: dict[str, int] = {}
    for frame in frames(conn, selection, cameras):
        if not windows[frame.camera](frame.moment):
            continue
        if frame.event_uid is not None:
            sizes[frame.event_uid] = sizes.get(frame.event_uid, 0) + 1
        if frame.birds is None and frame.species:
            found.add(frame.species)
        for detection in frame.detections:
            if detection.label is not None:
                found.add(detection.label)
    found.discard(EMPTY)
    return sorted(found), sizes


def export_coco_ct(config: EdgeConfig, db: sqlite_utils.Database, out: Path, selection: Selection, *,
                   force: bool = False, now: datetime | None = None) -> CocoSummary:
    """Write the JSON file `out` (refused when it exists, unless `force`)."""
    if out.exists() and not force:
        raise CocoError(f"--out: {out} exists (nothing was written; --force replaces it)")
    if out.exists() and out.is_dir():
        raise CocoError(f"--out: {out} is a folder, not a file")
    now = now or utc_now()
    zone = config.station.zone
    deployments = resolve_deployments(
        config, db, cameras=list(selection.cameras) or None, since=selection.since, until=selection.until)
    by_camera = {d.camera: d for d in deployments}
    windows = {d.camera: deployment_window(d) for d in deployments}
    cameras = list(by_camera)
    names = taxa(db)
    summary = CocoSummary(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    spool = tempfile.TemporaryFile("w+", encoding="utf-8")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as sink, spool:
            if cameras:
                db.conn.execute("BEGIN")  # one snapshot: the label pass and the stream agree
            try:
                labels, sequences = _survey(db.conn, selection, cameras, windows) if cameras else ([], {})
                categories = [{"id": 0, "name": EMPTY}]
                ids = {EMPTY: 0}
                for number, label in enumerate(labels, start=1):
                    taxon = names.get(label)
                    entry: dict[str, Any] = {"id": number, "name": label}
                    if taxon is not None and taxon.scientific_name:
                        entry["scientific_name"] = taxon.scientific_name
                    if taxon is not None and taxon.common_name:
                        entry["common_name"] = taxon.common_name
                    categories.append(entry)
                    ids[label] = number
                summary.categories = [EMPTY, *labels]
                info = {"version": "1.0", "description": f"trailcam station {config.station.device_id}: frames, "
                        "detected birds and their species", "date_created": now.astimezone(zone).isoformat(
                            timespec="seconds"), "year": now.astimezone(zone).year,
                        "contributor": ", ".join(c.title for c in config.project.contributors) or None,
                        "trailcam_version": edge.__version__, "station": config.station.device_id,
                        "timezone": config.station.timezone,
                        "since": selection.since.isoformat() if selection.since else None,
                        "until": selection.until.isoformat() if selection.until else None,
                        "bbox": "absolute pixels [x, y, width, height] (COCO) where the image size is known; "
                                "bbox_relative: normalised [x, y, width, height] (MegaDetector batch format)"}
                sink.write('{"info": ' + json.dumps({k: v for k, v in info.items() if v is not None}))
                sink.write(',\n"categories": ' + json.dumps(categories, ensure_ascii=False))
                sink.write(',\n"images": [')
                frame_numbers: dict[str, int] = {}
                folders = camera_folders(config)
                first = True
                for frame in (frames(db.conn, selection, cameras) if cameras else ()):
                    if not windows[frame.camera](frame.moment):
                        summary.outside += 1
                        continue
                    image = _image(config, folders, frame, by_camera[frame.camera].deployment_id, sequences,
                                   frame_numbers)
                    size = image_size(frame)
                    if size is not None:
                        image["width"], image["height"] = size
                        summary.sized += 1
                    sink.write(("\n" if first else ",\n") + json.dumps(image, ensure_ascii=False))
                    first = False
                    summary.images += 1
                    for annotation in _annotations(frame, ids, size):
                        spool.write(json.dumps(annotation, ensure_ascii=False) + "\n")
                        summary.annotations += 1
                        summary.empty += annotation["category_id"] == 0
            finally:
                if cameras:
                    db.conn.execute("COMMIT")
            sink.write('],\n"annotations": [')
            spool.seek(0)
            for number, line in enumerate(spool):
                sink.write(("\n" if number == 0 else ",\n") + line.rstrip("\n"))
            sink.write("]}\n")
        os.chmod(temporary, 0o644)  # mkstemp's 0600 is for the work in progress, not for the file to share
        os.replace(temporary, out)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return summary


def _image(config: EdgeConfig, folders: dict[str, str], frame: Frame, location: str, sequences: dict[str, int],
           numbers: dict[str, int]) -> dict[str, Any]:
    zone = config.station.zone
    if frame.event_uid is not None:
        sequence, size = frame.event_uid, sequences.get(frame.event_uid, 1)
        number = numbers.get(sequence, 0)
        numbers[sequence] = number + 1
    else:
        sequence, size, number = f"frame:{frame.sha256}", 1, 0
    return {"id": frame.sha256,
            "file_name": f"{frame.camera}/{relative_path(folders, frame.camera, frame.path)}",
            "location": location,
            "datetime": frame.moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
            "seq_id": sequence, "seq_num_frames": size, "frame_num": number}


def _annotations(frame: Frame, ids: dict[str, int], size: tuple[int, int] | None) -> list[dict[str, Any]]:
    if frame.birds is None:  # classified whole: an image-level label
        label = frame.species or EMPTY
        annotation: dict[str, Any] = {"id": f"{frame.sha256}:0", "image_id": frame.sha256, "category_id": ids[label]}
        if frame.species and frame.confidence is not None:
            annotation["classification_confidence"] = round(float(frame.confidence), 6)
        return [annotation]
    found: list[dict[str, Any]] = []
    for detection in frame.detections:
        if detection.label is None:  # a reviewer said it is no bird, or the classifier (not_bird)
            continue
        label = detection.label
        x, y = max(detection.xmin, 0.0), max(detection.ymin, 0.0)
        width, height = min(detection.xmax, 1.0) - x, min(detection.ymax, 1.0) - y
        annotation = {"id": f"{frame.sha256}:{detection.rank}", "image_id": frame.sha256, "category_id": ids[label],
                      "bbox_relative": [x, y, width, height], "conf": round(float(detection.score), 6)}
        if size is not None:
            w, h = size
            annotation["bbox"] = [round(x * w, 2), round(y * h, 2), round(width * w, 2), round(height * h, 2)]
        if detection.confidence is not None:
            annotation["classification_confidence"] = round(float(detection.confidence), 6)
        if detection.review_state is not None:
            annotation["reviewed"] = detection.review_state
        found.append(annotation)
    if not found:  # the detector found nothing (or every bird was rejected): empty
        found.append({"id": f"{frame.sha256}:0", "image_id": frame.sha256, "category_id": 0})
    return found
