"""The names behind each species label: scientific and common, as the models that used it gave them.

The database stores a species by its label (what the model calls the class). Exports for
ecologists (Camtrap DP's scientificName, COCO Camera Traps' categories) need the scientific
name, and the model that knew it may have been replaced since: so the daemon records every
label of the model it starts with in `taxa`, and readers take the names from the database
alone. A label recorded earlier keeps the names it had unless the new model gives some.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import sqlite_utils

from edge.store.tables import has_table
from edge.store.times import format_utc


class NamedLabel(Protocol):
    name: str
    scientific_name: str | None
    common_name: str | None


@dataclass(frozen=True)
class Taxon:
    name: str
    scientific_name: str | None
    common_name: str | None
    model_id: str | None


def create_table(db: sqlite_utils.Database) -> None:
    db.execute(
        """
        CREATE TABLE IF NOT EXISTS taxa (
            name TEXT PRIMARY KEY,
            scientific_name TEXT,
            common_name TEXT,
            model_id TEXT,
            updated_at TEXT NOT NULL
        )
        """
    )


def record_taxa(db: sqlite_utils.Database, labels: Iterable[NamedLabel], model_id: str | None,
                now: datetime | None = None) -> int:
    """Upsert each label's names (inside the caller's transaction); returns how many labels."""
    stamp = format_utc(now or datetime.now(UTC))
    # A rolled-up taxon (edge.classify.taxonomy.Taxon: "Turdus sp.", "Turdidae") says its rank;
    # a model's label is a species (or whatever it is: NULL, read as a species by the exports).
    rows = [(label.name, label.scientific_name, label.common_name, model_id, stamp, getattr(label, "rank", None))
            for label in labels]
    db.conn.executemany(
        """
        INSERT INTO taxa (name, scientific_name, common_name, model_id, updated_at, rank) VALUES (?, ?, ?, ?, ?, ?)
        ON CONFLICT (name) DO UPDATE SET
            scientific_name = COALESCE(excluded.scientific_name, taxa.scientific_name),
            common_name = COALESCE(excluded.common_name, taxa.common_name),
            model_id = excluded.model_id,
            updated_at = excluded.updated_at,
            rank = COALESCE(excluded.rank, taxa.rank)
        """,
        rows,
    )
    return len(rows)


def ranks(db: sqlite_utils.Database) -> dict[str, str]:
    """Recorded label → its rank where one was recorded (rolled-up taxa; schema 6)."""
    if not any(row[1] == "rank" for row in db.conn.execute("PRAGMA table_info(taxa)")):
        return {}
    return {name: rank for name, rank in db.conn.execute("SELECT name, rank FROM taxa WHERE rank IS NOT NULL")}


def taxa(db: sqlite_utils.Database | sqlite3.Connection) -> dict[str, Taxon]:
    """Every recorded label → its names (empty for a database older than schema 5); `db`: the
    store's sqlite-utils Database or a plain connection (the web app's read-only one)."""
    conn = db.conn if isinstance(db, sqlite_utils.Database) else db
    if not has_table(conn, "taxa"):
        return {}
    return {row[0]: Taxon(*row) for row in conn.execute(
        "SELECT name, scientific_name, common_name, model_id FROM taxa")}
