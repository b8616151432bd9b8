"""Writes tests/edge/data/schema5-c4ed169.db with trailcam at c4ed169 (schema 5)."""
import hashlib
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from edge.classify.decision import Decision
from edge.classify.model import Prediction
from edge.store.reviews import ReviewStore
from edge.store.writer import BirdRecord, FrameRecord, Store

T0 = datetime(2026, 5, 1, 6, 0, tzinfo=UTC)
out = Path(sys.argv[1])
store = Store(out, station_tz="Europe/Berlin", independence_s=60, group_by="camera", station_id="old-main",
              clock=lambda: T0 + timedelta(hours=3))
def rec(seconds, names, camera="feeder"):
    sha = hashlib.sha256(f"{camera}{seconds}{names}".encode()).hexdigest()
    birds = [BirdRecord((0.1, 0.2 * i, 0.3, 0.2 * i + 0.15), 0.8, "bird", [Prediction(n, 0.9, 0)],
                        Decision("unknown" if n == "unknown" else "species", n, 0.9 - 0.01 * i, "ok"))
             for i, n in enumerate(names)]
    return store.record(FrameRecord(path=f"/cam/{camera}/{seconds}.jpg", sha256=sha, camera=camera, size=1, mtime=0.0,
                                    captured_at=T0 + timedelta(seconds=seconds), time_source="exif", model_id="m",
                                    detector_id="d", birds=birds))
# Visit 1: a dove and a woodpecker in one frame, then the dove alone twice.
rec(0, ["Zenaida macroura", "Dryobates pubescens"])
rec(5, ["Zenaida macroura"])
rec(10, ["Zenaida macroura"])
# Visit 2: a bluebird with two sparrows, then the bluebird alone.
rec(600, ["Sialia sialis", "Passer domesticus", "Passer domesticus"])
rec(605, ["Sialia sialis"])
# Visit 3: a robin, corrected by a person to a thrush.
rec(1200, ["Turdus migratorius"])
# Visit 4: one bird, rejected.
rec(1800, ["unknown"])
store.close_stale_events(T0 + timedelta(hours=3))
store.close()
reviews = ReviewStore(out, clock=lambda: T0 + timedelta(hours=3))
e3 = reviews.conn.execute("SELECT id FROM events ORDER BY id").fetchall()
reviews.review_event(e3[2][0], "correct", reviewer="ana", species="Catharus guttatus")
reviews.review_event(e3[3][0], "reject", reviewer="ana")
reviews.close()
