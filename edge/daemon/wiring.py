"""All of the daemon's wiring, in one place: `build(config) -> Daemon`.

What runs, built from the configuration, and in which order it is hooked in:

    store            Store (edge/store/writer.py), opened by Daemon.start once every check passed,
                     with the OutboxWriter (edge/publish/outbox_writer.py) when [mqtt] is enabled
    processor        FrameProcessor (edge/daemon/pipeline.py) over that store, with the species
                     prior ([prior], edge/classify/prior.py StationPrior) matched to the model's
                     labels; rebuilt after a model reload, checked in before_open
    publisher        the MQTT Publisher (edge/publish/mqtt.py): it gets the outbox writer's
                     MessageContext, the store's tallies_for_day, the HealthState's `health` and
                     the device's `info` in one PublisherSources at construction (mqtt_publisher),
                     and reads the outbox over its own connection
    field operations FieldOperations (edge/operate/field.py) with its Notifier (sd_notify) and
                     Metrics (Prometheus, when [health] metrics_port is set); `edge run` has
                     them, tests may build a daemon without (`field=False`)

Start order: before_open makes and probes the state folder; on_start starts the publisher, then
the field operations (READY=1). Stop order (`on_stop`, before the store closes): the field
operations first (flush archive locations, STOPPING=1, final status.json), then the publisher
(drain briefly, `stopped`), so systemd hears STOPPING before the MQTT drain waits on the network.
"""

from __future__ import annotations

import logging
from datetime import UTC
from functools import partial

from edge.classify.model import Classifier
from edge.classify.taxonomy import rollup_from_config
from edge.config import EdgeConfig
from edge.config.deployment import as_aware
from edge.daemon.lifecycle import Daemon
from edge.daemon.pipeline import FrameOutcome, FrameProcessor
from edge.daemon.preflight import make_state_dir
from edge.detect.repeats import RepeatRules
from edge.ingest.capture_time import CameraClock, camera_clock
from edge.ingest.watcher import camera_folder
from edge.operate.snapshots import SnapshotWriter, snapshot_folder
from edge.store.clock_checks import ClockRules
from edge.store.writer import Store, tallies_for_day

log = logging.getLogger(__name__)


def open_store(config: EdgeConfig, outbox_writer, classifier: Classifier, *, notifications=None) -> Store:
    """The one writer of the database, for this classifier (its model id goes into the outbox);
    `notifications`: [notify]'s rules (edge.alerts.rules.NotificationRules), None when off."""
    if outbox_writer is not None:
        outbox_writer.follow_model(classifier)
    store = Store(
        config.storage.database, station_tz=config.station.timezone, independence_s=config.events.independence_s,
        group_by=config.events.group_by, max_duration_s=config.events.max_duration_s,
        species_min_frames=config.events.species_min_frames,
        retry_max_attempts=config.storage.retry_max_attempts, retry_backoff_s=config.storage.retry_backoff_s,
        busy_timeout_s=config.storage.busy_timeout_s, station_id=config.station.device_id,
        outbox=outbox_writer,
        notifications=notifications,
        # Frames that stay in the folder are their own redo log; moved or deleted ones are not
        # (nor are a live camera's frames in which nothing was counted: removed once recorded).
        durable_commits=config.retention.after_processing != "keep" or removes_live_frames(config),
        clock_rules=clock_rules(config),
        # Repeat-detection elimination needs the detector's boxes: off on the whole-frame route.
        repeat_rules=RepeatRules.of(config.repeats) if config.detector.enabled else None,
    )
    # The model's labels and the taxa a roll-up may count ("Turdus sp.", "Turdidae"), so that
    # reports can name every row.
    rollup = rollup_from_config(classifier.spec.labels, config.taxonomy)
    taxa = list(classifier.spec.labels) + (rollup.taxonomy.roll_up_taxa() if rollup is not None else [])
    store.record_taxa(taxa, classifier.model_id)
    record_picture_folders(config, store)
    if notifications is not None:
        from edge.store import notifications as queue
        from edge.store.db import immediate

        with immediate(store.conn):  # a schema-6 database from before the queue existed
            queue.create_tables(store.conn)
    return store


def removes_live_frames(config: EdgeConfig) -> bool:
    """Whether a live camera removes its frames once recorded (keep_empty = false, the default)."""
    return any(camera.source is not None and not camera.live.keep_empty for camera in config.cameras)


def make_live_cameras(config: EdgeConfig):
    """[[cameras]] with a `source` (edge.live.cameras.LiveCameras), None without any: built
    before the metrics, which report their streams; hooked in last (live_cameras)."""
    from edge.live.cameras import LiveCameras
    from edge.store.db import known_states_reader

    live = LiveCameras(config.cameras, config.station.zone, known=known_states_reader(config.storage.database))
    return live if live else None


def live_cameras(config: EdgeConfig, daemon: Daemon, live) -> None:
    """The live cameras (make_live_cameras) hooked in: folders made before the watchers start, the
    readers started once the backlog is queued and stopped first; their status goes into the
    HealthState before the field operations write it; a frame in which nothing was counted is
    removed before [retention] sees it. Every password of their URLs is masked in the log,
    whoever logs it."""
    from edge.redact import install_log_redaction

    install_log_redaction(live.secrets())
    daemon.live = live
    if daemon.once:
        log.info("live cameras are not read with --once: only the frames already in their folders are processed")
        return
    daemon.before_open.append(lambda _daemon: live.prepare())
    daemon.on_start.insert(0, lambda _daemon: live.start(_daemon.frames.busy))
    daemon.after_frame.insert(0, live.after_frame)

    def tick(_daemon: Daemon) -> None:
        _daemon.health.set(streams=live.status())
        try:
            live.housekeeping(_daemon.frames.busy)
        except Exception as error:  # noqa: BLE001 - retried at the next interval
            log.error("live cameras: keep_days housekeeping failed: %s", error)

    daemon.on_tick.insert(0, tick)

    def stop(_daemon: Daemon) -> None:
        live.stop()
        _daemon.health.set(streams=live.status())

    daemon.on_stop.insert(0, stop)
def record_picture_folders(config: EdgeConfig, store: Store) -> None:
    """The camera folders and the archive, in the database (edge/store/folders.py): so that
    `edge web --db` alone, without this configuration, can serve the pictures."""
    from datetime import datetime

    from edge.store import folders
    from edge.store.db import immediate

    found = [folders.PictureFolder("camera", camera.name, camera_folder(camera)) for camera in config.cameras]
    if config.retention.archive_dir is not None:
        found.append(folders.PictureFolder("archive", None, config.retention.archive_dir))
    with immediate(store.conn):
        folders.record(store.conn, found, datetime.now(UTC))


def notifications(config: EdgeConfig):
    """[notify]'s rules (the store's sink) and delivery thread, sharing the gate that holds a
    frame's rows until its crop is written (edge/alerts/)."""
    from edge.alerts.delivery import Deliverer
    from edge.alerts.render import Renderer
    from edge.alerts.rules import NotificationRules, ReleaseGate
    from edge.classify.names import station_namer

    gate = ReleaseGate()
    zone = config.station.zone
    latitude = config.station.latitude
    state = config.storage.database.parent
    renderer = Renderer(station=config.station.device_id, zone=zone, namer=station_namer(config),
                        snapshots=snapshot_folder(config.storage.database), scratch=state / "notify-pictures",
                        web_url=config.notify.web_url, attach=config.notify.attach,
                        digest_pictures=config.notify.digest_pictures, southern=latitude is not None and latitude < 0)
    deliverer = Deliverer(config.notify, config.storage.database, renderer, zone=zone, gate=gate)
    rules = NotificationRules(config.notify, deliverer.target_ids, zone, latitude, gate)
    return rules, deliverer


def check_notify_before_open(config: EdgeConfig, daemon: Daemon) -> None:
    """A daemon built without the CLI's preflight still refuses [notify] without Apprise or with a
    URL Apprise does not understand, before anything is created."""
    from edge.daemon.lifecycle import DaemonError
    from edge.daemon.preflight import check_notify

    errors = [finding.line() for finding in check_notify(config) if finding.level == "error"]
    if errors:
        raise DaemonError("\n".join(errors))


def clock_rules(config: EdgeConfig) -> ClockRules:
    """[clock_checks] and each camera's configured deployment start (a TOML local date-time or
    date in the station's zone), for the store's camera-clock checks (edge/store/clock_checks.py)."""
    zone = config.station.zone
    starts = {camera.name: as_aware(camera.deployment.start, zone).astimezone(UTC)
              for camera in config.cameras if camera.deployment is not None and camera.deployment.start is not None}
    return ClockRules.of(config.clock_checks.future_tolerance_s, config.clock_checks.out_of_order_s, starts)


def make_processor(config: EdgeConfig, classifier: Classifier, store: Store, finder=None) -> FrameProcessor:
    """One frame's path (read → decode → [detect → crop] → classify → decide → store) over this
    store; `finder` (edge.detect.finder.BirdFinder) is the detector route, None classifies whole."""
    return FrameProcessor(classifier, store, config.classify, top_k=config.model.top_k,
                          symlink_roots={c.name: camera_folder(c) for c in config.cameras if c.symlinks == "inside"},
                          finder=finder, rollup_for=partial(_rollup_for, config),
                          prior=species_prior(config, classifier), clocks=camera_clocks(config, store))


def camera_clocks(config: EdgeConfig, store: Store) -> dict[str, CameraClock]:
    """Each camera's clock (zone, correction); logs the cameras that do not simply keep the
    station's time, so the log says which times were read how."""
    clocks = {}
    for camera in config.cameras:
        clock = camera_clock(camera, store.station_tz)
        clocks[camera.name] = clock
        if clock.own_zone or clock.correction:
            log.info("camera %s: EXIF times without an offset read in %s%s", camera.name,
                     getattr(clock.zone, "key", None) or clock.zone,
                     f", corrected by {clock.correction.total_seconds():+.0f} s" if clock.correction else "")
    return clocks


def _rollup_for(config: EdgeConfig, labels):
    """The roll-up of [taxonomy] for a model's labels (at start and at every reload)."""
    return rollup_from_config(labels, config.taxonomy)


def species_prior(config: EdgeConfig, classifier: Classifier):
    """The [prior] for this classifier's labels (edge.classify.prior.StationPrior), None when off;
    logs what it matched. Built at start and again after a model reload (the labels may differ)."""
    from edge.classify.prior import load_prior

    station = load_prior(config, classifier.spec.labels, classifier.spec.no_bird_label)
    if station is not None:
        unmatched = station.prior.unmatched_labels()
        log.info("species prior: %s; %d label(s) without a match (no prior opinion on them%s)",
                 station.prior.summary(), len(unmatched),
                 ": " + ", ".join(m.label for m in unmatched[:10]) + (", ..." if len(unmatched) > 10 else "")
                 if unmatched else "")
    return station


def check_prior_before_open(config: EdgeConfig, daemon: Daemon) -> None:
    """A daemon built without the CLI's preflight still refuses a broken [prior] (no coordinates,
    no model, no checklist) before the store creates anything."""
    from edge.daemon.lifecycle import DaemonError
    from edge.daemon.preflight import check_prior

    errors = [finding.line() for finding in check_prior(config, None) if finding.level == "error"]
    if errors:
        raise DaemonError("\n".join(errors))


def check_timezone_before_open(config: EdgeConfig, daemon: Daemon) -> None:
    """A daemon built without the CLI's preflight still refuses a database written in another
    station zone (edge.store.db.timezone_change) before the store rewrites it."""
    from edge.daemon.lifecycle import DaemonError
    from edge.store.db import timezone_change

    change = timezone_change(config.storage.database, config.station.timezone)
    if change is not None:
        raise DaemonError(f"station.timezone: {change}")


def reload_prior(config: EdgeConfig, daemon: Daemon, classifier: Classifier) -> None:
    """After a model reload: the prior matched anew to the new labels (a failure keeps the old one)."""
    from edge.classify.prior import PriorError

    if daemon.processor is None:
        return
    try:
        daemon.processor.prior = species_prior(config, classifier)
    except PriorError as error:
        log.error("species prior not rebuilt for %s, keeping the previous one: %s", classifier.model_id, error)


def device_info(config: EdgeConfig, outbox_writer, daemon: Daemon):
    """The retained MQTT `info` message (edge/publish/messages.py info_message) as of now: the
    outbox writer's context names the loaded model, the daemon's processor the detector."""
    from edge import __version__
    from edge.publish.messages import info_message

    finder = getattr(daemon.processor, "finder", None)
    detector_id = finder.detector.spec.model_id if finder is not None else None
    return info_message(outbox_writer.message_context(), config.cameras, software_version=__version__,
                        detector_id=detector_id)


def build(config: EdgeConfig, *, once: bool = False, tick_s: float = 1.0, field: bool = True,
          notifier=None, force_timezone: bool = False) -> Daemon:
    """The daemon `edge run` runs, wired from `config`. `field=False`: without the field
    operations (no sd_notify, status.json, metrics, retention or disk guard), as tests of the
    processing itself run it. `notifier`: an edge.operate.notify.Notifier other than the
    environment's. `force_timezone`: start on a database written in another station zone
    (`edge run --force-timezone`; the store logs the change), refused before anything opens without it.

    Each part gets everything it reads at construction, so the parts are built in the order
    their inputs exist: the HealthState, the daemon, then the publisher (its `info` reads the
    daemon's detector) and the field operations with their metrics."""
    outbox_writer = None
    if config.mqtt.enabled:
        from edge.classify.names import station_namer
        from edge.publish.outbox_writer import OutboxWriter

        # Payloads say each label's common name in [station] language beside its scientific name.
        outbox_writer = OutboxWriter(config.station.device_id, config.station.timezone, None, {},
                                     config.mqtt.outbox_max_rows, namer=station_namer(config))
    health = None
    if field:
        from edge.operate.field import field_health
        from edge.operate.notify import Notifier

        notifier = notifier or Notifier()
        health = field_health(config)
        # The idle loop must wake up often enough to ping within half the watchdog interval.
        tick_s = notifier.poll_timeout(tick_s)

    rules = deliverer = None
    if config.notify.enabled:
        rules, deliverer = notifications(config)
    live = make_live_cameras(config) if any(camera.source is not None for camera in config.cameras) else None

    daemon = Daemon(config, open_store=partial(open_store, config, outbox_writer, notifications=rules),
                    make_processor=partial(make_processor, config), once=once, tick_s=tick_s, health=health)
    publisher = mqtt_publisher(config, outbox_writer, daemon, health) if outbox_writer is not None else None
    operations = None
    if field:
        from edge.operate.field import FieldOperations, disk_paths

        metrics = None
        if config.health.metrics_port:
            from edge.operate.metrics import Metrics, MetricsSources
            metrics = Metrics(disk_paths(config), sources=MetricsSources(
                notifications=deliverer.figures if deliverer is not None else None,
                streams=live.status if live is not None else None))
        operations = FieldOperations(config, notifier, health=health, metrics=metrics, publisher=publisher)
    daemon.publisher = publisher
    daemon.notifications = deliverer
    if deliverer is not None:
        daemon.before_open.append(partial(check_notify_before_open, config))
    if not force_timezone:
        daemon.before_open.append(partial(check_timezone_before_open, config))
    if config.prior.source != "none":
        # [prior]: refused before anything is created; matched anew to a reloaded model's labels.
        daemon.before_open.append(partial(check_prior_before_open, config))
        daemon.on_reload.append(partial(reload_prior, config, daemon))
    if outbox_writer is not None:
        daemon.on_reload.append(outbox_writer.follow_model)
    if publisher is not None:
        # After follow_model: the republished `info` names the reloaded model.
        daemon.on_reload.append(lambda _classifier: publisher.info_changed())
    if operations is not None:
        # Every start-up check passed, nothing opened yet: a refused start creates nothing.
        daemon.before_open.append(lambda _daemon: make_state_dir(operations.db_path.parent))
    if config.detector.enabled:
        # Each event's best crop, written after its commit and published retained (edge/operate/snapshots.py).
        snapshots = SnapshotWriter(snapshot_folder(config.storage.database),
                                   publisher.snapshot_changed if publisher is not None else None)
        daemon.snapshots = snapshots

        def write_snapshot(outcome: FrameOutcome) -> None:
            snapshots.write(outcome.camera, outcome.commit, outcome.crops)  # the paths written: not needed here

        daemon.after_frame.append(write_snapshot)
    if deliverer is not None:
        # After the crop is written (the snapshots hook above): what the frame queued may go.
        daemon.after_frame.append(deliverer.release)
        daemon.on_start.append(lambda _daemon: deliverer.start())
    if publisher is not None:
        daemon.on_start.append(lambda _daemon: publisher.start())
    if operations is not None:
        daemon.on_start.append(operations.on_start)
        daemon.after_frame.append(operations.after_frame)
        daemon.after_duplicate.append(operations.after_duplicate)
        daemon.after_clip.append(operations.after_clip)
        daemon.on_progress.append(operations.on_progress)
        daemon.on_tick.append(operations.on_tick)
        daemon.on_disk_full.append(operations.on_disk_full)
    # The stop order, explicit: STOPPING=1 and the final snapshot first, then the MQTT drain
    # (which may wait on the network), then Daemon.stop closes the store.
    if operations is not None:
        daemon.on_stop.append(operations.on_stop)
    if publisher is not None:
        daemon.on_stop.append(lambda _daemon: publisher.stop())
    if deliverer is not None:
        daemon.on_stop.append(lambda _daemon: deliverer.stop())
    if live is not None:
        live_cameras(config, daemon, live)  # last: its hooks go first where they must (see there)
    return daemon


def mqtt_publisher(config: EdgeConfig, outbox_writer, daemon: Daemon, health):
    """The MQTT Publisher (edge/publish/mqtt.py) with all it reads: the outbox writer's message
    context, the store's tallies, `health` (the field operations' HealthState; None without
    them: no retained `health` topic) and the daemon, for `info` as of now."""
    from edge.operate.field import mqtt_health
    from edge.publish.mqtt import Publisher, PublisherSources

    sources = PublisherSources(
        context=outbox_writer.message_context, tallies=tallies_for_day,
        # Home Assistant discovery announces the health entity only where there is one.
        health=partial(mqtt_health, health, config.station.device_id) if health is not None else None,
        info=partial(device_info, config, outbox_writer, daemon))
    # Best-crop camera entities exist only where a detector cuts crops.
    cameras = [c.name for c in config.cameras] if config.detector.enabled else ()
    return Publisher(config.mqtt, config.storage.database, config.station.device_id, sources, cameras=cameras)
