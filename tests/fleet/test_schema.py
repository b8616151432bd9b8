"""The central schema on both engines: idempotent, versioned, ordered event keys."""

from __future__ import annotations

import subprocess
import sys

import pytest

from fleet import schema
from fleet.db import connect, engine_of, redact


def _tables(conn, engine: str) -> set[str]:
    sql = ("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
           if engine == "postgresql" else "SELECT name FROM sqlite_master WHERE type = 'table'")
    return {row[0] for row in conn.execute(sql).fetchall()}


def test_create_schema_is_idempotent_and_versioned(central_db: str) -> None:
    engine = engine_of(central_db)
    conn = connect(central_db)
    try:
        assert schema.schema_version(conn, engine) is None
        schema.create_schema(conn, engine)
        schema.create_schema(conn, engine)
        assert schema.schema_version(conn, engine) == schema.SCHEMA_VERSION
        assert {"central_meta", "devices", "events", "day_counts", "event_species",
                "rejected_messages"} <= _tables(conn, engine)
        mark = "%s" if engine == "postgresql" else "?"
        conn.execute(f"UPDATE central_meta SET value = {mark} WHERE key = 'schema_version'", (str(schema.SCHEMA_VERSION + 1),))
        conn.commit() if engine == "postgresql" else None
        with pytest.raises(schema.SchemaError, match="newer than this trailcam"):
            schema.create_schema(conn, engine)
    finally:
        conn.close()


def test_a_schema_1_database_is_migrated_and_its_events_count_their_species(central_db: str) -> None:
    """A central database written before `event_species` (schema 1): the collector's start adds
    the table and gives each stored event one row, its species and individuals as published."""
    engine = engine_of(central_db)
    mark = "%s" if engine == "postgresql" else "?"
    conn = connect(central_db)
    try:
        for statement in schema.ddl(engine):
            if "event_species" not in statement:
                conn.execute(statement)
        conn.execute(f"INSERT INTO central_meta (key, value) VALUES ({mark}, '1')", ("schema_version",))
        insert = (f"INSERT INTO events (device, uid, camera, species, scientific_name, started_at, ended_at, "
                  f"frame_count, individuals, change, message_id, order_key, received_at) VALUES "
                  f"({', '.join([mark] * 13)})")
        at = "2026-11-29T06:00:00.000Z"
        for uid, species, individuals in (("a", "Blue Jay", 2), ("b", None, 1)):  # b: a rejected visit
            conn.execute(insert, ("dev", uid, "feeder", species, None, at, at, 3, individuals, "end", uid,
                                  schema.event_order_key("end", 3, None), at))
        conn.commit()
        schema.create_schema(conn, engine)
        schema.create_schema(conn, engine)  # the next start: nothing more to do
        assert schema.schema_version(conn, engine) == schema.SCHEMA_VERSION == 2
        rows = conn.execute("SELECT device, uid, species, individuals, frames FROM event_species").fetchall()
        assert [tuple(r) for r in rows] == [("dev", "a", "Blue Jay", 2, 3)]
    finally:
        conn.close()


def test_order_key_orders_changes_frames_and_reviews() -> None:
    keys = [
        schema.event_order_key("new", 1, None),
        schema.event_order_key("update", 2, None),
        schema.event_order_key("update", 10, None),
        schema.event_order_key("end", 10, None),
        schema.event_order_key("update", 10, "2026-12-02T05:00:00.000Z"),
        schema.event_order_key("update", 10, "2026-12-02T05:00:01.000Z"),
    ]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)


def test_edge_fleet_imports_without_psycopg() -> None:
    """The edge on a Pi has no psycopg: importing the fleet modules must not need it."""
    code = (
        "import sys; sys.modules['psycopg'] = None\n"
        "import fleet.schema, fleet.db\n"
        "print('psycopg' in sys.modules and sys.modules['psycopg'] is not None)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_engine_and_redaction() -> None:
    assert engine_of("postgresql://u:pw@h/db") == "postgresql"
    assert engine_of("postgres://h/db") == "postgresql"
    assert engine_of("/var/lib/trailcam/central.sqlite") == "sqlite"
    assert redact("postgresql://u:pw@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert "pw" not in redact("postgresql://u:pw@h:5432/db")
    assert redact("postgresql://u@h/db?sslmode=require&password=pw&x=1") == \
        "postgresql://u@h/db?sslmode=require&password=***&x=1"


def test_a_development_schema_2_gets_the_rejected_messages_columns(central_db: str) -> None:
    """A central database created before `payload_size`/`payload_sha256` (schema 2 of a
    development build): the collector's start adds them and the once-per-digest index, and
    keeps the rows already there."""
    engine = engine_of(central_db)
    mark = "%s" if engine == "postgresql" else "?"
    conn = connect(central_db)
    try:
        for statement in schema.ddl(engine):
            if "rejected_messages" not in statement:
                conn.execute(statement)
        serial = ("bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY" if engine == "postgresql"
                  else "integer PRIMARY KEY AUTOINCREMENT")
        conn.execute(f"CREATE TABLE rejected_messages (id {serial}, received_at text NOT NULL, topic text NOT NULL, "
                     "payload text NOT NULL, reason text NOT NULL)")
        conn.execute(f"INSERT INTO central_meta (key, value) VALUES ({mark}, '2')", ("schema_version",))
        conn.execute(f"INSERT INTO rejected_messages (received_at, topic, payload, reason) VALUES ({mark}, {mark}, "
                     f"{mark}, {mark})", ("2026-11-29T06:00:00.000Z", "trailcam/a/events", "x", "old"))
        conn.commit()
        schema.create_schema(conn, engine)
        schema.create_schema(conn, engine)
        insert = (f"INSERT INTO rejected_messages (received_at, topic, payload, reason, payload_size, payload_sha256) "
                  f"VALUES ({mark}, {mark}, {mark}, {mark}, {mark}, {mark}) ON CONFLICT (topic, payload_sha256) DO NOTHING")
        for _ in range(2):
            conn.execute(insert, ("2026-11-29T06:00:00.000Z", "trailcam/a/events", "y", "new", 1, "ab" * 32))
        conn.commit()
        rows = conn.execute("SELECT reason, payload_size FROM rejected_messages ORDER BY id").fetchall()
        assert [tuple(r) for r in rows] == [("old", None), ("new", 1)]
    finally:
        conn.close()
