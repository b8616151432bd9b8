"""Opening the central database: a `postgresql://` URL or a SQLite file path, one helper.

Why one helper: the collector and the edge's fleet readers must agree on the engine rules (a
URL is PostgreSQL, anything else a SQLite path) and on the connection settings (SQLite in WAL
with a busy timeout; PostgreSQL with autocommit off). psycopg is imported only when a
PostgreSQL URL is opened, so the edge on a Pi (no psycopg) still imports this module.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any, Literal

Engine = Literal["postgresql", "sqlite"]
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


class CentralDbError(Exception):
    """The central database cannot be opened (bad URL, psycopg missing, server away)."""


def engine_of(db: str | Path) -> Engine:
    """`postgresql` for a postgresql:// (or postgres://) URL, `sqlite` for anything else."""
    return "postgresql" if str(db).startswith(POSTGRES_SCHEMES) else "sqlite"


def redact(db: str | Path) -> str:
    """The URL without its password (user:password@ or a `password=` parameter), for logs,
    error messages and the fleet view's pages."""
    text = str(db)
    if engine_of(text) != "postgresql":
        return text
    text = re.sub(r"([?&]password=)[^&]*", r"\1***", text)
    if "@" not in text:
        return text
    scheme, rest = text.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else text


def connect(db: str | Path, *, busy_timeout_s: float = 30.0, connect_timeout_s: float = 10.0) -> Any:
    """A connection to the central database (sqlite3.Connection or psycopg.Connection).

    PostgreSQL: psycopg's default (a transaction opens with the first statement; commit()).
    SQLite: `isolation_level=None`, so the writer says `BEGIN IMMEDIATE` itself and a batch is
    exactly one transaction (Python's implicit BEGIN would not cover the DDL); WAL so readers
    (`edge counts --db central.sqlite`) never block the collector.
    """
    if engine_of(db) == "postgresql":
        try:
            import psycopg  # lazy: only the collector host has it (the `collector` extra)
        except ImportError:  # pragma: no cover - depends on the environment
            raise CentralDbError(
                "a postgresql:// database needs psycopg 3: pip install 'trailcam[collector]'"
            ) from None
        try:
            return psycopg.connect(str(db), connect_timeout=max(1, int(connect_timeout_s)))
        except psycopg.Error as exc:
            raise CentralDbError(f"{redact(db)}: {exc}".strip()) from exc
    path = Path(db)
    if path.parent and not path.parent.exists():
        raise CentralDbError(f"{path}: folder {path.parent} does not exist")
    conn = sqlite3.connect(str(path), timeout=busy_timeout_s, check_same_thread=False, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn
