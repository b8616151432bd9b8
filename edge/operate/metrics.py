"""Optional Prometheus text endpoint on localhost, with the prometheus_client library.

A private `CollectorRegistry` (not the library's global one) so that two daemons in one test
process, or a reload, never collide on metric names. Disk free is measured at scrape time;
backlog and outbox depth come from the daemon's HealthState, refreshed by the processing loop.

Metric names (all prefixed `trailcam_`):
  frames_processed_total{status="ok"|"error"}   counter
  frames_superseded_total                       counter (error frames later replaced by a valid
                                                file at their path: errors that stand =
                                                frames_processed_total{status="error"} minus this)
  inference_seconds                             histogram (per classified frame)
  backlog_frames                                gauge (frames waiting in the camera folder queue)
  outbox_messages                               gauge (MQTT messages waiting for a PUBACK)
  disk_free_bytes{path}                         gauge (state directory, archive)
  paused                                        gauge (1 while paused for low disk space)
  last_frame_timestamp_seconds                  gauge (Unix time of the last committed frame)
  model_info{model_id}                          info (value 1)
  frames_skipped_total{reason="symlink"|"not_regular"}   counter (not frames: never read, logged)
  rescan_found_frames_total                     counter (frames the periodic rescan found that
                                                inotify had not reported)
  frames_time_flagged_total{flag}               counter (frames recorded with a doubtful capture time:
                                                future, before-deployment, out-of-order, and the
                                                capture-time flags; a frame counts under each flag)
  notifications_queued                          gauge ([notify]: rows waiting for their target)
  notifications_total{outcome}                  counter (sent, expired, dropped_review, dropped_quiet_hours,
                                                dropped_target_removed)
  notification_failed_attempts_total           counter (tries a target refused or did not answer)
  stream_up{camera}                             gauge (live cameras: 1 while the stream delivers frames)
  stream_reconnects_total{camera}               counter (sessions that ended or attempts that failed)
  stream_frames_read_total{camera}              counter (frames decoded)
  stream_frames_written_total{camera}           counter (frames of motion episodes written for processing)
  stream_frames_dropped_total{camera,reason}    counter (queue: the hand-off to the writer was full;
                                                backlog: max_pending frames waited; write_error)
  stream_motion_episodes_total{camera}          counter
  stream_last_frame_timestamp_seconds{camera}   gauge (Unix time of the last frame decoded)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from edge.store.clock_checks import DOUBTFUL
from edge.store.disk import free_bytes
from edge.store.times import parse_utc

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True)
class MetricsSources:
    """The figures read at scrape time from other parts of the daemon, all given at construction
    (edge/daemon/wiring.py builds it), so that the registry is complete when built; none = those
    metrics are absent."""

    # [notify]: the queue's figures (edge.alerts.delivery.Deliverer.figures).
    notifications: Callable[[], Mapping[str, int] | None] | None = None
    # Live cameras: their readers' status (edge.live.cameras.LiveCameras.status).
    streams: Callable[[], Sequence[Mapping[str, Any]] | None] | None = None


class Metrics:
    def __init__(self, disk_paths: Iterable[Path | str] = (), model_id: str | None = None,
                 sources: MetricsSources = MetricsSources()) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.frames = Counter("trailcam_frames_processed", "Frames committed to the database, by status",
                              ["status"], registry=r)
        for status in ("ok", "error"):
            self.frames.labels(status=status)  # both series exist from the start (rate() needs zeros)
        # Counters never go down: an error that a later valid file replaces is counted here.
        self.superseded = Counter("trailcam_frames_superseded", "Error frames later replaced by a valid file at "
                                  "their path (subtract from frames_processed_total{status=\"error\"})", registry=r)
        self.inference = Histogram("trailcam_inference_seconds", "Classifier time per frame",
                                   buckets=LATENCY_BUCKETS, registry=r)
        self.backlog = Gauge("trailcam_backlog_frames", "Frames waiting to be processed", registry=r)
        self.outbox = Gauge("trailcam_outbox_messages", "MQTT messages waiting in the outbox", registry=r)
        self.paused = Gauge("trailcam_paused", "1 while processing is paused for low disk space", registry=r)
        self.last_frame = Gauge("trailcam_last_frame_timestamp_seconds", "Unix time of the last committed frame",
                                registry=r)
        self.disk_free = Gauge("trailcam_disk_free_bytes", "Free bytes where the daemon writes", ["path"],
                               registry=r)
        for path in dict.fromkeys(str(p) for p in disk_paths):
            self.disk_free.labels(path=path).set_function(partial(_free_or_nan, path))
        self.model = Info("trailcam_model", "The classifier model in use", registry=r)
        self.time_flagged = Counter("trailcam_frames_time_flagged", "Frames recorded with a doubtful capture time, "
                                    "by flag (a camera clock in the future, reset, or before the deployment)",
                                    ["flag"], registry=r)
        for flag in DOUBTFUL:
            self.time_flagged.labels(flag=flag)  # zeros from the start, as for frames_processed_total
        self._watching = _WatchingCollector()
        r.register(self._watching)
        if sources.notifications is not None:
            r.register(_NotificationsCollector(sources.notifications))
        if sources.streams is not None:
            r.register(_StreamsCollector(sources.streams))
        self.set_model(model_id)
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def set_model(self, model_id: str | None) -> None:
        """The model in use. A method, not a construction input like the sources: a SIGHUP
        reload swaps the model while the daemon runs (refresh follows HealthState.model_id)."""
        self.model.info({"model_id": model_id or "none"})

    def frame_done(self, status: str, inference_ms: float | None) -> None:
        self.frames.labels(status=status).inc()
        if inference_ms is not None:
            self.inference.observe(inference_ms / 1000.0)
        self.last_frame.set(time.time())

    def time_flags(self, flags) -> None:
        for flag in flags:
            self.time_flagged.labels(flag=flag).inc()

    def errors_superseded(self, count: int) -> None:
        self.superseded.inc(count)

    def refresh(self, state) -> None:
        """Copy gauges from a HealthState (called whenever the daemon sets its fields)."""
        self.backlog.set(state.backlog)
        self.outbox.set(state.outbox_depth)
        self.paused.set(1 if state.paused else 0)
        self._watching.skipped = dict(state.frames_skipped)
        self._watching.rescan_found = state.rescan_found
        if state.model_id:
            self.set_model(state.model_id)

    def serve(self, port: int, host: str = "127.0.0.1") -> int:
        """Start the HTTP endpoint in a daemon thread; returns the bound port (0 picks a free one)."""
        server, self._thread = start_http_server(port, addr=host, registry=self.registry)
        self._server = server
        bound = server.server_address[1]
        log.info("metrics endpoint on http://%s:%d/metrics", host, bound)
        return bound

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class _WatchingCollector:
    """Counters whose totals the daemon keeps (Daemon.watch_figures, copied into HealthState):
    reported as they are at scrape time rather than re-counted here."""

    def __init__(self) -> None:
        self.skipped: dict[str, int] = {}
        self.rescan_found = 0

    def collect(self):
        skipped = CounterMetricFamily("trailcam_frames_skipped", "Entries with a frame name that are not "
                                      "regular files (symlinks, FIFOs, devices): never read", labels=["reason"])
        counts = {"symlink": 0, "not_regular": 0, **self.skipped}
        for reason, count in sorted(counts.items()):
            skipped.add_metric([reason], count)
        yield skipped
        yield CounterMetricFamily("trailcam_rescan_found_frames", "Frames the periodic folder rescan found "
                                  "that inotify had not reported", value=self.rescan_found)


class _NotificationsCollector:
    """The notification queue as the delivery thread last read it (edge/store/notifications.py)."""

    def __init__(self, figures) -> None:
        self.figures = figures

    def collect(self):
        figures = self.figures() or {}
        yield GaugeMetricFamily("trailcam_notifications_queued", "Notifications waiting for their target "
                                "(one per target)", value=figures.get("queued", 0))
        done = CounterMetricFamily("trailcam_notifications", "Notifications ended, by outcome (sent, expired, "
                                   "dropped_review, dropped_quiet_hours, dropped_target_removed)", labels=["outcome"])
        for outcome in ("sent", "expired", "dropped_review", "dropped_quiet_hours", "dropped_target_removed"):
            done.add_metric([outcome], figures.get(outcome, 0))
        yield done
        yield CounterMetricFamily("trailcam_notification_failed_attempts", "Deliveries a target refused or did "
                                  "not answer (each is retried until it expires)",
                                  value=figures.get("failed_attempts", 0))


class _StreamsCollector:
    """The live cameras as their readers report them now (URLs never: the camera name is the label)."""

    def __init__(self, streams) -> None:
        self.streams = streams

    def collect(self):
        streams = self.streams() or []
        up = GaugeMetricFamily("trailcam_stream_up", "1 while a live camera's stream delivers frames",
                               labels=["camera"])
        reconnects = CounterMetricFamily("trailcam_stream_reconnects", "Stream sessions that ended or connection "
                                         "attempts that failed", labels=["camera"])
        read = CounterMetricFamily("trailcam_stream_frames_read", "Frames decoded from the stream", labels=["camera"])
        written = CounterMetricFamily("trailcam_stream_frames_written", "Frames of motion episodes written for "
                                      "processing", labels=["camera"])
        dropped = CounterMetricFamily("trailcam_stream_frames_dropped", "Frames of motion episodes dropped (queue: "
                                      "the writer's hand-off was full; backlog: max_pending frames waited; "
                                      "write_error)", labels=["camera", "reason"])
        episodes = CounterMetricFamily("trailcam_stream_motion_episodes", "Motion episodes the gate opened",
                                       labels=["camera"])
        last = GaugeMetricFamily("trailcam_stream_last_frame_timestamp_seconds", "Unix time of the last frame "
                                 "decoded", labels=["camera"])
        for stream in streams:
            camera = [str(stream.get("camera"))]
            up.add_metric(camera, 1 if stream.get("state") == "connected" else 0)
            reconnects.add_metric(camera, stream.get("reconnects", 0))
            read.add_metric(camera, stream.get("frames_read", 0))
            written.add_metric(camera, stream.get("frames_written", 0))
            for reason, count in sorted((stream.get("frames_dropped") or {}).items()):
                dropped.add_metric([*camera, reason], count)
            episodes.add_metric(camera, stream.get("episodes", 0))
            if stream.get("last_frame_at"):
                try:
                    last.add_metric(camera, parse_utc(stream["last_frame_at"]).timestamp())
                except ValueError:
                    pass
        yield from (up, reconnects, read, written, dropped, episodes, last)


def _free_or_nan(path: str) -> float:
    try:
        return float(free_bytes(path))
    except OSError:
        return float("nan")
