"""Fleet benchmark: simulated devices → real mosquitto → collector → PostgreSQL and SQLite.

    python -m benchmarks.fleet_bench [--devices 1000] [--messages 40000] [--lag-seconds 15] [--repeats 3]
                                     [--compare DIR]  # one-collector drains, DIR's collector against this one's

Side by side in one run, for each engine (PostgreSQL from Debian's package, started by the
benchmark with initdb + pg_ctl on a free loopback port; SQLite file with WAL):
1. Sustained rate: `--messages` realistic `events` payloads (edge.publish.messages.event_message,
   each a distinct event, QoS 1) from `--devices` MQTT client ids are queued by the broker for
   the collector's persistent session while it is down; the collector (`python -m collector run`,
   a real process, default batch settings) is started and drains them. Rate = rows / (last
   received_at - first received_at): the collector, the broker and the database, not the
   publisher. Median of `--repeats` runs; the row count is checked (every message exactly once).
2. The same with two collectors on one shared subscription (`--group`), both draining.
3. End-to-end lag at half the measured single-collector rate (and at each `--lag-rates`): the
   devices publish live, paced, for `--lag-seconds`; lag = the row's received_at (the collector's transaction for the batch
   holding it; the commit follows within that write) minus the publish time the publisher
   recorded beside the message id. p50 / p95.

Publishers: `--publishers` processes, each driving its share of the client ids from one thread
with paho's external loop (select over the sockets), so a thousand connections cost no
thousand threads. Needs mosquitto and PostgreSQL binaries; prints a table and returns 0.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from edge.publish.messages import MessageContext, event_message
from edge.store.times import format_utc
from fleet.db import connect, engine_of
from tests.fixtures.broker import Broker
from tests.fixtures.postgres import find_postgres_bin, make_server

REPO = Path(__file__).resolve().parents[1]
SPECIES = ("Blue Jay", "Northern Cardinal", "American Robin", "Black-capped Chickadee", "House Sparrow")
START = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)


def payload(device: str, n: int, run: str) -> str:
    ctx = MessageContext(device_id=device, station_tz="Europe/Berlin", model_id="aiy-birds-v1", model_version="1.2",
                         scientific_names={"Blue Jay": "Cyanocitta cristata"})
    started = START + timedelta(seconds=37 * n)
    event = {"uid": f"{run}-{device}-{n:06d}", "camera": "feeder", "species": SPECIES[n % len(SPECIES)],
             "confidence": 0.71 + (n % 29) / 100, "started_at": format_utc(started),
             "ended_at": format_utc(started + timedelta(seconds=8)), "frame_count": 1 + n % 6,
             "individuals": 1 + n % 2}
    return event_message(event, "end", ctx).payload


def _publisher(host: str, port: int, devices: list[str], messages: int, rate: float, run: str,
               out: str | None, ready: multiprocessing.synchronize.Event, go: multiprocessing.synchronize.Event) -> None:
    """One process: connect `devices` clients, then publish `messages` round-robin at `rate`/s
    (0 = as fast as possible); write {message uid: publish time} to `out`."""
    clients = []
    for name in devices:
        c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{run}-{name}", protocol=paho.MQTTv311)
        c.max_inflight_messages_set(50)
        c.connect(host, port, keepalive=120)
        clients.append(c)
    by_fd = {c.socket().fileno(): c for c in clients}
    poller = select.poll()  # not select(): a process may hold more than FD_SETSIZE (1024) sockets
    for fd in by_fd:
        poller.register(fd, select.POLLIN)

    def pump(timeout: float, flush: bool = False) -> None:
        # Without a loop thread paho writes in publish() itself; only a socket that was full
        # leaves something behind (want_write), checked when flushing.
        if flush:
            for c in clients:
                if c.want_write():
                    c.loop_write()
        for fd, _ in poller.poll(int(timeout * 1000)):
            by_fd[fd].loop_read()

    deadline = time.monotonic() + 30
    while not all(c.is_connected() for c in clients) and time.monotonic() < deadline:
        pump(0.05)
    texts = [(devices[i % len(devices)], i) for i in range(messages)]
    payloads = [payload(device, i, run) for device, i in texts]  # built before the clock starts
    ready.set()
    go.wait()
    sent: dict[str, float] = {}
    infos = []
    t0 = time.monotonic()
    for k, (device, i) in enumerate(texts):
        if rate:
            due = t0 + k / rate
            while time.monotonic() < due:
                pump(max(0.0, min(0.01, due - time.monotonic())))
        client = clients[k % len(clients)]
        uid = f"{run}-{device}-{i:06d}"
        infos.append(client.publish(f"trailcam/{device}/events", payloads[k], qos=1))
        sent[uid] = time.time()
        if k % 50 == 0:
            pump(0, flush=k % 1000 == 0)
    while not all(i.is_published() for i in infos):
        pump(0.05, flush=True)
    for c in clients:
        c.loop_misc()
    if out:
        Path(out).write_text(json.dumps(sent))
    for c in clients:
        c.disconnect()
        c.loop_write()


def publish(broker: Broker, devices: int, messages: int, processes: int, run: str, rate: float = 0.0,
            workdir: Path | None = None) -> dict[str, float]:
    """Publish from `devices` client ids spread over `processes`; {uid: publish time} when workdir given."""
    names = [f"dev{d:04d}" for d in range(devices)]
    ctx = multiprocessing.get_context("fork")
    procs, outs, readies = [], [], []
    go = ctx.Event()
    for p in range(processes):
        share = names[p::processes]
        out = str(workdir / f"sent-{run}-{p}.json") if workdir else None
        ready = ctx.Event()
        proc = ctx.Process(target=_publisher, args=(broker.host, broker.port, share, messages // processes,
                                                    rate / processes, run, out, ready, go))
        proc.start()
        procs.append(proc)
        outs.append(out)
        readies.append(ready)
    for ready in readies:
        assert ready.wait(120), "publishers connected"
    go.set()
    for proc in procs:
        proc.join(600)
        assert proc.exitcode == 0, f"publisher exited {proc.exitcode}"
    sent: dict[str, float] = {}
    for out in outs:
        if out:
            sent.update(json.loads(Path(out).read_text()))
    return sent


class BenchBroker(Broker):
    """The test fixture's mosquitto with a 2,000-message in-flight window per client (what MQTT
    3.1.1 clients get; MQTT 5 clients ask for theirs with Receive Maximum)."""

    def _write_config(self) -> None:
        super()._write_config()
        with open(self.conf_path, "a") as conf:
            conf.write("max_inflight_messages 2000\n")


class Collector:
    def __init__(self, broker: Broker, db: str, workdir: Path, client_id: str, group: str | None = None,
                 protocol: str = "5", code: Path = REPO) -> None:
        self.argv = [sys.executable, "-m", "collector", "run", "--broker", f"{broker.host}:{broker.port}", "--db", db,
                     "--client-id", client_id, "--log-level", "WARNING", "--protocol", protocol]
        if group:
            self.argv += ["--group", group]
        self.log = workdir / f"{client_id}.log"
        self.code = code  # the checkout whose collector runs (--compare: another one's)
        self.proc: subprocess.Popen | None = None

    def start(self) -> Collector:
        env = dict(os.environ, PYTHONPATH=str(self.code), PYTHONDONTWRITEBYTECODE="1")
        with open(self.log, "ab") as handle:  # cwd: `python -m` puts it first on sys.path
            self.proc = subprocess.Popen(self.argv, env=env, stdout=handle, stderr=subprocess.STDOUT, cwd=self.code)
        return self

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(60)


def _rows(db: str, run: str) -> list[float]:
    """received_at (epoch seconds) of this run's event rows."""
    conn = connect(db)
    try:
        if engine_of(db) == "postgresql":
            cur = conn.execute("SELECT uid, extract(epoch from received_at)::float8 FROM events WHERE uid LIKE %s",
                               (f"{run}-%",))
            rows = cur.fetchall()
            conn.rollback()
        else:
            rows = [(u, datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp()) for u, t in
                    conn.execute("SELECT uid, received_at FROM events WHERE uid LIKE ?", (f"{run}-%",)).fetchall()]
    finally:
        conn.close()
    return rows


def _wait_rows(db: str, run: str, expected: int, timeout: float = 600) -> list[tuple[str, float]]:
    deadline = time.monotonic() + timeout
    while True:
        rows = _rows(db, run)
        if len(rows) >= expected or time.monotonic() > deadline:
            return rows
        time.sleep(0.25)


def drain_rate(broker: Broker, db: str, workdir: Path, args: argparse.Namespace, run: str, members: int,
               protocol: str, code: Path = REPO) -> float:
    """Messages/s one or `members` collectors sustain draining a backlog queued for their sessions."""
    group = "bench" if members > 1 else None
    collectors = [Collector(broker, db, workdir, f"bench-{run}-{m}", group, protocol, code) for m in range(members)]
    for c in collectors:
        c.start()
    # Sessions and subscriptions exist once the schema is there and each has connected; SIGKILL
    # keeps them (a clean stop in a group would hand the share over), so the broker queues.
    time.sleep(3.0)
    for c in collectors:
        c.kill()
    publish(broker, args.devices, args.messages, args.publishers, run)
    for c in collectors:
        c.start()
    rows = _wait_rows(db, run, args.messages)
    for c in collectors:
        c.stop()
    assert len(rows) == args.messages, f"{run}: {len(rows)} rows of {args.messages}"
    times = sorted(t for _, t in rows)
    return (len(times) - 1) / (times[-1] - times[0])


def lag(broker: Broker, db: str, workdir: Path, args: argparse.Namespace, run: str, rate: float,
        protocol: str) -> tuple[float, float, float]:
    collector = Collector(broker, db, workdir, f"bench-{run}", protocol=protocol).start()
    time.sleep(3.0)
    messages = int(rate * args.lag_seconds)
    sent = publish(broker, args.devices, messages, args.publishers, run, rate=rate, workdir=workdir)
    achieved = (len(sent) - 1) / (max(sent.values()) - min(sent.values()))
    rows = _wait_rows(db, run, len(sent))
    collector.stop()
    assert len(rows) == len(sent), f"{run}: {len(rows)} rows of {len(sent)}"
    lags = sorted(t - sent[uid] for uid, t in rows)
    return statistics.median(lags), lags[int(0.95 * (len(lags) - 1))], achieved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fleet_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=40000)
    parser.add_argument("--publishers", type=int, default=4)
    parser.add_argument("--lag-seconds", type=float, default=15.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--engines", default="postgresql,sqlite")
    parser.add_argument("--protocols", default="5,3.1.1", help="the collector's --protocol values to compare")
    parser.add_argument("--lag-rates", default="1000",
                        help="fixed live rates (events/s, comma-separated) whose lag is measured too; empty = none")
    parser.add_argument("--compare", type=Path,
                        help="another checkout (e.g. `git archive main`): only one-collector drains, alternating "
                             "its collector with this one's, before and after side by side")
    args = parser.parse_args(argv)
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    pg_bin = find_postgres_bin()
    if not Path(binary).exists():
        print("mosquitto not installed: apt-get install mosquitto", file=sys.stderr)
        return 2
    results: dict[str, dict[str, object]] = {}
    compared: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="fleet-bench-") as tmp:
        workdir = Path(tmp)
        (workdir / "broker").mkdir()
        broker = BenchBroker(binary, workdir / "broker").start()
        server = None
        try:
            for engine in args.engines.split(","):
                if engine == "postgresql":
                    if pg_bin is None:
                        print("postgresql: skipped (no initdb; apt-get install postgresql)")
                        continue
                    server = make_server(pg_bin).start()
                    db = server.create_database("fleet_bench")
                else:
                    db = str(workdir / "central.sqlite")
                for protocol in args.protocols.split(","):
                    tag = f"{engine}-{protocol.replace('.', '')}"
                    if args.compare:
                        codes = {"compared": args.compare.resolve(), "this": REPO}
                        runs: dict[str, list[float]] = {name: [] for name in codes}
                        for r in range(args.repeats):
                            for name, code in codes.items():
                                runs[name].append(drain_rate(broker, db, workdir, args, f"{tag}-{name}-{r}", 1,
                                                             protocol, code))
                        compared[f"{engine} mqtt{protocol}"] = runs
                        continue
                    one = [drain_rate(broker, db, workdir, args, f"{tag}-one-{r}", 1, protocol)
                           for r in range(args.repeats)]
                    two = [drain_rate(broker, db, workdir, args, f"{tag}-two-{r}", 2, protocol)
                           for r in range(args.repeats)]
                    rate = statistics.median(one)
                    p50, p95, achieved = lag(broker, db, workdir, args, f"{tag}-lag", rate / 2, protocol)
                    fixed = [(float(x), *lag(broker, db, workdir, args, f"{tag}-lag{x}", float(x), protocol))
                             for x in args.lag_rates.split(",") if x.strip()]
                    results[f"{engine} mqtt{protocol}"] = {"one": one, "two": two, "rate": rate, "p50": p50,
                                                           "p95": p95, "achieved": achieved, "fixed": fixed}
                if server is not None:
                    server.stop()
                    shutil.rmtree(server.workdir, ignore_errors=True)
                    server = None
        finally:
            broker.stop()
            if server is not None:
                server.stop()
    cpu = subprocess.run(["sh", "-c", "lscpu | grep 'Model name' | sed 's/.*: *//'"],
                         capture_output=True, text=True).stdout.strip() or platform.processor()
    print(f"Fleet benchmark on {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, mosquitto loopback, "
          f"{args.devices} device client ids, {args.messages} event messages per drain (medians of {args.repeats})")
    for engine, runs in compared.items():
        before, after = statistics.median(runs["compared"]), statistics.median(runs["this"])
        print(f"{engine:20s} one collector, {args.compare}: {before:6.0f} events/s (runs "
              f"{' · '.join(f'{x:.0f}' for x in runs['compared'])})")
        print(f"{engine:20s} one collector, this checkout: {after:6.0f} events/s (runs "
              f"{' · '.join(f'{x:.0f}' for x in runs['this'])}); ratio {after / before:.2f}")
    print(f"load average (1, 5, 15 min) at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'engine':20s} {'measure':52s} {'value':>10s} {'ratio':>7s}")
    for engine, r in results.items():
        one, two = statistics.median(r["one"]), statistics.median(r["two"])
        print(f"{engine:20s} {'one collector draining a backlog (events/s)':52s} {one:10.0f} {1.0:7.2f}")
        print(f"{engine:20s} {'two collectors, one shared subscription (events/s)':52s} {two:10.0f} {two / one:7.2f}")
        print(f"{engine:20s} {'live at half that rate: achieved (events/s)':52s} {r['achieved']:10.0f}")
        print(f"{engine:20s} {'  lag publish -> row written, p50 (ms)':52s} {1000 * r['p50']:10.1f}")
        print(f"{engine:20s} {'  lag publish -> row written, p95 (ms)':52s} {1000 * r['p95']:10.1f}")
        for target, f50, f95, got in r["fixed"]:
            print(f"{engine:20s} {f'live at {target:.0f}/s: achieved; lag p50, p95 (ms)':52s} "
                  f"{f'{got:.0f}; {1000 * f50:.0f}, {1000 * f95:.0f}':>10s}")
        print(f"{engine:20s} {'  runs, one collector (events/s)':52s} {' '.join(f'{x:.0f}' for x in r['one']):>10s}")
        print(f"{engine:20s} {'  runs, two collectors (events/s)':52s} {' '.join(f'{x:.0f}' for x in r['two']):>10s}")
    for name, r in results.items():
        if name.startswith("postgresql"):
            best = max(statistics.median(r["one"]), statistics.median(r["two"]))
            ok = best >= 5000 and r["p95"] < 1.0
            print(f"goal ({name}: >= 5,000 events/s, p95 < 1 s at half that rate): {'met' if ok else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
