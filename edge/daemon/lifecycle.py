"""The daemon's lifecycle, kept small and explicit:

    start():  check cameras → load and check the model → open the store → start watchers → queue
              the backlog
              (inotify cameras also get a Rescanner thread: new sub-folders, periodic rescans)
    loop():   one thread takes frames from the queue and processes them, one transaction each
    stop():   stop watchers → the on_stop hooks, in their order → close the store

What it runs is handed in: edge/daemon/wiring.py (`build`) gives it the store and the frame
pipeline to open, and registers everything else at fixed hook points instead of editing the
loop: `before_open` (every start-up check passed, nothing opened yet: the state folder is made
here), `on_start` (after the model is loaded and the backlog is queued: the MQTT publisher,
sd_notify READY), `after_frame` (after each committed frame, with the outcome and its store
Commit: post-processing keep/archive/delete, health, metrics), `after_duplicate`, `on_tick`
(every loop pass, at least every `tick_s`, also when idle: watchdog pings, STATUS),
`on_disk_full`, `on_reload` (after a SIGHUP model swap) and `on_stop`.

A frame that failed for a reason that may pass (unreadable, cannot stat; edge/daemon/pipeline.py)
is scheduled for another try when its error row says one is due; the idle work puts due frames
back on the queue (never waiting), and at a restart the backlog scan offers them again.

Signals only set flags: SIGTERM/SIGINT let the current frame finish and commit, then the loop
exits and run() returns 0; SIGHUP reloads the model between two frames (a failed reload keeps
the old model).
"""

from __future__ import annotations

import logging
import os
import signal
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from edge.classify.model import Classifier, ModelError
from edge.config import EdgeConfig
from edge.daemon.clips import ClipOutcome, ClipProcessor
from edge.daemon.pipeline import FrameOutcome, FrameProcessor
from edge.daemon.preflight import check_cameras, check_species, load_configured_classifier, load_configured_finder
from edge.ingest.clips import is_clip_name
from edge.ingest.watcher import (
    FrameQueue,
    InotifyWatcher,
    PollingWatcher,
    QueuedFrame,
    Rescanner,
    offer_backlog,
    scan_backlog,
)
from edge.operate.health import HealthState
from edge.store.db import known_states_reader
from edge.store.disk import is_disk_full_error
from edge.store.queries import SHARED_FILE_TIME_S, run_figures, shared_file_times
from edge.store.times import format_utc
from edge.store.writer import Store

if TYPE_CHECKING:  # for the annotations only: the wiring imports these when it uses them
    from edge.alerts.delivery import Deliverer
    from edge.detect.finder import BirdFinder
    from edge.live.cameras import LiveCameras
    from edge.operate.snapshots import SnapshotWriter
    from edge.publish.mqtt import Publisher

log = logging.getLogger(__name__)


class DaemonError(Exception):
    """The daemon cannot start (no cameras, missing folder, model or database problems)."""


def _folder_id(path: Path | None) -> tuple[int, int] | None:
    """(device, inode) of a folder, or None when it is not there (or unset, which a validated
    EdgeConfig never leaves): a remount changes it."""
    if path is None:
        return None
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_dev, info.st_ino) if stat.S_ISDIR(info.st_mode) else None


class Daemon:
    """The lifecycle and the loop. What it runs is handed in by edge/daemon/wiring.py (`build`):
    `open_store(classifier)` opens the store once the checks passed, `make_processor(classifier,
    store, finder)` builds the frame pipeline (finder: the detector route or None), and the hook lists say what else runs and in which order."""

    def __init__(self, config: EdgeConfig, *, open_store: Callable[[Classifier], Store],
                 make_processor: Callable[[Classifier, Store, BirdFinder | None], FrameProcessor],
                 once: bool = False,
                 tick_s: float = 1.0, health: HealthState | None = None):
        self.config = config
        self.open_store = open_store
        self.make_processor = make_processor
        self.once = once
        self.tick_s = tick_s
        # What the loop did (outcomes by status, skipped entries by reason, model, backlog): the
        # one HealthState that status.json, STATUS= and the metrics also report (the field
        # operations' own, when the wiring has them).
        self.health = health if health is not None else HealthState()
        self.frames = FrameQueue()
        # Before the store opens, after every start-up check passed: hooks that create
        # things (the state folder) run here, so a refused start creates nothing.
        self.before_open: list[Callable[[Daemon], None]] = []
        self.on_start: list[Callable[[Daemon], None]] = []
        self.after_frame: list[Callable[[FrameOutcome], None]] = []
        self.on_tick: list[Callable[[Daemon], None]] = []
        self.on_stop: list[Callable[[Daemon], None]] = []  # in this order, before the store closes
        # After a model reload (SIGHUP) swapped the classifier in: e.g. the outbox names the new model.
        self.on_reload: list[Callable[[Classifier], None]] = []
        # Field operation: a frame whose write failed for lack of disk space (rolled back whole)
        # is kept aside and retried first; these hooks pause the loop until space returns.
        self.on_disk_full: list[Callable[[BaseException], None]] = []
        self._retry: QueuedFrame | None = None
        self.after_duplicate: list[Callable[[FrameOutcome], None]] = []
        # Video clips (edge/daemon/clips.py): after a clip is finished (done or error), with its
        # ClipOutcome (post-processing of the clip file); while one decodes (the watchdog ping).
        self.after_clip: list[Callable[[ClipOutcome], None]] = []
        self.on_progress: list[Callable[[Daemon], None]] = []
        self.clip_processor: ClipProcessor | None = None
        self._clips_waiting: set[str] = set()  # clips still being written, queued again when settled
        self.store: Store | None = None
        self.processor: FrameProcessor | None = None
        self._watchers: list[InotifyWatcher | PollingWatcher | Rescanner] = []
        self._stop = threading.Event()
        self._reload = threading.Event()
        self._last_idle_work = 0.0
        self.idle_interval_s = 5.0  # closing idle events, checking camera folders
        # Frames that failed transiently: path → (monotonic time the next try is due, camera).
        # Re-queued by the idle work when due; at a restart the backlog scan offers them again.
        self._retries: dict[str, tuple[float, str]] = {}
        self._inotify_watcher: InotifyWatcher | None = None
        self.rescanner: Rescanner | None = None
        self._folder_ids: dict[str, tuple[int, int] | None] = {}
        # The MQTT publisher (edge/publish/mqtt.py) when [mqtt] is enabled, for `edge status`
        # glue and tests; the wiring starts and stops it through the hooks.
        self.publisher: Publisher | None = None
        # The best-crop writer (edge/operate/snapshots.py) when a detector is configured.
        self.snapshots: SnapshotWriter | None = None
        # The notification deliverer (edge/alerts/delivery.py) when [notify] is enabled.
        self.notifications: Deliverer | None = None
        # The live cameras (edge/live/cameras.py LiveCameras) when a [[cameras]] has a `source`.
        self.live: LiveCameras | None = None
        # Counted frames (ok rows) not yet looked at for a shared file time (checked at the end
        # of --once, and once the queue has been empty for idle_interval_s: the end of a backlog
        # or of a batch of uploads), and, with --once, all of this run's for its summary line
        # (`summary`, set when the run ends).
        self._unchecked: list[int] = []
        self._last_counted = 0.0  # monotonic time the last counted frame was committed
        self._counted: list[int] = []
        self.summary: str | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self, classifier: Classifier | None = None, finder: BirdFinder | None = None) -> None:
        """Check, then open. `classifier` (and `finder`, the detector route): already loaded
        (and checked) by the CLI's preflight, so no model is read twice; otherwise loaded here.
        Either way the cameras and species names are checked before the store creates anything."""
        config = self.config
        cameras = check_cameras(config, once=self.once)
        errors = [finding.line() for finding in cameras if finding.level == "error"]
        if errors:
            raise DaemonError("\n".join(errors))
        for finding in cameras:
            if finding.level == "warning":
                # A card or share mounted after the service started: not a configuration error
                # (that would stop the service for good); watched as soon as it appears.
                log.warning("%s", finding.line())
        if classifier is None:
            classifier = load_configured_classifier(config)  # before the store: a bad model changes nothing
        if finder is None:
            finder = load_configured_finder(config)
        species = [finding.line() for finding in check_species(config, classifier) if finding.level == "error"]
        if species:
            raise DaemonError("\n".join(species))
        for hook in self.before_open:
            hook(self)
        self.store = self.open_store(classifier)
        self.processor = self.make_processor(classifier, self.store, finder)
        self.health.model_id = classifier.model_id
        log.info("model %s (%s, %d labels, runtime %s)", classifier.model_id, classifier.spec.tflite_path,
                 len(classifier.spec.labels), classifier.runtime)
        if finder is not None:
            spec = finder.detector.spec
            log.info("detector %s (%s, %s outputs, birds: %s, tiles %s): detect, then classify each bird",
                     spec.model_id, spec.tflite_path, finder.detector.output_format,
                     ", ".join(sorted(spec.bird_labels)), config.detector.tiles)
        # Watchers first, backlog second: a frame arriving in between is seen by both and
        # processed once (queue dedupes paths, the store dedupes content).
        inotify = [c for c in config.cameras if c.mode == "inotify"]
        polled = [c for c in config.cameras if c.mode == "poll"]
        self._folder_ids = {camera.name: _folder_id(camera.path) for camera in config.cameras}
        present = [c for c in inotify if self._folder_ids[c.name] is not None]
        if not self.once and inotify:
            self.rescanner = Rescanner(inotify, self.frames, known_states_reader(config.storage.database))
            self._watchers.append(self.rescanner)
        if not self.once and present:
            self._inotify_watcher = InotifyWatcher(present, self.frames, self.rescanner)
            self._watchers.append(self._inotify_watcher)
        # inotify watches are added when the observer starts (synchronously), and must be in
        # place before the backlog is listed: a frame closed in between is then seen by one or
        # both (the queue dedupes paths, the store content). Started after the listing, a frame
        # written in that gap was seen by neither until the next rescan.
        for watcher in self._watchers:
            watcher.start()
        backlog = scan_backlog(config.cameras)
        backlog_known, settling = offer_backlog(backlog, config.cameras, self.frames, self.rescanner,
                                                watching=not self.once)
        if not self.once and polled:
            # The poller learns the backlog's files at its start; one written after the listing
            # is not among them, so its first poll queues it.
            poller = PollingWatcher(polled, self.frames, known=backlog_known)
            poller.start()
            self._watchers.append(poller)
        self.health.backlog = len(self.frames)
        log.info("watching %d camera(s); backlog of %d frame(s)%s", len(config.cameras), len(backlog),
                 f", {settling} still being written, taken once closed or settled" if settling else "")
        for hook in self.on_start:
            hook(self)

    def loop(self) -> None:
        while not self._stop.is_set():
            if self._reload.is_set():
                self._reload.clear()
                self.reload_model()
            # --once: the backlog is all queued at start, so an empty queue means done.
            wait = 0 if self.once else self.tick_s
            item = self._retry if self._retry is not None else self.frames.get(timeout=wait)
            self._retry = None
            if item is not None:
                try:
                    self.process(item.path, item.camera)
                except Exception as error:  # noqa: BLE001 - only disk-full is handled here
                    if not is_disk_full_error(error):
                        raise
                    self._disk_full(item, error)
                if self._retry is not item:
                    self.frames.done(item.path)
            elif self.once and self._clips_waiting:
                self._wait_for_clips()  # --once still counts a clip that was being written
            elif self.once:
                self._check_file_times()
                self._close_after_backlog()
                self.summary = self._summary()
                break
            else:
                if time.monotonic() - self._last_counted >= self.idle_interval_s:
                    self._check_file_times()  # a batch of uploads is over: quiet for a while
                self._idle_work()
            self.health.backlog = len(self.frames)
            for hook in self.on_tick:
                hook(self)

    def process(self, path: str, camera: str) -> FrameOutcome | ClipOutcome:
        assert self.processor is not None and self.store is not None
        self._retries.pop(path, None)  # whatever happens now replaces a scheduled try
        if is_clip_name(path):
            return self._process_clip(path, camera)
        return self._handle(self.processor.process(path, camera))

    def _process_clip(self, path: str, camera: str) -> ClipOutcome:
        """A video clip (edge/daemon/clips.py): each sampled frame's outcome goes through
        `_handle` as it commits, like a photo's (its after_frame hooks: snapshots, notifications,
        health), the watchdog is fed while it decodes (`on_progress`), and once the clip is
        finished the `after_clip` hooks run (post-processing moves the clip only then)."""
        # Only process() calls this, after its own check: both are set once the daemon started.
        assert self.processor is not None and self.store is not None
        if not self.config.clips.enabled:
            log.debug("clip %s: [clips] enabled = false; left alone", path)
            outcome = ClipOutcome(path, camera, "skipped", skip_reason="clips_off")
        else:
            if self.clip_processor is None or self.clip_processor.frames is not self.processor:
                self.clip_processor = ClipProcessor(self.processor, self.config.clips,
                                                    {c.name: c.settle_s for c in self.config.cameras})
            outcome = self.clip_processor.process(path, camera, self._handle, self._progress)
        if outcome.status in ("waiting", "duplicate", "unchanged", "skipped", "vanished", "interrupted"):
            self.health.count_outcome("clip_" + outcome.status, outcome.skip_reason)
        self._clips_waiting.discard(path)
        if outcome.status == "waiting" and outcome.retry_at is not None:
            self._retries[path] = (outcome.retry_at, camera)
            self._clips_waiting.add(path)
        elif outcome.status == "vanished":
            self.store.ledger.abandon_retries(path)
        if outcome.status in ("duplicate", "skipped") and self.rescanner is not None:
            self.rescanner.note_handled(path, camera)
        if outcome.finished:
            for hook in self.after_clip:
                hook(outcome)
        return outcome

    def _wait_for_clips(self) -> None:
        """--once with nothing else to do but clips still being written: wait (stop requests
        still heard) until the first has had its settle time, and queue it again."""
        due = min((self._retries[p][0] for p in self._clips_waiting if p in self._retries), default=None)
        if due is None:
            self._clips_waiting.clear()
            return
        self._stop.wait(max(0.0, due - time.monotonic()))
        self._queue_due_retries(time.monotonic())

    def _progress(self) -> bool:
        """Called while a long clip decodes: the on_progress hooks (the watchdog ping) run, and
        the answer says whether to go on (False once a stop is requested)."""
        for hook in self.on_progress:
            hook(self)
        return not self._stop.is_set()

    def _handle(self, outcome: FrameOutcome) -> FrameOutcome:
        """What follows a frame's outcome: health, retries, rescans, the hooks."""
        assert self.store is not None
        path, camera = outcome.path, outcome.camera
        self.health.count_outcome(outcome.status, outcome.skip_reason)
        if outcome.status == "retry" and outcome.retry_at is not None:
            delay = max(0.0, (outcome.retry_at - self.store.clock()).total_seconds())
            self._retries[path] = (time.monotonic() + delay, camera)
        elif outcome.status == "vanished":
            self.store.ledger.abandon_retries(path)
        if outcome.status in ("duplicate", "skipped") and self.rescanner is not None:
            self.rescanner.note_handled(path, camera)  # no row of its own: not "missed" at the next rescan
        if outcome.status == "ok" and outcome.commit is not None:
            self._unchecked.append(outcome.commit.frame.id)
            self._last_counted = time.monotonic()
            if self.once:
                self._counted.append(outcome.commit.frame.id)
            if len(self._unchecked) >= self.FILE_TIME_BATCH:
                self._check_file_times()
        if outcome.committed:
            for change in outcome.commit.event_changes if outcome.commit else ():
                event = change.event
                level = logging.DEBUG if change.change == "update" else logging.INFO
                log.log(level, "event %s %s: camera %s, %s, %d frame(s)", change.change, event["uid"][:8],
                        event["camera"], event["species"], event["frame_count"])
            log.debug("frame %s: %s %s", path, outcome.status, outcome.species or outcome.error or "")
            for hook in self.after_frame:
                hook(outcome)
        elif outcome.status == "duplicate" and outcome.frame_id is not None:
            # Field operation: a copy of a frame already counted (a sync tool re-uploading what
            # post-processing moved away) gets the same keep/archive/delete treatment.
            for hook in self.after_duplicate:
                hook(outcome)
        return outcome

    def _disk_full(self, item: QueuedFrame, error: BaseException) -> None:
        log.error("frame %s: disk full (%s); nothing was written, it will be retried when space returns",
                  item.path, error)
        self._retry = item
        for hook in self.on_disk_full:
            hook(error)
        if not self.on_disk_full:
            self._stop.wait(self.tick_s)

    def _idle_work(self) -> None:
        now = time.monotonic()
        self._queue_due_retries(now)
        if self.store is not None and now - self._last_idle_work >= self.idle_interval_s:
            self._last_idle_work = now
            for change in self.store.close_stale_events():
                log.info("event end %s: camera %s, %s, %d frame(s)", change.event["uid"][:8],
                         change.event["camera"], change.event["species"], change.event["frame_count"])
            self._check_camera_folders()

    def _queue_due_retries(self, now: float) -> None:
        """Put frames whose next try is due back on the queue (never waits: a dict scan of the
        few frames that failed transiently)."""
        due = [(path, camera) for path, (at, camera) in self._retries.items() if at <= now]
        for path, camera in due:
            del self._retries[path]
            log.info("frame %s: trying again", path)
            self.frames.put(path, camera)

    @property
    def retries_pending(self) -> int:
        """Frames waiting for their next try (transient errors with attempts left)."""
        return len(self._retries)

    # A steady stream that never lets the queue run empty is looked at every this many frames.
    FILE_TIME_BATCH = 2000

    def _check_file_times(self) -> None:
        """Warn once per batch (the backlog, a batch of uploads), never per frame, when many
        frames of one camera took their time from the file and share one: files copied without
        keeping their times (`cp` without -p) all carry the moment of the copy, and their
        birds collapse into one visit at that moment."""
        if not self._unchecked or self.store is None:
            return
        ids, self._unchecked = self._unchecked, []
        for shared in shared_file_times(self.store.db, ids):
            log.warning(
                "camera %s: %d of %d frame(s) timed by their file (no EXIF time) share one file time, "
                "within %g s of %s, and count as %d visit(s): files copied without keeping their "
                "modification times all carry the time of the copy. Copy with `cp -p` or `rsync -t`, or use "
                "cameras that write EXIF times (`edge frames` shows each frame's time_source)",
                shared.camera, shared.frames, shared.from_files, SHARED_FILE_TIME_S, shared.first_at,
                shared.visits)

    def _summary(self) -> str:
        """The line `edge run --once` ends with: what this run did with its frames, what they
        count, and how many of their times are the files' own or doubtful."""
        processed = self.health.processed
        errors = processed.get("error", 0) + processed.get("retry", 0)
        handled = {"ok": processed.get("ok", 0), "error(s)": errors, "duplicate(s)": processed.get("duplicate", 0)}
        handled.update({{"unchanged": "already recorded"}.get(name, name): n for name, n in processed.items()
                        if n and name not in ("ok", "error", "retry", "duplicate")})
        figures = run_figures(self.store.db, self._counted) if self.store is not None else {}
        return (f"summary: {sum(handled.values())} frame(s): "
                + ", ".join(f"{n} {name}" for name, n in handled.items())
                + f"; {figures.get('visits', 0)} visit(s), {figures.get('species', 0)} species, "
                  f"{figures.get('birds', 0)} bird(s); times: {figures.get('from_files', 0)} from file times "
                  f"(mtime), {figures.get('flagged', 0)} flagged")

    def _close_after_backlog(self) -> None:
        """The end of --once: no later frame will come to close what the backlog left open, so
        close every event it proves over (last frame older than the interval, relative to now
        or to the newest frame of the same camera) and say why any other stays open."""
        if self.store is None:
            return
        now = self.store.clock()
        for change in self.store.close_stale_events(now, behind_newest_frame=True):
            log.info("event end %s: camera %s, %s, %d frame(s)", change.event["uid"][:8],
                     change.event["camera"], change.event["species"], change.event["frame_count"])
        still_open = self.store.open_events()
        if still_open:
            ahead = sum(event["ended_at"] > format_utc(now) for event in still_open)
            reasons = [f"{n} {why}" for n, why in (
                (len(still_open) - ahead, f"with a last frame within {self.store.independence.total_seconds():g} s "
                                          "of now and of their camera's newest frame (the visit may go on)"),
                (ahead, "with a last frame after now (camera clock ahead of this device's: closed once no frame of "
                        f"it has been recorded for {self.store.independence.total_seconds():g} s)")) if n]
            log.info("%d event(s) left open: %s; a later run closes them", len(still_open), "; ".join(reasons))

    def _check_camera_folders(self) -> None:
        """Follow a camera folder that disappears and comes back (an SD card or USB stick
        remounted, a network share reconnected): inotify loses its watch with the folder, so
        the folder is watched anew and scanned for what arrived meanwhile."""
        returned = []
        for camera in self.config.cameras:
            current = _folder_id(camera.path)
            if current == self._folder_ids.get(camera.name):
                continue
            self._folder_ids[camera.name] = current
            if current is None:
                log.warning("camera %s: folder %s is gone; watching resumes when it is back", camera.name, camera.path)
            else:
                log.info("camera %s: folder %s is back; watching it again and scanning it", camera.name, camera.path)
                returned.append(camera)
        if not returned or self.once:
            return
        inotify = [c for c in self.config.cameras if c.mode == "inotify" and self._folder_ids.get(c.name)]
        if any(c.mode == "inotify" for c in returned):
            if self._inotify_watcher is not None:
                self._inotify_watcher.stop()
                self._watchers.remove(self._inotify_watcher)
                self._inotify_watcher = None
            if inotify:
                self._inotify_watcher = InotifyWatcher(inotify, self.frames, self.rescanner)
                self._inotify_watcher.start()
                self._watchers.append(self._inotify_watcher)
        offer_backlog(scan_backlog(returned), returned, self.frames, self.rescanner, watching=True)

    def watch_figures(self) -> dict:
        """What `edge status` and the metrics show about watching: frames skipped (symlinks,
        FIFOs, devices: not frames) by reason, and frames the periodic rescan found that inotify
        had not reported."""
        rescanner = self.rescanner
        return {"frames_skipped": self.health.skipped_by_reason(),
                "rescan_found": rescanner.found_total if rescanner else 0,
                "last_rescan_at": rescanner.last_rescan_at if rescanner else None}

    def stop(self) -> None:
        for watcher in self._watchers:
            watcher.stop()
        self._watchers.clear()
        for hook in self.on_stop:
            hook(self)
        if self.store is not None:
            self.store.close()
            self.store = None

    def run(self, *, handle_signals: bool = False, classifier: Classifier | None = None,
            finder: BirdFinder | None = None) -> int:
        """start → loop → stop; returns the exit code (0 after a signal-requested stop).

        With `handle_signals` (the CLI), SIGTERM/SIGINT/SIGHUP only set flags from the very
        beginning: a stop requested while the model loads ends the loop before its first frame,
        and the exit is still a clean 0. Tests running the daemon in-process leave signals alone.
        """
        if handle_signals:
            self.install_signal_handlers()
        self.start(classifier, finder)
        try:
            self.loop()
        finally:
            self.stop()
        log.info("stopped after %s", ", ".join(f"{k} {v}" for k, v in self.health.processed.items() if v))
        return 0

    # -- control ----------------------------------------------------------------------------

    def request_stop(self) -> None:
        self._stop.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def wait_stop(self, timeout: float) -> bool:
        """Sleep up to `timeout` unless a stop is requested (hooks that wait use this)."""
        return self._stop.wait(timeout)

    def request_reload(self) -> None:
        self._reload.set()

    def reload_model(self) -> bool:
        """Load the configured model anew and swap it in between two frames.

        Refused (False, the old model stays) when the new one does not load or when a name in
        [classify] allow/deny/thresholds is not one of its labels."""
        assert self.processor is not None and self.store is not None
        try:
            classifier = load_configured_classifier(self.config)
            finder = load_configured_finder(self.config)
        except ModelError as error:
            log.error("model reload failed, keeping %s: %s", self.processor.classifier.model_id, error)
            return False
        # A new model whose labels lack a configured name would silently stop counting (deny)
        # or count everything as unknown (allow): keep the old model until the config fits.
        species = [finding.line() for finding in check_species(self.config, classifier) if finding.level == "error"]
        if species:
            log.error("model reload refused, keeping %s: the new model %s lacks configured names: %s",
                      self.processor.classifier.model_id, classifier.model_id, "; ".join(species))
            return False
        self.processor.set_classifier(classifier)
        self.processor.finder = finder
        for hook in self.on_reload:
            hook(classifier)
        self.health.model_id = classifier.model_id
        log.info("model reloaded: %s", classifier.model_id)
        return True

    def install_signal_handlers(self) -> None:
        def stop(signum: int, _frame: object) -> None:
            log.info("%s: finishing the current frame, then stopping", signal.Signals(signum).name)
            self.request_stop()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, lambda _s, _f: self.request_reload())
