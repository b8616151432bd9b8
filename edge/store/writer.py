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
import sqlite3
import uuid
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
from edge.store.camera_clocks import CameraClocks
from edge.store.clock_checks import ClockRules
from edge.store.counts import bump_tally, recount, stored_counts
from edge.store.db import immediate, inserted_id, schema_version
from edge.store.events import DEFAULT_SPECIES_MIN_FRAMES, GROUP_BY_VALUES, SpeciesVotes, beyond_cap, counted, vote
from edge.store.ledger import CommittedFrame, Ledger
from edge.store.migration import open_for_writing
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
    """The writer. Exactly one per database (the daemon's processing thread).

    Its job is the frame's one transaction: record a frame and count it into visits, tallies
    and the outbox (`record`, `close_stale_events`). What else the daemon asks of the database
    lives beside it, on the same connection and write transaction: `ledger` (edge/store/ledger.py:
    seen before? failed, retried, renamed), `clips` (edge/store/clips.py: a video clip's row) and
    `camera_clocks` (edge/store/camera_clocks.py: the clock checks' memory, recorded times);
    opening and migrating the file is edge/store/migration.py's."""

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
        # Repeat-detection elimination ([repeats], edge/detect/repeats.py); None: off.
        self.repeat_rules = repeat_rules
        self.db = open_for_writing(self.path, station_tz=self.station_tz, species_min_frames=species_min_frames,
                                   busy_timeout_s=busy_timeout_s, durable_commits=durable_commits,
                                   station_id=station_id)
        self.conn = self.db.conn
        # The second jobs, on this connection and its write transaction: the ingest ledger (seen,
        # failed, retried), the clips table, and the camera-clock checks with their memory
        # (clock_rules: [clock_checks] and each camera's deployment start, from wiring.open_store).
        self.ledger = Ledger(self.conn, self._write, retry_max_attempts=retry_max_attempts,
                             retry_backoff_s=retry_backoff_s)
        self.clips = clips.Clips(self.conn, self._write, clock)
        self.camera_clocks = CameraClocks(self.conn, clock_rules)

    def record_taxa(self, labels, model_id: str | None) -> int:
        """Record the names of a model's labels (edge/store/taxa.py), at start: the exports
        read scientific names from the database."""
        with self._write():
            return taxa.record_taxa(self.db, labels, model_id, self.clock())

    def _write(self):
        """One write transaction (BEGIN IMMEDIATE: edge.store.db.immediate says why)."""
        return immediate(self.conn)

    @property
    def schema_version(self) -> int:
        return schema_version(self.db) or 0

    def close(self) -> None:
        self.conn.close()

    # -- the one write per frame ------------------------------------------------------------

    def local_day(self, moment: datetime) -> str:
        return local_day(moment, self.station_tz)

    def record(self, frame: FrameRecord) -> Commit:
        """Write one frame and all its consequences in one transaction; returns what it committed."""
        now = self.clock()
        doubt: tuple[str, ...] = ()
        if frame.status == "ok" and frame.captured_at is not None:
            doubt = self.camera_clocks.check(frame.camera, frame.captured_at.astimezone(UTC), now)
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
                retry_at = self.ledger.next_retry(now, 1)
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
                    self.camera_clocks.flag_events(dict.fromkeys(event_id for _, event_id in group_events), doubt)
                self._recount_events(frame, group_events, changes, days, touched)
                for change in changes:
                    touched.add(change.event["species"])
                    if change.previous_species is not None:
                        touched.add(change.previous_species)
            main = group_events[0] if group_events else None
            frame_id = self._insert_frame(frame, now, main, attempts, retry_at)
            # The newest row at a path says what the file there is: older errors are replaced.
            superseded = self.ledger.supersede(frame.path, frame_id)
            if frame.predictions:
                self.conn.executemany(
                    "INSERT INTO predictions (frame_id, rank, label, score) VALUES (?, ?, ?, ?)",
                    [(frame_id, rank, p.label, p.score) for rank, p in enumerate(frame.predictions, start=1)],
                )
            snapshots = self._record_birds(frame, frame_id, group_events, changes, now) if frame.birds else []
            self._record_objects(frame, frame_id)
            repeats.link_detections(self.conn, frame_id, verdicts)
            messages = self._enqueue(changes, days, touched, now)
            if self.notifications is not None and changes:
                self.notifications.queue(self.conn, changes, now)
        if frame.status == "ok" and frame.captured_at is not None:
            self.camera_clocks.after_commit(frame.camera, frame.path, frame.captured_at, doubt, now)
        return Commit(self._committed(frame, frame_id, now, main[0] if main else None), changes, messages, days,
                      attempts, retry_at, superseded, snapshots, verdicts)

    def _insert_frame(self, frame: FrameRecord, now: datetime, main: tuple[BirdGroup, int] | None,
                      attempts: int | None, retry_at: datetime | None) -> int:
        """The frame's row (inside its transaction): what it counted as, in its main group's event
        (most birds), and a transient error's attempts; returns its id."""
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
        return inserted_id(cursor)

    def _record_objects(self, frame: FrameRecord, frame_id: int) -> None:
        """The people and vehicles of an ok frame: recorded, never counted (frame_objects)."""
        if frame.objects and frame.status == "ok":
            self.conn.executemany(
                """INSERT INTO frame_objects (frame_id, rank, kind, ymin, xmin, ymax, xmax, score, detector_label)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                [(frame_id, rank, o.kind, *(float(v) for v in o.box), float(o.score), o.detector_label)
                 for rank, o in enumerate(frame.objects, start=1)])

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
        """Another failed try of a transient error already on record for this path, counted on
        its row (Ledger.record_attempt); None when there is no such row."""
        attempt = self.ledger.record_attempt(frame.sha256, frame.path, frame.size, frame.mtime, frame.error,
                                             frame.model_id, now)
        if attempt is None:
            return None
        return Commit(self._committed(frame, attempt.frame_id, now), attempts=attempt.attempts,
                      retry_at=attempt.retry_at)

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
