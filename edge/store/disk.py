"""What a full disk looks like to a writer, and how much room is left.

Low-level facts shared by every part that writes (the store, the MQTT publisher deleting
acknowledged rows, retention's archive copies) and by those that report space (health,
metrics). The policy built on them (pausing and resuming the loop) lives in
edge/operate/retention.py's DiskGuard.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path


class DiskFullError(OSError):
    """Raised by our own writes (archive copies) when the disk has no room."""

    def __init__(self, path: Path | str, detail: str = "no space left on device") -> None:
        super().__init__(errno.ENOSPC, detail, str(path))


def is_disk_full_error(exc: BaseException) -> bool:
    """True for ENOSPC/EDQUOT and SQLite's SQLITE_FULL ('database or disk is full')."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if isinstance(exc, sqlite3.Error):
            code = getattr(exc, "sqlite_errorcode", None)
            if code is not None and (code & 0xFF) == 13:  # SQLITE_FULL
                return True
            if "database or disk is full" in str(exc):
                return True
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return False


def free_bytes(path: Path | str) -> int:
    """Bytes an unprivileged process may still write on path's file system."""
    st = os.statvfs(_existing_ancestor(Path(path)))
    return st.f_bavail * st.f_frsize


def disk_total_bytes(path: Path | str) -> int:
    st = os.statvfs(_existing_ancestor(Path(path)))
    return st.f_blocks * st.f_frsize


def _existing_ancestor(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path
