"""What both exports (Camtrap DP, COCO Camera Traps) read the same way: the selected period and
cameras, the frames and their detections in one streaming pass, and a frame's published path.

One place so that the two exports can never disagree about which frames, events or boxes a
period holds, and so that neither loads a year of rows into memory: every reader here is a
cursor walked once.
"""

from __future__ import annotations

import functools
import mimetypes
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePosixPath
from zoneinfo import ZoneInfo

from edge.classify.decision import NOT_COUNTED_FLAGS
from edge.config import EdgeConfig
from edge.detect.repeats import REPEAT
from edge.ecology.deployments import Deployment
from edge.store.tables import has_table
from edge.store.times import format_utc, parse_utc


@dataclass(frozen=True)
class Selection:
    """What an export covers: [since, until) (aware UTC, None = open) and the cameras (empty = all)."""

    since: datetime | None = None
    until: datetime | None = None
    cameras: tuple[str, ...] = ()


@dataclass(frozen=True)
class Detection:
    """One row of `detections` with what its review made of it."""

    id: int
    rank: int
    ymin: float
    xmin: float
    ymax: float
    xmax: float
    score: float
    kind: str
    species: str | None
    confidence: float | None
    review_state: str | None
    reviewed_species: str | None
    event_uid: str | None
    flag: str | None = None  # detections.flag: `not_bird` for the classifier's veto (schema 6)

    @property
    def not_bird(self) -> bool:
        """A box recorded and never counted as a bird (edge.classify.decision.NOT_COUNTED_FLAGS):
        the classifier judged it no bird (an animal, but no bird taxon), or neither model was sure
        of it (unconfirmed); unless a person named it since."""
        return self.flag in NOT_COUNTED_FLAGS and not self.reviewed_species and self.review_state != "rejected"

    @property
    def repeat(self) -> bool:
        """A box at a place repeat-detection elimination suppressed (edge.detect.repeats.REPEAT: a
        rock, a stump); no animal, never counted."""
        return self.flag == REPEAT and not self.reviewed_species and self.review_state != "rejected"

    @property
    def label(self) -> str | None:
        """What the bird counts as: a rejected bird is none, a corrected one its review's species,
        else the machine's (`unknown` for a crop the classifier could not name or denied; None
        for one it judged not a bird, see `not_bird`, or a repeat, see `repeat`)."""
        if self.review_state == "rejected" or self.not_bird or self.repeat:
            return None
        if self.reviewed_species:
            return self.reviewed_species
        return self.species if self.kind != "none" and self.species else "unknown"


@dataclass
class Frame:
    """One recorded frame (status ok) and its detections (empty for birds = 0 or whole-frame)."""

    id: int
    sha256: str
    camera: str
    captured_at: str
    path: str
    stored_path: str | None
    birds: int | None  # None: classified whole (no detector); 0: the detector found nothing
    species: str | None
    confidence: float | None
    model_id: str | None
    event_uid: str | None
    event_id: int | None
    time_source: str | None = None  # where captured_at came from (frames.time_source)
    time_flags: str | None = None   # what is doubtful about it (frames.time_flags)
    objects: str | None = None      # kinds of its frame_objects rows, comma-separated ("person,person,vehicle")
    # A video clip's sampled frame (edge/store/clips.py): its clip, the clip's content hash and start.
    clip_id: int | None = None
    clip_sha256: str | None = None
    clip_captured_at: str | None = None
    detections: list[Detection] = field(default_factory=list)

    def object_counts(self) -> dict[str, int]:
        """People and vehicles the detector found in the frame: kind → boxes."""
        counts: dict[str, int] = {}
        for kind in (self.objects or "").split(","):
            if kind:
                counts[kind] = counts.get(kind, 0) + 1
        return counts

    @property
    def moment(self) -> datetime:
        return parse_utc(self.captured_at)


def deployment_window(deployment: Deployment):
    """A predicate over aware instants: inside the deployment. A configured end or the period's
    end is exclusive (it is the next day's start, or --until); an end taken from the last frame
    includes that frame."""
    inclusive = deployment.end_source == "last frame"

    def inside(moment: datetime) -> bool:
        if moment < deployment.start:
            return False
        return moment <= deployment.end if inclusive else moment < deployment.end

    return inside


def _where(selection: Selection, time_column: str, cameras: list[str], camera_column: str = "camera") -> tuple[str, list]:
    clauses, params = [], []
    if selection.since is not None:
        clauses.append(f"{time_column} >= ?")
        params.append(format_utc(selection.since))
    if selection.until is not None:
        clauses.append(f"{time_column} < ?")
        params.append(format_utc(selection.until))
    clauses.append(f"{camera_column} IN ({', '.join('?' * len(cameras))})")
    params.extend(cameras)
    return " AND ".join(clauses), params


def frames(conn: sqlite3.Connection, selection: Selection, cameras: list[str]) -> Iterator[Frame]:
    """The ok frames of `cameras` captured in the period, oldest first per camera, each with its
    detections (one LEFT JOIN walked once: rows come grouped by frame)."""
    where, params = _where(selection, "f.captured_at", cameras, "f.camera")
    # frames.time_flags is schema 6's; an older database read before its migration has none.
    flags = "f.time_flags" if any(r[1] == "time_flags" for r in conn.execute("PRAGMA table_info(frames)")) else "NULL"
    not_bird = "d.flag" if any(r[1] == "flag" for r in conn.execute("PRAGMA table_info(detections)")) else "NULL"
    objects = ("(SELECT GROUP_CONCAT(o.kind) FROM frame_objects AS o WHERE o.frame_id = f.id)"
               if has_table(conn, "frame_objects") else "NULL")
    clips = has_table(conn, "clips")
    clip = "f.clip_id, c.sha256, c.captured_at" if clips else "NULL, NULL, NULL"
    cursor = conn.execute(
        f"""SELECT f.id, f.sha256, f.camera, f.captured_at, f.path, f.stored_path, f.birds, f.species, f.confidence,
                   f.model_id, fe.uid, f.event_id, f.time_source, {flags}, {objects}, {clip},
                   d.id, d.rank, d.ymin, d.xmin, d.ymax, d.xmax, d.score, d.kind, d.species, d.confidence,
                   d.review_state, d.reviewed_species, de.uid, {not_bird}
              FROM frames AS f
              LEFT JOIN events AS fe ON fe.id = f.event_id
              {"LEFT JOIN clips AS c ON c.id = f.clip_id" if clips else ""}
              LEFT JOIN detections AS d ON d.frame_id = f.id
              LEFT JOIN events AS de ON de.id = d.event_id
             WHERE f.status = 'ok' AND f.captured_at IS NOT NULL AND {where}
             ORDER BY f.camera, f.captured_at, f.id, d.rank""",
        params,
    )
    current: Frame | None = None
    for row in cursor:
        if current is None or current.id != row[0]:
            if current is not None:
                yield current
            current = Frame(*row[:18])
        if row[18] is not None:
            current.detections.append(Detection(*row[18:]))
    if current is not None:
        yield current


def per_species(conn: sqlite3.Connection) -> bool:
    """Whether the database keeps what each visit counts per species (`event_species`, schema 6).
    An older database, read before the daemon's first start after an upgrade migrated it, does
    not: its visits count as their headline species, as that release counted them."""
    return any(conn.execute("PRAGMA table_info(event_species)"))


def events(conn: sqlite3.Connection, selection: Selection, cameras: list[str]) -> Iterator[dict]:
    """The events of `cameras` that started in the period (what `edge counts` counts), oldest first.

    Each carries `counts`: what the visit counts per species after its reviews (edge/store/events.py),
    most individuals first, each {species, individuals, frames, confidence (the machine's best for
    that name, None when only a review put it there)}; [] for a visit that counts nothing (rejected);
    None on a database older than schema 6. One LEFT JOIN walked once: rows come grouped by event."""
    where, params = _where(selection, "e.started_at", cameras, "e.camera")
    columns = ("id", "uid", "camera", "species", "confidence", "started_at", "ended_at", "frame_count", "model_id",
               "individuals", "review_state", "reviewed_species", "reviewed_individuals", "reviewed_at")
    selected = ", ".join(f"e.{name}" for name in columns)
    if not per_species(conn):
        for row in conn.execute(f"SELECT {selected} FROM events AS e WHERE {where} ORDER BY e.camera, e.started_at, "
                                "e.id", params):
            yield {**dict(zip(columns, row)), "counts": None}
        return
    cursor = conn.execute(
        f"""SELECT {selected}, s.species, s.individuals, s.frames, v.best_confidence
              FROM events AS e
              LEFT JOIN event_species AS s ON s.event_id = e.id
              LEFT JOIN event_votes AS v ON v.event_id = e.id AND v.species = s.species
             WHERE {where}
             ORDER BY e.camera, e.started_at, e.id, s.individuals DESC, s.frames DESC, s.species""",
        params,
    )
    width = len(columns)
    current: dict | None = None
    for row in cursor:
        if current is None or current["id"] != row[0]:
            if current is not None:
                yield current
            current = {**dict(zip(columns, row[:width])), "counts": []}
        species, individuals, frames, confidence = row[width:]
        if species is not None:
            current["counts"].append({"species": species, "individuals": int(individuals), "frames": int(frames),
                                      "confidence": confidence})
    if current is not None:
        yield current


def latest_reviews(conn: sqlite3.Connection) -> tuple[dict[int, tuple[str, str]], dict[int, tuple[str, str]]]:
    """(event id → (reviewer, created_at), detection id → (reviewer, created_at)) of the latest
    review not undone: who the exports name as having classified it. Reviews are few (people
    make them), so both maps fit in memory."""
    by_event: dict[int, tuple[str, str]] = {}
    by_detection: dict[int, tuple[str, str]] = {}
    for event_id, detection_id, reviewer, created in conn.execute(
            "SELECT event_id, detection_id, reviewer, created_at FROM reviews WHERE undone_at IS NULL ORDER BY id"):
        if detection_id is None:
            by_event[event_id] = (reviewer, created)
        else:
            by_detection[detection_id] = (reviewer, created)
    return by_event, by_detection


def reviewed_birds(conn: sqlite3.Connection, by_detection: dict[int, tuple[str, str]]
                   ) -> dict[tuple[int, str | None], tuple[str, str]]:
    """(event id, label) → (reviewer, created_at) of the latest bird review in that visit that
    made a bird that label (confirmed or corrected; None: rejected), from `by_detection`
    (latest_reviews' second map): a species of a mixed visit that a person named is said to be
    classified by that person, and so is a visit that counts nothing because a person rejected
    its birds."""
    found: dict[tuple[int, str | None], tuple[str, str]] = {}
    for detection_id, event_id, species, kind, state, reviewed in conn.execute(
            """SELECT id, event_id, species, kind, review_state, reviewed_species FROM detections
                WHERE review_state IS NOT NULL AND event_id IS NOT NULL ORDER BY id"""):
        review = by_detection.get(detection_id)
        if review is None:
            continue
        label = None if state == "rejected" else reviewed or (species if kind != "none" and species else "unknown")
        if (event_id, label) not in found or review[1] > found[(event_id, label)][1]:
            found[(event_id, label)] = review
    return found


def camera_folders(config: EdgeConfig) -> dict[str, str]:
    """camera → its folder as text, for relative_path (built once per export, not per frame)."""
    return {c.name: str(c.path) for c in config.cameras}


def relative_path(folders: dict[str, str], camera: str, path: str) -> str:
    """The frame's path relative to its camera folder (POSIX), never an absolute local path: the
    file name alone when the camera is not configured or the frame lies outside its folder."""
    folder = folders.get(camera)
    if folder is not None:
        prefix = folder.rstrip("/") + "/"
        if path.startswith(prefix):
            relative = path[len(prefix):]
            parts = relative.split("/")
            if relative and ".." not in parts and "" not in parts:
                return relative
    return PurePosixPath(path).name


@functools.lru_cache(maxsize=64)
def _media_type(suffix: str) -> str:
    guessed, _ = mimetypes.guess_type("frame" + suffix)
    return guessed if guessed and guessed.split("/")[0] in ("image", "video", "audio") else "image/jpeg"


def media_type(path: str) -> str:
    """The file's media type from its name (image/jpeg when it says nothing)."""
    return _media_type(PurePosixPath(path).suffix.lower())


def local_text(moment: datetime | str, zone: ZoneInfo) -> str:
    """An instant as Camtrap DP writes it: station-local with its offset, whole seconds
    (`2026-05-01T10:00:00+02:00`, the schema's %Y-%m-%dT%H:%M:%S%z)."""
    if isinstance(moment, str):
        moment = parse_utc(moment)
    return moment.astimezone(zone).replace(microsecond=0).isoformat(timespec="seconds")


def utc_now() -> datetime:
    return datetime.now(UTC)
