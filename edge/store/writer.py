"""The edge database: frames, predictions, events, daily tallies and the MQTT outbox.

SQLite through sqlite-utils, in WAL mode so that operators' readers never block the one
writer (the daemon's processing thread) and the writer never blocks them. Every write for one
frame is ONE transaction: the frame row, its predictions, its event change, the daily tally
and the outbox messages appear together or not at all. Together with the content hash (a frame
recorded `ok` is never recorded again) this is what makes a crash at any point lose nothing
and count nothing twice: the file system is the queue, the database the ledger.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol
from zoneinfo import ZoneInfo

import sqlite_utils

from edge.classify.decision import OUT_OF_RANGE, UNKNOWN, Decision
from edge.classify.model import Prediction
from edge.detect.repeats import RepeatRules
from edge.store import clips, clock_checks, repeats, taxa
from edge.store.clock_checks import ClockRules
from edge.store.counts import META_MIN_FRAMES, bump_tally, recount, stored_counts
from edge.store.db import StoreError, connect, immediate, inserted_id, schema_version
from edge.store.events import DEFAULT_SPECIES_MIN_FRAMES, GROUP_BY_VALUES, SpeciesVotes, beyond_cap, counted, vote
from edge.store.schema import MIGRATIONS, SCHEMA_VERSION
from edge.store.times import format_utc, local_day, parse_utc

log = logging.getLogger(__name__)

EVENT_UID_NAMESPACE = uuid.UUID("6f1c7d3e-2b8a-4c55-9e0f-7a1d2c3b4e5f")


@dataclass(frozen=True)
class BirdRecord:
    """One bird the detector found in a frame, and what the classifier made of its crop."""

    box: tuple[float, float, float, float]  # ymin, xmin, ymax, xmax normalised to the oriented frame
    score: float                            # the detector's
    detector_label: str | None
    predictions: Sequence[Prediction]
    decision: Decision
    # The crop's look (edge.detect.repeats.look_of), for repeat-detection elimination; None: untracked.
    look: bytes | None = None


@dataclass(frozen=True)
class ObjectRecord:
    """A person or vehicle the detector found in a frame: recorded, never classified or counted."""

    kind: str                               # "person" | "vehicle"
    box: tuple[float, float, float, float]  # ymin, xmin, ymax, xmax normalised to the oriented frame
    score: float                            # the detector's
    detector_label: str | None


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
    # An error that may pass (permissions, I/O, a file vanishing mid-read): counted as an
    # attempt and retried while attempts are left; permanent errors (corrupt, not an image,
    # too large) are recorded once and never retried.
    transient: bool = False
    # Detect, then classify: the birds found (best detector score first; [] = an empty frame,
    # not classified). None: the frame was classified whole (no detector), `decision` says it all.
    birds: Sequence[BirdRecord] | None = None
    detector_id: str | None = None
    # What is doubtful about `captured_at` (issue 20): e.g. "ambiguous" (a repeated local hour,
    # resolved), "nonexistent" (a skipped local hour), "malformed-offset", "out-of-order",
    # "before-deployment", "future". Stored comma-separated in frames.time_flags; () = none.
    time_flags: tuple[str, ...] = ()
    # People and vehicles in the frame (a MegaDetector's other classes): frame_objects rows.
    objects: Sequence[ObjectRecord] = ()
    # A video clip's sampled frame (edge/store/clips.py): its clip row and time from the clip's start.
    clip_id: int | None = None
    clip_offset_s: float | None = None
    # An infrared night frame (edge/detect/night.py), stored in frames.night (1/0); None: not
    # known (an error row).
    night: bool | None = None

    def groups(self) -> list[BirdGroup]:
        """What the frame counts, one group per species (`unknown` included): the whole-frame
        route's one bird, or the detected birds grouped by their decision; most birds first,
        then the best confidence. Birds whose crop is denied count as nothing."""
        if self.birds is None:
            decision = self.decision
            if decision is None or decision.species is None:
                return []
            return [BirdGroup(decision.species, decision.confidence, (), _rank(decision))]
        by_species: dict[str, list[int]] = {}
        for rank, bird in enumerate(self.birds, start=1):
            if bird.decision.species is not None:
                by_species.setdefault(bird.decision.species, []).append(rank)
        groups = []
        for species, ranks in by_species.items():
            confidences = [c for c in (self.birds[r - 1].decision.confidence for r in ranks) if c is not None]
            groups.append(BirdGroup(species, max(confidences) if confidences else None, tuple(ranks),
                                    _rank(self.birds[ranks[0] - 1].decision)))
        return sorted(groups, key=lambda g: (-g.individuals, -(g.confidence or 0.0), g.species))


def _rank(decision: Decision) -> str:
    """A counted name's rank for the visit rules (edge/store/events.py): unknown is its own."""
    return UNKNOWN if decision.species == UNKNOWN else (decision.rank or "species")


@dataclass(frozen=True)
class BirdGroup:
    """The birds of one species in one frame: they join one event together."""

    species: str
    confidence: float | None
    ranks: tuple[int, ...]  # the detections' ranks in the frame; () for a frame classified whole
    rank: str = "species"   # the name's rank ("unknown" for unknown): edge.store.events.SpeciesSeen

    @property
    def individuals(self) -> int:
        return max(len(self.ranks), 1)


@dataclass(frozen=True)
class CommittedFrame:
    """One frame row as it was committed (or as the store reads it back for a duplicate or an
    interrupted post-processing): what retention, health and metrics need, typed, so that no
    one re-reads the row the store has just written or unpacks it by position."""

    id: int
    path: str
    status: str                 # 'ok' | 'error'
    captured_at: str | None     # UTC ISO 8601 with Z
    species: str | None
    confidence: float | None = None
    processed_at: str | None = None
    camera: str | None = None
    sha256: str | None = None
    inference_ms: float | None = None
    birds: int | None = None    # birds the detector found (0: empty); None: classified whole
    # What is doubtful about captured_at (frames.time_flags); filled for a frame just recorded,
    # () when read back (COMMITTED_COLUMNS): health and metrics count the flags as they commit.
    time_flags: tuple[str, ...] = ()


# The frames columns a CommittedFrame is read from, in its field order.
COMMITTED_COLUMNS = "id, path, status, captured_at, species, confidence, processed_at, camera, sha256, inference_ms, birds"


# What happened to an event; the same values as edge/publish/messages.py's Change (the store
# cannot import the publisher), so an EventChange goes into a message as it is.
EventChangeKind = Literal["new", "update", "end"]


@dataclass
class EventChange:
    change: EventChangeKind
    event: dict[str, Any]
    # An `update` whose vote changed the event's species: the species it had before (its
    # counts snapshot changes too).
    previous_species: str | None = None


@dataclass
class Commit:
    """Everything one frame's transaction committed, returned as one value: the frame row, its
    event changes and the outbox rows written with them. The pipeline puts it in its outcome
    and the daemon's hooks receive it; nothing downstream reads back what was just written."""

    frame: CommittedFrame
    event_changes: list[EventChange] = field(default_factory=list)
    outbox: list[Any] = field(default_factory=list)  # edge.store.outbox.OutboxMessage, in order
    days: set[str] = field(default_factory=set)
    # A transient error: the failed attempts so far, and when the next is due (None: no more).
    attempts: int | None = None
    retry_at: datetime | None = None
    # (id, processed_at) of the error rows at this path that this row replaced.
    superseded: list[tuple[int, str]] = field(default_factory=list)
    # Events whose best crop is now one of this frame's birds: (snapshot file name, bird rank).
    # The daemon writes those crops after the commit (edge/operate/snapshots.py).
    snapshots: list[tuple[str, int]] = field(default_factory=list)
    # What the repeat memory made of each detector bird (edge/store/repeats.py); [] when off.
    repeats: list[Any] = field(default_factory=list)

    @property
    def frame_id(self) -> int:
        return self.frame.id


class OutboxSink(Protocol):
    """Turns committed-to-be changes into outbox rows, inside the frame's transaction; returns
    the messages it wrote."""

    def enqueue(self, db: sqlite_utils.Database, changes: list[EventChange], tallies_today: dict[str, dict[str, int]] | None, today: str, species_touched: set[str]) -> list[Any]: ...


class NotificationSink(Protocol):
    """Decides which of a frame's event changes are worth a push notification and queues them
    (edge/store/notifications.py), inside the frame's transaction (edge/alerts/rules.py)."""

    def queue(self, conn: sqlite3.Connection, changes: list[EventChange], now: datetime) -> list[int]: ...


def tallies_for_day(conn: Any, day: str) -> dict[str, dict[str, int]]:
    """species → {events, frames, individuals} summed over cameras: the `counts` snapshot of one
    station-local day, on any connection (the writer's, inside its transaction; the MQTT
    publisher's own). `individuals` sums the day's events' MaxN (the most birds of the visit
    in one frame): a count of birds seen, as camera-trap studies report it."""
    return {
        species: {"events": int(events), "frames": int(frames), "individuals": int(individuals)}
        for species, events, frames, individuals in conn.execute(
            """SELECT species, SUM(events), SUM(frames), SUM(individuals) FROM daily_tallies WHERE day = ?
               GROUP BY species HAVING SUM(events) > 0 OR SUM(frames) > 0 ORDER BY species""",
            (day,),
        )
    }


class Store:
    """The writer. Exactly one per database (the daemon's processing thread)."""

    def __init__(
        self,
        path: Path,
        *,
        station_tz: ZoneInfo | str = "UTC",
        independence_s: float = 60.0,
        group_by: str = "camera",
        busy_timeout_s: float = 30.0,
        station_id: str | None = None,
        outbox: OutboxSink | None = None,
        notifications: NotificationSink | None = None,
        durable_commits: bool = True,
        max_duration_s: float = 1800.0,
        species_min_frames: int = DEFAULT_SPECIES_MIN_FRAMES,
        retry_max_attempts: int = 5,
        retry_backoff_s: float = 30.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        clock_rules: ClockRules | None = None,
        repeat_rules: RepeatRules | None = None,
    ):
        self.path = Path(path)
        self.station_tz = ZoneInfo(station_tz) if isinstance(station_tz, str) else station_tz
        self.independence = timedelta(seconds=independence_s)
        # No visit longer than this (edge/store/events.py); None: no cap.
        self.max_duration = timedelta(seconds=max_duration_s) if max_duration_s > 0 else None
        if retry_max_attempts < 1 or retry_backoff_s <= 0:
            raise ValueError("retry_max_attempts must be >= 1 and retry_backoff_s > 0")
        self.retry_max_attempts = retry_max_attempts
        self.retry_backoff = timedelta(seconds=retry_backoff_s)
        if group_by not in GROUP_BY_VALUES:
            raise ValueError(f"group_by must be one of {GROUP_BY_VALUES}, got {group_by!r}")
        self.group_by = group_by
        if species_min_frames < 1:
            raise ValueError("species_min_frames must be >= 1")
        self.species_min_frames = species_min_frames
        self.outbox = outbox
        # [notify]: the rules that queue push notifications in the frame's transaction (edge/alerts/).
        self.notifications = notifications
        self.clock = clock
        # The camera-clock checks (edge/store/clock_checks.py): [clock_checks] and each camera's
        # configured deployment start, handed in by wiring.open_store (the store reads no config).
        self.clock_rules = clock_rules if clock_rules is not None else ClockRules()
        # Repeat-detection elimination ([repeats], edge/detect/repeats.py); None: off.
        self.repeat_rules = repeat_rules
        # camera → its last trusted capture times in arrival order (loaded at its first frame).
        self._recent: dict[str, deque[datetime]] = {}
        # camera → [flags logged, frames] of its current run of doubtful frames: one WARNING a run.
        self._doubt_runs: dict[str, list] = {}
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
        backup = self._backup_before_migrating()
        try:
            with self._write():
                self.db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
                version = schema_version(self.db) or 0
                if version > SCHEMA_VERSION:
                    raise StoreError(
                        f"{self.path}: schema version {version} is newer than this trailcam ({SCHEMA_VERSION}); upgrade trailcam"
                    )
                # Reports read the station's zone from here, so `edge counts --db F` needs no config;
                # the web app's reviews recount visits by the daemon's rule (edge/store/counts.py).
                # Written first: a migration that recounts visits follows them too. A different
                # zone is refused before the store opens (edge run --force-timezone changes it):
                # here the change is only said.
                stored = self.db.execute("SELECT value FROM meta WHERE key = 'timezone'").fetchone()
                if stored and stored[0] and stored[0] != self.station_tz.key:
                    log.warning("station.timezone: database %s changes from %s to %s: reports use %s from now "
                                "on; days already tallied keep their %s days", self.path, stored[0],
                                self.station_tz.key, self.station_tz.key, stored[0])
                self.db.table("meta").upsert({"key": "timezone", "value": self.station_tz.key}, pk="key")
                self.db.table("meta").upsert({"key": META_MIN_FRAMES, "value": str(self.species_min_frames)}, pk="key")
                # A new database is created by the same steps; it says one line, not one per step
                # (five "migrating" lines on a first start read like an upgrade going on).
                if version == 0:
                    log.info("database %s: created, schema %d", self.path, SCHEMA_VERSION)
                for step in range(version, SCHEMA_VERSION):
                    if version:
                        log.info("database %s: migrating schema %d → %d", self.path, step, step + 1)
                    MIGRATIONS[step](self.db)
                # Schema 6 is unreleased: a database an earlier build of it made lacks these (idempotent).
                repeats.create_tables(self.conn)
                clips.create_tables(self.conn)
                self.db.table("meta").upsert({"key": "schema_version", "value": str(SCHEMA_VERSION)}, pk="key")
                if station_id:
                    self.db.table("meta").upsert({"key": "station_id", "value": station_id}, pk="key")
        except (sqlite3.DatabaseError, StoreError) as error:
            if backup is not None:
                raise StoreError(f"{self.path}: migration failed ({error}); the database before it is kept "
                                 f"in {backup}") from None
            raise
        if backup is not None:
            backup.unlink(missing_ok=True)
            log.info("database %s: migrated to schema %d; removed the backup taken before it", self.path, SCHEMA_VERSION)

    def record_taxa(self, labels, model_id: str | None) -> int:
        """Record the names of a model's labels (edge/store/taxa.py), at start: the exports
        read scientific names from the database."""
        with self._write():
            return taxa.record_taxa(self.db, labels, model_id, self.clock())

    def _backup_before_migrating(self) -> Path | None:
        """A copy of a database that is about to be migrated, next to it, kept until the
        migration commits: the migration is one transaction, so SQLite alone rolls a failure
        back, but a copy is what an operator wants in hand when a new release touches months
        of counts (a power cut during the copy leaves the original untouched; a copy left from
        a failed earlier try is overwritten). Taken with SQLite's online backup, so the WAL's
        committed content is in it. None when there is nothing to migrate."""
        try:
            version = schema_version(self.db) or 0
        except sqlite3.DatabaseError:
            return None  # a new or foreign file: the migration itself says what is wrong
        if version == 0 or version >= SCHEMA_VERSION:
            return None
        target = self.path.with_name(f"{self.path.name}.schema{version}.bak")
        partial = target.with_name(target.name + ".partial")
        try:
            copy = sqlite3.connect(partial)
            try:
                self.conn.backup(copy)
            finally:
                copy.close()
            os.replace(partial, target)
        except (OSError, sqlite3.DatabaseError) as error:
            partial.unlink(missing_ok=True)
            raise StoreError(f"{self.path}: schema {version} needs migrating to {SCHEMA_VERSION}, but the backup "
                             f"copy {target} cannot be written ({error}); free some space and start again") from None
        log.info("database %s: schema %d → %d; backup copy in %s until the migration commits",
                 self.path, version, SCHEMA_VERSION, target)
        return target

    def _write(self):
        """One write transaction (BEGIN IMMEDIATE: edge.store.db.immediate says why)."""
        return immediate(self.conn)

    @property
    def schema_version(self) -> int:
        return schema_version(self.db) or 0

    def close(self) -> None:
        self.conn.close()

    # -- lookups ----------------------------------------------------------------------------

    def lookup(self, sha256: str, path: str) -> tuple[CommittedFrame | None, bool]:
        """(the `ok` row of this content or None, whether a standing error row exists for it at
        this path), in one indexed query: the per-frame "seen before?" check."""
        ok, error_here = None, False
        for row in self.db.execute(f"SELECT {COMMITTED_COLUMNS}, superseded_by FROM frames WHERE sha256 = ?",
                                   (sha256,)):
            frame = CommittedFrame(*row[:-1])
            if frame.status == "ok":
                ok = frame
            elif frame.path == path and row[-1] is None:
                error_here = True
        return ok, error_here

    def camera_times(self, camera: str, since: datetime, until: datetime) -> list[tuple[datetime, str, float | None]]:
        """(captured_at, path, mtime) of the camera's recorded frames with an EXIF time in
        [since, until]: the neighbours an ambiguous capture time is resolved against
        (edge.ingest.capture_time.resolve_ambiguous), across restarts too. Read-only, indexed
        on (camera, captured_at)."""
        return [(parse_utc(at), path, mtime) for at, path, mtime in self.db.execute(
            """SELECT captured_at, path, mtime FROM frames
                   WHERE camera = ? AND status = 'ok' AND captured_at BETWEEN ? AND ?
                     AND time_source LIKE 'exif%' ORDER BY captured_at, id""",
            (camera, format_utc(since), format_utc(until)))]

    def unfinished_frames(self, limit: int) -> list[CommittedFrame]:
        """The newest `limit` frames whose post-processing left no stored_path, newest first: what
        a crash between a commit and its move or delete may have left in the camera folder."""
        return [CommittedFrame(*row) for row in self.db.execute(
            f"""SELECT {COMMITTED_COLUMNS} FROM frames WHERE stored_path IS NULL
                    AND (clip_id IS NULL OR clip_id IN (SELECT id FROM clips WHERE state != 'decoding'))
                    ORDER BY id DESC LIMIT ?""", (limit,))]

    def recorded_error(self, sha256: str, path: str, size: int | None = None, mtime: float | None = None) -> bool:
        """An error row that settles this content at this path: not superseded, and not a
        transient error with attempts left. A transient error whose attempts are spent settles
        only the same file (size and mtime): a file that changed since gets attempts anew."""
        row = self.db.execute(
            """SELECT 1 FROM frames WHERE sha256 = ? AND path = ? AND status = 'error'
                   AND superseded_by IS NULL AND retry_at IS NULL
                   AND (attempts IS NULL OR (size IS ? AND mtime IS ?)) LIMIT 1""",
            (sha256, path, size, mtime),
        ).fetchone()
        return row is not None

    def unchanged_known(self, path: str, size: int, mtime: float) -> bool:
        """A file already recorded at this path with this size and mtime: skip without hashing.

        A transient error row with a retry due or pending does not count: that file is not
        done yet (this is what lets the backlog scan at start retry it)."""
        row = self.db.execute(
            """SELECT 1 FROM frames WHERE path = ? AND size = ? AND mtime = ?
                   AND retry_at IS NULL AND superseded_by IS NULL LIMIT 1""",
            (path, size, mtime),
        ).fetchone()
        return row is not None

    def supersede_errors(self, path: str, by_frame_id: int) -> list[tuple[int, str]]:
        """Mark the standing error rows at `path` as replaced by row `by_frame_id` (a file now
        valid, found to be a copy of a frame already recorded); returns (id, processed_at) of
        each. Writes only when there is something to mark."""
        with self._write():
            return self._supersede(path, by_frame_id)

    def _supersede(self, path: str, by_frame_id: int) -> list[tuple[int, str]]:
        rows = [(int(i), str(at)) for i, at in self.db.execute(
            """SELECT id, processed_at FROM frames WHERE path = ? AND status = 'error'
                   AND superseded_by IS NULL AND id != ?""",
            (path, by_frame_id),
        )]
        if rows:
            marks = ",".join("?" * len(rows))
            self.db.execute(f"UPDATE frames SET superseded_by = ?, retry_at = NULL WHERE id IN ({marks})",
                            (by_frame_id, *(i for i, _ in rows)))
        return rows

    def abandon_retries(self, path: str) -> int:
        """The file of a transient error row is gone: nothing is due any more (else `edge
        status` would count it as being retried forever)."""
        if self.db.execute("SELECT 1 FROM frames WHERE path = ? AND retry_at IS NOT NULL LIMIT 1", (path,)).fetchone() is None:
            return 0
        with self._write():
            return self.db.execute("UPDATE frames SET retry_at = NULL WHERE path = ? AND retry_at IS NOT NULL",
                                   (path,)).rowcount

    def _next_retry(self, now: datetime, attempts: int) -> datetime | None:
        """When the next try of a transiently failing frame is due: the backoff doubles with
        each failed attempt (at most an hour apart); None once attempts are spent."""
        if attempts >= self.retry_max_attempts:
            return None
        delay = min(self.retry_backoff * (2 ** min(attempts - 1, 30)), max(timedelta(hours=1), self.retry_backoff))
        return now + delay

    # -- video clips (edge/store/clips.py; the daemon's side: edge/daemon/clips.py) ----------

    def clip(self, sha256: str) -> clips.ClipRow | None:
        """The clip recorded with this content, or None."""
        return clips.by_sha256(self.conn, sha256)

    def clip_finished_here(self, path: str, size: int, mtime: float) -> bool:
        """A clip at this path, with this size and mtime, already done or failed: skip it unhashed."""
        return clips.finished_at_path(self.conn, path, size, mtime)

    def begin_clip(self, values: dict[str, Any]) -> int:
        """Record a clip about to be sampled (state decoding); returns its id."""
        with self._write():
            return clips.begin(self.conn, values)

    def clip_offsets(self, clip_id: int) -> set[int]:
        """Offsets (ms) of the clip's sampled frames already committed."""
        return clips.recorded_offsets(self.conn, clip_id)

    def finish_clip(self, clip_id: int, state: str, error: str | None, frames_decoded: int, frames_sampled: int,
                    decoded_s: float | None) -> None:
        """The clip is over: done, or error with its reason (the frames committed before stay)."""
        with self._write():
            clips.finish(self.conn, clip_id, state, error, frames_decoded, frames_sampled, decoded_s,
                         format_utc(self.clock()))

    def move_clip(self, clip_id: int, path: str) -> None:
        """A recorded clip renamed: its row and its frames' rows follow it."""
        with self._write():
            clips.move(self.conn, clip_id, path)

    def update_path(self, frame_id: int, path: str) -> None:
        """A recorded frame renamed (uploader temp name → final name): follow it."""
        with self._write():
            self.db.execute("UPDATE frames SET path = ? WHERE id = ?", (path, frame_id))

    # -- the one write per frame ------------------------------------------------------------

    def local_day(self, moment: datetime) -> str:
        return local_day(moment, self.station_tz)

    def record(self, frame: FrameRecord) -> Commit:
        """Write one frame and all its consequences in one transaction; returns what it committed."""
        now = self.clock()
        doubt: tuple[str, ...] = ()
        if frame.status == "ok" and frame.captured_at is not None:
            doubt = clock_checks.check(frame.camera, frame.captured_at.astimezone(UTC), now,
                                       self._recent_times(frame.camera), self.clock_rules)
            if doubt:
                frame = replace(frame, time_flags=clock_checks.merge(frame.time_flags, doubt))
        with self._write():
            if frame.status == "error" and frame.transient:
                again = self._record_attempt(frame, now)
                if again is not None:
                    return again
            attempts = retry_at = None
            if frame.status == "error" and frame.transient:
                attempts = 1
                retry_at = self._next_retry(now, 1)
            changes: list[EventChange] = []
            days: set[str] = set()
            touched: set[str] = set()
            # event id → this frame's birds counted in it (MaxN), in the order the groups joined.
            joined: dict[int, int] = {}
            group_events: list[tuple[BirdGroup, int]] = []
            verdicts: list[repeats.Verdict] = []
            if frame.status == "ok" and frame.captured_at and frame.birds and self.repeat_rules is not None:
                frame, verdicts = self._repeats(frame, now)
            if frame.status == "ok" and frame.captured_at:
                for group in frame.groups():
                    group_events.append((group, self._count_group(frame, group, joined, changes, days)))
                    touched.add(group.species)
                if doubt:
                    self._flag_events(dict.fromkeys(event_id for _, event_id in group_events), doubt)
                self._recount_events(frame, group_events, changes, days, touched)
                for change in changes:
                    touched.add(change.event["species"])
                    if change.previous_species is not None:
                        touched.add(change.previous_species)
            main = group_events[0] if group_events else None
            cursor = self.db.execute(
                """INSERT INTO frames (path, sha256, camera, size, mtime, captured_at, time_source,
                       processed_at, status, error, model_id, inference_ms, species, confidence, event_id,
                       attempts, retry_at, birds, detector_id, model_species, flag, time_flags, clip_id,
                       clip_offset_s, night)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
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
                    *self._frame_species(frame, main[0] if main else None),
                    main[1] if main else None,
                    attempts,
                    format_utc(retry_at) if retry_at else None,
                    len(frame.birds) if frame.birds is not None and frame.status == "ok" else None,
                    frame.detector_id,
                    *self._model_species_and_flag(frame.decision if frame.birds is None else None),
                    ",".join(frame.time_flags) or None,
                    frame.clip_id,
                    frame.clip_offset_s,
                    None if frame.night is None or frame.status != "ok" else int(frame.night),
                ),
            )
            frame_id = inserted_id(cursor)
            # The newest row at a path says what the file there is: older errors are replaced.
            superseded = self._supersede(frame.path, frame_id)
            if frame.predictions:
                self.conn.executemany(
                    "INSERT INTO predictions (frame_id, rank, label, score) VALUES (?, ?, ?, ?)",
                    [(frame_id, rank, p.label, p.score) for rank, p in enumerate(frame.predictions, start=1)],
                )
            snapshots = self._record_birds(frame, frame_id, group_events, changes, now) if frame.birds else []
            if frame.objects and frame.status == "ok":
                self.conn.executemany(
                    """INSERT INTO frame_objects (frame_id, rank, kind, ymin, xmin, ymax, xmax, score, detector_label)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    [(frame_id, rank, o.kind, *(float(v) for v in o.box), float(o.score), o.detector_label)
                     for rank, o in enumerate(frame.objects, start=1)])
            repeats.link_detections(self.conn, frame_id, verdicts)
            messages = self._enqueue(changes, days, touched, now)
            if self.notifications is not None and changes:
                self.notifications.queue(self.conn, changes, now)
        if frame.status == "ok" and frame.captured_at is not None:
            self._after_clock_check(frame, doubt, now)
        return Commit(self._committed(frame, frame_id, now, main[0] if main else None), changes, messages, days,
                      attempts, retry_at, superseded, snapshots, verdicts)

    def _repeats(self, frame: FrameRecord, now: datetime) -> tuple[FrameRecord, list[repeats.Verdict]]:
        """The frame's birds through the camera's repeat memory (edge/store/repeats.py), before
        anything is counted: a bird at a suppressed place comes back with the REPEAT decision
        (kind none), so it joins no visit, tally or MQTT message, like a `not_bird`."""
        assert frame.birds is not None and frame.captured_at is not None and self.repeat_rules is not None
        captured = frame.captured_at.astimezone(UTC)
        verdicts = repeats.observe(self.conn, frame.camera, frame.birds, captured, self.local_day(captured), now,
                                   self.repeat_rules)
        if any(v.decision is not b.decision for v, b in zip(verdicts, frame.birds)):
            frame = replace(frame, birds=[replace(b, decision=v.decision) for v, b in zip(verdicts, frame.birds)])
        return frame, verdicts

    # -- camera clocks (rules: edge/store/clock_checks.py) ----------------------------------------

    def _recent_times(self, camera: str) -> deque[datetime]:
        """The camera's last trusted capture times in arrival order: read once, at the camera's
        first frame since the store opened (so a restart goes on where the last run stopped),
        then kept as frames commit."""
        recent = self._recent.get(camera)
        if recent is None:
            rows = self.db.execute(
                f"""SELECT captured_at FROM frames WHERE camera = ? AND status = 'ok' AND captured_at IS NOT NULL
                       AND {clock_checks.trusted_sql()} ORDER BY id DESC LIMIT ?""",
                (camera, clock_checks.RECENT_FRAMES)).fetchall()
            recent = self._recent[camera] = deque((parse_utc(row[0]) for row in reversed(rows)),
                                                  maxlen=clock_checks.RECENT_FRAMES)
        return recent

    def _flag_events(self, event_ids: Iterable[int], doubt: tuple[str, ...]) -> None:
        """The visits a doubtful frame joined carry its flags (kept out of effort with them)."""
        for event_id in event_ids:
            row = self.db.execute("SELECT time_flags FROM events WHERE id = ?", (event_id,)).fetchone()
            merged = clock_checks.merge(clock_checks.parse(row[0] if row else None), doubt)
            self.db.execute("UPDATE events SET time_flags = ? WHERE id = ?", (",".join(merged), event_id))

    def _after_clock_check(self, frame: FrameRecord, doubt: tuple[str, ...], now: datetime) -> None:
        """After the commit: a trusted time joins the camera's reference; a doubtful one is
        logged once per run of doubtful frames of the camera (a reset clock flags every frame
        after it: one WARNING, not one per frame), and the end of the run once."""
        assert frame.captured_at is not None
        camera = frame.camera
        recent = self._recent_times(camera)
        run = self._doubt_runs.get(camera)
        if not doubt:
            recent.append(frame.captured_at.astimezone(UTC))
            if run is not None:
                del self._doubt_runs[camera]
                log.info("camera %s: capture times plausible again after %d flagged frame(s)", camera, run[1])
            return
        if run is None:
            run = self._doubt_runs[camera] = [set(), 0]
        run[1] += 1
        new = [flag for flag in doubt if flag not in run[0]]
        if not new:
            return
        run[0].update(new)
        log.warning("camera %s: frame %s captured at %s flagged %s (%s); recorded and counted, but kept out of "
                    "effort and deployment spans until the camera's clock is corrected; further frames of this "
                    "run are not logged one by one", camera, frame.path, format_utc(frame.captured_at),
                    ",".join(new), clock_checks.explain(new, camera, now, recent, self.clock_rules))

    @staticmethod
    def _model_species_and_flag(decision: Decision | None) -> tuple[str | None, str | None]:
        """(the classifier's own top-1 when the prior or the roll-up counted another name, the
        decision's flag): stored beside what was counted, so both can be shown and reviewed."""
        if decision is None:
            return None, None
        model = decision.model_species if decision.model_species != decision.species else None
        return model, decision.flag

    @staticmethod
    def _frame_species(frame: FrameRecord, main: BirdGroup | None) -> tuple[str | None, float | None]:
        """The frame row's species and confidence: its main group's (most birds); for a frame
        classified whole, its decision (a no-bird decision keeps its score, as before)."""
        if frame.birds is None:
            decision = frame.decision
            return (decision.species, decision.confidence) if decision else (None, None)
        return (main.species, main.confidence) if main else (None, None)

    def _record_birds(self, frame: FrameRecord, frame_id: int, group_events: list[tuple[BirdGroup, int]],
                      changes: list[EventChange], now: datetime) -> list[tuple[str, int]]:
        """The frame's detection rows, and each touched event's best crop: the detection of the
        event's species with the best classifier confidence (then detector score). Returns the
        (snapshot name, rank) of the events whose best crop is now one of this frame's birds;
        `snapshot_at` = now, when its file is written ([retention] snapshot_days counts from it)."""
        assert frame.birds is not None
        event_of_rank = {rank: event_id for group, event_id in group_events for rank in group.ranks}
        rows = []
        for rank, bird in enumerate(frame.birds, start=1):
            decision = bird.decision
            top = json.dumps([[p.label, round(float(p.score), 6)] for p in bird.predictions], ensure_ascii=False)
            rows.append((frame_id, rank, *(float(v) for v in bird.box), float(bird.score), bird.detector_label,
                         decision.kind, decision.species, decision.confidence, top, event_of_rank.get(rank),
                         *self._model_species_and_flag(decision)))
        self.conn.executemany(
            """INSERT INTO detections (frame_id, rank, ymin, xmin, ymax, xmax, score, detector_label, kind,
                   species, confidence, top_k, event_id, model_species, flag)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            rows,
        )
        snapshots = []
        for event_id in dict.fromkeys(event_id for _, event_id in group_events):
            event = self._event(event_id, with_counts=False)
            best = self.db.execute(
                """SELECT d.id, d.frame_id, d.rank FROM detections AS d WHERE d.event_id = ? AND d.species = ?
                   ORDER BY d.confidence DESC, d.score DESC, d.id LIMIT 1""",
                (event_id, event["species"]),
            ).fetchone()
            if best is None or best[0] == event["best_detection_id"]:
                continue
            if best[1] == frame_id:
                name = f"{event['uid']}.jpg"
                self.db.execute("UPDATE events SET best_detection_id = ?, snapshot = ?, snapshot_at = ? WHERE id = ?",
                                (best[0], name, format_utc(now), event_id))
                snapshots.append((name, int(best[2])))
            else:  # the vote moved to a species seen earlier: its crop is no longer in memory
                self.db.execute("UPDATE events SET best_detection_id = ? WHERE id = ?", (best[0], event_id))
            for change in changes:
                if change.event["id"] == event_id:
                    change.event = self._event(event_id)
        return snapshots

    @staticmethod
    def _committed(frame: FrameRecord, frame_id: int, now: datetime, main: BirdGroup | None = None) -> CommittedFrame:
        """The row just written, as the typed value the Commit carries (built, not read back)."""
        species, confidence = Store._frame_species(frame, main)
        return CommittedFrame(
            id=frame_id, path=frame.path, status=frame.status,
            captured_at=format_utc(frame.captured_at) if frame.captured_at else None,
            species=species, confidence=confidence,
            processed_at=format_utc(now), camera=frame.camera, sha256=frame.sha256, inference_ms=frame.inference_ms,
            birds=len(frame.birds) if frame.birds is not None and frame.status == "ok" else None,
            time_flags=tuple(frame.time_flags))

    def _record_attempt(self, frame: FrameRecord, now: datetime) -> Commit | None:
        """Another failed try of a transient error already on record for this path: the same
        row counts the attempt (one row per failing file, however often it is tried); None when
        there is no such row. A file that changed (size, mtime) since starts counting anew."""
        row = self.db.execute(
            """SELECT id, attempts, size, mtime FROM frames WHERE sha256 = ? AND path = ? AND status = 'error'
                   AND superseded_by IS NULL AND attempts IS NOT NULL ORDER BY id DESC LIMIT 1""",
            (frame.sha256, frame.path),
        ).fetchone()
        if row is None:
            return None
        frame_id, attempts, size, mtime = row
        attempts = int(attempts) + 1 if (size, mtime) == (frame.size, frame.mtime) else 1
        retry_at = self._next_retry(now, attempts)
        self.db.execute(
            """UPDATE frames SET attempts = ?, retry_at = ?, error = ?, processed_at = ?, size = ?, mtime = ?,
                   model_id = ? WHERE id = ?""",
            (attempts, format_utc(retry_at) if retry_at else None, frame.error, format_utc(now), frame.size,
             frame.mtime, frame.model_id, frame_id),
        )
        return Commit(self._committed(frame, int(frame_id), now), attempts=attempts, retry_at=retry_at)

    def _count_group(self, frame: FrameRecord, group: BirdGroup, joined: dict[int, int],
                     changes: list[EventChange], days: set[str]) -> int:
        """Tally one species' birds of the frame and put them into an event (new or joined);
        returns the event id. `joined` (event id → birds of this frame in it) makes the event's
        individuals the most birds in any one frame (MaxN) when several groups of one frame join
        the same event (group_by = "camera"), and keeps the frame from counting twice in it."""
        assert frame.captured_at is not None
        species, confidence, birds = group.species, group.confidence, group.individuals
        captured = frame.captured_at.astimezone(UTC)
        captured_text = format_utc(captured)
        day = self.local_day(captured)
        self._bump_tally(day, frame.camera, species, frames=1)
        days.add(day)

        event = self._find_event(frame.camera, species, captured)
        capped = None
        if event is not None and int(event["id"]) not in joined and beyond_cap(
                parse_utc(event["started_at"]), parse_utc(event["ended_at"]), captured, self.max_duration):
            capped, event = event, None  # the visit is as long as it may be: a new one starts
        if event is None:
            # A new visit: first close this camera's open events that this frame proves over.
            for stale in self._rows(
                "SELECT * FROM events WHERE camera = ? AND state = 'open' AND ended_at < ?",
                (frame.camera, format_utc(captured - self.independence)),
            ):
                self.db.execute("UPDATE events SET state = 'closed' WHERE id = ?", (stale["id"],))
                stale["state"] = "closed"
                changes.append(EventChange("end", stale))
            if capped is not None and capped["state"] == "open":
                self.db.execute("UPDATE events SET state = 'closed' WHERE id = ?", (capped["id"],))
                capped["state"] = "closed"
                changes.append(EventChange("end", capped))
                assert self.max_duration is not None  # capped: beyond_cap is only true with a cap
                log.info("event %s: camera %s reached max_duration_s (%.0f s); the visit goes on as a new event",
                         capped["uid"][:8], frame.camera, self.max_duration.total_seconds())
            # The first event a frame starts keeps the uid it always had; a second species of the
            # same frame (group_by = "species") needs its own.
            key = f"{frame.camera}/{frame.sha256}" + ("" if not joined else f"/{species}")
            uid = str(uuid.uuid5(EVENT_UID_NAMESPACE, key))
            event_id = inserted_id(
                self.db.execute(
                    """INSERT INTO events (uid, camera, species, confidence, started_at, ended_at,
                           frame_count, model_id, state, individuals) VALUES (?, ?, ?, ?, ?, ?, 1, ?, 'open', ?)""",
                    (uid, frame.camera, species, confidence, captured_text, captured_text, frame.model_id, birds),
                )
            )
            joined[event_id] = birds
            self._add_vote(event_id, group, captured_text)
            changes.append(EventChange("new", self._event(event_id, with_counts=False)))
            return event_id

        event_id = int(event["id"])
        again = event_id in joined  # another species of this frame joined this event already
        joined[event_id] = joined.get(event_id, 0) + birds
        winner = self._vote(event, species, confidence, captured_text)
        self._add_vote(event_id, group, captured_text)
        new_species = winner.species
        new_confidence = winner.best_confidence
        old_individuals = int(event["individuals"])
        new_individuals = max(old_individuals, joined[event_id])
        started = min(parse_utc(event["started_at"]), captured)
        ended = max(parse_utc(event["ended_at"]), captured)
        self.db.execute(
            """UPDATE events SET species = ?, confidence = ?, started_at = ?, ended_at = ?,
                   frame_count = frame_count + ?, individuals = ? WHERE id = ?""",
            (new_species, new_confidence, format_utc(started), format_utc(ended), 0 if again else 1,
             new_individuals, event_id),
        )
        # The visit's per-species counts and their tallies follow in record() (edge/store/counts.py),
        # once every group of the frame has joined. The headline it counted as before this frame:
        old_counted = counted(event)
        new_counted = counted({**event, "species": new_species, "individuals": new_individuals})
        previous = old_counted[0] if old_counted[0] != new_counted[0] else None
        self._note_change(changes, EventChange("update", self._event(event_id, with_counts=False),
                                               previous_species=previous))
        return event_id

    def _recount_events(self, frame: FrameRecord, group_events: list[tuple[BirdGroup, int]],
                        changes: list[EventChange], days: set[str], touched: set[str]) -> None:
        """After every group of the frame has joined its event: mark the names seen together in
        one frame, flag a possible rarity, and recount each touched visit per species
        (edge/store/counts.py), which moves the daily tallies' events and individuals."""
        by_event: dict[int, list[BirdGroup]] = {}
        for group, event_id in group_events:
            by_event.setdefault(event_id, []).append(group)
        flagged = self._flagged_species(frame)
        for event_id, groups in by_event.items():
            if len(groups) > 1:
                marks = ",".join("?" * len(groups))
                self.db.execute(f"UPDATE event_votes SET together = 1 WHERE event_id = ? AND species IN ({marks})",
                                (event_id, *(g.species for g in groups)))
            if flagged & {g.species for g in groups}:
                self.db.execute("UPDATE events SET flag = ? WHERE id = ? AND flag IS NULL", (OUT_OF_RANGE, event_id))
            result = recount(self.conn, self._event(event_id, with_counts=False), self.station_tz,
                             min_frames=self.species_min_frames)
            touched.update(result.species)
            days.update(result.days)
            refreshed = None
            for change in changes:
                if change.change != "end" and change.event["id"] == event_id:
                    refreshed = refreshed or self._event(event_id)
                    change.event = refreshed

    @staticmethod
    def _flagged_species(frame: FrameRecord) -> set[str]:
        """The names of the frame counted from a decision flagged as a possible rarity."""
        decisions = [frame.decision] if frame.birds is None else [b.decision for b in frame.birds]
        return {d.species for d in decisions if d is not None and d.flag == OUT_OF_RANGE and d.species}

    @staticmethod
    def _note_change(changes: list[EventChange], change: EventChange) -> None:
        """One change per event and frame: a second group of the same frame joining an event
        that this frame created or updated already refreshes that change instead of adding one
        (a `new` stays `new`; the species it had before this frame stays the one reported)."""
        for earlier in changes:
            if earlier.change != "end" and earlier.event["id"] == change.event["id"]:
                earlier.event = change.event
                if earlier.previous_species is None and earlier.change == "update":
                    earlier.previous_species = change.previous_species
                if earlier.previous_species == earlier.event["species"]:
                    earlier.previous_species = None
                return
        changes.append(change)

    def _find_event(self, camera: str, species: str, captured: datetime) -> dict[str, Any] | None:
        """The event a counted frame joins (see edge/store/events.py), or None for a new visit."""
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
        """The event's species and confidence after this frame joins it (edge.store.events.vote), from
        the event's vote state (one row per species in `event_votes`, so the cost does not grow
        with the visit) plus the frame being recorded. Frame rows pruned by retention change
        nothing: the votes are kept with the event."""
        votes = [
            SpeciesVotes(label, int(frames), float(total), best, first)
            for label, frames, total, best, first in self.db.execute(
                "SELECT species, frames, confidence_sum, best_confidence, first_at FROM event_votes WHERE event_id = ?",
                (event["id"],),
            )
        ]
        votes.append(SpeciesVotes(species, 1, float(confidence or 0.0), confidence, captured_text))
        return vote(votes)

    def _add_vote(self, event_id: int, group: BirdGroup, captured_text: str) -> None:
        """Count one frame's birds of one name into its event's vote state (same transaction as the
        frame row): a frame more, and the most birds of the name in one frame (MaxN)."""
        confidence = group.confidence
        self.db.execute(
            """INSERT INTO event_votes (event_id, species, frames, confidence_sum, best_confidence, first_at,
                   individuals, rank)
               VALUES (?, ?, 1, ?, ?, ?, ?, ?)
               ON CONFLICT (event_id, species) DO UPDATE SET
                   frames = frames + 1,
                   individuals = MAX(individuals, excluded.individuals),
                   confidence_sum = confidence_sum + excluded.confidence_sum,
                   best_confidence = CASE WHEN best_confidence IS NULL THEN excluded.best_confidence
                                          WHEN excluded.best_confidence IS NULL THEN best_confidence
                                          ELSE MAX(best_confidence, excluded.best_confidence) END,
                   first_at = MIN(first_at, excluded.first_at)""",
            (event_id, group.species, float(confidence or 0.0), confidence, captured_text, group.individuals, group.rank),
        )

    def _bump_tally(self, day: str, camera: str, species: str, *, events: int = 0, frames: int = 0,
                    individuals: int = 0) -> None:
        bump_tally(self.conn, day, camera, species, events=events, frames=frames, individuals=individuals)

    def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        cursor = self.db.execute(sql, tuple(params))
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]

    def _event(self, event_id: int, *, with_counts: bool = True) -> dict[str, Any]:
        """The event's row, with what it counts per species (`species_counts`, edge/store/counts.py)
        unless `with_counts` is off: rows read before the frame's recount, which reads them again."""
        event = self._rows("SELECT * FROM events WHERE id = ?", (event_id,))[0]
        if with_counts:
            event["species_counts"] = stored_counts(self.conn, event_id)
        return event

    def tallies_for_day(self, day: str) -> dict[str, dict[str, int]]:
        """species → {events, frames} summed over cameras: the `counts` snapshot of one day."""
        return tallies_for_day(self.db, day)

    def _enqueue(self, changes: list[EventChange], days: set[str], touched: set[str], now: datetime) -> list[Any]:
        """The frame's outbox rows (inside its transaction); returns the messages written."""
        if self.outbox is None or (not changes and not days):
            return []
        today = self.local_day(now)
        tallies = self.tallies_for_day(today) if today in days else None
        return list(self.outbox.enqueue(self.db, changes, tallies, today, touched) or [])

    def close_stale_events(self, now: datetime | None = None, *, behind_newest_frame: bool = False) -> list[EventChange]:
        """Close open events whose last frame is older than the independence interval.

        Called when the queue is idle, so that an `end` is published even when no later frame
        of that camera arrives.

        A camera clock running ahead of this device's (a frame `future` by edge/store/clock_checks.py,
        or a few hours ahead) would keep its visit open until this device's clock caught up, in
        2035 for a clock set to 2035: an event that the rules above keep open closes when no
        frame of it has been *recorded* for the interval of this device's time (its frames'
        processed_at), and says so once. (A camera whose clock is right records a frame after it
        is captured, so this never closes its visit earlier than the rules above.)

        `behind_newest_frame` (the end of `edge run --once`) also closes open events whose last
        frame is more than the interval older than the newest frame recorded for the same camera:
        the camera's own clock proves the visit over, whatever this device's clock says (a
        backlog of frames from a camera set hours ahead, or of frames that joined another
        event and so never closed the older ones).
        """
        now = now or self.clock()
        changes: list[EventChange] = []
        with self._write():
            cutoffs = {None: format_utc(now - self.independence)}
            if behind_newest_frame:
                for camera, newest in self.db.execute(
                    "SELECT camera, MAX(captured_at) FROM frames WHERE status = 'ok' AND captured_at IS NOT NULL GROUP BY camera"
                ):
                    cutoffs[camera] = format_utc(max(now, parse_utc(newest)) - self.independence)
            idle_since = format_utc(now - self.independence)
            for event in self._rows("SELECT * FROM events WHERE state = 'open' ORDER BY id"):
                if event["ended_at"] >= cutoffs.get(event["camera"], cutoffs[None]):
                    recorded = self._last_recorded(int(event["id"]))
                    if recorded is None or recorded >= idle_since:
                        continue
                    log.warning("event %s: camera %s's clock is ahead of this device's (last frame at %s); closed "
                                "after %g s without a new frame of it (this device's time)", event["uid"][:8],
                                event["camera"], event["ended_at"], self.independence.total_seconds())
                self.db.execute("UPDATE events SET state = 'closed' WHERE id = ?", (event["id"],))
                event["state"] = "closed"
                changes.append(EventChange("end", event))
            if changes and self.outbox is not None:
                self.outbox.enqueue(self.db, changes, None, self.local_day(now), set())
        return changes

    def _last_recorded(self, event_id: int) -> str | None:
        """When the event's last frame was recorded (processed_at): its frames' rows and those of
        its birds' (a second species' visit of a frame, group_by = "species"); None when retention
        pruned them all."""
        row = self.db.execute(
            """SELECT MAX(processed_at) FROM frames WHERE event_id = ?
                   OR id IN (SELECT frame_id FROM detections WHERE event_id = ?)""", (event_id, event_id)).fetchone()
        return row[0] if row else None

    def open_events(self) -> list[dict[str, Any]]:
        """The events still open, oldest first (why they stay open is the caller's to say)."""
        return self._rows("SELECT * FROM events WHERE state = 'open' ORDER BY ended_at, id")
