"""Store benchmark: the cost of one frame at the start of a visit vs deep into a long one.

    python -m benchmarks.store_bench [--rounds 5] [--frames 20000] [--sample 200]

One visit of `--frames` frames, 0.5 s apart (a bird that stays, or a branch that keeps the
camera triggering), recorded through the real `Store.record` on a real SQLite file (WAL,
synchronous=NORMAL as with `after_processing = "keep"`, no event cap so that it stays one
visit). Per round: the median time of `--sample` frames at the start of the visit and of the
`--sample` frames after it holds `--frames`; the ratio (late / early) should be about 1.0,
since the vote reads the event's vote state, not its frames. For comparison, the time of the
query version 1 ran for every frame (all of the visit's frames, grouped by species) on the
same database. No model or photos needed: decisions are given directly.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

SPECIES = ["Blue Jay", "Blue Jay", "Blue Jay", "Northern Cardinal", "unknown"]
T0 = datetime(2026, 5, 1, 6, 0, tzinfo=UTC)


def _frame(index: int):
    from edge.classify.decision import Decision
    from edge.store.writer import FrameRecord

    species = SPECIES[index % len(SPECIES)]
    sha = hashlib.sha256(f"bench-{index}".encode()).hexdigest()
    return FrameRecord(path=f"/cam/{index:06d}.jpg", sha256=sha, camera="cam", size=100_000 + index,
                       mtime=float(index), captured_at=T0 + timedelta(seconds=index * 0.5), time_source="exif",
                       model_id="bench", inference_ms=4.0,
                       decision=Decision("unknown" if species == "unknown" else "species", species,
                                         0.5 + (index % 9) / 20, ""))


def one_round(folder: Path, frames: int, sample: int) -> dict[str, float]:
    """Median ms per record() for the first `sample` frames and for `sample` frames after `frames`."""
    from edge.store.writer import Store

    store = Store(folder / "bench.db", independence_s=60, durable_commits=False, max_duration_s=0,
                  clock=lambda: T0 + timedelta(days=1))
    try:
        early, late = [], []
        total = frames + sample
        for index in range(total):
            record = _frame(index)
            started = time.perf_counter()
            store.record(record)
            elapsed = (time.perf_counter() - started) * 1000
            if index < sample:
                early.append(elapsed)
            elif index >= frames:
                late.append(elapsed)
        events, visit = store.db.execute("SELECT COUNT(*), MAX(frame_count) FROM events").fetchone()
        assert (events, visit) == (1, total), (events, visit)
        event_id = store.db.execute("SELECT id FROM events").fetchone()[0]
        v1 = []
        for _ in range(max(5, sample // 20)):
            started = time.perf_counter()
            store.db.execute("""SELECT species, COUNT(*), SUM(confidence), MAX(confidence), MIN(captured_at)
                                FROM frames WHERE event_id = ? GROUP BY species""", (event_id,)).fetchall()
            v1.append((time.perf_counter() - started) * 1000)
    finally:
        store.close()
    return {"early": statistics.median(early), "late": statistics.median(late), "v1_vote": statistics.median(v1)}


def main(argv: list[str] | None = None) -> int:
    """`argv=None` (the `python -m benchmarks` runner) means the defaults."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.store_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds (median of the per-round figures)")
    parser.add_argument("--frames", type=int, default=20_000, help="frames of the visit before the late sample")
    parser.add_argument("--sample", type=int, default=200, help="frames timed at the start and after --frames")
    args = parser.parse_args([] if argv is None else argv)
    from benchmarks.edge_bench import machine

    results = []
    for round_ in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="store-bench-") as tmp:
            results.append(one_round(Path(tmp), args.frames, args.sample))
        print(f"round {round_ + 1}: {results[-1]['early']:.3f} ms at the start, {results[-1]['late']:.3f} ms "
              f"after {args.frames} frames", flush=True)
    early = statistics.median(r["early"] for r in results)
    late = statistics.median(r["late"] for r in results)
    ratio = statistics.median(r["late"] / r["early"] for r in results)
    v1 = statistics.median(r["v1_vote"] for r in results)
    print(f"\nMachine: {machine()}; medians of {args.rounds} rounds, {args.sample} frames per sample\n")
    print("| Measurement | Result | Ratio | Goal |")
    print("|---|---|---|---|")
    print(f"| Store per-frame time (`Store.record`), first {args.sample} frames of a visit vs after "
          f"{args.frames:,} frames of the same visit | {early:.3f} ms vs {late:.3f} ms | {ratio:.2f} | ≈ 1.0 |")
    print(f"| Version 1's vote query per frame (all of the visit's frames) at {args.frames + args.sample:,} frames, "
          f"for comparison | {v1:.2f} ms | | (gone) |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
