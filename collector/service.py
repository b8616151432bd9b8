"""`collector run`: the MQTT client that feeds the sink, acknowledging only what is committed.

Why it looks like this:
- MQTT 5 with a persistent session (clean_start=False, a session expiry): while the collector
  is away the broker queues the devices' QoS 1 messages for it, and a restarted collector gets
  them. Subscriptions are made with retain handling 1 (retained messages only for a new
  subscription), so a reconnect does not replay every device's retained counts.
- Manual acknowledgement (paho 2's `manual_ack_set(True)`): paho does not PUBACK on receipt;
  the writer thread acks the batch's messages after the transaction holding their rows
  committed, all of its PUBACKs in one write (collector.mqtt_client: `LeanClient`, which also
  reads the socket through a buffer and decodes a property-less PUBLISH without paho's
  per-message `Properties`). A
  collector killed at any moment leaves the uncommitted messages unacknowledged, the broker
  sends them again, and the idempotent upserts (collector.sink) make the second copy a no-op.
  Acks go out in the order the messages arrived (MQTT requires it).
- Receive Maximum (CONNECT property) bounds how many unacknowledged messages the broker sends
  us: that is the collector's whole memory of pending work. With the database down nothing is
  acked, the window fills, the broker stops sending and keeps the rest (its queue limit is the
  fleet's buffer); the writer retries with exponential backoff and resumes.
- Batches: up to `batch_size` messages or `batch_ms` after the first, one transaction each.
- `--group NAME` subscribes through `$share/NAME/...`: the broker splits the stream among the
  collectors of the group. A clean stop unsubscribes first (the broker then routes the share
  to the others), drains and acks what it already has, and disconnects.
- A message whose connection is gone before its commit is not acked on the new connection
  unless the broker resumed the same session (session present): packet ids belong to a session.
- One message never stops the stream (issue 22): `parse` turns anything wrong with a message
  (a field out of its bounds, not JSON, a device that is not the topic's) into a rejected
  row, and the sink tells a database that is away (retry the batch, nothing acked) from a
  row the database refuses (that message alone is rejected, the rest land); both end acked.
- Listens on nothing.
"""

from __future__ import annotations

import logging
import queue
import random
import signal
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from collector.messages import Rejected, parse, subscriptions
from collector.mqtt_client import ack_many, make_client
from collector.sink import Message, Sink, SinkUnavailable, WriteStats
from edge.operate.notify import Notifier  # sd_notify over $NOTIFY_SOCKET, stdlib only

log = logging.getLogger(__name__)


@dataclass
class CollectorConfig:
    broker_host: str
    broker_port: int
    db: str
    prefix: str = "trailcam"
    group: str | None = None
    client_id: str = field(default_factory=lambda: f"trailcam-collector-{socket.gethostname()}")
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    batch_size: int = 500
    batch_ms: int = 50
    receive_maximum: int = 2000
    session_expiry_s: int = 7 * 24 * 3600
    protocol: str = "5"  # "5" or "3.1.1" (see docs/fleet.md)
    lean_client: bool = True  # collector.mqtt_client.LeanClient where paho supports it (False: plain paho)
    keepalive_s: int = 30
    retry_min_s: float = 0.2
    retry_max_s: float = 30.0
    stats_interval_s: float = 60.0


@dataclass
class _Incoming:
    mid: int
    qos: int
    generation: int
    topic: str
    payload: bytes


@dataclass
class CollectorStats:
    received: int = 0
    committed: int = 0
    batches: int = 0
    db_failures: int = 0
    written: WriteStats = field(default_factory=WriteStats)


class Collector:
    """One collector process: `run()` until `stop()` (SIGTERM/SIGINT in the CLI)."""

    def __init__(self, config: CollectorConfig, *, sink: Sink | None = None,
                 on_commit: Callable[[list[Message]], None] | None = None,
                 notifier: Notifier | None = None) -> None:
        self.config = config
        # systemd (Type=notify, WatchdogSec=): READY once running, the watchdog fed by the writer
        # loop itself, so a writer stuck in the database or a hung interpreter gets restarted.
        # Outside systemd every call is a no-op.
        self.notifier = notifier or Notifier()
        self.sink = sink or Sink(config.db)
        self.stats = CollectorStats()
        self._on_commit = on_commit
        self._queue: queue.Queue[_Incoming] = queue.Queue()
        self._stopping = threading.Event()
        self._draining = threading.Event()
        self._connected = threading.Event()
        self._unsubscribed = threading.Event()
        self._generation = 0
        self._session_generation = 0  # the oldest generation whose packet ids are still valid
        self._lock = threading.Lock()
        self._rng = random.Random()
        self.client = self._new_client()

    # -- MQTT ---------------------------------------------------------------------------------
    def _new_client(self) -> paho.Client:
        cfg = self.config
        if cfg.protocol == "3.1.1":
            # The session is kept by clean_session=False; its lifetime and the in-flight window
            # are the broker's settings (mosquitto: persistent_client_expiration, max_inflight_messages).
            client = make_client(CallbackAPIVersion.VERSION2, client_id=cfg.client_id, protocol=paho.MQTTv311,
                                 clean_session=False, lean=cfg.lean_client)
        else:
            client = make_client(CallbackAPIVersion.VERSION2, client_id=cfg.client_id, protocol=paho.MQTTv5,
                                 lean=cfg.lean_client)
        client.manual_ack_set(True)
        client.reconnect_delay_set(1, 30)
        if cfg.username is not None:
            client.username_pw_set(cfg.username, cfg.password)
        if cfg.tls:
            client.tls_set(ca_certs=cfg.ca_file, certfile=cfg.cert_file, keyfile=cfg.key_file,
                           cert_reqs=ssl.CERT_REQUIRED)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_unsubscribe = self._on_unsubscribe
        return client

    def _connect_properties(self) -> Properties:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.config.session_expiry_s
        props.ReceiveMaximum = self.config.receive_maximum
        return props

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            log.error("broker %s:%s refused the connection: %s (check --username/--password-file/--tls)",
                      self.config.broker_host, self.config.broker_port, reason)
            return
        with self._lock:
            self._generation += 1
            if not flags.session_present:
                # A new session: packet ids of earlier connections mean nothing to the broker.
                self._session_generation = self._generation
        filters = subscriptions(self.config.prefix, self.config.group)
        if self.config.protocol == "3.1.1":
            # No retain handling in 3.1.1: a resumed session keeps its subscriptions, and
            # subscribing again would replay every retained message.
            if not flags.session_present:
                client.subscribe([(f, 1) for f in filters])
        else:
            options = SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB)
            client.subscribe([(f, options) for f in filters])
        log.info("connected to %s:%s (session %s)", self.config.broker_host, self.config.broker_port,
                 "resumed" if flags.session_present else "new")
        self.notifier.status(f"connected to {self.config.broker_host}:{self.config.broker_port}")
        self._connected.set()

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self._connected.clear()
        if not self._stopping.is_set():
            log.warning("broker connection lost (%s); reconnecting", reason)
            self.notifier.status(f"broker connection lost ({reason}); reconnecting")

    def _on_unsubscribe(self, client: paho.Client, userdata: Any, mid: int, reasons: Any, properties: Any) -> None:
        self._unsubscribed.set()

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        self._queue.put(_Incoming(message.mid, message.qos, self._generation, message.topic, bytes(message.payload)))

    # -- the writer ---------------------------------------------------------------------------
    def _next_batch(self) -> list[_Incoming]:
        try:
            first = self._queue.get(timeout=0.2)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + self.config.batch_ms / 1000
        while len(batch) < self.config.batch_size:
            remaining = deadline - time.monotonic()
            try:
                batch.append(self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _commit(self, batch: list[_Incoming]) -> None:
        """Write the batch until it is committed (backing off while the database is away), then ack."""
        messages = [Message(m.topic, parse(m.topic, m.payload, self.config.prefix), m.payload) for m in batch]
        attempt = 0
        while True:
            try:
                written = self.sink.write(messages)
                break
            except SinkUnavailable as exc:
                attempt += 1
                self.stats.db_failures += 1
                step = min(self.config.retry_max_s, self.config.retry_min_s * 2 ** (attempt - 1))
                delay = step / 2 + self._rng.uniform(0, step / 2)
                log.warning("database unavailable (%s); %d messages wait unacknowledged, retry in %.1fs",
                            exc, len(batch), delay)
                self.notifier.status(f"database unavailable; {len(batch)} messages wait, retry in {delay:.0f}s")
                if self._wait(delay):
                    return  # stopping: nothing acked, the broker redelivers the batch
        for m in messages:
            if isinstance(m.parsed, Rejected):
                log.warning("rejected %s (%d bytes): %s", m.parsed.topic, m.parsed.size, m.parsed.reason)
        with self._lock:
            valid_from = self._session_generation
        # One write for the batch's PUBACKs, in arrival order, only now that its rows are committed.
        ack_many(self.client, [m.mid for m in batch if m.qos == 1 and m.generation >= valid_from])
        for incoming in batch:
            if incoming.qos == 2 and incoming.generation >= valid_from:  # never subscribed at QoS 2; kept correct
                self.client.ack(incoming.mid, incoming.qos)
        self.stats.committed += len(batch)
        self.stats.batches += 1
        self.stats.written.add(written)
        if self._on_commit is not None:
            self._on_commit(messages)

    def _wait(self, seconds: float) -> bool:
        """Wait out a retry delay, feeding the watchdog (waiting on purpose is alive); True when
        stopping."""
        deadline = time.monotonic() + seconds
        while True:
            self.notifier.watchdog_tick()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return self._stopping.is_set()
            if self._stopping.wait(self.notifier.poll_timeout(remaining)):
                return True

    def _log_stats(self) -> None:
        s, w = self.stats, self.stats.written
        log.info("committed %d messages in %d batches: %d events, %d counts, %d status, %d info, %d rejected; "
                 "%d database failures", s.committed, s.batches, w.events, w.counts, w.statuses, w.infos,
                 w.rejected, s.db_failures)

    def run(self) -> int:
        """Connect, consume until stop(); returns the exit code."""
        cfg = self.config
        try:
            self.sink.open()
        except SinkUnavailable as exc:
            log.warning("database not reachable yet (%s); will retry", exc)
        if cfg.protocol == "3.1.1":
            self.client.connect_async(cfg.broker_host, cfg.broker_port, keepalive=cfg.keepalive_s)
        else:
            self.client.connect_async(cfg.broker_host, cfg.broker_port, keepalive=cfg.keepalive_s,
                                      clean_start=False, properties=self._connect_properties())
        self.client.loop_start()
        self.notifier.ready(f"collecting from {cfg.broker_host}:{cfg.broker_port}")
        next_stats = time.monotonic() + cfg.stats_interval_s
        try:
            while not self._stopping.is_set():
                self.notifier.watchdog_tick()
                batch = self._next_batch()
                if batch:
                    self.stats.received += len(batch)
                    self._commit(batch)
                if time.monotonic() >= next_stats:
                    self._log_stats()
                    next_stats = time.monotonic() + cfg.stats_interval_s
            self.notifier.stopping("draining: committing what arrived")
            self._drain()
        finally:
            self.client.disconnect()
            self.client.loop_stop()
            self.sink.close()
            self._log_stats()
            self.notifier.close()
        return 0

    def _drain(self) -> None:
        """A clean stop: in a group, hand the share to the others first; commit and ack what came."""
        self._draining.set()
        if self.config.group and self._connected.is_set():
            self.client.unsubscribe(subscriptions(self.config.prefix, self.config.group))
            self._unsubscribed.wait(5)
        quiet_until = time.monotonic() + 0.3
        while time.monotonic() < quiet_until or not self._queue.empty():
            batch = self._next_batch()
            if batch:
                self._commit(batch)
                quiet_until = time.monotonic() + 0.3

    def stop(self) -> None:
        self._stopping.set()

    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop())
