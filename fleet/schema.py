"""The central schema, one definition for PostgreSQL and SQLite (docs/fleet.md, "Schema").

Why it looks like this:
- One row per event per device (`events`, PRIMARY KEY (device, uid)), upserted: a device
  publishes every change of an event (new, each update, end, each review) and the collector
  keeps the newest. "Newest" is `order_key`, computed from the message (never the arrival
  order, which QoS 1 redelivery, shared subscriptions and replays scramble): see
  `event_order_key`. An older or equal key never overwrites (the upsert's WHERE), so replays
  and duplicates leave the same row.
- `day_counts` holds the devices' own retained per-species tallies (`counts/<species>`), the
  newest `updated_at` winning; they are the device's truth for a day and let the central side
  check its events against the device (equal when nothing is missing).
- `devices`: one row per device, from every message (last_seen), the status topic (state and
  its will), the retained `info` topic (versions, time zone, cameras, deployments) and, until
  an info arrives, the events' model_id and timezone.
- `event_species`: what each event counts per species (a visit may hold several; edge/store/events.py,
  "Per-species counts in a visit"), from the payload's `species_counts` (older devices: the one
  row (species, individuals)). Replaced whole together with the event row, only when the
  message is newer by the same `order_key`, so it is always the applied message's list.
- `rejected_messages`: payloads the collector could not use, with the reason; acknowledged
  so a poison message cannot block the stream, kept so nothing vanishes silently. Bounded: the
  payload's first 4 KiB with its size and sha256, and once per (topic, digest), so a retried
  batch or a redelivery adds no row (a 10 MB poison became 49 rows, 513 MB, before).
- Times: `timestamptz` in PostgreSQL; in SQLite ISO 8601 UTC text with milliseconds and `Z`
  (edge.store.times.format_utc), whose text order is time order. Days: `date` / 'YYYY-MM-DD'.
  JSON: `jsonb` / text.
- `create_schema` is idempotent (IF NOT EXISTS everywhere) and records `schema_version` in
  `central_meta`; in PostgreSQL it holds an advisory lock so collectors starting together do
  not race on the DDL. A database from a newer trailcam is refused, not altered; one from an
  older trailcam is brought up to date by the `MIGRATIONS` steps in the same transaction.
"""

from __future__ import annotations

from typing import Any

from fleet.db import Engine

SCHEMA_VERSION = 2
_ADVISORY_LOCK = 0x7472_6C63  # "trlc": serialises concurrent create_schema calls in PostgreSQL

CHANGE_RANK = {"new": 0, "update": 1, "end": 2}
DEVICE_STATES = ("online", "offline", "stopped", "unknown")


class SchemaError(Exception):
    """The central database's schema is from a newer trailcam (or not ours)."""


def event_order_key(change: str, frame_count: int, reviewed_at: str | None) -> str:
    """The total order of one event's messages, as sortable text.

    A review (its message id ends `:reviewed:<ts>`) happens after the frames it saw, and every
    later message of the event carries the same or a newer `reviewed_at`, so the review time
    leads; then the frame count (an event only grows); then new < update < end for messages
    of the same frame. Undoing a review publishes a newer `reviewed_at`, so it wins too.
    Fixed-width fields so byte order is the order (the PostgreSQL column is COLLATE "C").
    """
    review = reviewed_at or "0"
    return f"{review}|{int(frame_count):012d}|{CHANGE_RANK[change]}"


def _types(engine: Engine) -> dict[str, str]:
    if engine == "postgresql":
        return {"ts": "timestamptz", "day": "date", "json": "jsonb", "key": 'text COLLATE "C"',
                "serial": "bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY", "real": "double precision"}
    return {"ts": "text", "day": "text", "json": "text", "key": "text",
            "serial": "integer PRIMARY KEY AUTOINCREMENT", "real": "real"}


def ddl(engine: Engine) -> list[str]:
    """The CREATE statements of the central schema for `engine`, in order."""
    t = _types(engine)
    return [
        "CREATE TABLE IF NOT EXISTS central_meta (key text PRIMARY KEY, value text NOT NULL)",
        f"""CREATE TABLE IF NOT EXISTS devices (
            device text PRIMARY KEY,
            first_seen {t['ts']} NOT NULL,
            last_seen {t['ts']} NOT NULL,
            state text NOT NULL DEFAULT 'unknown'
                CHECK (state IN ('online', 'offline', 'stopped', 'unknown')),
            state_at {t['ts']},
            software_version text,
            model_id text,
            model_version text,
            detector_id text,
            timezone text,
            cameras {t['json']},
            deployments {t['json']},
            info_at {t['ts']}
        )""",
        f"""CREATE TABLE IF NOT EXISTS events (
            device text NOT NULL,
            uid text NOT NULL,
            camera text NOT NULL,
            species text,
            scientific_name text,
            confidence {t['real']},
            started_at {t['ts']} NOT NULL,
            ended_at {t['ts']} NOT NULL,
            frame_count integer NOT NULL,
            individuals integer NOT NULL,
            review text,
            model_species text,
            model_id text,
            model_version text,
            timezone text,
            change text NOT NULL CHECK (change IN ('new', 'update', 'end')),
            message_id text NOT NULL,
            order_key {t['key']} NOT NULL,
            received_at {t['ts']} NOT NULL,
            PRIMARY KEY (device, uid)
        )""",
        "CREATE INDEX IF NOT EXISTS events_started ON events (started_at)",
        "CREATE INDEX IF NOT EXISTS events_device_started ON events (device, started_at)",
        "CREATE INDEX IF NOT EXISTS events_species_started ON events (species, started_at)",
        """CREATE TABLE IF NOT EXISTS event_species (
            device text NOT NULL,
            uid text NOT NULL,
            species text NOT NULL,
            scientific_name text,
            individuals integer NOT NULL,
            frames integer NOT NULL,
            PRIMARY KEY (device, uid, species)
        )""",
        "CREATE INDEX IF NOT EXISTS event_species_species ON event_species (species)",
        f"""CREATE TABLE IF NOT EXISTS day_counts (
            device text NOT NULL,
            day {t['day']} NOT NULL,
            species text NOT NULL,
            scientific_name text,
            events integer NOT NULL,
            frames integer NOT NULL,
            individuals integer NOT NULL,
            timezone text,
            updated_at {t['ts']} NOT NULL,
            message_id text NOT NULL,
            received_at {t['ts']} NOT NULL,
            PRIMARY KEY (device, day, species)
        )""",
        f"""CREATE TABLE IF NOT EXISTS rejected_messages (
            id {t['serial']},
            received_at {t['ts']} NOT NULL,
            topic text NOT NULL,
            payload text NOT NULL,
            reason text NOT NULL,
            payload_size integer,
            payload_sha256 text
        )""",
        # A rejected message is stored once however often it comes (a redelivery, a retried batch).
        "CREATE UNIQUE INDEX IF NOT EXISTS rejected_messages_once ON rejected_messages (topic, payload_sha256)",
    ]


# Columns added to a table of schema 2 before it was released (a central database created by a
# development build has the table without them); added on start when missing, both engines.
ADDED_COLUMNS = {"rejected_messages": (("payload_size", "integer"), ("payload_sha256", "text"))}


def _v1_to_v2(conn: Any, engine: Engine) -> None:
    """Schema 2 adds `event_species` (created by the DDL): the events already stored count one
    species each, as the devices published them then (species, individuals)."""
    conn.execute(
        """INSERT INTO event_species (device, uid, species, scientific_name, individuals, frames)
           SELECT device, uid, species, scientific_name, individuals, frame_count FROM events
           WHERE species IS NOT NULL ON CONFLICT DO NOTHING""")


# Index i migrates schema version i + 1 to i + 2 (version 1 is the first schema). Append; never
# edit a released step (a central database may be of any earlier version).
MIGRATIONS = [_v1_to_v2]
assert len(MIGRATIONS) == SCHEMA_VERSION - 1


def create_schema(conn: Any, engine: Engine) -> None:
    """Create the central tables if missing and record the schema version; commit.

    Safe to call on every start and from several collectors at once. Raises SchemaError for a
    database whose recorded version is newer than this code's.
    """
    if engine == "postgresql":
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_ADVISORY_LOCK,))
            _apply(conn, engine, "%s")
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        _apply(conn, engine, "?")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _apply(conn: Any, engine: Engine, mark: str) -> None:
    for statement in ddl(engine)[:1]:
        conn.execute(statement)
    row = conn.execute(f"SELECT value FROM central_meta WHERE key = {mark}", ("schema_version",)).fetchone()
    if row is not None and int(row[0]) > SCHEMA_VERSION:
        raise SchemaError(
            f"central database schema version {row[0]} is newer than this trailcam's ({SCHEMA_VERSION}): upgrade trailcam"
        )
    for statement in ddl(engine)[1:]:
        if statement.startswith("CREATE UNIQUE INDEX IF NOT EXISTS rejected_messages_once"):
            _add_missing_columns(conn, engine)
        conn.execute(statement)
    if row is None:
        conn.execute(
            f"INSERT INTO central_meta (key, value) VALUES ({mark}, {mark})", ("schema_version", str(SCHEMA_VERSION))
        )
        return
    for version in range(int(row[0]), SCHEMA_VERSION):
        MIGRATIONS[version - 1](conn, engine)
    if int(row[0]) < SCHEMA_VERSION:
        conn.execute(f"UPDATE central_meta SET value = {mark} WHERE key = {mark}",
                     (str(SCHEMA_VERSION), "schema_version"))


def _add_missing_columns(conn: Any, engine: Engine) -> None:
    for table, columns in ADDED_COLUMNS.items():
        if engine == "postgresql":
            for name, kind in columns:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {name} {kind}")
            continue
        present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})").fetchall()}
        for name, kind in columns:
            if name not in present:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")


def schema_version(conn: Any, engine: Engine) -> int | None:
    """The recorded schema version, or None for a database without the central schema."""
    mark = "%s" if engine == "postgresql" else "?"
    table = conn.execute(
        "SELECT 1 FROM information_schema.tables WHERE table_name = 'central_meta'"
        if engine == "postgresql"
        else "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'central_meta'"
    ).fetchone()
    if table is None:
        return None
    row = conn.execute(f"SELECT value FROM central_meta WHERE key = {mark}", ("schema_version",)).fetchone()
    return None if row is None else int(row[0])
