"""`edge export training-set`: the station's reviewed birds as a folder-per-species training set.

Why: the feedback loop (docs/training.md, "The feedback loop"). People review events and birds
(edge/store/reviews.py); those verdicts are the best training labels the station has. This
module turns them into crops the trainer reads as they are (`trainer data check`, `trainer
train --data DIR --init-from BUNDLE`), cut from the frame files the way the edge cut them:
the recorded detection's box, the same margin and square, JPEG draft decode and bilinear
resize (edge.detect.finder.crops_of_frame); a frame classified whole is decoded as the daemon
decodes it (edge.ingest.imaging.decode).

The label of a crop, first rule that applies:

1. the detection's own review: confirm → the machine's species, correct → the reviewed
   species, reject → a hard negative;
2. its event's review: reject → every detection (or the whole frame) is a hard negative;
   confirm / correct → the detections the machine gave the event's species get that species /
   the reviewed one (a bird of another species in the same visit is not what was reviewed);
3. without `reviewed_only`: the machine's species when its confidence reaches the threshold.

`unknown` is never a training label (a review correcting to `unknown` leaves the crop out).
Hard negatives go to `_negatives/`, which the trainer does not read as a class.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from edge.detect.finder import crops_of_frame
from edge.detect.model import Box
from edge.ingest.imaging import FrameError, decode
from edge.store.tables import has_table
from edge.store.times import format_utc

log = logging.getLogger(__name__)

NEGATIVES = "_negatives"
UNKNOWN = "unknown"
MANIFEST = "manifest.json"


class TrainingSetError(ValueError):
    """The export cannot start (the output folder holds something, a bad option)."""


@dataclass(frozen=True)
class Sample:
    """One crop to write: where it comes from and why it carries its label."""

    frame_id: int
    sha256: str
    path: str
    stored_path: str | None
    detection_id: int | None  # None: the frame classified whole
    box: tuple[float, float, float, float] | None  # (ymin, xmin, ymax, xmax), normalised to the oriented frame
    label: str | None  # None: a hard negative
    source: str  # "review" | "machine"
    review_id: int | None
    reviewer: str | None
    machine_species: str | None
    confidence: float | None

    @property
    def folder(self) -> str:
        return NEGATIVES if self.label is None else folder_name(self.label)


@dataclass
class ExportReport:
    out_dir: Path
    counts: dict[str, int] = field(default_factory=dict)
    crops: list[dict[str, Any]] = field(default_factory=list)
    missing: list[dict[str, Any]] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"training set: {self.out_dir} ({sum(self.counts.values())} crops)"]
        out += [f"  {name}: {count}" for name, count in sorted(self.counts.items())]
        if self.missing:
            out.append(f"  {len(self.missing)} frame(s) missing or changed (listed in {MANIFEST})")
        return out


def folder_name(label: str) -> str:
    """A label as a folder name: path separators replaced; the trainer's class name is this."""
    name = label.replace(os.sep, "-").replace("/", "-").replace("\0", "")
    return name if name and name not in (".", "..") else "-"


# -- choosing the labels ---------------------------------------------------------------------


def _latest_reviews(conn: sqlite3.Connection, detection: bool) -> dict[int, tuple[int, str]]:
    """target id → (review id, reviewer) of the latest review not undone that set its verdict."""
    column = "detection_id" if detection else "event_id"
    where = "detection_id IS NOT NULL" if detection else "detection_id IS NULL"
    rows = conn.execute(
        f"""SELECT {column}, id, reviewer FROM reviews
            WHERE {where} AND undone_at IS NULL AND action IN ('confirm', 'correct', 'reject')
            ORDER BY id""").fetchall()
    return {int(target): (int(rid), reviewer) for target, rid, reviewer in rows}


def _verdict(state: str | None, machine: str | None, reviewed: str | None) -> tuple[bool, str | None] | None:
    """(applies, label) of a review state: None when there is none; label None = a hard negative."""
    if state == "rejected":
        return True, None
    if state == "confirmed":
        return True, machine
    if state == "corrected":
        return True, reviewed
    return None


def select_samples(conn: sqlite3.Connection, *, reviewed_only: bool, since_utc: str | None,
                   threshold: Callable[[str], float], hide_people: bool = True) -> list[Sample]:
    """Every crop the rules above label, detections first, then frames classified whole; with
    `hide_people` ([privacy]) none from a frame in which the detector found a person."""
    det_reviews = _latest_reviews(conn, True)
    event_reviews = _latest_reviews(conn, False)
    extra = "AND f.captured_at >= ?" if since_utc else ""
    if hide_people and has_table(conn, "frame_objects"):
        extra += " AND NOT EXISTS (SELECT 1 FROM frame_objects AS o WHERE o.frame_id = f.id AND o.kind = 'person')"
    params = [since_utc] if since_utc else []
    samples: list[Sample] = []
    rows = conn.execute(
        f"""SELECT d.id, d.ymin, d.xmin, d.ymax, d.xmax, d.kind, d.species, d.confidence,
                   d.review_state, d.reviewed_species, d.event_id,
                   e.species, e.review_state, e.reviewed_species,
                   f.id, f.sha256, f.path, f.stored_path
            FROM detections d JOIN frames f ON f.id = d.frame_id LEFT JOIN events e ON e.id = d.event_id
            WHERE f.status = 'ok' {extra} ORDER BY f.id, d.rank""", params).fetchall()
    for (det_id, ymin, xmin, ymax, xmax, kind, species, confidence, d_state, d_reviewed, event_id,
         e_species, e_state, e_reviewed, frame_id, sha, path, stored) in rows:
        label_source = _label(d_state, species, d_reviewed, det_reviews.get(det_id),
                              e_state, e_species, e_reviewed, event_reviews.get(event_id) if event_id else None,
                              kind == "species", confidence, reviewed_only, threshold)
        if label_source is None:
            continue
        label, source, review = label_source
        samples.append(Sample(frame_id, sha, path, stored, det_id, (ymin, xmin, ymax, xmax), label, source,
                              review[0] if review else None, review[1] if review else None, species, confidence))
    whole = conn.execute(
        f"""SELECT f.id, f.sha256, f.path, f.stored_path, f.species, f.confidence, f.event_id,
                   e.species, e.review_state, e.reviewed_species
            FROM frames f LEFT JOIN events e ON e.id = f.event_id
            WHERE f.status = 'ok' AND f.birds IS NULL AND f.event_id IS NOT NULL {extra} ORDER BY f.id""",
        params).fetchall()
    for frame_id, sha, path, stored, species, confidence, event_id, e_species, e_state, e_reviewed in whole:
        label_source = _label(None, species, None, None, e_state, e_species, e_reviewed, event_reviews.get(event_id),
                              species not in (None, UNKNOWN), confidence, reviewed_only, threshold)
        if label_source is None:
            continue
        label, source, review = label_source
        samples.append(Sample(frame_id, sha, path, stored, None, None, label, source,
                              review[0] if review else None, review[1] if review else None, species, confidence))
    return samples


def _label(d_state, species, d_reviewed, d_review, e_state, e_species, e_reviewed, e_review, named: bool,
           confidence, reviewed_only: bool, threshold) -> tuple[str | None, str, tuple[int, str] | None] | None:
    """(label or None for a negative, source, (review id, reviewer)) or None: no usable label."""
    own = _verdict(d_state, species, d_reviewed)
    if own is not None:
        return _usable(own[1], "review", d_review)
    if e_state == "rejected":
        return None, "review", e_review
    if e_state in ("confirmed", "corrected") and species is not None and species == e_species:
        theirs = _verdict(e_state, e_species, e_reviewed)
        assert theirs is not None  # confirmed and corrected are verdicts
        return _usable(theirs[1], "review", e_review)
    if reviewed_only or not named or species in (None, UNKNOWN) or confidence is None:
        return None
    if confidence < threshold(species):
        return None
    return species, "machine", None


def _usable(label: str | None, source: str, review) -> tuple[str | None, str, Any] | None:
    """A review's label, unless it is `unknown` (or empty), which never trains anything."""
    if label is not None and (label == UNKNOWN or not label.strip()):
        return None
    return label, source, review


# -- writing the crops ------------------------------------------------------------------------


def _frame_bytes(sample: Sample) -> tuple[bytes | None, str | None]:
    """(the frame's bytes, None) from stored_path or path, or (None, why not)."""
    tried = []
    for candidate in (sample.stored_path, sample.path):
        if not candidate:
            continue
        try:
            data = Path(candidate).read_bytes()
        except OSError as error:
            tried.append(f"{candidate}: {error.strerror or error}")
            continue
        if hashlib.sha256(data).hexdigest() != sample.sha256:
            tried.append(f"{candidate}: a different file now (sha256 changed)")
            continue
        return data, None
    return None, "; ".join(tried) or "no path recorded"


def _check_out(out_dir: Path) -> None:
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise TrainingSetError(f"--out: {out_dir} exists and is not an empty folder; choose a new one")


def export_training_set(conn: sqlite3.Connection, out_dir: Path, crop_size: tuple[int, int], *,
                        margin: float = 0.15, reviewed_only: bool = False, since_utc: str | None = None,
                        threshold: Callable[[str], float] = lambda _species: 0.5, draft: bool = True,
                        source: Mapping[str, Any] | None = None, hide_people: bool = True) -> ExportReport:
    """Write OUT/<species>/*.png, OUT/_negatives/*.png and OUT/manifest.json; returns the report.

    Each frame is read once (its crops cut together); a frame whose file is gone or changed is
    listed under `missing`, not fatal. `source` is recorded in the manifest (database, options).
    """
    out_dir = Path(out_dir)
    _check_out(out_dir)
    samples = select_samples(conn, reviewed_only=reviewed_only, since_utc=since_utc, threshold=threshold,
                             hide_people=hide_people)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = ExportReport(out_dir)
    by_frame: dict[int, list[Sample]] = {}
    for sample in samples:
        by_frame.setdefault(sample.frame_id, []).append(sample)
    for frame_samples in by_frame.values():
        first = frame_samples[0]
        data, why = _frame_bytes(first)
        if data is None:
            report.missing.append({"frame_id": first.frame_id, "sha256": first.sha256, "path": first.path,
                                   "stored_path": first.stored_path, "reason": why, "crops": len(frame_samples)})
            continue
        try:
            crops = _cut(data, frame_samples, crop_size, margin, draft)
        except FrameError as error:
            report.missing.append({"frame_id": first.frame_id, "sha256": first.sha256, "path": first.path,
                                   "stored_path": first.stored_path, "reason": f"unreadable: {error}",
                                   "crops": len(frame_samples)})
            continue
        for sample, crop in zip(frame_samples, crops):
            report.crops.append(_write(out_dir, sample, crop))
    report.counts = dict(Counter(entry["folder"] for entry in report.crops))
    manifest = {
        "format": "trailcam-training-set", "format_version": 1,
        "created_at": format_utc(_now()), "crop_size": list(crop_size), "margin": margin,
        "reviewed_only": reviewed_only, "since": since_utc, **({"source": dict(source)} if source else {}),
        "counts": report.counts, "crops": report.crops, "missing": report.missing,
    }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return report


def _now():
    from datetime import datetime

    return datetime.now(UTC)


def _cut(data: bytes, samples: list[Sample], crop_size: tuple[int, int], margin: float, draft: bool) -> list[np.ndarray]:
    """The crops of one frame's samples, in their order: detections by box, a whole frame as the daemon decodes it."""
    boxes = [Box(*s.box, score=1.0, class_index=0, label="") for s in samples if s.box is not None]
    cut = iter(crops_of_frame(data, boxes, crop_size, margin, draft=draft) if boxes else [])
    whole = None
    crops = []
    for sample in samples:
        if sample.box is not None:
            crops.append(next(cut))
        else:
            whole = whole if whole is not None else decode(data, crop_size, draft=draft).rgb
            crops.append(whole)
    return crops


def _write(out_dir: Path, sample: Sample, crop: np.ndarray) -> dict[str, Any]:
    folder = out_dir / sample.folder
    folder.mkdir(exist_ok=True)
    name = f"{sample.sha256[:16]}_{'d' + str(sample.detection_id) if sample.detection_id else 'frame'}.png"
    Image.fromarray(crop).save(folder / name)
    entry = asdict(sample)
    entry.pop("stored_path")
    entry["box"] = list(sample.box) if sample.box else None
    return {"file": f"{sample.folder}/{name}", "folder": sample.folder, **entry}
