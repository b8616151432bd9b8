"""The hourly visit tallies (edge/store/hourly.py): what they save the heatmap, what they cost the writer.

    python -m benchmarks.hourly_bench [--frames 1000000] [--repeats 15] [--rounds 5]

Read: a year's heatmap (`Reader.hour_matrix`, in process, no HTTP) on the web benchmark's generated
database (benchmarks/web_db.py, cached under $TMPDIR/trailcam-web-bench), from the tallies and
from the events as before them, alternated; p50 / p95 ms. Write: `Store.record` on a real SQLite
file with and without the tallies' triggers, alternated by round, for frames deep in one visit
(0.5 s apart) and frames that each start a visit (120 s apart): the median ms per frame, and the
SQLite virtual-machine instructions of one frame (exact, unlike the times on a shared machine).
"""

from __future__ import annotations

import argparse
import dataclasses
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

TRIGGERS = ("hourly_visits_species_in", "hourly_visits_species_out", "hourly_visits_species_changed",
            "hourly_visits_event_moved", "hourly_visits_event_in", "hourly_visits_event_out")


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def read(db: Path, repeats: int) -> dict[str, tuple[float, float]]:
    """p50 / p95 ms of a year's heatmap from the tallies and from the events (the same answer)."""
    from edge.web.queries import Reader

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        tallies, events = Reader(conn), Reader(conn)
        events.hourly = False
        first, last = date(2025, 12, 1), date(2026, 11, 30)
        assert tallies.hourly and tallies.hour_matrix(first, last) == events.hour_matrix(first, last)
        times: dict[str, list[float]] = {"from the tallies": [], "from the events": []}
        for _ in range(repeats):
            for name, reader in (("from the tallies", tallies), ("from the events", events)):
                started = time.perf_counter()
                reader.hour_matrix(first, last)
                times[name].append((time.perf_counter() - started) * 1000)
        return {name: (statistics.median(values), _p95(values)) for name, values in times.items()}
    finally:
        conn.close()


def write(folder: Path, triggers: bool, spacing_s: float, frames: int = 3000) -> tuple[float, int]:
    """(median ms per frame, VM instructions of one frame) of `frames` frames `spacing_s` apart."""
    from benchmarks.store_bench import T0, _frame
    from edge.store.writer import Store

    # The device's clock a month on: 3000 visits 2 minutes apart are not `future` frames.
    store = Store(folder / "bench.db", independence_s=60, durable_commits=False, max_duration_s=0,
                  clock=lambda: T0 + timedelta(days=30))
    steps = [0]

    def step() -> int:
        steps[0] += 1
        return 0

    times, instructions = [], []
    try:
        if not triggers:
            for name in TRIGGERS:
                store.db.execute(f"DROP TRIGGER {name}")
        for index in range(frames):
            record = dataclasses.replace(_frame(index), captured_at=T0 + timedelta(seconds=index * spacing_s))
            if index % 50 == 49:
                steps[0] = 0
                store.conn.set_progress_handler(step, 1)
                store.record(record)
                store.conn.set_progress_handler(None, 1)
                instructions.append(steps[0])
                continue
            started = time.perf_counter()
            store.record(record)
            times.append((time.perf_counter() - started) * 1000)
    finally:
        store.close()
    return statistics.median(times), int(statistics.median(instructions))


def main(argv: list[str] | None = None) -> int:
    """`argv=None` (the `python -m benchmarks` runner) means the defaults."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hourly_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1_000_000, help="frames of the generated database")
    parser.add_argument("--repeats", type=int, default=15, help="heatmaps per way of counting")
    parser.add_argument("--rounds", type=int, default=5, help="write rounds per case")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "trailcam-web-bench")
    args = parser.parse_args([] if argv is None else argv)
    from benchmarks.edge_bench import machine
    from benchmarks.web_db import cached

    print(f"Machine: {machine()}\n")
    print(f"| a year's heatmap, {args.frames:,} frames | p50 / p95 ms |\n|---|---:|")
    for name, (p50, p95) in read(cached(args.cache, args.frames), args.repeats).items():
        print(f"| {name} | {p50:.1f} / {p95:.1f} |")
    print("\n| Store.record | with the triggers: ms, VM instructions | without: ms, VM instructions |\n|---|---:|---:|")
    for label, spacing in (("a frame deep in a visit", 0.5), ("a frame that starts a visit", 120.0)):
        found: dict[bool, list[tuple[float, int]]] = {True: [], False: []}
        for _ in range(args.rounds):
            for triggers in (True, False):
                with tempfile.TemporaryDirectory(prefix="hourly-bench-") as tmp:
                    found[triggers].append(write(Path(tmp), triggers, spacing))
        cells = [f"{statistics.median(r[0] for r in found[t]):.3f}, {statistics.median(r[1] for r in found[t]):.0f}"
                 for t in (True, False)]
        print(f"| {label} | {cells[0]} | {cells[1]} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
