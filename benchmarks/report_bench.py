"""`edge report` on a year of a three-camera station: how long each stage takes as the data grows.

    python -m benchmarks.report_bench [--sizes 10000 100000 1000000] [--runs 3]

The databases are the web benchmark's (benchmarks/web_db.py: a year, three cameras, 30 % empty
frames, bursts of 1-8 frames per visit, 25 species; the daemon's own schema; cached). Each run
reads the database (`load`), computes the analyses (`analyse`, defaults: 72 h gaps, 7-day
occasions, 100 random orders), and writes the CSVs and the HTML with its plots (`write_report`)
into a fresh folder; medians over the runs, in seconds, and the share of the total per stage.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.web_db import cached


def measure(db_path: Path, runs: int) -> dict[str, float]:
    from edge.config import EdgeConfig
    from edge.ecology.analyses import analyse, load
    from edge.ecology.report import write_report
    from edge.store.db import open_readonly

    config = EdgeConfig.model_validate({"station": {"device_id": "bench"}, "storage": {"database": str(db_path)}})
    stages: dict[str, list[float]] = {"load": [], "analyse": [], "write (CSV, HTML, plots)": []}
    out_root = Path(tempfile.mkdtemp(prefix="trailcam-report-bench-"))
    try:
        for run in range(runs):
            db = open_readonly(db_path)
            started = time.perf_counter()
            loaded = load(config, db)
            db.conn.close()
            stages["load"].append(time.perf_counter() - started)
            started = time.perf_counter()
            result = analyse(loaded.sites, loaded.frames, loaded.observations, loaded.zone)
            stages["analyse"].append(time.perf_counter() - started)
            started = time.perf_counter()
            write_report(out_root / f"run-{run}", result, title="bench", period="a year", taxa=loaded.taxa)
            stages["write (CSV, HTML, plots)"].append(time.perf_counter() - started)
    finally:
        shutil.rmtree(out_root, ignore_errors=True)
    return {name: statistics.median(values) for name, values in stages.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.report_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000], help="frames per database")
    parser.add_argument("--runs", type=int, default=3, help="runs per size (default 3)")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "trailcam-web-bench",
                        help="where the generated databases are kept (shared with web_bench)")
    args = parser.parse_args(argv)
    table: dict[int, dict[str, float]] = {}
    for size in args.sizes:
        started = time.perf_counter()
        db = cached(args.cache, size)
        print(f"{size:,} frames: database ready in {time.perf_counter() - started:.0f} s ({db})", flush=True)
        table[size] = measure(db, args.runs)
    names = list(next(iter(table.values())))
    print()
    print("| stage | " + " | ".join(f"{s:,} frames, s (share)" for s in table) + " |")
    print("|---|" + "---:|" * len(table))
    for name in [*names, "total"]:
        cells = []
        for row in table.values():
            total = sum(row.values())
            value = total if name == "total" else row[name]
            cells.append(f"{value:.2f} ({value / total:.0%})")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
