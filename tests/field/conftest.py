"""Fixtures for the field-operation tests: a real SQLite database with the documented schema."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlite_utils

# The schema of docs/ARCHITECTURE.md ("Edge database"), used to test retention and health
# standalone; the daemon-level tests use the real edge.store.
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS frames(id INTEGER PRIMARY KEY, path TEXT, sha256 TEXT UNIQUE, camera TEXT,
  size INTEGER, mtime REAL, captured_at TEXT, time_source TEXT, processed_at TEXT, status TEXT, error TEXT,
  model_id TEXT, inference_ms REAL, species TEXT, confidence REAL, event_id INTEGER, stored_path TEXT);
CREATE INDEX IF NOT EXISTS frames_camera_time ON frames(camera, captured_at);
CREATE INDEX IF NOT EXISTS frames_status ON frames(status);
CREATE INDEX IF NOT EXISTS frames_path ON frames(path);
CREATE TABLE IF NOT EXISTS predictions(frame_id INTEGER, rank INTEGER, label TEXT, score REAL,
  PRIMARY KEY(frame_id, rank));
CREATE TABLE IF NOT EXISTS events(id INTEGER PRIMARY KEY, uid TEXT UNIQUE, camera TEXT, species TEXT,
  confidence REAL, started_at TEXT, ended_at TEXT, frame_count INTEGER, model_id TEXT, state TEXT);
CREATE TABLE IF NOT EXISTS daily_tallies(day TEXT, camera TEXT, species TEXT, events INTEGER, frames INTEGER,
  PRIMARY KEY(day, camera, species));
CREATE TABLE IF NOT EXISTS outbox(id INTEGER PRIMARY KEY AUTOINCREMENT, created_at TEXT, topic TEXT,
  payload TEXT, qos INTEGER, retain INTEGER, kind TEXT);
"""


def create_schema(path: Path) -> sqlite_utils.Database:
    conn = sqlite3.connect(str(path))
    conn.executescript(SCHEMA + "PRAGMA journal_mode=WAL;")
    conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', '1')")
    conn.commit()
    return sqlite_utils.Database(conn)


@pytest.fixture
def field_db(tmp_path: Path) -> sqlite_utils.Database:
    (tmp_path / "state").mkdir()
    db = create_schema(tmp_path / "state" / "edge.db")
    yield db
    db.close()


def add_frame(db: sqlite_utils.Database, path: Path | str, *, status: str = "ok", species: str | None = "robin",
              confidence: float = 0.9, captured_at: str = "2026-11-28T10:00:00Z",
              processed_at: str | None = None, error: str | None = None) -> int:
    """Insert one committed frame row (as edge.store would) and return its id."""
    with db.atomic():
        cursor = db.execute(
            "INSERT INTO frames(path, sha256, camera, size, captured_at, time_source, processed_at, status, "
            "error, model_id, inference_ms, species, confidence) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (str(path), f"sha-{path}-{captured_at}", "cam1", 10, captured_at, "exif",
             processed_at or captured_at, status, error, "test-model", 12.0,
             species if status == "ok" else None, confidence if status == "ok" else None))
        frame_id = cursor.lastrowid
        if status == "ok":
            db.execute("INSERT INTO predictions VALUES (?, 0, ?, ?)", (frame_id, species, confidence))
    return frame_id
