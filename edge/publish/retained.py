"""The retained *state* topics the publisher sends directly, never through the outbox.

`health`, `info` and each camera's latest best crop are states, not events: a newer one
supersedes the previous one, and `health` must get out when the disk is full and the outbox
cannot be written. So they skip the outbox: the publisher (edge/publish/mqtt.py) asks this
object to send them on every connect and, on each pass of its pump, those that are due.

Why a class of its own: what is due, and when, is a second job beside the outbox pump, with
its own locks and events that other threads set (`health_changed`, `info_changed`,
`snapshot_changed`); the publisher thread alone publishes.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho

from edge.publish.discovery import HEALTH_TOPIC
from edge.publish.messages import snapshot_topic
from edge.store import outbox

log = logging.getLogger(__name__)

HealthSource = Callable[[], Mapping[str, Any] | None]
InfoSource = Callable[[], outbox.OutboxMessage | None]


class RetainedStates:
    """`health` (on connect, on change, every `health_interval_s`), `info` (on connect, on
    change) and the cameras' best crops (on connect, on change), published retained."""

    def __init__(self, base_topic: str, health_interval_s: float, *, health: HealthSource | None = None,
                 info: InfoSource | None = None) -> None:
        self.base_topic = base_topic
        self.health_interval_s = health_interval_s
        # None = no health topic (a publisher without a daemon's field operation).
        self._health_source = health
        self._health_due = threading.Event()
        self._next_health = 0.0
        # messages.info_message(...) as of now; None = no info topic.
        self._info_source = info
        self._info_due = threading.Event()
        # Each camera's latest best-crop JPEG (camera → file): only the newest matters; after a
        # reconnect every camera's latest is sent again.
        self._snapshots: dict[str, Path] = {}
        self._snapshots_due: set[str] = set()
        self._snapshots_lock = threading.Lock()

    # ---------------------------------------------------------------- any thread
    def health_changed(self) -> None:
        """Publish health at the next pump pass (or on the next connect). Never blocks."""
        self._health_due.set()

    def info_changed(self) -> None:
        """Publish info at the next pump pass (or on the next connect). Never blocks."""
        self._info_due.set()

    def snapshot_changed(self, camera: str, path: Path) -> None:
        """Camera `camera`'s latest best crop is now `path`: publish it at the next pass."""
        with self._snapshots_lock:
            self._snapshots[camera] = Path(path)
            self._snapshots_due.add(camera)

    # ---------------------------------------------------------------- the publisher thread
    def publish_on_connect(self, client: paho.Client) -> None:
        """Right after `online`: info, health, and every camera's latest crop again."""
        self._publish_info(client)
        self._publish_health(client)
        with self._snapshots_lock:
            self._snapshots_due.update(self._snapshots)
        self._publish_snapshots(client)

    def publish_due(self, client: paho.Client, now: float, *, draining: bool) -> None:
        """One pump pass: what is due. While draining (stopping) only the crops still go: the
        last health and info stay as they were."""
        if not draining and (self._health_due.is_set() or now >= self._next_health):
            self._publish_health(client)
        if self._snapshots_due:
            self._publish_snapshots(client)
        if not draining and self._info_due.is_set():
            self._publish_info(client)

    def _publish_health(self, client: paho.Client) -> None:
        """Publish the health snapshot (retained, QoS 1): never through the outbox, which
        cannot be written on a full disk, and a state supersedes the previous one anyway."""
        self._next_health = time.monotonic() + self.health_interval_s
        self._health_due.clear()  # before reading: a change while we read publishes again
        if self._health_source is None:
            return
        try:
            payload = self._health_source()
        except Exception:  # noqa: BLE001 - a broken snapshot must not stop delivery
            log.exception("MQTT health snapshot failed")
            return
        if payload is not None:
            client.publish(f"{self.base_topic}/{HEALTH_TOPIC}", json.dumps(payload, separators=(",", ":")),
                           qos=1, retain=True)

    def _publish_info(self, client: paho.Client) -> None:
        """Publish the `info` message (retained, QoS 1), like health: a state, not an event."""
        self._info_due.clear()  # before reading: a change while we read publishes again
        if self._info_source is None:
            return
        try:
            message = self._info_source()
        except Exception:  # noqa: BLE001 - a broken info source must not stop delivery
            log.exception("MQTT info message failed")
            return
        if message is not None:
            client.publish(f"{self.base_topic}/{message.topic}", message.payload, qos=message.qos, retain=message.retain)

    def _publish_snapshots(self, client: paho.Client) -> None:
        """Send each due camera's latest best crop as raw JPEG bytes, retained, QoS 0 (a newer
        one replaces it anyway; a lost one is sent again at the next connect). A file that
        retention removed in between is skipped."""
        with self._snapshots_lock:
            due = {camera: self._snapshots[camera] for camera in self._snapshots_due}
            self._snapshots_due.clear()
        for camera, path in due.items():
            try:
                data = path.read_bytes()
            except OSError as error:
                log.debug("snapshot of camera %s not published: %s", camera, error)
                continue
            client.publish(f"{self.base_topic}/{snapshot_topic(camera)}", data, qos=0, retain=True)
