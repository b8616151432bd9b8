"""Health of a running daemon, as the daemon keeps and writes it.

The daemon keeps a `HealthState` in memory (updated by the processing thread) and its
`StatusWriter` writes it every few seconds to `status.json` next to the database (atomic
rename, so a reader never sees half a file) and sends systemd's STATUS line when it changes.
The same snapshot feeds the retained MQTT `health` topic (`mqtt_health_payload`).

`edge status` reads that file in a separate, read-only process: edge/operate/status_reader.py.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

STATUS_FILE_NAME = "status.json"


def status_file_for(db_path: Path | str) -> Path:
    """The daemon's snapshot lives beside its database (the systemd StateDirectory)."""
    return Path(db_path).absolute().parent / STATUS_FILE_NAME


def _utc_now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


OUTCOMES = ("ok", "error", "retry", "duplicate", "unchanged", "vanished", "skipped")


@dataclass
class HealthState:
    """What the running daemon reports about itself, kept in one place: its loop counts outcomes
    here, the field operations the rest. Thread-safe; feeds status.json, STATUS= and metrics."""

    model_id: str | None = None
    started_at: str = field(default_factory=_utc_now_iso)
    frames_ok: int = 0
    frames_error: int = 0
    last_frame_at: str | None = None
    last_species: str | None = None
    last_error: str | None = None
    backlog: int = 0
    paused: bool = False
    pause_reason: str = ""
    pause_code: str = ""  # "low_space" | "disk_full" (edge.operate.retention.DiskGuard.code) while paused
    state_since: str | None = None  # when `paused` last flipped (None: since started_at)
    free_bytes: int = -1  # lowest free space where we write, as the disk guard last measured it
    mqtt_state: str = "disabled"
    outbox_depth: int = 0
    outbox_dropped: int = 0  # events the outbox bound dropped (cumulative, from outbox_stats)
    disk_paths: list[str] = field(default_factory=list)
    # Watching (edge.daemon.Daemon.watch_figures): entries skipped because they are not frames
    # (symlinks, FIFOs, devices), by reason; frames found by the periodic rescan that inotify had
    # not reported (each was logged); when the last rescan ran.
    frames_skipped: dict[str, int] = field(default_factory=dict)
    rescan_found: int = 0
    last_rescan_at: str | None = None
    # Frames this run recorded with a doubtful or resolved capture time, by flag (frames.time_flags:
    # edge/store/clock_checks.py, edge/ingest/capture_time.py); a frame counts under each of its flags.
    time_flagged: dict[str, int] = field(default_factory=dict)
    # Live cameras (edge/live/: StreamReader.status, URLs redacted): state, next try, frames read,
    # written and dropped, episodes; empty without a [[cameras]] source.
    streams: list[dict[str, Any]] = field(default_factory=list)
    # Every outcome of the daemon's loop by status (ok, error, retry, duplicate, unchanged,
    # vanished, skipped): what `edge run` logs when it stops and tests read.
    processed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    rate_window_s: float = 300.0  # [health] rate_window_s: the window of rate_per_minute
    metrics: Any = None  # edge.operate.metrics.Metrics when the endpoint is enabled
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _recent: deque = field(default_factory=lambda: deque(maxlen=2048), repr=False)

    def frame_done(self, status: str, inference_ms: float | None = None, species: str | None = None,
                   error: str | None = None, path: str | None = None) -> None:
        now = time.time()
        with self._lock:
            if status == "ok":
                self.frames_ok += 1
                if species:
                    self.last_species = species
            else:
                self.frames_error += 1
                self.last_error = f"{path}: {error}" if path else (error or "error")
            self.last_frame_at = _utc_now_iso()
            self._recent.append(now)
        if self.metrics is not None:
            self.metrics.frame_done(status, inference_ms)

    def time_flags(self, flags: Iterable[str]) -> None:
        """A committed frame's capture-time flags (CommittedFrame.time_flags), counted by flag."""
        flags = tuple(flags)
        if not flags:
            return
        with self._lock:
            for flag in flags:
                self.time_flagged[flag] = self.time_flagged.get(flag, 0) + 1
        if self.metrics is not None:
            self.metrics.time_flags(flags)

    def count_outcome(self, status: str, skip_reason: str | None = None) -> None:
        """The daemon's loop handled one path (edge.daemon.pipeline.FrameOutcome's status; a
        skipped entry also by its reason: "symlink", "not_regular")."""
        with self._lock:
            self.processed[status] = self.processed.get(status, 0) + 1
            if skip_reason:
                self.frames_skipped[skip_reason] = self.frames_skipped.get(skip_reason, 0) + 1

    def skipped_by_reason(self) -> dict[str, int]:
        with self._lock:
            return dict(self.frames_skipped)

    def errors_superseded(self, processed_at: Iterable[str]) -> int:
        """Error rows replaced by a later row at their path (the file became readable, or valid
        content replaced corrupt content): they are not errors any more. Those this run counted
        (processed since it started) leave `frames_error`; returns how many."""
        started = self.started_at
        counted = sum(1 for at in processed_at if at and at[:19] >= started[:19])
        if not counted:
            return 0
        with self._lock:
            counted = min(counted, self.frames_error)
            self.frames_error -= counted
        if self.metrics is not None:
            self.metrics.errors_superseded(counted)
        return counted

    def set(self, **values: Any) -> None:
        with self._lock:
            for key, value in values.items():
                if not hasattr(self, key) or key.startswith("_"):
                    raise AttributeError(key)
                if key == "paused" and bool(value) != self.paused:
                    self.state_since = _utc_now_iso()
                setattr(self, key, value)
        if self.metrics is not None:
            self.metrics.refresh(self)

    def rate_per_minute(self, window_s: float | None = None) -> float:
        window_s = self.rate_window_s if window_s is None else window_s
        cutoff = time.time() - window_s
        with self._lock:
            recent = sum(1 for t in self._recent if t >= cutoff)
        return recent * 60.0 / window_s

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            data = {
                "pid": os.getpid(),
                "updated_at": _utc_now_iso(),
                "started_at": self.started_at,
                "model_id": self.model_id,
                "frames_ok": self.frames_ok,
                "frames_error": self.frames_error,
                "last_frame_at": self.last_frame_at,
                "last_species": self.last_species,
                "last_error": self.last_error,
                "backlog": self.backlog,
                "paused": self.paused,
                "pause_reason": self.pause_reason,
                "pause_code": self.pause_code,
                "state_since": self.state_since or self.started_at,
                "free_bytes": self.free_bytes,
                "mqtt_state": self.mqtt_state,
                "outbox_depth": self.outbox_depth,
                "outbox_dropped": self.outbox_dropped,
                "frames_skipped": dict(self.frames_skipped),
                "rescan_found": self.rescan_found,
                "last_rescan_at": self.last_rescan_at,
                "time_flagged": dict(self.time_flagged),
                "streams": [dict(stream) for stream in self.streams],
            }
        data["rate_per_minute"] = round(self.rate_per_minute(), 2)
        return data

    def status_line(self) -> str:
        """The one-line STATUS= for systemctl status: counts, backlog, last species."""
        with self._lock:
            text = (f"{self.frames_ok + self.frames_error} frames ({self.frames_error} errors), "
                    f"backlog {self.backlog}, last species {self.last_species or '-'}")
            if self.paused:
                text = f"PAUSED ({self.pause_reason}); " + text
        return text


def mqtt_health_payload(snapshot: dict[str, Any], device_id: str) -> dict[str, Any]:
    """The retained `<prefix>/<device>/health` payload: the fields of the daemon's status
    snapshot (`HealthState.snapshot()`, also behind status.json and `edge status`) that a remote
    dashboard needs, under the names of the public MQTT contract (README.md, section "MQTT")."""
    paused = bool(snapshot.get("paused"))
    return {
        "schema": 1,
        "device": device_id,
        "state": "paused" if paused else "running",
        "reason": (snapshot.get("pause_code") or "paused") if paused else None,
        "detail": (snapshot.get("pause_reason") or None) if paused else None,
        "since": snapshot.get("state_since") or snapshot.get("started_at"),
        "updated_at": snapshot.get("updated_at"),
        "free_bytes": snapshot.get("free_bytes"),
        "backlog": snapshot.get("backlog"),
        "outbox_depth": snapshot.get("outbox_depth"),
        "outbox_dropped": snapshot.get("outbox_dropped"),
        "frames_processed": int(snapshot.get("frames_ok") or 0) + int(snapshot.get("frames_error") or 0),
        "frames_error": int(snapshot.get("frames_error") or 0),
        "last_frame_at": snapshot.get("last_frame_at"),
        "model_id": snapshot.get("model_id"),
    }


SNAPSHOT_BLOCK = 4096


def write_snapshot(state: HealthState, path: Path | str) -> bool:
    """Replace status.json; False if it could not be written (status must never crash us).

    The JSON is padded with spaces to a multiple of 4 kB. Normally the file is replaced
    atomically (write + rename); when that fails because the disk is full, which is exactly
    when the operator needs to see "paused", the padded file is overwritten in place: same
    size, so no new block is needed.
    """
    path = Path(path)
    text = json.dumps(state.snapshot(), indent=1, sort_keys=True)
    text += " " * (-len(text) % SNAPSHOT_BLOCK)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
        return True
    except OSError:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
    try:
        with open(path, "r+") as handle:
            if os.fstat(handle.fileno()).st_size != len(text):
                return False
            handle.write(text)
        return True
    except OSError:
        return False


def read_snapshot(path: Path | str) -> dict[str, Any] | None:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None

class StatusWriter:
    """systemd's STATUS= whenever the line changes (a datagram: cheap); status.json once per
    interval (a file write: an SD card wears, so not on every frame)."""

    def __init__(self, state: HealthState, path: Path | str, interval_s: float,
                 notify: Callable[[str], Any] | None = None, clock: Callable[[], float] = time.monotonic):
        self.state, self.path, self.interval = state, Path(path), interval_s
        self.notify, self.clock = notify, clock
        self._last = float("-inf")
        self._last_line: str | None = None

    def tick(self, force: bool = False) -> bool:
        """Returns True when status.json was (re)written."""
        if self.notify is not None:
            line = self.state.status_line()
            if force or line != self._last_line:
                self.notify(line)
                self._last_line = line
        if not force and self.clock() - self._last < self.interval:
            return False
        self._last = self.clock()
        write_snapshot(self.state, self.path)
        return True

