"""The collector's CPU time per message, measured in its own process while it drains a backlog.

    python -m benchmarks.collector_bench [--messages 20000] [--repeats 3] [--protocol 5] [--profile]
                                       [--compare DIR]

Real parts only: the test fixture's mosquitto (2,000-message in-flight window, as in
benchmarks.fleet_bench), a PostgreSQL cluster started here (initdb + pg_ctl, loopback), the fleet
benchmark's realistic `events` payloads from 1,000 device client ids. Each run: the collector's
persistent session is made, `--messages` are queued by the broker for it while it is away, then a
fresh process runs `collector.service.Collector` in-process and drains them; the figure is that
process's CPU time (user + system, all threads: paho's network thread and the writer) from the
start of `run()` until every message is committed and acknowledged, divided by the messages. CPU
time moves much less than a rate with the load of a shared machine, so it is the figure to compare.

`--compare DIR` runs the same drains with the collector imported from another checkout (e.g. a
`git archive main` of the code before a change), alternating with this one, so before and after
are measured side by side on the same broker, database and load. `--profile` prints cProfile's
top functions of both threads (it slows the run; read the shares, not the time).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.fleet_bench import BenchBroker, publish
from tests.fixtures.postgres import find_postgres_bin, make_server

REPO = Path(__file__).resolve().parents[1]

# Run in a child process whose sys.path starts with the code under test (this checkout or --compare's):
# `python -c` puts its working directory first, so the child runs in that checkout.
_CHILD = r"""
import cProfile, json, pstats, resource, sys, threading, time
from collector.service import Collector, CollectorConfig
host, port, db, client_id, expected, protocol, profile = sys.argv[1:8]
expected = int(expected)
collector = Collector(CollectorConfig(broker_host=host, broker_port=int(port), db=db, client_id=client_id,
                                      protocol=protocol, stats_interval_s=3600))
profiles = []
if profile == "1":
    # cProfile sees one thread: profile paho's network thread too, from inside it.
    main = collector.client._thread_main
    def profiled_main(*args):
        p = cProfile.Profile(); profiles.append(p); p.enable()
        try:
            return main(*args)
        finally:
            p.disable()
    collector.client._thread_main = profiled_main
def usage():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
def writer():
    if profile == "1":
        p = cProfile.Profile(); profiles.append(p); p.enable()
        try:
            collector.run()
        finally:
            p.disable()
    else:
        collector.run()
collector.sink.open()  # the schema and the connection before the clock starts
cpu0, wall0 = usage(), time.monotonic()
thread = threading.Thread(target=writer)
thread.start()
while not collector._connected.is_set():  # the session and its subscriptions (SUBSCRIBE goes before DISCONNECT)
    time.sleep(0.02)
while collector.stats.committed < expected:
    time.sleep(0.02)
cpu1, wall1 = usage(), time.monotonic()
collector.stop()
thread.join(60)
print(json.dumps({"cpu_s": cpu1 - cpu0, "wall_s": wall1 - wall0, "committed": collector.stats.committed,
                  "rejected": collector.stats.written.rejected}))
if profiles:
    stats = pstats.Stats(profiles[0], stream=sys.stderr)
    for p in profiles[1:]:
        stats.add(p)
    stats.sort_stats("tottime").print_stats(30)
"""


def drain(broker: BenchBroker, db: str, code: Path, run: str, messages: int, devices: int, protocol: str,
          profile: bool) -> dict[str, float]:
    """One drain by a collector imported from `code`: CPU seconds and wall seconds."""
    env = dict(os.environ, PYTHONPATH=f"{code}{os.pathsep}{REPO}", PYTHONDONTWRITEBYTECODE="1")
    client_id = f"cpu-{run}"
    # The session and its subscriptions first (expect 0 messages: returns at once, stops cleanly,
    # the session stays for the queued backlog).
    made = subprocess.run([sys.executable, "-c", _CHILD, broker.host, str(broker.port), db, client_id, "0", protocol,
                           "0"], env=env, cwd=code, capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr[-3000:]
    publish(broker, devices, messages, 2, run)
    out = subprocess.run([sys.executable, "-c", _CHILD, broker.host, str(broker.port), db, client_id,
                          str(messages), protocol, "1" if profile else "0"],
                         env=env, cwd=code, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    if profile:
        print(out.stderr[-6000:], file=sys.stderr)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["committed"] >= messages and result["rejected"] == 0, result
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.collector_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--protocol", default="5", choices=["5", "3.1.1"])
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions (slower)")
    parser.add_argument("--compare", type=Path, help="another checkout whose collector runs alternately")
    args = parser.parse_args(argv)
    pg_bin = find_postgres_bin()
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if pg_bin is None or not Path(mosquitto).exists():
        print("needs mosquitto and PostgreSQL (apt-get install mosquitto postgresql)", file=sys.stderr)
        return 2
    codes = {"this checkout": REPO}
    if args.compare:
        codes = {f"compare ({args.compare})": args.compare.resolve(), **codes}
    cpu: dict[str, list[float]] = {name: [] for name in codes}
    rate: dict[str, list[float]] = {name: [] for name in codes}
    with tempfile.TemporaryDirectory(prefix="collector-cpu-") as tmp:
        (Path(tmp) / "broker").mkdir()
        broker = BenchBroker(mosquitto, Path(tmp) / "broker").start()
        server = make_server(pg_bin).start()
        try:
            db = server.create_database("collector_cpu")
            for r in range(args.repeats):
                for k, (name, code) in enumerate(codes.items()):
                    result = drain(broker, db, code, f"r{r}c{k}", args.messages, args.devices, args.protocol,
                                   args.profile)
                    cpu[name].append(1e6 * result["cpu_s"] / args.messages)
                    rate[name].append(args.messages / result["wall_s"])
        finally:
            broker.stop()
            server.stop()
            shutil.rmtree(server.workdir, ignore_errors=True)
    print(f"collector CPU per message, MQTT {args.protocol}, {args.messages} messages per drain into PostgreSQL, "
          f"load average {os.getloadavg()[0]:.2f} at the end")
    for name in codes:
        print(f"{name:50s} CPU {statistics.median(cpu[name]):6.1f} us/message (runs "
              f"{', '.join(f'{x:.1f}' for x in cpu[name])}); drain {statistics.median(rate[name]):6.0f} messages/s "
              f"(runs {', '.join(f'{x:.0f}' for x in rate[name])})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
