"""The MQTT publisher: drains the SQLite outbox to the broker, at least once, in order.

Why it looks like this:
- Its own thread and its own SQLite connection, so counting never waits for the network: the
  processing thread only writes outbox rows inside its frame transaction (edge/store/outbox.py).
- Rows are published in id order with QoS 1 and deleted only after the broker's PUBACK. A row
  published but not acknowledged when the connection drops (or the process dies) is published
  again after the reconnect: duplicates are possible only across a reconnect, never lost rows.
- A fresh paho client per connection attempt, with a clean session: paho's own in-memory retry
  queue would otherwise resend what the outbox resends too, and dies with the process anyway.
  The outbox is the single source of truth.
- Reconnects back off exponentially with jitter (`reconnect_min_s` .. `reconnect_max_s`), so a
  fleet whose broker is away for days does not storm it when it returns.
- `status` is `online` (retained) on every connect; the will is `offline` (retained, QoS 1) for
  a crash or a lost link; a clean stop publishes `stopped` and disconnects (no will).
- Home Assistant discovery configs are retained and republished when Home Assistant announces
  `online` on `<discovery_prefix>/status` (it forgets entities that are not in its registry).
- A rejected login is logged as a clear error naming the config keys; the daemon keeps counting
  (rows pile up in the bounded outbox) and the publisher keeps retrying with backoff.
- Everything it reads from the rest of the daemon comes in one frozen `PublisherSources` at
  construction (the wiring, edge/daemon/wiring.py, builds it): a publisher is complete when
  built, and no call order matters.
- `health` (retained) is a *state*, not an event, and must get out when the disk is full and the
  outbox cannot be written: so it bypasses the outbox. The publisher asks the health source (the
  daemon's HealthState, edge/operate/field.py mqtt_health) for the current snapshot on every
  connect, when told the state changed (`health_changed()`), and every `health_interval_s`.
- `info` (retained) is the device's identity card (software, model and detector versions, time
  zone, cameras, deployments): published directly on every connect, right after `online`, and
  again after `info_changed()` (a model reload), from the info source
  (edge/publish/messages.py info_message). A central collector learns what a device is from it.
  Health, info and the best crops are edge/publish/retained.py's job (RetainedStates).
- The day's counts snapshot (at start and when the station's day changes) is queued into the
  outbox by edge/publish/day_snapshot.py (DaySnapshots), over this thread's connection; the
  species known and announced to Home Assistant are edge/publish/announce.py's (SpeciesAnnouncer).
- A full disk must not stop delivery: deleting acknowledged rows (or queueing the day snapshot)
  that fails with SQLITE_FULL is retried later instead of ending the thread.
"""

from __future__ import annotations

import logging
import random
import sqlite3
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from edge.config.mqtt import MqttConfig
from edge.publish.announce import SpeciesAnnouncer
from edge.publish.day_snapshot import DISK_FULL_RETRY_S, ContextSource, DaySnapshots, TalliesSource
from edge.publish.retained import HealthSource, InfoSource, RetainedStates
from edge.store import outbox
from edge.store.db import connect
from edge.store.disk import is_disk_full_error
from edge.store.writer import tallies_for_day

log = logging.getLogger(__name__)

STATUS_ONLINE = "online"
STATUS_OFFLINE = "offline"
STATUS_STOPPED = "stopped"
DELETE_INTERVAL_S = 0.25


def backoff_delay(attempt: int, minimum: float, maximum: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with "equal jitter": half the step fixed, half random.

    attempt 1 waits minimum/2..minimum, doubling up to maximum/2..maximum; the random half
    spreads a fleet's reconnects, the fixed half keeps a lone device from hammering.
    """
    step = min(maximum, minimum * (2 ** max(0, attempt - 1)))
    return step / 2 + (rng or random).uniform(0, step / 2)


@dataclass
class PublisherStatus:
    """What `edge status` shows about MQTT (never the password)."""

    state: str = "starting"  # starting | connecting | connected | backoff | auth_failed | stopped | disabled
    broker: str = ""
    connected: bool = False
    last_error: str | None = None
    connects: int = 0
    published: int = 0  # rows acknowledged by the broker since start
    next_retry_in_s: float | None = None
    password_source: str = "none"
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "broker": self.broker,
            "connected": self.connected,
            "last_error": self.last_error,
            "connects": self.connects,
            "published": self.published,
            "next_retry_in_s": self.next_retry_in_s,
            "password_source": self.password_source,
        }


@dataclass(frozen=True)
class PublisherSources:
    """What the publisher reads from the rest of the daemon, all given at construction.

    Each is a callable asked when needed (on the publisher's thread), so the values may change
    while the publisher runs (a model reload changes the context and the info); none = the
    topic or feature is absent, as for a publisher without a daemon (tests, benchmarks)."""

    # The outbox writer's MessageContext (station zone, model, scientific names), for the day
    # snapshots and Home Assistant's entity names; none = no day snapshots.
    context: ContextSource | None = None
    # The store's tallies_for_day: the day snapshot's counts.
    tallies: TalliesSource = tallies_for_day
    # The species discovery announces at start; none = those with tallies in the database.
    known_species: Callable[[], Iterable[str]] | None = None
    # The retained `health` payload (edge/operate/field.py mqtt_health); none = no health topic.
    health: HealthSource | None = None
    # The retained `info` message (edge/publish/messages.py info_message); none = no info topic.
    info: InfoSource | None = None


class _SessionEnded(Exception):
    """The broker connection ended (lost, refused or timed out); the reason is in the status."""


@dataclass
class _Pump:
    """One session's sending state (Publisher._pump and its steps; the publisher thread only)."""

    last_sent_id: int = 0       # rows up to this id are sent (or skipped) in this session
    next_poll: float = 0.0      # monotonic time the outbox is read again without news
    next_delete: float = 0.0    # monotonic time acknowledged rows are deleted next
    data_version: int = -1      # PRAGMA data_version last seen: changes when the store commits
    drain_deadline: float | None = None  # set once stop() was asked: drain until then


class Publisher:
    """Owns the MQTT connection; `start()` spawns the thread, `stop()` drains briefly and says `stopped`."""

    def __init__(
        self,
        config: MqttConfig,
        db_path: str | Path,
        device_id: str,
        sources: PublisherSources = PublisherSources(),
        *,
        cameras: Iterable[str] = (),
        on_state: Callable[[str], None] | None = None,
        clock: Callable[[], datetime] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """`cameras`: those with best-crop snapshots (the detector route); `on_state`: told each
        new state (e.g. for `edge status`); `clock` and `rng`: the day's date and the backoff
        jitter, fixed in tests."""
        self.config = config
        self.db_path = Path(db_path)
        self.device_id = device_id
        self.base_topic = config.base_topic(device_id)
        self.sources = sources
        self._on_state = on_state
        self._days = DaySnapshots(sources.context, sources.tallies, clock or (lambda: datetime.now(UTC)),
                                  config.outbox_max_rows)
        self._retained = RetainedStates(self.base_topic, config.health_interval_s, health=sources.health,
                                        info=sources.info)
        self._species = SpeciesAnnouncer(config.discovery_prefix, self.base_topic, device_id,
                                         enabled=config.discovery, context=sources.context,
                                         known_species=sources.known_species, health=sources.health is not None,
                                         cameras=cameras)
        self._rng = rng or random.Random()
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.cpu_seconds: float | None = None  # CPU time of the publisher thread, set when it ends
        self._status = PublisherStatus(
            broker=f"{'mqtts' if config.use_tls else 'mqtt'}://{config.host}:{config.port}",
            password_source=config.password_source(),
        )
        self._status_lock = threading.Lock()
        self._last_logged_error: str | None = None
        # Per-session state, touched only by the publisher thread.
        self._inflight: dict[int, int] = {}  # paho mid -> outbox row id
        self._acked: list[int] = []
        self._connack: paho.ReasonCode | None = None
        self._disconnected = False
        self._rediscover = False

    # ---------------------------------------------------------------- public API
    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("publisher already started")
        self._thread = threading.Thread(target=self._run, name="mqtt-publisher", daemon=True)
        self._thread.start()

    def health_changed(self) -> None:
        """The health state changed (paused, resumed): publish it at the next loop pass
        (within ~0.1 s when connected; on the next connect otherwise). Thread-safe, never blocks."""
        self._retained.health_changed()

    def info_changed(self) -> None:
        """What `info` says changed (a model reload): publish it again at the next loop pass, or on
        the next connect. Thread-safe, never blocks."""
        self._retained.info_changed()
        self._wake.set()

    def snapshot_changed(self, camera: str, path: Path) -> None:
        """Camera `camera`'s latest event has a new best crop in `path`: publish it (retained)
        at the next loop pass, or on the next connect. Thread-safe, never blocks."""
        self._retained.snapshot_changed(camera, path)
        self._wake.set()

    def stop(self, timeout: float | None = None) -> None:
        """Drain for up to `drain_timeout_s`, publish `stopped`, disconnect, join the thread."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            budget = timeout if timeout is not None else self.config.drain_timeout_s + self.config.connect_timeout_s + 5
            self._thread.join(budget)
            if self._thread.is_alive():
                log.warning("MQTT publisher did not stop within %.1f s; undelivered rows stay in the outbox", budget)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def status(self) -> dict[str, Any]:
        with self._status_lock:
            return self._status.as_dict()

    # ---------------------------------------------------------------- status helpers
    def _set(self, **changes: Any) -> None:
        with self._status_lock:
            previous = self._status.state
            for key, value in changes.items():
                setattr(self._status, key, value)
            state = self._status.state
        if self._on_state is not None and state != previous:
            try:
                self._on_state(state)
            except Exception:  # noqa: BLE001 - a status hook must not stop delivery
                log.exception("MQTT on_state hook failed")

    def _error(self, message: str, *, state: str = "backoff") -> None:
        """Log an error once per distinct message (retries every few minutes for days stay quiet)."""
        self._set(last_error=message, connected=False, state=state)
        if message != self._last_logged_error:
            log.error("%s", message)
            self._last_logged_error = message
        else:
            log.debug("%s (again)", message)

    # ---------------------------------------------------------------- thread
    def _run(self) -> None:
        conn = connect(self.db_path, busy_timeout_s=30.0)
        try:
            # Deleting a delivered row needs no fsync: after a power cut the row is merely
            # published again (at least once). FULL would fsync per batch and hold the write
            # lock the counting thread needs.
            conn.execute("PRAGMA synchronous = NORMAL")
            outbox.create_table(conn)
            conn.commit()
            self._species.seed(conn)
            self._days.queue(conn, self._species.labels)
            attempt = 0
            while not self._stopping.is_set():
                connected = self._session(conn)
                if self._stopping.is_set():
                    break
                attempt = 1 if connected else attempt + 1
                delay = backoff_delay(attempt, self.config.reconnect_min_s, self.config.reconnect_max_s, self._rng)
                self._set(state="auth_failed" if self._status.state == "auth_failed" else "backoff",
                          connected=False, next_retry_in_s=round(delay, 3))
                log.debug("MQTT reconnect attempt %d in %.2f s", attempt, delay)
                self._stopping.wait(delay)
        except Exception:  # a bug here must not take the counting daemon down, but must be seen
            log.exception("MQTT publisher crashed; frames are still counted and kept in the outbox")
            self._set(state="crashed", connected=False)
            raise
        finally:
            self.cpu_seconds = time.thread_time()  # this thread's CPU, for the benchmark
            conn.close()
            if self._status.state != "crashed":
                self._set(state="stopped", connected=False, next_retry_in_s=None)

    def _new_client(self) -> paho.Client:
        cfg = self.config
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=cfg.resolved_client_id(self.device_id),
            clean_session=True,
            protocol=paho.MQTTv311,
        )
        client.connect_timeout = cfg.connect_timeout_s
        client.max_inflight_messages_set(cfg.max_inflight)
        client.max_queued_messages_set(0)
        if cfg.username is not None:
            client.username_pw_set(cfg.username, cfg.read_password())
        if cfg.use_tls:
            client.tls_set(
                ca_certs=str(cfg.ca_file) if cfg.ca_file else None,
                certfile=str(cfg.cert_file) if cfg.cert_file else None,
                keyfile=str(cfg.key_file) if cfg.key_file else None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
            client.tls_insecure_set(cfg.tls_insecure)
        client.will_set(f"{self.base_topic}/status", STATUS_OFFLINE, qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    # paho callbacks (run in this thread, from client.loop())
    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self._connack = reason

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self._disconnected = True

    def _on_publish(self, client: paho.Client, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        row_id = self._inflight.pop(mid, None)
        if row_id is not None:
            self._acked.append(row_id)

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        if message.topic == f"{self.config.discovery_prefix}/status" and message.payload.strip() == b"online":
            self._rediscover = True

    # one connection, from connect to disconnect
    def _session(self, conn: sqlite3.Connection) -> bool:
        """Connect, publish until the link drops or stop; True when the broker accepted us."""
        cfg = self.config
        self._inflight.clear()
        self._acked.clear()
        self._connack = None
        self._disconnected = False
        self._set(state="connecting", next_retry_in_s=None)
        try:
            client = self._new_client()
        except (OSError, ValueError, ssl.SSLError) as exc:
            self._error(f"MQTT TLS/credential setup failed: {exc} (check [mqtt] ca_file, cert_file, key_file, password_file)")
            return False
        try:
            client.connect(cfg.host, cfg.port, keepalive=cfg.keepalive_s)
        except (OSError, ssl.SSLError) as exc:
            self._error(f"MQTT broker {cfg.host}:{cfg.port} unreachable: {exc}")
            return False
        try:
            if not self._await_connack(client):
                return False
            self._set(state="connected", connected=True, last_error=None, connects=self._status.connects + 1)
            if self._last_logged_error is not None or self._status.connects == 1:
                log.info("MQTT connected to %s:%d as %s", cfg.host, cfg.port, self.base_topic)
            self._last_logged_error = None
            client.publish(f"{self.base_topic}/status", STATUS_ONLINE, qos=1, retain=True)
            self._retained.publish_on_connect(client)
            if cfg.discovery:
                client.subscribe(f"{cfg.discovery_prefix}/status", qos=1)
                self._species.publish_all(client)
            self._pump(client, conn)
            return True
        except _SessionEnded:
            return self._connack is not None and not self._connack.is_failure
        finally:
            if self._acked:  # acknowledged before the link dropped: never send these again
                if self._delete(conn, self._acked):
                    self._set(published=self._status.published + len(self._acked))
                self._acked = []  # not deletable (disk full): sent again after the reconnect
            self._inflight.clear()
            try:
                client.disconnect() if not self._disconnected else None
                client.loop(0.01)
            except Exception:  # noqa: BLE001 - the socket is going away either way
                pass

    def _await_connack(self, client: paho.Client) -> bool:
        cfg = self.config
        deadline = time.monotonic() + cfg.connect_timeout_s
        while self._connack is None:
            if self._stopping.is_set():
                return False
            rc = client.loop(0.1)
            if self._connack is not None:
                break
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or self._disconnected:
                self._error(f"MQTT broker {cfg.host}:{cfg.port} closed the connection before CONNACK ({rc.name})")
                return False
            if time.monotonic() > deadline:
                self._error(f"MQTT broker {cfg.host}:{cfg.port} did not answer CONNECT within {cfg.connect_timeout_s} s")
                return False
        if self._connack.is_failure:
            reason = str(self._connack)
            if self._connack.value in (4, 5, 0x86, 0x87, 0x8C):  # bad user name or password / not authorized
                self._error(
                    f"MQTT broker {cfg.host}:{cfg.port} rejected the login ({reason}) for user "
                    f"{cfg.username!r}: check [mqtt] username and the password "
                    f"(source: {self._status.password_source}; password_file, TRAILCAM__MQTT__PASSWORD or the "
                    "mqtt_password credential). "
                    "Frames are still counted; messages wait in the outbox and the login is retried.",
                    state="auth_failed",
                )
            else:
                self._error(f"MQTT broker {cfg.host}:{cfg.port} refused the connection: {reason}")
            return False
        return True

    def _delete(self, conn: sqlite3.Connection, ids: list[int]) -> bool:
        """Delete acknowledged rows; False when the disk is full (the caller retries later)."""
        try:
            outbox.delete(conn, ids)
            return True
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.rollback()
            if not is_disk_full_error(exc):
                raise
            log.warning("MQTT: cannot delete %d delivered outbox row(s), the disk is full (%s); retrying later",
                        len(ids), exc)
            return False

    def _pump(self, client: paho.Client, conn: sqlite3.Connection) -> None:
        """Keep up to `max_inflight` rows in flight; delete acknowledged ones; until stop or link loss.

        One pass: queue the day snapshot when the day changed, send the next batch when rows are
        due, publish health when due, end the drain when it is done or its time is over, let paho
        do its I/O, delete what the broker acknowledged."""
        cfg = self.config
        pump = _Pump()
        while True:
            now = time.monotonic()
            if self._days.queue_when_due(conn, self._species.labels, now):
                pump.next_poll = 0.0
            if self._stopping.is_set() and pump.drain_deadline is None:
                pump.drain_deadline = now + cfg.drain_timeout_s
            room = cfg.max_inflight - len(self._inflight)
            if room > 0 and self._rows_due(conn, pump, now):
                sent_all = self._send_batch(client, conn, pump, room) < room
                if sent_all:
                    pump.next_poll = now + cfg.poll_interval_s
                    if pump.drain_deadline is not None and not self._inflight and not self._acked:
                        self._finish(client)
                        return
            self._retained.publish_due(client, now, draining=pump.drain_deadline is not None)
            if pump.drain_deadline is not None and now > pump.drain_deadline:
                log.info("MQTT drain time over; %d row(s) stay in the outbox for the next start", outbox.depth(conn))
                self._finish(client)
                return
            if self._rediscover:
                self._rediscover = False
                log.info("Home Assistant came online: republishing discovery")
                self._species.publish_all(client)
            rc = client.loop(0.05 if self._inflight else 0.1)
            self._delete_acked(conn, pump, time.monotonic())
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or self._disconnected:
                self._error(f"MQTT connection to {cfg.host}:{cfg.port} lost ({rc.name}); will reconnect")
                raise _SessionEnded

    def _rows_due(self, conn: sqlite3.Connection, pump: _Pump, now: float) -> bool:
        """Whether to read the outbox now: stop's wake-up, the poll interval, a drain, or new rows.

        data_version changes when another connection (the store) commits: new rows are seen
        within batch_window_s without a disk read. The short window lets a burst of frames go
        out as one batch, in which superseded counts snapshots are skipped (_send_batch)."""
        current = conn.execute("PRAGMA data_version").fetchone()[0]
        if current != pump.data_version:
            pump.data_version = current
            pump.next_poll = min(pump.next_poll, now + self.config.batch_window_s)
        return self._wake.is_set() or now >= pump.next_poll or pump.drain_deadline is not None

    def _send_batch(self, client: paho.Client, conn: sqlite3.Connection, pump: _Pump, room: int) -> int:
        """Publish up to `room` rows after the last one sent, in id order; returns how many rows
        were read (fewer than `room`: the outbox is empty for now). Raises _SessionEnded when
        paho refuses a publish (the link is gone)."""
        self._wake.clear()
        rows = outbox.peek(conn, limit=room, after_id=pump.last_sent_id)
        conn.commit()  # end the read transaction so WAL checkpoints are not held back
        newest = {row.topic: row.id for row in rows if row.kind == "counts"}
        for row in rows:
            if row.kind == "counts" and newest[row.topic] != row.id:
                # A retained snapshot followed by a newer one of the same topic in this
                # batch: the broker would keep only the newer one anyway.
                self._acked.append(row.id)
                pump.last_sent_id = row.id
                continue
            info = client.publish(f"{self.base_topic}/{row.topic}", row.payload, qos=row.qos, retain=row.retain)
            if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                raise _SessionEnded
            if row.qos == 0:
                self._acked.append(row.id)
            else:
                self._inflight[info.mid] = row.id
            pump.last_sent_id = row.id
            self._species.learn(client, row)
        return len(rows)

    def _delete_acked(self, conn: sqlite3.Connection, pump: _Pump, now: float) -> None:
        """Delete acknowledged rows in batches (every DELETE_INTERVAL_S, or at once when the
        window is empty or we are draining): one short write transaction instead of one per
        PUBACK keeps the write lock free for the counting thread. On a full disk they are kept
        (already sent in this session) and tried again after DISK_FULL_RETRY_S."""
        if not self._acked or not (now >= pump.next_delete or not self._inflight or pump.drain_deadline is not None):
            return
        pump.next_delete = now + DELETE_INTERVAL_S
        deleted_ids, self._acked = self._acked, []
        if self._delete(conn, deleted_ids):
            self._set(published=self._status.published + len(deleted_ids))
        else:
            self._acked = deleted_ids + self._acked
            pump.next_delete = now + DISK_FULL_RETRY_S

    def _finish(self, client: paho.Client) -> None:
        """Clean shutdown: retained `stopped`, wait briefly for its PUBACK, then DISCONNECT (no will)."""
        info = client.publish(f"{self.base_topic}/status", STATUS_STOPPED, qos=1, retain=True)
        deadline = time.monotonic() + 2.0
        while not info.is_published() and time.monotonic() < deadline:
            if client.loop(0.05) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                break
        client.disconnect()
        self._disconnected = True
        client.loop(0.05)
