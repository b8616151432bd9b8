"""The web app's pages and a review on databases of 10^4, 10^5 and 10^6 frames.

    python -m benchmarks.web_bench [--sizes 10000 100000 1000000] [--requests 30]

For each size a generated database (benchmarks/web_db.py: a year of a three-camera station with a
detector; built once, cached under $TMPDIR/trailcam-web-bench) is served by a real `edge web`
process on a free loopback port, and each page is requested `--requests` times over HTTP after one
warm-up request: p50 and p95 wall time per page, and of a review (confirm) followed by its undo,
each one request. The process's resident memory (VmRSS) is read after the requests. Goal: p95
under 100 ms at 10^6 frames on the project's 2-core machine.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.web_db import cached

GOAL_P95_MS = 100.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Session:
    def __init__(self, port: int) -> None:
        self.port = port
        self.cookie: str | None = None

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            sent = dict(headers or {})
            if self.cookie:
                sent["Cookie"] = f"trailcam_session={self.cookie}"
            conn.request(method, path, body=body, headers=sent)
            response = conn.getresponse()
            data = response.read()
            for line in response.headers.get_all("set-cookie") or []:
                name, _, rest = line.partition("=")
                if name == "trailcam_session":
                    self.cookie = rest.split(";", 1)[0]
            return response.status, data
        finally:
            conn.close()

    def csrf(self) -> str:
        _, page = self.request("GET", "/")
        text = page.decode("utf-8", "replace")
        return text.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _pages(db: Path) -> list[tuple[str, str]]:
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        species = conn.execute("SELECT species FROM events GROUP BY species ORDER BY COUNT(*) DESC LIMIT 1").fetchone()[0]
        event = conn.execute("SELECT id FROM events ORDER BY started_at DESC LIMIT 1").fetchone()[0]
        last = conn.execute("SELECT MAX(day) FROM daily_tallies").fetchone()[0]
    finally:
        conn.close()
    from urllib.parse import quote

    return [
        ("today", "/"),
        ("species (30 days)", f"/species?name={quote(species)}"),
        ("heatmap (30 days, the default)", f"/heatmap?to={last}"),
        ("heatmap (a year)", f"/heatmap?from=2025-12-01&to={last}"),
        ("events", "/events"),
        ("events, filtered", f"/events?species={quote(species)}&camera=feeder"),
        ("event", f"/event/{event}"),
        ("review queue", "/queue"),
        ("health", "/health"),
    ]


def measure(db: Path, requests: int) -> tuple[dict[str, tuple[float, float]], float]:
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    state = Path(tempfile.mkdtemp(prefix="web-bench-"))
    config = state / "edge.toml"
    config.write_text(f'[storage]\ndatabase = "{db}"\n[web]\nport = {port}\n')
    server = subprocess.Popen([sys.executable, "-m", "edge", "web", "--config", str(config)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        session = Session(port)
        deadline = time.monotonic() + 60
        while True:
            try:
                session.request("GET", "/health")
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"edge web did not start: {server.stderr.read() if server.stderr else ''}") from None
                time.sleep(0.1)
        results: dict[str, tuple[float, float]] = {}
        for name, path in _pages(db):
            status, _ = session.request("GET", path)
            if status != 200:
                raise RuntimeError(f"{path}: HTTP {status}")
            times = []
            for _ in range(requests):
                started = time.perf_counter()
                session.request("GET", path)
                times.append((time.perf_counter() - started) * 1000)
            results[name] = (statistics.median(times), _p95(times))
        token = session.csrf()
        _, queue = session.request("GET", "/queue")
        import sqlite3

        conn = sqlite3.connect(db)
        ids = [r[0] for r in conn.execute(
            "SELECT id FROM events WHERE review_state IS NULL ORDER BY confidence LIMIT ?", (requests + 1,))]
        conn.close()
        headers = {"Content-Type": "application/json", "X-CSRF-Token": token}
        review_times, undo_times = [], []
        for event_id in ids:
            started = time.perf_counter()
            status, body = session.request("POST", "/api/review", json.dumps({"event_id": event_id, "action": "confirm"}).encode(), headers)
            review_times.append((time.perf_counter() - started) * 1000)
            if status != 200:
                raise RuntimeError(f"review: HTTP {status}: {body[:200]!r}")
            review_id = json.loads(body)["review"]["id"]
            started = time.perf_counter()
            status, body = session.request("POST", "/api/undo", json.dumps({"review_id": review_id}).encode(), headers)
            undo_times.append((time.perf_counter() - started) * 1000)
            if status != 200:
                raise RuntimeError(f"undo: HTTP {status}: {body[:200]!r}")
        results["review (confirm)"] = (statistics.median(review_times[1:]), _p95(review_times[1:]))
        results["undo"] = (statistics.median(undo_times[1:]), _p95(undo_times[1:]))
        return results, _rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(30)


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.web_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000], help="frames per database")
    parser.add_argument("--requests", type=int, default=30, help="requests per page (default 30)")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "trailcam-web-bench",
                        help="where the generated databases are kept")
    args = parser.parse_args(argv)
    table: dict[int, tuple[dict[str, tuple[float, float]], float]] = {}
    for size in args.sizes:
        started = time.perf_counter()
        db = cached(args.cache, size)
        print(f"{size:,} frames: database ready in {time.perf_counter() - started:.0f} s ({db})", flush=True)
        # Each size starts from an unreviewed copy, so the queue and the review find work.
        work = args.cache / f"run-{size}.db"
        work.write_bytes(db.read_bytes())
        table[size] = measure(work, args.requests)
    names = list(next(iter(table.values()))[0])
    print()
    print("| page | " + " | ".join(f"{s:,} frames p50 / p95 ms" for s in table) + " |")
    print("|---|" + "---:|" * len(table))
    for name in names:
        print(f"| {name} | " + " | ".join(f"{r[name][0]:.1f} / {r[name][1]:.1f}" for r, _ in table.values()) + " |")
    print("| resident memory of `edge web` (MB) | " + " | ".join(f"{rss:.0f}" for _, rss in table.values()) + " |")
    largest = max(table)
    worst = max(p95 for _, p95 in table[largest][0].values())
    verdict = "met" if worst < GOAL_P95_MS else "**missed**"
    print(f"\ngoal: every p95 < {GOAL_P95_MS:.0f} ms at {largest:,} frames: worst {worst:.1f} ms: {verdict}")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
