"""A real edge database written by the daemon's own writer (Store) and reviews (ReviewStore).

Visits on two cameras across the autumn DST change and several local midnights of a station in
Europe/Berlin, whole-frame and detected birds (individuals > 1), mixed visits (a frame with two
species: the visit counts each, with its own MaxN), confirmed, corrected, rejected and
recounted visits, and the last visit of each camera still open: everything the reports'
time-zone, per-species and review rules act on.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

from edge.classify.decision import Decision
from edge.classify.model import Prediction
from edge.store.reviews import ReviewStore
from edge.store.writer import BirdRecord, FrameRecord, Store

ZONE = "Europe/Berlin"
DEVICE = "feeder-1"
# 2026-10-24 20:00 UTC: the evening before the clocks go back (2026-10-25 01:00 UTC).
T0 = datetime(2026, 10, 24, 20, 0, tzinfo=UTC)
SPECIES = ("Erithacus rubecula", "Parus major", "Cyanistes caeruleus", "unknown")


def _bird(species: str, x: float, confidence: float = 0.9) -> BirdRecord:
    kind = "unknown" if species == "unknown" else "species"
    return BirdRecord((0.2, x, 0.3, x + 0.1), 0.8, "bird", [Prediction(species, confidence, 0)],
                      Decision(kind, species, confidence, ""))


def write_visits(path: Path, visits: range, *, total: int, outbox=None) -> None:  # noqa: ANN001
    """Write these visits (each 1-3 frames, 1-3 birds) 47 minutes apart, alternating cameras,
    every fifth (n % 5 == 3) with a bird of another species in its first frame, with the
    daemon's writer; `outbox` (edge.publish.outbox_writer.OutboxWriter) queues their MQTT
    messages in the same transactions, as under `[mqtt] enabled`."""
    end = T0 + timedelta(minutes=47 * total)
    store = Store(path, station_tz=ZONE, independence_s=60, station_id=DEVICE, clock=lambda: end, outbox=outbox)
    try:
        for n in visits:
            camera = "cam1" if n % 2 == 0 else "cam2"
            species = SPECIES[n % len(SPECIES)]
            start = T0 + timedelta(minutes=47 * n)
            for frame in range(1 + n % 3):
                birds = [_bird(species, 0.1 + 0.25 * i, 0.6 + 0.1 * frame) for i in range(1 + (n + frame) % 3)]
                if n % 5 == 3 and frame == 0:  # a mixed visit: two species at once in one frame
                    birds.append(_bird(SPECIES[(n % 4 + 1) % 3], 0.85, 0.7))
                sha = hashlib.sha256(f"{n}/{frame}".encode()).hexdigest()
                store.record(FrameRecord(path=f"/cam/{camera}/{n}-{frame}.jpg", sha256=sha, camera=camera, size=1,
                                         mtime=0.0, captured_at=start + timedelta(seconds=10 * frame),
                                         time_source="exif", model_id="aiy-test", birds=birds, detector_id="det-1"))
    finally:
        store.close()


def finish(path: Path, *, total: int, outbox=None) -> None:  # noqa: ANN001
    """Close every visit but the last of each camera (time proves them over), then review four."""
    end = T0 + timedelta(minutes=47 * total)
    store = Store(path, station_tz=ZONE, independence_s=60, station_id=DEVICE, clock=lambda: end, outbox=outbox)
    try:
        store.close_stale_events(T0 + timedelta(minutes=47 * (total - 2)))
    finally:
        store.close()
    reviews = ReviewStore(path, station_tz=ZONE, clock=lambda: end + timedelta(minutes=5), outbox=outbox)
    try:
        reviews.review_event(1, "confirm", reviewer="ana")
        reviews.review_event(2, "correct", reviewer="ana", species="Cyanistes caeruleus")
        reviews.review_event(3, "reject", reviewer="ben")
        reviews.review_event(5, "individuals", reviewer="ben", individuals=4)
    finally:
        reviews.close()


def build_station_db(path: Path, *, visits: int = 36) -> Path:
    """A whole station database: `visits` visits, the last of each camera open, four reviewed."""
    write_visits(path, range(visits), total=visits)
    finish(path, total=visits)
    return path
