"""Which tables a database has: the test every reader of an older database makes.

A station's database may be older than the code reading it (a copy from the field, a
`--db` of last year, a development file made before a migration): a reader that uses a table
added by a later schema (`taxa` in 5; `event_species`, `frame_objects`, `hourly_visits` in 6;
`daily_tallies`) asks first and falls back when it is missing. A leaf module, so that the
schema's own modules (counts, hourly) can ask too without an import circle.
"""

from __future__ import annotations

from typing import Any


def has_table(conn: Any, name: str) -> bool:
    """Whether the database on `conn` (sqlite3 or any DB-API connection to SQLite) has the table `name`."""
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None
