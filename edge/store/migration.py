"""Opening the writer's database: WAL, how durable a commit is, and the migration to this
release's schema with a backup copy kept until it commits.

Why its own module: this runs once, when the Store opens, and has nothing to do with the
frame's transaction the Store exists for; a failed start (a newer schema, a migration that
fails, no space for the backup) must close the connection and say which file and what to do.
The migration steps themselves are edge/store/schema.py's.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlite_utils

from edge.store import clips, repeats
from edge.store.counts import META_MIN_FRAMES
from edge.store.db import StoreError, connect, immediate, schema_version
from edge.store.schema import MIGRATIONS, SCHEMA_VERSION

# The store's log lines keep the one name they always had (operators' filters and log formats
# name it), wherever in edge/store the line is written.
log = logging.getLogger("edge.store.writer")


def open_for_writing(path: Path, *, station_tz: ZoneInfo, species_min_frames: int, busy_timeout_s: float,
                     durable_commits: bool, station_id: str | None) -> sqlite_utils.Database:
    """The writer's database, created or migrated to SCHEMA_VERSION, in WAL mode; StoreError
    (the connection closed) when it cannot be used."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StoreError(f"{path.parent}: cannot create the database folder: {error.strerror or error}") from None
    conn = connect(path, busy_timeout_s=busy_timeout_s)
    db = sqlite_utils.Database(conn)
    try:
        db.enable_wal()
        # FULL fsyncs the WAL at every commit: a committed frame survives a power cut, which
        # matters when post-processing moves or deletes the file right after the commit.
        # NORMAL (still crash-safe, never corrupt) may lose the last commits on a power cut;
        # when frames stay in the camera folder they are simply processed again at start,
        # so the daemon uses NORMAL then and saves an fsync per frame (milliseconds on an SD card).
        db.execute(f"PRAGMA synchronous = {'FULL' if durable_commits else 'NORMAL'}")
        migrate(db, path, station_tz=station_tz, species_min_frames=species_min_frames, station_id=station_id)
    except StoreError:
        conn.close()
        raise
    except sqlite3.DatabaseError as error:
        conn.close()
        raise StoreError(f"{path}: cannot use the database: {error}") from None
    return db


def migrate(db: sqlite_utils.Database, path: Path, *, station_tz: ZoneInfo, species_min_frames: int,
            station_id: str | None) -> None:
    """Bring the database to SCHEMA_VERSION in one transaction and write the station's meta
    rows; a database of an earlier schema is copied first (backup_before_migrating)."""
    backup = backup_before_migrating(db, path)
    try:
        with immediate(db.conn):
            db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            version = schema_version(db) or 0
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{path}: schema version {version} is newer than this trailcam ({SCHEMA_VERSION}); upgrade trailcam"
                )
            # Reports read the station's zone from here, so `edge counts --db F` needs no config;
            # the web app's reviews recount visits by the daemon's rule (edge/store/counts.py).
            # Written first: a migration that recounts visits follows them too. A different
            # zone is refused before the store opens (edge run --force-timezone changes it):
            # here the change is only said.
            stored = db.execute("SELECT value FROM meta WHERE key = 'timezone'").fetchone()
            if stored and stored[0] and stored[0] != station_tz.key:
                log.warning("station.timezone: database %s changes from %s to %s: reports use %s from now "
                            "on; days already tallied keep their %s days", path, stored[0],
                            station_tz.key, station_tz.key, stored[0])
            db.table("meta").upsert({"key": "timezone", "value": station_tz.key}, pk="key")
            db.table("meta").upsert({"key": META_MIN_FRAMES, "value": str(species_min_frames)}, pk="key")
            # A new database is created by the same steps; it says one line, not one per step
            # (five "migrating" lines on a first start read like an upgrade going on).
            if version == 0:
                log.info("database %s: created, schema %d", path, SCHEMA_VERSION)
            for step in range(version, SCHEMA_VERSION):
                if version:
                    log.info("database %s: migrating schema %d → %d", path, step, step + 1)
                MIGRATIONS[step](db)
            # Schema 6 is unreleased: a database an earlier build of it made lacks these (idempotent).
            repeats.create_tables(db.conn)
            clips.create_tables(db.conn)
            db.table("meta").upsert({"key": "schema_version", "value": str(SCHEMA_VERSION)}, pk="key")
            if station_id:
                db.table("meta").upsert({"key": "station_id", "value": station_id}, pk="key")
    except (sqlite3.DatabaseError, StoreError) as error:
        if backup is not None:
            raise StoreError(f"{path}: migration failed ({error}); the database before it is kept "
                             f"in {backup}") from None
        raise
    if backup is not None:
        backup.unlink(missing_ok=True)
        log.info("database %s: migrated to schema %d; removed the backup taken before it", path, SCHEMA_VERSION)


def backup_before_migrating(db: sqlite_utils.Database, path: Path) -> Path | None:
    """A copy of a database that is about to be migrated, next to it, kept until the
    migration commits: the migration is one transaction, so SQLite alone rolls a failure
    back, but a copy is what an operator wants in hand when a new release touches months
    of counts (a power cut during the copy leaves the original untouched; a copy left from
    a failed earlier try is overwritten). Taken with SQLite's online backup, so the WAL's
    committed content is in it. None when there is nothing to migrate."""
    try:
        version = schema_version(db) or 0
    except sqlite3.DatabaseError:
        return None  # a new or foreign file: the migration itself says what is wrong
    if version == 0 or version >= SCHEMA_VERSION:
        return None
    target = path.with_name(f"{path.name}.schema{version}.bak")
    partial = target.with_name(target.name + ".partial")
    try:
        copy = sqlite3.connect(partial)
        try:
            db.conn.backup(copy)
        finally:
            copy.close()
        os.replace(partial, target)
    except (OSError, sqlite3.DatabaseError) as error:
        partial.unlink(missing_ok=True)
        raise StoreError(f"{path}: schema {version} needs migrating to {SCHEMA_VERSION}, but the backup "
                         f"copy {target} cannot be written ({error}); free some space and start again") from None
    log.info("database %s: schema %d → %d; backup copy in %s until the migration commits",
             path, version, SCHEMA_VERSION, target)
    return target
