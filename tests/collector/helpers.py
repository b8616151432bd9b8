"""Fleet test helpers: realistic device messages (edge.publish.messages builders), a real
publishing device client, the collector as a real process, and reading rows from either engine."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from edge.publish.messages import MessageContext, counts_messages, event_message
from edge.store.times import format_utc
from fleet.db import connect, engine_of
from tests.fixtures.broker import Broker
from tests.fixtures.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]
SPECIES = ("Blue Jay", "Northern Cardinal", "American Robin", "Black-capped Chickadee")
START = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)


def context(device: str, tz: str = "Europe/Berlin") -> MessageContext:
    return MessageContext(device_id=device, station_tz=tz, model_id="aiy-birds-v1", model_version="1.2",
                          scientific_names={"Blue Jay": "Cyanocitta cristata",
                                            "Northern Cardinal": "Cardinalis cardinalis"})


def event_row(device: str, n: int, frames: int, **extra: Any) -> dict[str, Any]:
    started = START + timedelta(minutes=n)
    return {"uid": f"{device}-ev-{n:05d}", "camera": "feeder", "species": SPECIES[n % len(SPECIES)],
            "confidence": 0.8 + (n % 10) / 100, "started_at": format_utc(started),
            "ended_at": format_utc(started + timedelta(seconds=2 * frames)), "frame_count": frames,
            "individuals": 1 + n % 3, **extra}


def event_history(device: str, n: int, frames: int = 3, tz: str = "Europe/Berlin") -> list[tuple[str, str]]:
    """(relative topic, payload) of one event's life: new, updates, end, as the device publishes it."""
    ctx = context(device, tz)
    out = [event_message(event_row(device, n, 1), "new", ctx)]
    out += [event_message(event_row(device, n, f), "update", ctx) for f in range(2, frames + 1)]
    out.append(event_message(event_row(device, n, frames), "end", ctx))
    return [(m.topic, m.payload) for m in out]


def final_event(device: str, n: int, frames: int = 3) -> dict[str, Any]:
    """The payload of the event's last message (what the central row must equal)."""
    return json.loads(event_history(device, n, frames)[-1][1])


def day_counts(device: str, tallies: dict[str, dict[str, int]], now: datetime) -> list[tuple[str, str]]:
    return [(m.topic, m.payload) for m in counts_messages(tallies, "2026-11-29", context(device), now=now)]


def info_payload(device: str, published_at: str = "2026-11-29T06:00:00.000Z", **extra: Any) -> str:
    return json.dumps({"schema": 1, "device": device, "software_version": "0.1.0", "model_id": "aiy-birds-v1",
                       "model_version": "1.2", "detector_id": "ssd-v2", "timezone": "Europe/Berlin",
                       "cameras": ["feeder", "pond"], "deployments": [{"id": "d1", "site": "north"}],
                       "published_at": published_at, **extra})


class Device:
    """A real MQTT client publishing as one device: QoS 1, the status will, waits for PUBACKs."""

    def __init__(self, broker: Broker, device: str, prefix: str = "trailcam", will: bool = True,
                 login: tuple[str, str] | None = None, will_device: str | None = None) -> None:
        """`login`: (user, password) at the broker; `will_device`: whose status the will names
        (default this device's: another's, to test that the broker refuses it)."""
        self.device, self.prefix = device, prefix
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"dev-{device}-{os.getpid()}",
                                  protocol=paho.MQTTv311)
        if login is not None:
            self.client.username_pw_set(*login)
        if will:
            self.client.will_set(f"{prefix}/{will_device or device}/status", "offline", qos=1, retain=True)
        self._connected = threading.Event()
        self.client.on_connect = lambda *a: self._connected.set()
        self.client.max_inflight_messages_set(1000)
        self.client.connect(broker.host, broker.port, keepalive=5)
        self.client.loop_start()
        assert self._connected.wait(10), "device client connected"

    def publish(self, relative: str, payload: str | bytes, retain: bool = False, device: str | None = None) -> None:
        """Publish on this device's topic (or, with `device`, on another's) and wait for the PUBACK."""
        info = self.client.publish(f"{self.prefix}/{device or self.device}/{relative}", payload, qos=1, retain=retain)
        info.wait_for_publish(10)
        assert info.is_published()

    def publish_many(self, messages: list[tuple[str, str]], retain_counts: bool = True) -> None:
        infos = [self.client.publish(f"{self.prefix}/{self.device}/{t}", p, qos=1,
                                     retain=retain_counts and t.startswith("counts"))
                 for t, p in messages]
        for info in infos:
            info.wait_for_publish(30)
            assert info.is_published()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def drop(self) -> None:
        """Die uncleanly: close the socket without DISCONNECT, so the broker sends the will."""
        self.client.loop_stop()
        sock = self.client.socket()
        if sock is not None:
            sock.close()


@dataclass
class CollectorProcess:
    """`python -m collector run` as a real process, killed or stopped like a service."""

    broker: Broker
    db: str
    workdir: Path
    client_id: str = "collector-a"
    group: str | None = None
    extra: tuple[str, ...] = ()
    proc: subprocess.Popen | None = None
    env: dict[str, str] | None = None  # added to the process's environment (e.g. NOTIFY_SOCKET)

    def start(self) -> CollectorProcess:
        env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1", **(self.env or {}))
        argv = [sys.executable, "-m", "collector", "run", "--broker", f"{self.broker.host}:{self.broker.port}",
                "--db", self.db, "--client-id", self.client_id, "--log-level", "INFO", *self.extra]
        if self.group:
            argv += ["--group", self.group]
        self.log = self.workdir / f"{self.client_id}.log"
        handle = open(self.log, "ab")
        self.proc = subprocess.Popen(argv, env=env, stdout=handle, stderr=subprocess.STDOUT)
        handle.close()
        wait_for(lambda: "connected to" in self.log_text() or self.proc.poll() is not None, 20,
                 what=f"{self.client_id} connected")
        assert self.proc.poll() is None, self.log_text()
        return self

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)
        return self.proc.returncode


def query(db: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows from either engine (`?` placeholders; rewritten for PostgreSQL)."""
    engine = engine_of(db)
    conn = connect(db)
    try:
        if engine == "postgresql":
            sql = sql.replace("?", "%s")
        return [tuple(r) for r in conn.execute(sql, params).fetchall()]
    finally:
        conn.close()


def count(db: str, table: str, where: str = "1=1") -> int:
    try:
        return int(query(db, f"SELECT count(*) FROM {table} WHERE {where}")[0][0])
    except Exception:  # noqa: BLE001 - the table may not exist before the collector's first start
        return 0


def utc_text(value: Any) -> str:
    """A time column as the edge's text format, from either engine."""
    if isinstance(value, datetime):
        return format_utc(value)
    return str(value)


def events_by_uid(db: str) -> dict[str, dict[str, Any]]:
    cols = ("device", "uid", "camera", "species", "scientific_name", "confidence", "started_at", "ended_at",
            "frame_count", "individuals", "review", "model_species", "model_id", "model_version", "timezone",
            "change", "message_id")
    rows = query(db, f"SELECT {', '.join(cols)} FROM events")
    out = {}
    for row in rows:
        item = dict(zip(cols, row))
        item["started_at"], item["ended_at"] = utc_text(item["started_at"]), utc_text(item["ended_at"])
        out[item["uid"]] = item
    return out


def species_by_uid(db: str) -> dict[str, list[tuple[Any, ...]]]:
    """uid → the event's `event_species` rows (species, scientific_name, individuals, frames), by species."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    for uid, *row in query(db, "SELECT uid, species, scientific_name, individuals, frames FROM event_species "
                               "ORDER BY uid, species"):
        out.setdefault(uid, []).append(tuple(row))
    return out


def assert_row_matches(row: dict[str, Any], payload: dict[str, Any]) -> None:
    """The central row holds what the device's last message said."""
    assert row["device"] == payload["device"] and row["camera"] == payload["camera"]
    assert row["species"] == payload["species"] and row["scientific_name"] == payload["scientific_name"]
    assert abs(row["confidence"] - payload["confidence"]) < 1e-9
    assert row["started_at"] == payload["start"] and row["ended_at"] == payload["end"]
    assert row["frame_count"] == payload["frame_count"] and row["individuals"] == payload["individuals"]
    assert row["review"] == payload["review"] and row["model_species"] == payload["model_species"]
    assert row["model_id"] == payload["model_id"] and row["model_version"] == payload["model_version"]
    assert row["timezone"] == payload["timezone"] and row["change"] == payload["change"]
    assert row["message_id"] == payload["id"]
