"""What happens to frames and rows after they are recorded, and what happens when the disk fills.

Three jobs, all run from the daemon's processing thread (so they never race the writer):

* `Retention.apply(frame)` right after a frame's transaction committed: keep it, move it into
  `<archive>/<YYYY-MM-DD>/<species>/` or delete it. Runs only on committed frames, so a frame
  the daemon has not processed is never moved or deleted.
* `Retention.housekeeping()` every few minutes: holds the archive under its size limit (oldest
  day first, keeping the N highest-confidence exemplars per species) and prunes frame rows older
  than N days. `daily_tallies`, `events` and `event_votes` are never pruned: counts and the
  events' votes stay exact forever. An error row's `superseded_by` may name a pruned row (no
  foreign key, on purpose): it stays superseded.
* `DiskGuard` watches free space where we write (state directory, archive). Below `min_free_mb`
  the daemon pauses *before* opening a transaction, so a full disk never leaves half a frame
  behind (SQLite's journal makes a failed commit roll back anyway; `is_disk_full_error`
  recognises that case, and the daemon retries the same frame after space returns).

Frame rows are pruned only when their file has left the camera folder (archived, deleted or
removed by the operator): a pruned row whose file were still there would be seen as new at the
next backlog scan and counted twice.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path

from edge.config.retention import RetentionConfig
from edge.store.disk import DiskFullError, disk_total_bytes, free_bytes, is_disk_full_error
from edge.store.times import format_utc, parse_utc
from edge.store.writer import CommittedFrame

log = logging.getLogger(__name__)

MIN_RESUME_BYTES = 1024 * 1024
GB = 1_000_000_000  # archive_max_gb counts decimal gigabytes, as disk vendors and `df -H` do
ERROR_FOLDER = "_errors"
_UNSAFE = re.compile(r"[^\w .,'()+-]+", re.UNICODE)


@dataclass
class DiskState:
    paused: bool
    free_bytes: int
    path: str
    changed: bool = False  # this check flipped the state (log once, not every check)


class DiskGuard:
    """Pause below `min_free`, resume above `resume_free` (hysteresis: no flapping at the edge)."""

    def __init__(self, paths: Iterable[Path | str], min_free: int, resume_free: int,
                 free: Callable[[Path | str], int] = free_bytes) -> None:
        self.paths = [Path(p) for p in paths]
        self.min_free = min_free
        # Even with min_free_mb = 0 a pause after ENOSPC waits for a little room, so the failed
        # frame is not retried against a disk with zero bytes on every loop pass.
        self.resume_free = max(resume_free, min_free, MIN_RESUME_BYTES)
        self._free = free
        self.paused = False
        self.reason = ""
        self.code = ""  # machine-readable reason for MQTT health: "low_space" | "disk_full"
        self.last = DiskState(False, -1, "")

    def lowest(self) -> tuple[int, str]:
        lows = [(self._free(p), str(p)) for p in self.paths]
        return min(lows) if lows else (-1, "")

    def check(self) -> DiskState:
        free, path = self.lowest()
        changed = False
        if not self.paused and 0 <= free < self.min_free:
            self.pause(f"low disk space: {free // (1024 * 1024)} MB free on {path} "
                       f"(min_free_mb = {self.min_free // (1024 * 1024)})", code="low_space")
            changed = True
        elif self.paused and free >= self.resume_free:
            log.warning("disk space back: %d MB free on %s; resuming", free // (1024 * 1024), path)
            self.paused = False
            self.reason = ""
            self.code = ""
            changed = True
        self.last = DiskState(self.paused, free, path, changed)
        return self.last

    def pause(self, reason: str, code: str = "disk_full") -> None:
        """Enter the paused state (from check(): `low_space`, or after a write failed with
        ENOSPC: `disk_full`); `reason` is for people, `code` for machines (MQTT health)."""
        if not self.paused:
            log.error("pausing processing: %s; frames wait in the camera folder", reason)
        self.paused = True
        self.reason = reason
        self.code = code


def species_folder(species: str | None) -> str:
    """A file-system-safe folder name for a label (labels come from third-party models)."""
    name = _UNSAFE.sub("_", (species or "").strip()).strip(" .")
    return name[:100] or "unknown"


def _parse_utc(value: str | None) -> datetime | None:
    """A stored time, or None when it is missing or unreadable (the caller falls back)."""
    if not value:
        return None
    try:
        return parse_utc(value)
    except ValueError:
        return None


class Retention:
    """Applies the [retention] policy to one database and archive tree."""

    def __init__(self, config: RetentionConfig, db, station_tz: tzinfo = UTC,
                 clock: Callable[[], float] = time.time, progress: Callable[[], object] | None = None,
                 snapshot_dir: Path | None = None) -> None:
        self.config = config
        self.snapshot_dir = Path(snapshot_dir) if snapshot_dir is not None else None
        # Called every few hundred files/rows of a long pass (walking a big archive on an SD card
        # can take minutes): the daemon feeds the watchdog from it, as the loop is making progress.
        self.progress = progress or (lambda: None)
        self.db = db  # sqlite_utils.Database, used only from the processing thread
        self.station_tz = station_tz
        self.clock = clock
        self.archive_dir = Path(config.archive_dir) if config.archive_dir else None
        self._last_housekeeping = float("-inf")
        self._pending: list[tuple[str, int]] = []  # (stored_path, frame id) not yet written
        self._last_flush = clock()
        self._exemplars_over_limit = False

    # ---- after each commit -------------------------------------------------------------
    def apply(self, frame: CommittedFrame) -> str | None:
        """Keep, archive or delete one committed frame; returns where the file is now (None = gone).

        Raises DiskFullError when an archive copy across file systems runs out of space: the
        original then stays where it was and the caller pauses.
        """
        source = Path(frame.path)
        mode = self.config.after_processing
        if mode == "keep" or not source.exists():
            return str(source) if source.exists() else None
        if mode == "delete":
            if frame.status != "ok":
                return str(source)  # never delete evidence of a frame we could not read
            source.unlink(missing_ok=True)  # stored_path stays NULL: no row update, no extra fsync
            log.debug("deleted %s after processing", source)
            return None
        assert self.archive_dir is not None
        target_dir = self.archive_dir / self._day(frame) / (
            species_folder(frame.species) if frame.status == "ok" else ERROR_FOLDER)
        target = self._free_name(target_dir / source.name, frame.id)
        _move(source, target)
        self._pending.append((str(target), frame.id))
        log.debug("archived %s -> %s", source, target)
        return str(target)

    def apply_duplicate(self, frame: CommittedFrame, copy_path: str) -> str | None:
        """A second copy of an already-counted frame appeared at copy_path.

        delete: remove the copy. archive: remove it when the archive holds the frame already,
        else archive it (the limit had removed the first). keep: leave it.
        """
        copy = Path(copy_path)
        if self.config.after_processing == "keep" or frame.status != "ok" or not copy.exists():
            return None
        row = self.db.execute("SELECT stored_path FROM frames WHERE id = ?", (frame.id,)).fetchone()
        stored = row[0] if row else None
        pending = next((target for target, frame_id in self._pending if frame_id == frame.id), None)
        archived = stored or pending
        if self.config.after_processing == "delete" or (archived and os.path.exists(archived)):
            copy.unlink(missing_ok=True)
            log.info("removed %s: a copy of frame %d, already recorded", copy, frame.id)
            return None
        return self.apply(replace(frame, path=str(copy)))

    def _day(self, frame: CommittedFrame) -> str:
        moment = _parse_utc(frame.captured_at) or _parse_utc(frame.processed_at)
        if moment is None:
            moment = datetime.fromtimestamp(self.clock(), UTC)
        return moment.astimezone(self.station_tz).strftime("%Y-%m-%d")

    @staticmethod
    def _free_name(target: Path, frame_id: int) -> Path:
        if not target.exists():
            return target
        return target.with_name(f"{target.stem}-{frame_id}{target.suffix}")

    def flush(self) -> int:
        """Record where archived frames went, many rows in one transaction.

        Why deferred: the store commits each frame with synchronous=FULL; one more commit per
        frame would double the fsyncs, the dominant cost on an SD card. The daemon flushes
        about once a second and at shutdown; a crash in between loses only this bookkeeping
        (the files are safe in the archive, which the size limit walks on disk anyway).
        """
        if not self._pending:
            return 0
        pending = list(self._pending)
        with self.db.atomic():
            self.db.conn.executemany("UPDATE frames SET stored_path = ? WHERE id = ?", pending)
            # A video clip's file holds all its sampled frames (edge/store/clips.py): they all follow it.
            self.db.conn.executemany("""UPDATE frames SET stored_path = ?1 WHERE clip_id =
                                            (SELECT clip_id FROM frames WHERE id = ?2 AND clip_id IS NOT NULL)""", pending)
            self.db.conn.executemany("""UPDATE clips SET stored_path = ?1 WHERE id =
                                            (SELECT clip_id FROM frames WHERE id = ?2)""", pending)
        del self._pending[:len(pending)]
        self._last_flush = self.clock()
        return len(pending)

    def flush_due(self, interval_s: float = 1.0) -> bool:
        return bool(self._pending) and (len(self._pending) >= 100 or self.clock() - self._last_flush >= interval_s)

    # ---- periodic ----------------------------------------------------------------------
    def housekeeping_due(self) -> bool:
        return self.clock() - self._last_housekeeping >= self.config.housekeeping_interval_s

    def housekeeping(self) -> dict[str, int]:
        """Archive limit, then row pruning; each step is its own small transaction."""
        self._last_housekeeping = self.clock()
        self.flush()
        removed = self.enforce_archive_limit()
        pruned = self.prune_rows()
        snapshots = self.prune_snapshots()
        return {"archive_removed": len(removed), "rows_pruned": pruned, "snapshots_removed": snapshots}

    def archive_limit_bytes(self) -> int | None:
        if self.archive_dir is None:
            return None
        limits = []
        if self.config.archive_max_gb is not None:
            limits.append(int(self.config.archive_max_gb * GB))
        if self.config.archive_max_percent is not None:
            limits.append(int(disk_total_bytes(self.archive_dir) * self.config.archive_max_percent / 100))
        return min(limits) if limits else None

    def exemplar_paths(self) -> set[str]:
        """The N best archived frames of each species: never removed, never pruned."""
        n = self.config.exemplars_per_species
        if n <= 0:
            return set()
        rows = self.db.execute(
            """SELECT stored_path FROM (
                   SELECT stored_path, ROW_NUMBER() OVER (
                       PARTITION BY species ORDER BY confidence DESC, id) AS rank
                   FROM frames
                   WHERE status = 'ok' AND stored_path IS NOT NULL AND stored_path != path
                     AND species IS NOT NULL)
               WHERE rank <= ?""", (n,)).fetchall()
        return {row[0] for row in rows}

    def archive_files(self) -> list[tuple[str, float, Path, int]]:
        """(day folder, mtime, path, size) of every file in the archive, oldest day first."""
        if self.archive_dir is None or not self.archive_dir.is_dir():
            return []
        files = []
        for day_dir in self.archive_dir.iterdir():
            if not day_dir.is_dir():
                continue
            for root, _dirs, names in os.walk(day_dir):
                self.progress()
                for name in names:
                    path = Path(root) / name
                    try:
                        st = path.stat()
                    except FileNotFoundError:
                        continue
                    files.append((day_dir.name, st.st_mtime, path, st.st_size))
        files.sort(key=lambda item: (item[0], item[1], str(item[2])))
        return files

    def archive_usage(self) -> int:
        return sum(size for _day, _mtime, _path, size in self.archive_files())

    def enforce_archive_limit(self) -> list[Path]:
        """Remove the oldest archived frames until the archive fits its limit."""
        limit = self.archive_limit_bytes()
        if limit is None:
            return []
        files = self.archive_files()
        total = sum(item[3] for item in files)
        if total <= limit:
            self._exemplars_over_limit = False
            return []
        keep = self.exemplar_paths()
        removed: list[Path] = []
        for _day, _mtime, path, size in files:
            if total <= limit:
                break
            if str(path) in keep:
                continue
            path.unlink(missing_ok=True)
            total -= size
            removed.append(path)
        if removed:
            with self.db.atomic():
                for path in removed:
                    self.db.execute("UPDATE frames SET stored_path = NULL WHERE stored_path = ?", (str(path),))
            for path in removed:
                _remove_empty_parents(path.parent, self.archive_dir)
            log.info("archive over its limit: removed %d oldest frames, %d bytes remain (limit %d)",
                     len(removed), total, limit)
        if total > limit:
            # once at WARNING, then DEBUG while it lasts (housekeeping repeats every few minutes)
            level = logging.DEBUG if self._exemplars_over_limit else logging.WARNING
            log.log(level, "archive still %d bytes over its limit: the rest are exemplars "
                    "(exemplars_per_species = %d)", total - limit, self.config.exemplars_per_species)
        self._exemplars_over_limit = total > limit
        return removed

    def prune_rows(self, batch: int = 500) -> int:
        """Delete frame rows (and their predictions) older than prune_frames_after_days."""
        days = self.config.prune_frames_after_days
        if days is None:
            return 0
        cutoff = format_utc(datetime.fromtimestamp(self.clock(), UTC) - timedelta(days=days))
        exemplars = self.exemplar_paths()
        pruned = 0
        last_id = 0
        while True:
            rows = self.db.execute(
                """SELECT id, path, stored_path FROM frames
                   WHERE id > ? AND COALESCE(captured_at, processed_at) < ?
                   ORDER BY id LIMIT ?""", (last_id, cutoff, batch)).fetchall()
            if not rows:
                break
            last_id = rows[-1][0]
            self.progress()
            doomed = [frame_id for frame_id, path, stored in rows
                      if stored not in exemplars and not os.path.exists(path)]
            doomed = self._without_reviewed_birds(doomed)
            if doomed:
                marks = ",".join("?" * len(doomed))
                with self.db.atomic():
                    self.db.execute(f"DELETE FROM predictions WHERE frame_id IN ({marks})", doomed)
                    self.db.execute(f"DELETE FROM detections WHERE frame_id IN ({marks})", doomed)
                    self.db.execute(f"DELETE FROM frame_objects WHERE frame_id IN ({marks})", doomed)
                    self.db.execute(f"DELETE FROM frames WHERE id IN ({marks})", doomed)
                pruned += len(doomed)
        if pruned:
            log.info("pruned %d frame rows older than %d days (daily tallies and events kept)", pruned, days)
        return pruned

    def _without_reviewed_birds(self, frame_ids: list[int]) -> list[int]:
        """The frames of `frame_ids` none of whose birds a person reviewed. A bird review
        (`reviews.detection_id`) is a person's work and what undo and the training export
        read: its frame row and detections stay, whatever their age (a few rows; pruning them
        failed on the foreign key and stopped the whole pass)."""
        if not frame_ids:
            return frame_ids
        marks = ",".join("?" * len(frame_ids))
        reviewed = {row[0] for row in self.db.execute(
            f"""SELECT DISTINCT d.frame_id FROM detections AS d JOIN reviews AS r ON r.detection_id = d.id
                 WHERE d.frame_id IN ({marks})""", frame_ids)}
        return [frame_id for frame_id in frame_ids if frame_id not in reviewed]


    def prune_snapshots(self, batch: int = 500) -> int:
        """Remove the best-crop files of closed events whose file was written more than
        snapshot_days ago, and forget their names (the events and their counts stay).

        Counted from when the picture was made (`events.snapshot_at`), not from when the bird was
        seen: a visit of an old backlog imported today keeps its picture snapshot_days from today.
        A row without snapshot_at (written before it existed) falls back to the visit's end."""
        days = self.config.snapshot_days
        if days is None or self.snapshot_dir is None:
            return 0
        cutoff = format_utc(datetime.fromtimestamp(self.clock(), UTC) - timedelta(days=days))
        removed = 0
        while True:
            rows = self.db.execute(
                """SELECT id, snapshot FROM events WHERE snapshot IS NOT NULL AND state = 'closed'
                     AND COALESCE(snapshot_at, ended_at) < ? ORDER BY id LIMIT ?""", (cutoff, batch)).fetchall()
            if not rows:
                break
            self.progress()
            for _event_id, name in rows:
                # The name is the store's own `<uid>.jpg`; never a path out of the folder.
                (self.snapshot_dir / Path(name).name).unlink(missing_ok=True)
            marks = ",".join("?" * len(rows))
            with self.db.atomic():
                self.db.execute(f"UPDATE events SET snapshot = NULL WHERE id IN ({marks})", [r[0] for r in rows])
            removed += len(rows)
        if removed:
            log.info("removed %d event snapshots made more than %d days ago (the events are kept)", removed, days)
        return removed


def _move(source: Path, target: Path) -> None:
    """Rename when possible; across file systems copy, fsync, rename, then unlink the source."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(source, target)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            if is_disk_full_error(exc):
                raise DiskFullError(target) from exc
            raise
    partial = target.with_name(f".{target.name}.partial")
    try:
        with open(source, "rb") as src, open(partial, "wb") as dst:
            shutil.copyfileobj(src, dst, 1024 * 1024)
            dst.flush()
            os.fsync(dst.fileno())
        shutil.copystat(source, partial)
        os.rename(partial, target)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        if is_disk_full_error(exc):
            raise DiskFullError(target) from exc
        raise
    source.unlink()


def _remove_empty_parents(folder: Path, root: Path | None) -> None:
    while root is not None and folder != root and root in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent
