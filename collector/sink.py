"""Rows → the central database: one transaction per batch, idempotent upserts, both engines.

Why it looks like this:
- A batch (up to N messages or T ms, collector.service) is reduced in memory first: per event
  only the message with the greatest `order_key`, per (device, day, species) only the newest
  `updated_at`, per device one update. A burst of updates of one event costs one row write,
  and PostgreSQL's `INSERT ... ON CONFLICT` never meets the same key twice in one statement.
- The upserts' WHERE clauses make the database the judge of "newer": `order_key` for events,
  `updated_at` for day counts, `published_at` for device info. An older or equal message
  changes nothing, so replays, QoS 1 duplicates and two collectors racing leave the same rows.
- PostgreSQL: events go through COPY into a session temporary table and one
  INSERT ... SELECT ... ON CONFLICT (the bulk path; COPY is PostgreSQL's fastest way in); the
  small rest (counts, devices, rejects) through executemany, which psycopg 3 pipelines.
  SQLite: executemany in one BEGIN IMMEDIATE transaction (WAL, synchronous=NORMAL).
- `event_species` (what each event counts per species) is replaced whole with the event row:
  only for the events whose message the upsert applied (newer `order_key`), in the same
  transaction. PostgreSQL: COPY into a second temporary table, the events upsert RETURNING the
  applied keys, then one DELETE and one INSERT ... SELECT for them. SQLite (one writer at a
  time): delete and insert where the stored event is older, before its upsert.
- A batch that fails for a data reason (a value the column refuses) is retried one message
  at a time so the one bad message is rejected and the rest still land; a connection failure
  raises `SinkUnavailable` and the caller retries the whole batch later (nothing acked).
  Which is which is decided by the error's kind (`database_down`), never by its Python class:
  psycopg raises OperationalError for "index row size exceeds maximum" (SQLSTATE 54000, the
  content's fault) as for a lost server, and treating the first as "unavailable" retried one
  message forever (issue 22). Down = the connection is broken or closed, or SQLSTATE class 08
  (connection), 53 (resources: disk full, memory), 57 (shutdown), 58 (I/O), 40 (a deadlock or
  serialization failure: retry); SQLite's BUSY, LOCKED, IOERR, CANTOPEN, FULL, NOMEM, READONLY,
  PROTOCOL. Anything else is the content's.
- Rejected messages are inserted once per (topic, payload sha256) (`ON CONFLICT DO NOTHING`):
  a batch retried after a database outage, or a message the broker delivers again after a
  crash, adds no second row. Their payloads are bounded by collector.messages.rejected.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from collector.messages import CountRow, EventRow, Ignored, InfoRow, Parsed, Rejected, StatusRow, rejected
from edge.store.times import format_utc
from fleet import db as central
from fleet.schema import create_schema

log = logging.getLogger(__name__)

EVENT_COLUMNS = (
    "device", "uid", "camera", "species", "scientific_name", "confidence", "started_at", "ended_at",
    "frame_count", "individuals", "review", "model_species", "model_id", "model_version", "timezone",
    "change", "message_id", "order_key", "received_at",
)
SPECIES_COLUMNS = ("device", "uid", "species", "scientific_name", "individuals", "frames")
COUNT_COLUMNS = (
    "device", "day", "species", "scientific_name", "events", "frames", "individuals", "timezone",
    "updated_at", "message_id", "received_at",
)


class SinkUnavailable(Exception):
    """The database cannot take the batch now (down, restarting, connection lost): retry later."""


# SQLSTATE classes that mean "the server cannot take it now", not "this row is wrong".
_DOWN_CLASSES = ("08", "40", "53", "57", "58")
_SQLITE_DOWN = ("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_IOERR", "SQLITE_CANTOPEN", "SQLITE_FULL", "SQLITE_NOMEM",
                "SQLITE_READONLY", "SQLITE_PROTOCOL")


def database_down(exc: BaseException, conn: Any = None) -> bool:
    """Whether `exc` says the database is away (retry the batch later) rather than that the
    batch's content is wrong (find the message and reject it). See the module docstring."""
    if isinstance(exc, sqlite3.Error):
        name = getattr(exc, "sqlite_errorname", "") or ""
        return name.startswith(_SQLITE_DOWN)
    try:
        import psycopg
    except ImportError:  # pragma: no cover - a SQLite-only collector
        return False
    if not isinstance(exc, psycopg.Error):
        return False
    if conn is not None and (getattr(conn, "broken", False) or getattr(conn, "closed", False)):
        return True
    if isinstance(exc, psycopg.InterfaceError):
        return True
    state = getattr(exc, "sqlstate", None)
    if state is None:  # raised by the client, not the server: a connection that failed or was lost
        return isinstance(exc, psycopg.OperationalError)
    return state[:2] in _DOWN_CLASSES


@dataclass
class Message:
    """One message of a batch: where it came from and what it means."""

    topic: str
    parsed: Parsed
    raw: bytes | None = None  # the payload as received: what is kept if the database refuses the row


@dataclass
class WriteStats:
    events: int = 0
    counts: int = 0
    statuses: int = 0
    infos: int = 0
    rejected: int = 0
    ignored: int = 0

    def add(self, other: WriteStats) -> None:
        for name in vars(self):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class _DeviceUpdate:
    state: str | None = None
    info: InfoRow | None = None
    event: EventRow | None = None


@dataclass
class _Reduced:
    events: dict[tuple[str, str], EventRow] = field(default_factory=dict)
    counts: dict[tuple[str, str, str], CountRow] = field(default_factory=dict)
    devices: dict[str, _DeviceUpdate] = field(default_factory=dict)
    rejected: list[Rejected] = field(default_factory=list)
    stats: WriteStats = field(default_factory=WriteStats)


def reduce(batch: Sequence[Message]) -> _Reduced:
    """Fold a batch down to one write per key (the newest by the message's own order)."""
    out = _Reduced()
    for message in batch:
        row = message.parsed
        device = getattr(row, "device", None)
        if device is not None:
            update = out.devices.setdefault(device, _DeviceUpdate())
        if isinstance(row, EventRow):
            out.stats.events += 1
            key = (row.device, row.uid)
            kept = out.events.get(key)
            if kept is None or row.order_key > kept.order_key:
                out.events[key] = row
            update.event = row
        elif isinstance(row, CountRow):
            out.stats.counts += 1
            key3 = (row.device, row.day, row.species)
            kept3 = out.counts.get(key3)
            if kept3 is None or row.updated_at > kept3.updated_at:
                out.counts[key3] = row
        elif isinstance(row, StatusRow):
            out.stats.statuses += 1
            update.state = row.state
        elif isinstance(row, InfoRow):
            out.stats.infos += 1
            if update.info is None or row.published_at > update.info.published_at:
                update.info = row
        elif isinstance(row, Rejected):
            out.stats.rejected += 1
            out.rejected.append(row)
        elif isinstance(row, Ignored):
            out.stats.ignored += 1
    return out


def _event_values(row: EventRow, received: str) -> tuple[Any, ...]:
    return (row.device, row.uid, row.camera, row.species, row.scientific_name, row.confidence, row.started_at,
            row.ended_at, row.frame_count, row.individuals, row.review, row.model_species, row.model_id,
            row.model_version, row.timezone, row.change, row.message_id, row.order_key, received)


def _species_values(row: EventRow) -> list[tuple[Any, ...]]:
    return [(row.device, row.uid, s.species, s.scientific_name, s.individuals, s.frames) for s in row.species_counts]


def _count_values(row: CountRow, received: str) -> tuple[Any, ...]:
    return (row.device, row.day, row.species, row.scientific_name, row.events, row.frames, row.individuals,
            row.timezone, row.updated_at, row.message_id, received)


_EVENT_UPDATE = ", ".join(f"{c} = excluded.{c}" for c in EVENT_COLUMNS[2:])
_COUNT_UPDATE = ", ".join(f"{c} = excluded.{c}" for c in COUNT_COLUMNS[3:])


class Sink:
    """A connection to the central database that writes batches; reconnects on demand."""

    def __init__(self, db: str, *, clock: Any = None) -> None:
        self.db = db
        self.engine = central.engine_of(db)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._conn: Any = None
        self._mark = "%s" if self.engine == "postgresql" else "?"

    # -- connection -------------------------------------------------------------------------
    def open(self) -> None:
        """Connect (and create the schema) if not connected; SinkUnavailable when it cannot."""
        if self._conn is not None:
            return
        try:
            conn = central.connect(self.db)
            create_schema(conn, self.engine)
        except central.CentralDbError as exc:
            raise SinkUnavailable(str(exc)) from exc
        except Exception as exc:
            if self._is_connection_error(exc):
                raise SinkUnavailable(f"{central.redact(self.db)}: {exc}") from exc
            raise
        if self.engine == "postgresql":
            conn.execute(
                "CREATE TEMP TABLE IF NOT EXISTS events_in (LIKE events) ON COMMIT DELETE ROWS"
            )
            conn.execute(
                "CREATE TEMP TABLE IF NOT EXISTS event_species_in (LIKE event_species) ON COMMIT DELETE ROWS"
            )
            conn.commit()
        self._conn = conn

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001 - closing a broken connection may fail too
                pass
            self._conn = None

    def _is_connection_error(self, exc: BaseException) -> bool:
        return database_down(exc, self._conn)

    # -- writing ----------------------------------------------------------------------------
    def write(self, batch: Sequence[Message]) -> WriteStats:
        """Write one batch in one transaction; raise SinkUnavailable to have it retried.

        When the batch fails for a reason in the data, each message is written on its own and
        the ones the database refuses become rejected_messages rows. Only SinkUnavailable leaves
        this method: whatever else happens, every message of the batch ends stored or rejected.
        """
        self.open()
        try:
            return self._write(reduce(batch))
        except Exception as exc:
            self._raise_if_down(exc)
            log.warning("batch of %d refused (%s); writing its messages one by one", len(batch),
                        str(exc).strip()[:300])
        stats = WriteStats()
        for message in batch:
            try:
                stats.add(self._write(reduce([message])))
            except Exception as exc:  # noqa: BLE001 - the database's own verdict on this row
                self._raise_if_down(exc)
                stats.add(self._reject(message, f"refused by the database: {str(exc).strip()}"))
        return stats

    def _raise_if_down(self, exc: Exception) -> None:
        """SinkUnavailable (the connection closed) when `exc` says the database is away."""
        if isinstance(exc, SinkUnavailable):
            raise exc
        if self._is_connection_error(exc):
            self.close()
            raise SinkUnavailable(f"{central.redact(self.db)}: {exc}".strip()) from exc

    def _reject(self, message: Message, reason: str) -> WriteStats:
        """Store `message` as rejected (its raw payload when known). Should even that be refused
        for a reason other than the database being away, log it and go on: a message that
        cannot be stored in any form must still not hold the stream."""
        row = message.parsed
        raw = message.raw if message.raw is not None else json.dumps(vars(row), default=str).encode()
        bad = rejected(getattr(row, "device", None), message.topic, raw, reason)
        try:
            return self._write(reduce([Message(message.topic, bad)]))
        except Exception as exc:  # noqa: BLE001
            self._raise_if_down(exc)
            log.error("could not store the rejected message from %s (%d bytes, sha256 %s): %s",
                      bad.topic, bad.size, bad.sha256, exc)
            return WriteStats(rejected=1)

    def _write(self, reduced: _Reduced) -> WriteStats:
        received = format_utc(self._clock())
        if self.engine == "postgresql":
            self._write_postgres(reduced, received)
        else:
            self._write_sqlite(reduced, received)
        return reduced.stats

    def _device_seen(self, reduced: _Reduced, received: str) -> tuple[str, list[tuple[Any, ...]]]:
        """One upsert per device: first/last seen, and the events' model and zone until an info came.

        One statement for all of a batch's devices in PostgreSQL (unnest of arrays): a batch
        from a thousand devices touches hundreds of rows, and one statement per row cost more
        server time than the events themselves.
        """
        m = self._mark
        greatest = "GREATEST" if self.engine == "postgresql" else "max"
        least = "LEAST" if self.engine == "postgresql" else "min"
        rows = []
        for device, update in sorted(reduced.devices.items()):
            event = update.event
            rows.append((device, received, received, event.model_id if event else None,
                         event.model_version if event else None, event.timezone if event else None))
        keep = "CASE WHEN devices.info_at IS NULL THEN coalesce(excluded.{0}, devices.{0}) ELSE devices.{0} END"
        conflict = f"""ON CONFLICT (device) DO UPDATE SET first_seen = {least}(devices.first_seen, excluded.first_seen),
                 last_seen = {greatest}(devices.last_seen, excluded.last_seen),
                 model_id = {keep.format('model_id')}, model_version = {keep.format('model_version')},
                 timezone = {keep.format('timezone')}"""
        columns = "device, first_seen, last_seen, model_id, model_version, timezone"
        if self.engine == "postgresql":
            sql = (f"INSERT INTO devices ({columns}) SELECT * FROM unnest({m}::text[], {m}::timestamptz[], "
                   f"{m}::timestamptz[], {m}::text[], {m}::text[], {m}::text[]) {conflict}")
            return sql, [tuple(list(col) for col in zip(*rows))] if rows else []
        return f"INSERT INTO devices ({columns}) VALUES ({', '.join([m] * 6)}) {conflict}", rows

    def _device_statements(self, reduced: _Reduced, received: str) -> list[tuple[str, list[tuple[Any, ...]]]]:
        m = self._mark
        jcast = "::jsonb" if self.engine == "postgresql" else ""
        states = [(u.state, received, d) for d, u in sorted(reduced.devices.items()) if u.state]
        infos = [
            (i.software_version, i.model_id, i.model_version, i.detector_id, i.timezone, json.dumps(i.cameras),
             json.dumps(i.deployments), i.published_at, d, i.published_at)
            for d, u in sorted(reduced.devices.items()) if (i := u.info) is not None
        ]
        return [
            self._device_seen(reduced, received),
            (f"UPDATE devices SET state = {m}, state_at = {m} WHERE device = {m}", states),
            (f"""UPDATE devices SET software_version = {m}, model_id = {m}, model_version = {m}, detector_id = {m},
                 timezone = {m}, cameras = {m}{jcast}, deployments = {m}{jcast}, info_at = {m}
                 WHERE device = {m} AND (info_at IS NULL OR info_at < {m})""", infos),
        ]

    def _rest_statements(self, reduced: _Reduced, received: str) -> list[tuple[str, list[tuple[Any, ...]]]]:
        m = self._mark
        counts = [_count_values(r, received) for r in reduced.counts.values()]
        rejects = [(received, r.topic, r.payload, r.reason, r.size, r.sha256) for r in reduced.rejected]
        return [
            (f"""INSERT INTO day_counts ({', '.join(COUNT_COLUMNS)}) VALUES ({', '.join([m] * len(COUNT_COLUMNS))})
                 ON CONFLICT (device, day, species) DO UPDATE SET {_COUNT_UPDATE}
                 WHERE excluded.updated_at > day_counts.updated_at""", counts),
            (f"""INSERT INTO rejected_messages (received_at, topic, payload, reason, payload_size, payload_sha256)
                 VALUES ({m}, {m}, {m}, {m}, {m}, {m}) ON CONFLICT (topic, payload_sha256) DO NOTHING""", rejects),
        ]

    def _write_sqlite(self, reduced: _Reduced, received: str) -> None:
        conn: sqlite3.Connection = self._conn
        events = [_event_values(r, received) for r in reduced.events.values()]
        # The event's stored row is older than this message (or there is none): the upsert below applies it.
        newer = "NOT EXISTS (SELECT 1 FROM events WHERE device = ? AND uid = ? AND order_key >= ?)"
        replaced = [(r.device, r.uid, r.device, r.uid, r.order_key) for r in reduced.events.values()]
        species = [v + (r.device, r.uid, r.order_key) for r in reduced.events.values() for v in _species_values(r)]
        conn.execute("BEGIN IMMEDIATE")
        try:
            if events:
                conn.executemany(f"DELETE FROM event_species WHERE device = ? AND uid = ? AND {newer}", replaced)
                if species:
                    conn.executemany(
                        f"""INSERT INTO event_species ({', '.join(SPECIES_COLUMNS)})
                            SELECT {', '.join('?' * len(SPECIES_COLUMNS))} WHERE {newer}""",
                        species,
                    )
                conn.executemany(
                    f"""INSERT INTO events ({', '.join(EVENT_COLUMNS)}) VALUES ({', '.join('?' * len(EVENT_COLUMNS))})
                        ON CONFLICT (device, uid) DO UPDATE SET {_EVENT_UPDATE}
                        WHERE excluded.order_key > events.order_key""",
                    events,
                )
            for sql, rows in self._rest_statements(reduced, received) + self._device_statements(reduced, received):
                if rows:
                    conn.executemany(sql, rows)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _write_postgres(self, reduced: _Reduced, received: str) -> None:
        conn = self._conn
        columns = ", ".join(EVENT_COLUMNS)
        try:
            with conn.cursor() as cur:
                if reduced.events:
                    with cur.copy(f"COPY events_in ({columns}) FROM STDIN") as copy:
                        for row in reduced.events.values():
                            copy.write_row(_event_values(row, received))
                    with cur.copy(f"COPY event_species_in ({', '.join(SPECIES_COLUMNS)}) FROM STDIN") as copy:
                        for row in reduced.events.values():
                            for values in _species_values(row):
                                copy.write_row(values)
                    cur.execute(
                        f"""INSERT INTO events ({columns}) SELECT {columns} FROM events_in
                            ON CONFLICT (device, uid) DO UPDATE SET {_EVENT_UPDATE}
                            WHERE excluded.order_key > events.order_key
                            RETURNING device, uid"""
                    )
                    applied = cur.fetchall()  # the events this batch changed: their species lists are replaced
                    if applied:
                        keys = [[d for d, _ in applied], [u for _, u in applied]]
                        cur.execute(
                            """DELETE FROM event_species s USING unnest(%s::text[], %s::text[]) AS a (device, uid)
                               WHERE s.device = a.device AND s.uid = a.uid""", keys)
                        cur.execute(
                            f"""INSERT INTO event_species ({', '.join(SPECIES_COLUMNS)})
                                SELECT {', '.join('n.' + c for c in SPECIES_COLUMNS)} FROM event_species_in n
                                JOIN unnest(%s::text[], %s::text[]) AS a (device, uid)
                                  ON n.device = a.device AND n.uid = a.uid""", keys)
                for sql, rows in self._rest_statements(reduced, received) + self._device_statements(reduced, received):
                    if rows:
                        cur.executemany(sql, rows)
            conn.commit()
        except BaseException:
            try:
                conn.rollback()
            except Exception:  # noqa: BLE001 - the connection may be gone; close() follows
                pass
            raise
