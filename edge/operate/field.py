"""Field operation wired into the daemon's lifecycle through its hooks (edge/daemon/wiring.py
registers them; the state folder is made there too, by edge.daemon.preflight.make_state_dir).

One object per daemon. It adds, without touching the processing itself:

* on_start (model loaded, backlog queued): finish interrupted post-processing, start the
  metrics endpoint, write status.json, sd_notify READY=1 with a STATUS line;
* after_frame (each committed frame): health counters, metrics, keep | archive | delete;
* on_tick (every loop pass, also when idle): WATCHDOG=1 when due, STATUS/status.json, archive
  limit and row pruning, and the disk-space check; below the limit it *blocks the processing
  loop* (frames wait in the camera folder) while still feeding the watchdog, until space returns;
* on_disk_full (a frame's write failed with ENOSPC/SQLITE_FULL, rolled back): pause likewise;
* on_stop: STOPPING=1, final snapshot, metrics endpoint closed;
* MQTT (when enabled): the same health snapshot feeds the publisher's retained `health` topic
  (edge.operate.health.mqtt_health_payload), sent directly, not through the outbox (a full disk cannot
  queue anything), and at once when the daemon pauses or resumes.

Every call runs on the processing thread, so the watchdog is fed only while that loop turns.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from edge.operate.health import HealthState, StatusWriter, mqtt_health_payload, status_file_for
from edge.operate.notify import Notifier
from edge.operate.retention import DiskGuard, Retention
from edge.operate.snapshots import snapshot_folder
from edge.store import outbox
from edge.store.disk import DiskFullError, is_disk_full_error

log = logging.getLogger(__name__)



def disk_paths(config) -> list[Path]:
    """Where the daemon writes: the state folder (database, status.json) and, when archiving,
    the archive. The disk guard and the metrics watch their free space."""
    retention = config.retention
    paths = [Path(config.storage.database).absolute().parent]
    if retention.after_processing == "archive" and retention.archive_dir is not None:
        paths.append(Path(retention.archive_dir))
    return paths


def field_health(config) -> HealthState:
    """The daemon's one HealthState, built first by the wiring: the daemon, the MQTT publisher's
    `health` source and the field operations all report it, so none has to wait for another."""
    health = HealthState(mqtt_state="disabled" if not config.mqtt.enabled else "starting",
                         rate_window_s=config.health.rate_window_s)
    health.disk_paths = [str(p) for p in disk_paths(config)]
    return health


def mqtt_health(health: HealthState, device_id: str) -> dict[str, Any]:
    """The retained MQTT `health` payload (called from the publisher's thread; the snapshot is
    taken under HealthState's lock): the publisher's health source, bound by the wiring."""
    return mqtt_health_payload(health.snapshot(), device_id)


class FieldOperations:
    """The daemon's hooks for running unattended (edge/daemon/wiring.py registers them).

    `notifier`, `health` (field_health; the daemon's), `metrics` (None: no endpoint) and
    `publisher` (the MQTT publisher, None when [mqtt] is off) are built by the wiring and passed
    in; nothing here reaches into the daemon for them."""

    def __init__(self, config, notifier: Notifier | None = None, *, health: HealthState | None = None,
                 metrics=None, publisher=None) -> None:
        self.config = config
        self.db_path = Path(config.storage.database).absolute()
        self.notifier = notifier or Notifier()
        self.health = health if health is not None else field_health(config)
        self.publisher = publisher  # edge.publish.mqtt.Publisher, when [mqtt] enabled
        retention = config.retention
        self.guard = DiskGuard(disk_paths(config), retention.min_free_bytes, retention.resume_free_bytes)
        self.metrics = metrics
        if metrics is not None:
            self.health.metrics = metrics
        self.status_writer = StatusWriter(self.health, status_file_for(self.db_path),
                                             config.health.status_interval_s, notify=self.notifier.status)
        self.retention: Retention | None = None

    def _health_changed(self) -> None:
        if self.publisher is not None:
            self.publisher.health_changed()

    # -- hooks ------------------------------------------------------------------------------
    def on_start(self, daemon) -> None:
        self.retention = Retention(self.config.retention, daemon.store.db, daemon.store.station_tz,
                                   progress=self.notifier.watchdog_tick,
                                   snapshot_dir=snapshot_folder(self.config.storage.database))
        self._finish_interrupted(daemon)
        self.health.set(model_id=daemon.health.model_id, backlog=daemon.health.backlog,
                        free_bytes=self.guard.lowest()[0])
        if self.metrics is not None:
            self.metrics.serve(self.config.health.metrics_port, self.config.health.metrics_host)
        self._refresh_gauges(daemon)
        self.status_writer.tick(force=True)
        self.notifier.ready(self.health.status_line())
        log.info("ready: model %s, backlog %d frame(s)%s", daemon.health.model_id, daemon.health.backlog,
                 ", systemd notified" if self.notifier.enabled else "")

    def after_frame(self, outcome) -> None:
        """A committed frame (`outcome.commit`, as the store wrote it): count it, then keep,
        archive or delete its file."""
        frame = outcome.commit.frame
        self.health.frame_done(outcome.status, frame.inference_ms, species=outcome.species, error=outcome.error,
                               path=outcome.path)
        self.health.time_flags(frame.time_flags)
        self.health.errors_superseded(at for _id, at in outcome.superseded)
        if outcome.clip_id is not None:
            return  # a clip's sampled frame: its file is post-processed once the clip is finished (after_clip)
        if self.retention is None:  # before on_start, as in after_clip and after_duplicate
            return
        try:
            self.retention.apply(frame)
        except DiskFullError as error:
            self.guard.pause(f"no space to archive {outcome.path}: {error.strerror}")
        except OSError as error:
            log.error("frame %s: post-processing (%s) failed: %s; the file stays where it is",
                      outcome.path, self.config.retention.after_processing, error.strerror or error)

    def after_clip(self, outcome) -> None:
        """A video clip finished (done, or an error with the frames before its fault counted):
        keep, archive or delete the clip file once, as a photo's (archived under the species of its
        first counted frame; every frame row of the clip then points to the archived file)."""
        if self.retention is None:
            return
        rows = [f.commit.frame for f in outcome.frames if f.commit is not None]
        if outcome.error_outcome is not None and outcome.error_outcome.commit is not None:
            rows.append(outcome.error_outcome.commit.frame)
        if not rows:
            return
        counted = [row for row in rows if row.status == "ok"]
        named = next((row for row in counted if row.species), None)
        frame = replace(named or (counted[0] if counted else rows[0]), path=outcome.path)
        try:
            self.retention.apply(frame)
        except DiskFullError as error:
            self.guard.pause(f"no space to archive {outcome.path}: {error.strerror}")
        except OSError as error:
            log.error("clip %s: post-processing (%s) failed: %s; the file stays where it is",
                      outcome.path, self.config.retention.after_processing, error.strerror or error)

    def on_progress(self, daemon) -> None:
        """A long clip is being decoded: keep the watchdog fed (the loop is not turning)."""
        self.notifier.watchdog_tick()

    def after_duplicate(self, outcome) -> None:
        """A copy of a recorded frame (`outcome.known`, the store's row of it): treated alike."""
        self.health.errors_superseded(at for _id, at in outcome.superseded)
        if outcome.known is None or self.retention is None:
            return
        try:
            self.retention.apply_duplicate(outcome.known, outcome.path)
        except DiskFullError as error:
            self.guard.pause(f"no space to archive {outcome.path}: {error.strerror}")
        except OSError as error:
            log.error("frame %s: post-processing of a duplicate failed: %s", outcome.path, error.strerror or error)

    def on_tick(self, daemon) -> None:
        self.notifier.watchdog_tick()
        self.health.set(backlog=len(daemon.frames), free_bytes=self.guard.last.free_bytes, **daemon.watch_figures())
        if self.status_writer.tick():
            self._refresh_gauges(daemon)
        if self.retention is not None and self.retention.flush_due():
            self._flush()
        if self.retention is not None and self.retention.housekeeping_due():
            try:
                self.retention.housekeeping()
            except Exception as error:  # noqa: BLE001 - retried at the next interval
                if is_disk_full_error(error):
                    self.guard.pause(f"write failed: {error}")
                else:
                    log.error("housekeeping failed: %s", error)
        self.guard.check()
        if self.guard.paused:
            self._wait_for_space(daemon)

    def on_disk_full(self, error: BaseException) -> None:
        self.guard.pause(f"write failed: {error}")

    def on_stop(self, daemon) -> None:
        if self.retention is not None:
            self._flush()
        self.notifier.stopping("stopping: finishing and closing the database")
        self.health.set(backlog=len(daemon.frames), **daemon.watch_figures())
        self.status_writer.tick(force=True)
        if self.metrics is not None:
            self.metrics.close()
        self.notifier.close()

    # -- internals --------------------------------------------------------------------------
    def _flush(self) -> None:
        if self.retention is None:  # before on_start: nothing is pending
            return
        try:
            self.retention.flush()
        except Exception as error:  # noqa: BLE001 - kept pending; retried on the next tick
            if is_disk_full_error(error):
                self.guard.pause(f"write failed: {error}")
            else:
                log.error("recording archive locations failed: %s", error)

    def _wait_for_space(self, daemon) -> None:
        """Hold the processing loop while the disk is full; feed the watchdog; resume by itself."""
        self.health.set(paused=True, pause_reason=self.guard.reason, pause_code=self.guard.code,
                        free_bytes=self.guard.last.free_bytes)
        self._health_changed()
        self.status_writer.tick(force=True)
        interval = self.config.retention.disk_check_interval_s
        while self.guard.paused and not daemon.stop_requested:
            daemon.wait_stop(self.notifier.poll_timeout(interval))
            self.notifier.watchdog_tick()
            self.health.set(backlog=len(daemon.frames), free_bytes=self.guard.last.free_bytes)
            self.status_writer.tick()
            self.guard.check()
        if self.guard.paused:  # stopping while paused: the last state (retained on MQTT) stays "paused"
            return
        self.health.set(paused=False, pause_reason="", pause_code="", free_bytes=self.guard.last.free_bytes)
        self._health_changed()
        self.status_writer.tick(force=True)

    def _refresh_gauges(self, daemon) -> None:
        values: dict[str, Any] = {}
        if daemon.store is not None:
            values["backlog"] = len(daemon.frames)
            values["model_id"] = daemon.health.model_id  # follows a SIGHUP reload
            try:
                counters = outbox.stats(daemon.store.db)
                values["outbox_depth"] = counters["depth"]
                values["outbox_dropped"] = counters.get("dropped_events", 0)
            except Exception:  # noqa: BLE001 - no outbox table yet, or the disk is full: not fatal
                pass
        publisher = self.publisher
        if publisher is not None:
            try:
                mqtt = publisher.status()
                text = str(mqtt.get("state"))
                if mqtt.get("last_error") and not mqtt.get("connected"):
                    text += f": {mqtt['last_error']}"
                values["mqtt_state"] = text
            except Exception:  # noqa: BLE001 - status must never stop the loop
                pass
        if values:
            self.health.set(**values)

    def _finish_interrupted(self, daemon, recent: int = 200) -> None:
        """Apply post-processing to the last frames committed before a crash or restart.

        A kill between a frame's commit and its move/delete leaves the file in the camera folder;
        the store then skips it as a duplicate, so nothing else would ever move it.
        """
        if self.config.retention.after_processing == "keep" or self.retention is None:
            return
        for frame in daemon.store.ledger.unfinished_frames(recent):
            if os.path.exists(frame.path):
                try:
                    self.retention.apply(frame)
                except OSError as error:
                    log.error("frame %s: post-processing failed: %s", frame.path, error)
