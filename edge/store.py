"""The edge database: frames, predictions, events, daily tallies and the MQTT outbox.

SQLite through sqlite-utils, in WAL mode so that operators' readers never block the one
writer (the daemon's processing thread) and the writer never blocks them. Every write for one
frame is ONE transaction: the frame row, its predictions, its event change, the daily tally
and the outbox messages appear together or not at all. Together with the content hash (a frame
recorded `ok` is never recorded again) this is what makes a crash at any point lose nothing
and count nothing twice: the file system is the queue, the database the ledger.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import sqlite_utils

from edge import outbox
from edge.capture_time import format_utc, parse_utc
from edge.decision import UNKNOWN, Decision
from edge.events import GROUP_BY_VALUES, SpeciesVotes, vote
from edge.model import Prediction

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
EVENT_UID_NAMESPACE = uuid.UUID("6f1c7d3e-2b8a-4c55-9e0f-7a1d2c3b4e5f")


class StoreError(Exception):
    """The database cannot be opened or is from a newer trailcam."""


def _schema_v1(db: sqlite_utils.Database) -> None:
    # Database.executescript stays inside the open transaction (sqlite3's would commit first).
    db.executescript(
        """
        CREATE TABLE IF NOT EXISTS frames (
            id INTEGER PRIMARY KEY,
            path TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            camera TEXT NOT NULL,
            size INTEGER,
            mtime REAL,
            captured_at TEXT,
            time_source TEXT,
            processed_at TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('ok', 'error')),
            error TEXT,
            model_id TEXT,
            inference_ms REAL,
            species TEXT,
            confidence REAL,
            event_id INTEGER REFERENCES events(id),
            stored_path TEXT
        );
        -- A frame recorded ok is never recorded again, whatever its path (idempotence).
        CREATE UNIQUE INDEX IF NOT EXISTS frames_sha256_ok ON frames (sha256) WHERE status = 'ok';
        CREATE INDEX IF NOT EXISTS frames_sha256 ON frames (sha256);
        CREATE INDEX IF NOT EXISTS frames_camera_captured ON frames (camera, captured_at);
        CREATE INDEX IF NOT EXISTS frames_status ON frames (status);
        CREATE INDEX IF NOT EXISTS frames_path ON frames (path);
        CREATE INDEX IF NOT EXISTS frames_event ON frames (event_id);

        CREATE TABLE IF NOT EXISTS predictions (
            frame_id INTEGER NOT NULL REFERENCES frames(id) ON DELETE CASCADE,
            rank INTEGER NOT NULL,
            label TEXT NOT NULL,
            score REAL NOT NULL,
            PRIMARY KEY (frame_id, rank)
        );

        CREATE TABLE IF NOT EXISTS events (
            id INTEGER PRIMARY KEY,
            uid TEXT NOT NULL UNIQUE,
            camera TEXT NOT NULL,
            species TEXT NOT NULL,
            confidence REAL,
            started_at TEXT NOT NULL,
            ended_at TEXT NOT NULL,
            frame_count INTEGER NOT NULL,
            model_id TEXT,
            state TEXT NOT NULL CHECK (state IN ('open', 'closed'))
        );
        CREATE INDEX IF NOT EXISTS events_camera_started ON events (camera, started_at);
        CREATE INDEX IF NOT EXISTS events_species_started ON events (species, started_at);
        CREATE INDEX IF NOT EXISTS events_state ON events (state);

        CREATE TABLE IF NOT EXISTS daily_tallies (
            day TEXT NOT NULL,
            camera TEXT NOT NULL,
            species TEXT NOT NULL,
            events INTEGER NOT NULL DEFAULT 0,
            frames INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (day, camera, species)
        );

        """
    )
    # The MQTT outbox and its drop counters belong to edge/outbox.py (same transaction).
    outbox.create_table(db)


# Index i migrates schema version i to i + 1. Append; never edit a released step.
MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_schema_v1]
assert len(MIGRATIONS) == SCHEMA_VERSION


def connect(path: Path, *, busy_timeout_s: float = 30.0, readonly: bool = False) -> sqlite3.Connection:
    """A connection with the settings every user of the database needs.

    busy_timeout makes a reader wait for the rare checkpoint lock instead of failing with
    "database is locked"; WAL is a property of the file, set once by the writer.
    """
    path = Path(path)
    if readonly and not path.exists():
        raise StoreError(f"{path}: database not found (has the daemon run yet? check [storage] database / --db)")
    try:
        conn = sqlite3.connect(str(path), timeout=busy_timeout_s, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
        if readonly:
            conn.execute("PRAGMA query_only = ON")
    except sqlite3.Error as error:
        raise StoreError(f"{path}: cannot open the database: {error}") from None
    return conn


def open_readonly(path: Path, busy_timeout_s: float = 30.0) -> sqlite_utils.Database:
    """A reader's own connection (reports, status, tests): never writes, waits instead of failing."""
    conn = connect(path, busy_timeout_s=busy_timeout_s, readonly=True)
    db = sqlite_utils.Database(conn)
    version = _schema_version(db)
    if version is None:
        raise StoreError(f"{path}: not a trailcam database (no schema_version)")
    if version > SCHEMA_VERSION:
        raise StoreError(f"{path}: schema version {version} is newer than this trailcam ({SCHEMA_VERSION}); upgrade trailcam")
    return db


def known_states(conn: sqlite3.Connection, folder: str | Path) -> Iterator[tuple[str, int | None, float | None]]:
    """(path, size, mtime) of every frame row whose path lies under `folder`, streamed from one
    range scan of the path index: what a folder rescan compares the files it finds against
    (the same test as Store.unchanged_known, without a query per file)."""
    prefix = os.path.join(str(folder), "")
    upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)  # "/cam/" .. "/cam0": everything below /cam/
    yield from conn.execute("SELECT path, size, mtime FROM frames WHERE path >= ? AND path < ?", (prefix, upper))


def check_database(path: Path) -> str:
    """What `edge check` says about the database, without writing; raises StoreError."""
    path = Path(path)
    if not path.exists():
        parent = path.parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not os.access(parent, os.W_OK):
            raise StoreError(f"cannot create {path}: {parent} is not writable")
        return f"{path} will be created"
    try:
        db = open_readonly(path)
    except sqlite3.DatabaseError as error:
        raise StoreError(f"{path}: not a usable SQLite database: {error}") from None
    try:
        version = _schema_version(db)
        frames = db.execute("SELECT count(*) FROM frames").fetchone()[0]
    except sqlite3.DatabaseError as error:
        raise StoreError(f"{path}: damaged database: {error}") from None
    finally:
        db.close()
    migrate = f", will migrate to {SCHEMA_VERSION}" if version is not None and version < SCHEMA_VERSION else ""
    return f"{path}, schema {version}{migrate}, {frames} frame(s)"


def _schema_version(db: sqlite_utils.Database) -> int | None:
    if "meta" not in db.table_names():
        return None
    row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else None


@dataclass(frozen=True)
class FrameRecord:
    """Everything the pipeline learnt about one frame (ok or error)."""

    path: str
    sha256: str
    camera: str
    size: int | None
    mtime: float | None
    status: str = "ok"
    error: str | None = None
    captured_at: datetime | None = None
    time_source: str | None = None
    model_id: str | None = None
    inference_ms: float | None = None
    predictions: Sequence[Prediction] = ()
    decision: Decision | None = None


@dataclass
class EventChange:
    change: str  # new | update | end
    event: dict[str, Any]


@dataclass
class RecordResult:
    frame_id: int
    event_changes: list[EventChange] = field(default_factory=list)
    days: set[str] = field(default_factory=set)


class OutboxSink(Protocol):
    """Turns committed-to-be changes into outbox rows, inside the frame's transaction."""

    def enqueue(self, db: sqlite_utils.Database, changes: list[EventChange], tallies_today: dict[str, dict[str, int]] | None, today: str, species_touched: set[str]) -> None: ...


class Store:
    """The writer. Exactly one per database (the daemon's processing thread)."""

    def __init__(
        self,
        path: Path,
        *,
        zone: ZoneInfo | str = "UTC",
        independence_s: float = 60.0,
        group_by: str = "camera",
        busy_timeout_s: float = 30.0,
        station_id: str | None = None,
        outbox: OutboxSink | None = None,
        durable_commits: bool = True,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ):
        self.path = Path(path)
        self.zone = ZoneInfo(zone) if isinstance(zone, str) else zone
        self.independence = timedelta(seconds=independence_s)
        if group_by not in GROUP_BY_VALUES:
            raise ValueError(f"group_by must be one of {GROUP_BY_VALUES}, got {group_by!r}")
        self.group_by = group_by
        self.outbox = outbox
        self.clock = clock
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreError(f"{self.path.parent}: cannot create the database folder: {error.strerror or error}") from None
        self.conn = connect(self.path, busy_timeout_s=busy_timeout_s)
        self.db = sqlite_utils.Database(self.conn)
        try:
            self.db.enable_wal()
            # FULL fsyncs the WAL at every commit: a committed frame survives a power cut, which
            # matters when post-processing moves or deletes the file right after the commit.
            # NORMAL (still crash-safe, never corrupt) may lose the last commits on a power cut;
            # when frames stay in the camera folder they are simply processed again at start,
            # so the daemon uses NORMAL then and saves an fsync per frame (milliseconds on an SD card).
            self.db.execute(f"PRAGMA synchronous = {'FULL' if durable_commits else 'NORMAL'}")
            self._migrate(station_id)
        except StoreError:
            self.conn.close()
            raise
        except sqlite3.DatabaseError as error:
            self.conn.close()
            raise StoreError(f"{self.path}: cannot use the database: {error}") from None

    # -- schema -----------------------------------------------------------------------------

    def _migrate(self, station_id: str | None) -> None:
        with self.db.atomic():
            self.db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            version = _schema_version(self.db) or 0
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path}: schema version {version} is newer than this trailcam ({SCHEMA_VERSION}); upgrade trailcam"
                )
            for step in range(version, SCHEMA_VERSION):
                log.info("database %s: migrating schema %d → %d", self.path, step, step + 1)
                MIGRATIONS[step](self.db)
            self.db["meta"].upsert({"key": "schema_version", "value": str(SCHEMA_VERSION)}, pk="key")
            if station_id:
                self.db["meta"].upsert({"key": "station_id", "value": station_id}, pk="key")
            # Reports read the station's zone from here, so `edge counts --db F` needs no config.
            self.db["meta"].upsert({"key": "timezone", "value": self.zone.key}, pk="key")

    @property
    def schema_version(self) -> int:
        return _schema_version(self.db) or 0

    def close(self) -> None:
        self.conn.close()

    # -- lookups ----------------------------------------------------------------------------

    def lookup(self, sha256: str, path: str) -> tuple[dict[str, Any] | None, bool]:
        """(the `ok` row of this content or None, whether an error row exists for it at this path),
        in one indexed query: the per-frame "seen before?" check."""
        ok, error_here = None, False
        for frame_id, recorded_path, status in self.db.execute(
            "SELECT id, path, status FROM frames WHERE sha256 = ?", (sha256,)
        ):
            if status == "ok":
                ok = {"id": frame_id, "path": recorded_path}
            elif recorded_path == path:
                error_here = True
        return ok, error_here

    def recorded_error(self, sha256: str, path: str) -> bool:
        row = self.db.execute(
            "SELECT 1 FROM frames WHERE sha256 = ? AND path = ? AND status = 'error'", (sha256, path)
        ).fetchone()
        return row is not None

    def unchanged_known(self, path: str, size: int, mtime: float) -> bool:
        """A file already recorded at this path with this size and mtime: skip without hashing."""
        row = self.db.execute(
            "SELECT 1 FROM frames WHERE path = ? AND size = ? AND mtime = ? LIMIT 1", (path, size, mtime)
        ).fetchone()
        return row is not None

    def update_path(self, frame_id: int, path: str) -> None:
        """A recorded frame renamed (uploader temp name → final name): follow it."""
        with self.db.atomic():
            self.db.execute("UPDATE frames SET path = ? WHERE id = ?", (path, frame_id))

    # -- the one write per frame ------------------------------------------------------------

    def local_day(self, moment: datetime) -> str:
        return moment.astimezone(self.zone).date().isoformat()

    def record(self, frame: FrameRecord) -> RecordResult:
        """Write one frame and all its consequences in one transaction."""
        now = self.clock()
        with self.db.atomic():
            result = RecordResult(0)
            decision = frame.decision
            touched: set[str] = set()
            event_id = None
            if frame.status == "ok" and decision is not None and decision.species is not None and frame.captured_at:
                event_id = self._count_frame(frame, result)
                touched.add(decision.species)
                for change in result.event_changes:
                    touched.add(change.event["species"])
                    touched.update(change.event.pop("_previous_species", ()) or ())
            cursor = self.db.execute(
                """INSERT INTO frames (path, sha256, camera, size, mtime, captured_at, time_source,
                       processed_at, status, error, model_id, inference_ms, species, confidence, event_id)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    frame.path,
                    frame.sha256,
                    frame.camera,
                    frame.size,
                    frame.mtime,
                    format_utc(frame.captured_at) if frame.captured_at else None,
                    frame.time_source,
                    format_utc(now),
                    frame.status,
                    frame.error,
                    frame.model_id,
                    frame.inference_ms,
                    decision.species if decision else None,
                    decision.confidence if decision else None,
                    event_id,
                ),
            )
            result.frame_id = int(cursor.lastrowid)
            if frame.predictions:
                self.conn.executemany(
                    "INSERT INTO predictions (frame_id, rank, label, score) VALUES (?, ?, ?, ?)",
                    [(result.frame_id, rank, p.label, p.score) for rank, p in enumerate(frame.predictions, start=1)],
                )
            self._enqueue(result, touched, now)
        return result

    def _count_frame(self, frame: FrameRecord, result: RecordResult) -> int:
        """Tally the frame and put it into an event (new or joined); returns the event id."""
        assert frame.decision is not None and frame.captured_at is not None
        species = frame.decision.species
        confidence = frame.decision.confidence
        captured = frame.captured_at.astimezone(timezone.utc)
        captured_text = format_utc(captured)
        day = self.local_day(captured)
        self._bump_tally(day, frame.camera, species, frames=1)
        result.days.add(day)

        event = self._find_event(frame.camera, species, captured)
        if event is None:
            # A new visit: first close this camera's open events that this frame proves over.
            for stale in self._rows(
                "SELECT * FROM events WHERE camera = ? AND state = 'open' AND ended_at < ?",
                (frame.camera, format_utc(captured - self.independence)),
            ):
                self.db.execute("UPDATE events SET state = 'closed' WHERE id = ?", (stale["id"],))
                stale["state"] = "closed"
                result.event_changes.append(EventChange("end", stale))
            uid = str(uuid.uuid5(EVENT_UID_NAMESPACE, f"{frame.camera}/{frame.sha256}"))
            event_id = int(
                self.db.execute(
                    """INSERT INTO events (uid, camera, species, confidence, started_at, ended_at,
                           frame_count, model_id, state) VALUES (?, ?, ?, ?, ?, ?, 1, ?, 'open')""",
                    (uid, frame.camera, species, confidence, captured_text, captured_text, frame.model_id),
                ).lastrowid
            )
            self._bump_tally(day, frame.camera, species, events=1)
            result.event_changes.append(EventChange("new", self._event(event_id)))
            return event_id

        winner = self._vote(event, species, confidence, captured_text)
        new_species = winner.species
        new_confidence = winner.best_confidence
        started = min(parse_utc(event["started_at"]), captured)
        ended = max(parse_utc(event["ended_at"]), captured)
        self.db.execute(
            """UPDATE events SET species = ?, confidence = ?, started_at = ?, ended_at = ?,
                   frame_count = frame_count + 1 WHERE id = ?""",
            (new_species, new_confidence, format_utc(started), format_utc(ended), event["id"]),
        )
        old_day = self.local_day(parse_utc(event["started_at"]))
        new_day = self.local_day(started)
        if (old_day, event["species"]) != (new_day, new_species):
            self._bump_tally(old_day, frame.camera, event["species"], events=-1)
            self._bump_tally(new_day, frame.camera, new_species, events=1)
            result.days.update({old_day, new_day})
        updated = self._event(event["id"])
        if event["species"] != new_species:
            updated["_previous_species"] = [event["species"]]
        result.event_changes.append(EventChange("update", updated))
        return int(event["id"])

    def _find_event(self, camera: str, species: str, captured: datetime) -> dict[str, Any] | None:
        """The event a counted frame joins (see edge/events.py), or None for a new visit."""
        window = (camera, format_utc(captured + self.independence), format_utc(captured - self.independence))
        near = "SELECT * FROM events WHERE camera = ? AND started_at <= ? AND ended_at >= ?"
        latest = " ORDER BY ended_at DESC, id DESC LIMIT 1"
        if self.group_by == "camera" or species == UNKNOWN:
            rows = self._rows(near + latest, window)
        else:
            rows = self._rows(near + " AND species = ?" + latest, (*window, species)) or self._rows(
                near + " AND species = ?" + latest, (*window, UNKNOWN)
            )
        return rows[0] if rows else None

    def _vote(self, event: dict[str, Any], species: str, confidence: float | None, captured_text: str) -> SpeciesVotes:
        """The event's species and confidence after this frame joins it (edge.events.vote), from
        the votes of its recorded frames plus the frame being recorded."""
        votes = [
            SpeciesVotes(label, int(frames), float(total or 0.0), best, first)
            for label, frames, total, best, first in self.db.execute(
                """SELECT species, COUNT(*), SUM(confidence), MAX(confidence), MIN(captured_at)
                   FROM frames WHERE event_id = ? GROUP BY species""",
                (event["id"],),
            )
        ]
        # Rows pruned by retention (only old frames) keep voting for what the event was.
        missing = int(event["frame_count"]) - sum(v.frames for v in votes)
        if missing > 0:
            kept = event["confidence"]
            votes.append(SpeciesVotes(event["species"], missing, missing * float(kept or 0.0), kept, event["started_at"]))
        votes.append(SpeciesVotes(species, 1, float(confidence or 0.0), confidence, captured_text))
        return vote(votes)

    def _bump_tally(self, day: str, camera: str, species: str, events: int = 0, frames: int = 0) -> None:
        self.db.execute(
            """INSERT INTO daily_tallies (day, camera, species, events, frames) VALUES (?, ?, ?, ?, ?)
               ON CONFLICT (day, camera, species) DO UPDATE SET
                   events = events + excluded.events, frames = frames + excluded.frames""",
            (day, camera, species, events, frames),
        )

    def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        cursor = self.db.execute(sql, tuple(params))
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]

    def _event(self, event_id: int) -> dict[str, Any]:
        return self._rows("SELECT * FROM events WHERE id = ?", (event_id,))[0]

    def tallies_for_day(self, day: str) -> dict[str, dict[str, int]]:
        """species → {events, frames} summed over cameras: the `counts` snapshot of one day."""
        return {
            species: {"events": int(events), "frames": int(frames)}
            for species, events, frames in self.db.execute(
                """SELECT species, SUM(events), SUM(frames) FROM daily_tallies WHERE day = ?
                   GROUP BY species HAVING SUM(events) > 0 OR SUM(frames) > 0 ORDER BY species""",
                (day,),
            )
        }

    def _enqueue(self, result: RecordResult, touched: set[str], now: datetime) -> None:
        if self.outbox is None or (not result.event_changes and not result.days):
            return
        today = self.local_day(now)
        tallies = self.tallies_for_day(today) if today in result.days else None
        self.outbox.enqueue(self.db, result.event_changes, tallies, today, touched)

    def close_stale_events(self, now: datetime | None = None) -> list[EventChange]:
        """Close open events whose last frame is older than the independence interval.

        Called when the queue is idle, so that an `end` is published even when no later frame
        of that camera arrives. Camera clocks running ahead keep their events open until then.
        """
        now = now or self.clock()
        changes: list[EventChange] = []
        with self.db.atomic():
            for event in self._rows(
                "SELECT * FROM events WHERE state = 'open' AND ended_at < ?", (format_utc(now - self.independence),)
            ):
                self.db.execute("UPDATE events SET state = 'closed' WHERE id = ?", (event["id"],))
                event["state"] = "closed"
                changes.append(EventChange("end", event))
            if changes and self.outbox is not None:
                self.outbox.enqueue(self.db, changes, None, self.local_day(now), set())
        return changes
