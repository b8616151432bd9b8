"""Opening the edge database: the one connection helper every reader and writer uses.

Every user of the database (the daemon's writer, the MQTT publisher's thread, `edge status`,
the reports, the rescanner) connects through `connect`, so busy timeouts, foreign keys and
read-only mode are set in one place. `check_database` is what `edge check` (and the start-up
preflight) says about a database without writing to it.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils

from edge.store.schema import SCHEMA_VERSION


class StoreError(Exception):
    """The database cannot be opened or is from a newer trailcam."""


def connect(path: Path, *, busy_timeout_s: float = 30.0, readonly: bool = False) -> sqlite3.Connection:
    """A connection with the settings every user of the database needs.

    busy_timeout makes a reader wait for the rare checkpoint lock instead of failing with
    "database is locked"; WAL is a property of the file, set once by the writer.
    """
    path = Path(path)
    if readonly and not path.exists():
        raise StoreError(f"{path}: database not found (has the daemon run yet? check [storage] database / --db)")
    try:
        conn = sqlite3.connect(str(path), timeout=busy_timeout_s, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
        if readonly:
            conn.execute("PRAGMA query_only = ON")
    except sqlite3.Error as error:
        raise StoreError(f"{path}: cannot open the database: {error}") from None
    return conn


@contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[None]:
    """One write transaction taken with BEGIN IMMEDIATE: the write lock from its first statement.

    The database has more than one writer (the daemon's store, the MQTT publisher deleting
    delivered rows, `edge web` recording reviews). A deferred transaction that reads first fails
    at once with SQLITE_BUSY when another writer committed between its read and its first write
    (WAL cannot upgrade a stale snapshot, and no busy timeout helps); IMMEDIATE waits for the lock
    (busy_timeout) and then reads the latest state. Nested use is a savepoint."""
    if conn.in_transaction:
        name = f"nested_{id(conn)}_{time.monotonic_ns()}"
        conn.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            conn.execute(f"ROLLBACK TO SAVEPOINT {name}")
            conn.execute(f"RELEASE SAVEPOINT {name}")
            raise
        conn.execute(f"RELEASE SAVEPOINT {name}")
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def open_readonly(path: Path, busy_timeout_s: float = 30.0) -> sqlite_utils.Database:
    """A reader's own connection (reports, status, tests): never writes, waits instead of failing."""
    conn = connect(path, busy_timeout_s=busy_timeout_s, readonly=True)
    db = sqlite_utils.Database(conn)
    version = schema_version(db)
    if version is None:
        raise StoreError(f"{path}: not a trailcam database (no schema_version)")
    if version > SCHEMA_VERSION:
        raise StoreError(f"{path}: schema version {version} is newer than this trailcam ({SCHEMA_VERSION}); upgrade trailcam")
    # An older schema is read as it is (reports fill in what it lacks: edge/store/queries.py):
    # readers never migrate, so the reports work between an upgrade and the daemon's restart.
    return db


def _probe_writable(folder: Path) -> None:
    """Create and remove a file in `folder`; raises OSError when that is impossible.

    Why a probe and not os.access(): root passes every access() check, and a read-only mount
    or a full disk only shows on an actual write. The probe file is removed at once, so the
    check leaves nothing behind.
    """
    fd, probe = tempfile.mkstemp(prefix=".trailcam-check-", dir=folder)
    os.close(fd)
    os.unlink(probe)


def inserted_id(cursor: sqlite3.Cursor) -> int:
    """The rowid an INSERT just added. sqlite3 types `lastrowid` as optional (None before any
    INSERT); after one that added a row it is set, so None here is a broken invariant, not data."""
    if cursor.lastrowid is None:
        raise StoreError("the INSERT added no row (sqlite3 gave no lastrowid)")
    return cursor.lastrowid


def user_name() -> str:
    """Who this process runs as, for messages about permissions."""
    try:
        import pwd
        return pwd.getpwuid(os.geteuid()).pw_name
    except (KeyError, ImportError):
        return str(os.geteuid())


def known_states(conn: sqlite3.Connection, folder: str | Path) -> Iterator[tuple[str, int | None, float | None]]:
    """(path, size, mtime) of every frame row whose path lies under `folder`, streamed from one
    range scan of the path index: what a folder rescan compares the files it finds against
    (the same test as Ledger.unchanged_known, edge/store/ledger.py, without a query per file)."""
    prefix = os.path.join(str(folder), "")
    upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)  # "/cam/" .. "/cam0": everything below /cam/
    yield from conn.execute("SELECT path, size, mtime FROM frames WHERE path >= ? AND path < ?", (prefix, upper))


def known_states_reader(db_path: Path | str) -> Callable[[Path], list[tuple[str, int | None, float | None]]]:
    """known_states over a fresh read-only connection per call, for a thread of its own (the
    rescanner): nothing is shared with the writer's connection. Raises StoreError."""
    def read(folder: Path) -> list[tuple[str, int | None, float | None]]:
        conn = connect(Path(db_path), busy_timeout_s=10, readonly=True)
        try:
            return list(known_states(conn, folder))
        except sqlite3.Error as error:
            raise StoreError(f"{db_path}: {error}") from None
        finally:
            conn.close()
    return read


def check_database(path: Path) -> str:
    """What `edge check` and `edge run` say about the database before anything is created.

    Raises StoreError with a message that starts with the offending path: a file where a
    folder must be (`/etc/hostname is not a folder`), a folder that cannot be written (the
    database, its WAL and status.json live there), a file that is not a trailcam database.
    Nothing is created: the folder is not made and the database is not opened for writing.
    """
    path = Path(path).absolute()
    if path.is_dir():
        raise StoreError(f"{path} is a folder, not a database file (name the file, e.g. {path / 'trailcam.db'})")
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise StoreError(f"{ancestor} is not a folder (the database {path} would live in it)")
    try:
        _probe_writable(ancestor)
    except OSError as error:
        raise StoreError(
            f"{ancestor} is not writable by user {user_name()}: {error.strerror or error} (the database "
            f"{path}, its journal and status.json go there; check its owner and mount; under systemd "
            f"StateDirectory=trailcam creates /var/lib/trailcam for the service user)") from None
    if not path.exists():
        return f"{path} will be created"
    try:
        db = open_readonly(path)
    except sqlite3.DatabaseError as error:
        raise StoreError(f"{path}: not a usable SQLite database: {error}") from None
    try:
        version = schema_version(db)
        frames = db.execute("SELECT count(*) FROM frames").fetchone()[0]
    except sqlite3.DatabaseError as error:
        raise StoreError(f"{path}: damaged database: {error}") from None
    finally:
        db.close()
    migrate = f", will migrate to {SCHEMA_VERSION}" if version is not None and version < SCHEMA_VERSION else ""
    return f"{path}, schema {version}{migrate}, {frames} frame(s)"


def stored_timezone(path: Path) -> str | None:
    """The station zone a database was last written in (`meta` timezone), read without writing;
    None when there is no database yet, it records no zone, or it cannot be read (check_database
    says what is wrong with it)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        db = open_readonly(path)
    except (StoreError, sqlite3.DatabaseError):
        return None
    try:
        row = db.execute("SELECT value FROM meta WHERE key = 'timezone'").fetchone()
    except sqlite3.DatabaseError:
        return None
    finally:
        db.close()
    return row[0] if row and row[0] else None


def timezone_change(path: Path, zone: str) -> str | None:
    """Why starting with station zone `zone` on this database needs a deliberate
    `--force-timezone` (None: it does not). Its reports' hours and days follow the stored zone,
    and the daily tallies already written are bucketed by its local days."""
    stored = stored_timezone(path)
    if stored is None or stored == zone:
        return None
    return (f"{zone!r} is not the zone the database {Path(path).absolute()} was written in ({stored!r}): its "
            f"days and hours would move. Keep its zone ([station] timezone = \"{stored}\", or --timezone {stored}), or "
            f"change the station's zone deliberately with `edge run --force-timezone` (stored times are UTC and "
            f"stay; days already tallied keep their {stored} days)")


def standing_error_sql(conn: sqlite3.Connection) -> tuple[str, str]:
    """SQL conditions on `frames` for readers of a database of any version: (an error that
    stands, i.e. not superseded by a later row at its path; one with a retry pending). A
    version-1 database, not yet migrated by the daemon, has no superseded or retried rows."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(frames)")}
    if "superseded_by" not in columns:
        return "status = 'error'", "0"
    return "(status = 'error' AND superseded_by IS NULL)", "(retry_at IS NOT NULL AND superseded_by IS NULL)"


def schema_version(db: sqlite_utils.Database) -> int | None:
    if "meta" not in db.table_names():
        return None
    row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else None
