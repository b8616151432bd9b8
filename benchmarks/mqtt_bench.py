"""MQTT benchmark: outbox → broker throughput, and what MQTT costs the counting path per frame.

    python -m benchmarks.mqtt_bench [--messages 5000] [--frames 400] [--repeats 3]

Side by side in one run, medians of `--repeats`:
1. Messages/s from the SQLite outbox to a local mosquitto (QoS 1, loopback, delete after
   PUBACK), against a bare paho loop publishing the same payloads with QoS 1 and no database
   (the ceiling), and with an in-flight window of 1 (what strict stop-and-wait would give).
2. The daemon end to end (real AIY model, the 125 birds25 photos as a backlog, `edge run
   --once` semantics): frames/s with `[mqtt] enabled = false` against `enabled = true` with the
   publisher draining to the broker concurrently, runs alternated. Goal: < 5% slower.
   Needs ../shared (or $TRAILCAM_SHARED); skipped otherwise.
3. Per-frame cost of MQTT on the frame transaction alone: one frame's commit (a stand-in row plus
   the daily tally, as the store writes) without MQTT, versus the same commit with the event
   and counts messages enqueued while the publisher drains them to the broker concurrently.
   The extra milliseconds are compared with the daemon's per-frame time (`--frame-ms`,
   measured by the edge benchmark; default: the int8 MobileNet-class figure on this machine).

Needs the `mosquitto` binary; starts its own broker on a free loopback port.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import paho.mqtt.client as paho
import sqlite_utils
from paho.mqtt.enums import CallbackAPIVersion

from edge.config.mqtt import MqttConfig
from edge.publish.messages import MessageContext, counts_messages, event_message
from edge.publish.mqtt import Publisher
from edge.store import outbox
from tests.fixtures.broker import Broker

CTX = MessageContext(device_id="bench", station_tz="Europe/Berlin", model_id="bench-model", model_version="1")


def _event(n: int) -> dict[str, object]:
    return {"uid": f"ev-{n:07d}", "camera": "cam1", "species": "Blue Jay", "confidence": 0.93,
            "started_at": "2026-11-29T01:02:03Z", "ended_at": "2026-11-29T01:02:13Z",
            "frame_count": 1, "model_id": "bench-model"}


def _open_db(path: Path) -> sqlite_utils.Database:
    db = sqlite_utils.Database(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA busy_timeout=30000")
    outbox.create_table(db)
    db.execute("CREATE TABLE IF NOT EXISTS frames_bench (id INTEGER PRIMARY KEY, sha TEXT UNIQUE, payload TEXT)")
    db.execute("CREATE TABLE IF NOT EXISTS tallies_bench (day TEXT, species TEXT, frames INTEGER, "
               "PRIMARY KEY (day, species))")
    db.conn.commit()
    return db


def _config(broker: Broker, **overrides: object) -> MqttConfig:
    return MqttConfig(**broker.mqtt_config(prefix="bench", discovery=False, **overrides))


def outbox_rate(broker: Broker, workdir: Path, messages: int, max_inflight: int) -> float:
    db_path = workdir / f"outbox-{time.monotonic_ns()}.db"
    db = _open_db(db_path)
    with db.atomic():
        outbox.enqueue(db, [event_message(_event(n), "new", CTX) for n in range(messages)], messages + 10)
    publisher = Publisher(_config(broker, max_inflight=max_inflight), db_path, "bench")
    start = time.perf_counter()
    publisher.start()
    while outbox.depth(db) > 0:
        time.sleep(0.005)
    elapsed = time.perf_counter() - start
    publisher.stop()
    return messages / elapsed


def bare_paho_rate(broker: Broker, messages: int) -> float:
    payloads = [event_message(_event(n), "new", CTX).payload for n in range(messages)]
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-bare", protocol=paho.MQTTv311)
    client.max_inflight_messages_set(20)
    client.connect(broker.host, broker.port)
    client.loop_start()
    start = time.perf_counter()
    infos = [client.publish("bench/bare/events", p, qos=1) for p in payloads]
    for info in infos:
        info.wait_for_publish(30)
    elapsed = time.perf_counter() - start
    client.disconnect()
    client.loop_stop()
    return messages / elapsed


def frame_commit_ms(db: sqlite_utils.Database, frames: int, offset: int, with_mqtt: bool) -> float:
    """Median ms of one frame's transaction, with or without the MQTT outbox rows."""
    times = []
    for n in range(offset, offset + frames):
        start = time.perf_counter()
        with db.atomic():
            db.execute("INSERT INTO frames_bench (sha, payload) VALUES (?, ?)", (f"sha-{n}", "x" * 200))
            db.execute("INSERT INTO tallies_bench VALUES ('2026-11-29', 'Blue Jay', 1) "
                       "ON CONFLICT DO UPDATE SET frames = frames + 1")
            if with_mqtt:
                msgs = [event_message(_event(n), "update", CTX)]
                msgs += counts_messages({"Blue Jay": {"events": 1, "frames": n}}, "2026-11-29", CTX, changed=["Blue Jay"])
                outbox.enqueue(db, msgs, 100_000)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _shared_dir() -> Path:
    return Path(os.environ.get("TRAILCAM_SHARED", Path(__file__).resolve().parent.parent.parent / "shared"))


def daemon_rate(broker: Broker | None, workdir: Path, photos: list[Path], model: Path, tag: str) -> tuple[float, float, float]:
    """(frames/s wall, CPU ms/frame, publisher-thread CPU ms/frame) of the real daemon over a
    backlog; MQTT on when a broker is given.

    CPU time covers every thread of the process from the first frame to the end of stop()
    (the publisher's drain included), so it charges all MQTT work and is less sensitive than
    wall time to other processes sharing the cores.
    """
    from edge.config import load_config
    from edge.daemon.wiring import build

    camera = workdir / f"camera-{tag}"
    camera.mkdir()
    for n, photo in enumerate(photos):
        shutil.copyfile(photo, camera / f"IMG_{n:04d}.jpg")
    data: dict[str, object] = {
        "cameras": [{"name": "cam1", "path": str(camera)}],
        "model": {"path": str(model)},
        "storage": {"database": str(workdir / f"{tag}.db")},
        "station": {"device_id": "bench", "timezone": "Europe/Berlin"},
    }
    if broker is not None:
        data["mqtt"] = broker.mqtt_config(prefix="bench", drain_timeout_s=5.0)
    empty = workdir / "empty.toml"
    empty.touch()
    daemon = build(load_config(empty, overrides=data, environ={}), once=True, field=False)
    daemon.start()
    cpu_start = time.process_time()
    start = time.perf_counter()
    daemon.loop()
    elapsed = time.perf_counter() - start
    daemon.stop()
    cpu = time.process_time() - cpu_start
    assert daemon.health.processed["ok"] == len(photos), daemon.health.processed
    publisher_cpu = 0.0
    if broker is not None:
        assert outbox.depth(sqlite_utils.Database(workdir / f"{tag}.db")) == 0, "publisher did not drain"
        publisher_cpu = daemon.publisher.cpu_seconds
    return len(photos) / elapsed, 1000 * cpu / len(photos), 1000 * publisher_cpu / len(photos)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.mqtt_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--frames", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--daemon-repeats", type=int, default=5, help="alternated off/on daemon runs")
    parser.add_argument("--frame-ms", type=float, default=None,
                        help="daemon's end-to-end ms per frame to relate the MQTT cost to")
    args = parser.parse_args(argv)
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(binary).exists():
        print("mosquitto not installed: apt-get install mosquitto", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="mqtt-bench-") as tmp:
        workdir = Path(tmp)
        (workdir / "broker").mkdir()
        broker = Broker(binary, workdir / "broker").start()
        try:
            rates: dict[str, list[float]] = {"bare": [], "outbox": [], "outbox1": []}
            for _ in range(args.repeats):
                rates["bare"].append(bare_paho_rate(broker, args.messages))
                rates["outbox"].append(outbox_rate(broker, workdir, args.messages, 20))
                rates["outbox1"].append(outbox_rate(broker, workdir, max(200, args.messages // 10), 1))
            med = {k: statistics.median(v) for k, v in rates.items()}

            db_path = workdir / "frames.db"
            db = _open_db(db_path)
            publisher = Publisher(_config(broker), db_path, "bench")
            publisher.start()
            plain, mqtt = [], []
            for r in range(args.repeats):
                plain.append(frame_commit_ms(db, args.frames, 2 * r * args.frames, with_mqtt=False))
                mqtt.append(frame_commit_ms(db, args.frames, (2 * r + 1) * args.frames, with_mqtt=True))
            publisher.stop()

            shared = _shared_dir()
            photos = sorted((shared / "data" / "birds25").glob("*/*.jpg"))
            model = shared / "models" / "aiy_birds_v1" / "model.tflite"
            daemon_rates: dict[str, list[tuple[float, float, float]]] = {"off": [], "on": []}
            if photos and model.is_file():
                for r in range(args.daemon_repeats):
                    order = ("off", "on") if r % 2 == 0 else ("on", "off")  # no order bias
                    for mode in order:
                        daemon_rates[mode].append(
                            daemon_rate(broker if mode == "on" else None, workdir, photos, model, f"{mode}{r}"))
        finally:
            broker.stop()
    cpu = subprocess.run(["sh", "-c", "lscpu | grep 'Model name' | sed 's/.*: *//'"],
                         capture_output=True, text=True).stdout.strip() or platform.processor()
    extra_ms = statistics.median(mqtt) - statistics.median(plain)
    print(f"MQTT benchmark on {cpu}, Python {platform.python_version()}, mosquitto loopback, QoS 1 "
          f"(medians of {args.repeats})")
    print(f"{'measure':58s} {'value':>12s} {'ratio':>8s}")
    print(f"{'bare paho publish, no database (msg/s)':58s} {med['bare']:12.0f} {1.0:8.2f}")
    print(f"{'outbox -> broker, delete after PUBACK, window 20 (msg/s)':58s} {med['outbox']:12.0f} "
          f"{med['outbox'] / med['bare']:8.2f}")
    print(f"{'outbox -> broker, window 1 (msg/s)':58s} {med['outbox1']:12.0f} {med['outbox1'] / med['bare']:8.2f}")
    print(f"{'frame transaction without MQTT (ms)':58s} {statistics.median(plain):12.3f} {1.0:8.2f}")
    print(f"{'frame transaction with outbox rows + live publisher (ms)':58s} {statistics.median(mqtt):12.3f} "
          f"{statistics.median(mqtt) / statistics.median(plain):8.2f}")
    print(f"{'extra time MQTT adds per frame (ms)':58s} {extra_ms:12.3f}")
    if daemon_rates["off"]:
        off = statistics.median(r[0] for r in daemon_rates["off"])
        on = statistics.median(r[0] for r in daemon_rates["on"])
        cpu_off = statistics.median(r[1] for r in daemon_rates["off"])
        cpu_on = statistics.median(r[1] for r in daemon_rates["on"])
        n = len(photos)
        print(f"{f'daemon end to end, AIY model, {n} frames, MQTT off (frames/s)':58s} {off:12.2f} {1.0:8.2f}")
        print(f"{'daemon end to end, MQTT on, publisher draining (frames/s)':58s} {on:12.2f} {on / off:8.2f}")
        print(f"{'daemon CPU per frame, MQTT off (ms)':58s} {cpu_off:12.2f} {1.0:8.2f}")
        print(f"{'daemon CPU per frame, MQTT on, all threads (ms)':58s} {cpu_on:12.2f} {cpu_on / cpu_off:8.2f}")
        pub_cpu = statistics.median(r[2] for r in daemon_rates["on"])
        print(f"{'  of which the publisher thread (ms)':58s} {pub_cpu:12.3f} {pub_cpu / cpu_off:8.2f}")
        print(f"{'time MQTT adds per frame, wall clock':58s} {100 * (off / on - 1):11.2f}%  (goal < 5%)")
        print(f"{'CPU MQTT adds per frame (process, noisy)':58s} {100 * (cpu_on / cpu_off - 1):11.2f}%")
        print(f"{'publisher thread CPU / daemon frame time':58s} {100 * pub_cpu * off / 1000:11.2f}%  (goal < 5%)")
        args.frame_ms = args.frame_ms or 1000 / off
    else:
        print("daemon end to end: skipped (../shared birds25 photos or AIY model absent; set TRAILCAM_SHARED)")
    if args.frame_ms:
        print(f"{f'transaction cost / daemon frame time ({args.frame_ms:.1f} ms/frame)':58s} "
              f"{100 * extra_ms / args.frame_ms:11.2f}%  (goal < 5%)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
