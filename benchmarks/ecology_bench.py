"""The exports on generated year-long databases of 10^4 and 10^5 frames (10^6 with
TRAILCAM_BENCH_LARGE=1): `edge export camtrap-dp`, `edge export coco-ct` and the offline
frictionless validation, each in its own process (wall time, median of 3; peak RSS).

What it shows: the exports stream (peak memory stays about flat while the rows grow tenfold) and
how long validating a year takes. The database is benchmarks/web_db.py's (three cameras, bursts,
empty frames, detections), cached under $TMPDIR/trailcam-web-bench.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.web_db import CAMERAS, cached

REPO = Path(__file__).resolve().parent.parent
STANDARDS = Path(os.environ.get("TRAILCAM_SHARED", REPO.parent / "shared")) / "standards" / "camtrap-dp-1.0.2"
RUNS = 3
WRAPPER = ("import resource, sys; from {module} import {function} as entry; code = entry(sys.argv[1:]); "
           "print('maxrss_kb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); sys.exit(code)")
VALIDATE = ("from pathlib import Path; import sys; from edge.exports.camtrap_dp_validate import validate_package\n"
            "def run(args):\n    report = validate_package(Path(args[0]), Path(args[1]))\n"
            "    print(report.lines()[0][:120]); return 0 if report.valid else 1\n")


def _config(folder: Path, db: Path) -> Path:
    cameras = "".join(f'\n[[cameras]]\nname = "{name}"\npath = "/srv/{name}"\n[cameras.deployment]\n'
                      f"latitude = {52.0 + i / 100}\nlongitude = 13.0\n" for i, name in enumerate(CAMERAS))
    path = folder / "edge.toml"
    path.write_text(f"""[station]\ndevice_id = "bench"\ntimezone = "Europe/Berlin"\n[storage]\ndatabase = "{db}"
[project]\ntitle = "Benchmark"\nsampling_design = "targeted"\nlicense = "CC0-1.0"
[[project.contributors]]\ntitle = "Bench"\n{cameras}""")
    return path


def _timed(code: str, args: list[str]) -> tuple[float, int, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - started
    if result.returncode not in (0, 1):
        raise RuntimeError(result.stderr[-2000:])
    rss = next(int(line.split()[1]) for line in result.stderr.splitlines() if line.startswith("maxrss_kb"))
    return wall, rss, result.stdout


def main() -> int:
    sizes = [10_000, 100_000] + ([1_000_000] if os.environ.get("TRAILCAM_BENCH_LARGE") else [])
    cache = Path(tempfile.gettempdir()) / "trailcam-web-bench"
    export = WRAPPER.format(module="edge.cli", function="main")
    validate = VALIDATE + WRAPPER.format(module="__main__", function="run")
    print(f"{'frames':>9} {'what':<22} {'rows':>9} {'median s':>9} {'rows/s':>9} {'peak MB':>8}")
    for size in sizes:
        db = cached(cache, size)
        with tempfile.TemporaryDirectory() as scratch:
            folder = Path(scratch)
            config = _config(folder, db)
            results = {}
            for what in ("camtrap-dp", "coco-ct"):
                walls, peak = [], 0
                for run in range(RUNS):
                    target = folder / (f"camtrap-dp-{run}" if what == "camtrap-dp" else f"coco-{run}.json")
                    wall, rss, _ = _timed(export, ["export", what, "--config", str(config), "--out", str(target)])
                    walls.append(wall)
                    peak = max(peak, rss)
                results[what] = (statistics.median(walls), peak)
            package = folder / "camtrap-dp-0"
            rows = sum(1 for name in ("media.csv", "observations.csv") for _ in (package / name).open()) - 2
            for what, (wall, peak) in results.items():
                print(f"{size:>9} {what:<22} {rows:>9} {wall:>9.2f} {rows / wall:>9.0f} {peak / 1024:>8.0f}")
            if STANDARDS.is_dir():
                wall, rss, text = _timed(validate, [str(package), str(STANDARDS)])
                print(f"{size:>9} {'validate (frictionless)':<22} {rows:>9} {wall:>9.2f} {rows / wall:>9.0f} "
                      f"{rss / 1024:>8.0f}   (1 run) {text.strip()[:40]}")
            else:
                print(f"validation skipped: {STANDARDS} is absent")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
