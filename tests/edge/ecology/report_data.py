"""The crafted data set of the report tests: two deployments, known hours, a gap, a rejected and a
corrected review. Every answer in test_analyses.py and test_report.py is worked out by hand from
this description (station zone Europe/Berlin, UTC+2 in May: no daylight-saving change inside).

north: deployed 2026-05-01 00:00 to 2026-05-10 (a date: the whole day, so 05-11 00:00): 10 days.
    05-01 06:00 robin, 05-02 07:30 robin, 05-03 18:15 jay, 05-04 00:00 empty frame,
    (silent 96 h: a gap 05-04 00:00 .. 05-08 00:00, 4 days), 05-08 00:00 empty frame,
    05-08 06:00 robin, 05-09 07:10 jay that a reviewer rejected, 05-10 20:00 empty frame.
    Effective: 10 - 4 = 6 camera-days; counted: robin 3 (hours 6, 7, 6), jay 1 (hour 18).
south: deployed 2026-05-03 12:00 to 2026-05-08 12:00: 5 days, no silence over 72 h.
    05-03 13:00 robin corrected to wren, 05-04 09:00 unknown, 05-05 09:40 wren (2 birds),
    05-07 20:00 empty frame. Counted: wren 2 (hours 13, 9; 3 individuals), unknown 1.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from edge.ecology.analyses import Observation, Site

ZONE = ZoneInfo("Europe/Berlin")


def at(day: int, hour: int = 0, minute: int = 0) -> datetime:
    """2026-05-<day> hour:minute, station time (aware)."""
    return datetime(2026, 5, day, hour, minute, tzinfo=ZONE)


# (camera, local time, machine species or None for an empty frame, birds, review)
FRAMES = [
    ("north", at(1, 6), "robin", 1, None),
    ("north", at(2, 7, 30), "robin", 1, None),
    ("north", at(3, 18, 15), "jay", 1, None),
    ("north", at(4, 0), None, 0, None),
    ("north", at(8, 0), None, 0, None),
    ("north", at(8, 6), "robin", 1, None),
    ("north", at(9, 7, 10), "jay", 1, ("reject", None)),
    ("north", at(10, 20), None, 0, None),
    ("south", at(3, 13), "robin", 1, ("correct", "wren")),
    ("south", at(4, 9), "unknown", 1, None),
    ("south", at(5, 9, 40), "wren", 2, None),
    ("south", at(7, 20), None, 0, None),
]

SITES = [Site("st1-north", "north", at(1), at(11)), Site("st1-south", "south", at(3, 12), at(8, 12))]


def frame_times() -> dict[str, list[datetime]]:
    found: dict[str, list[datetime]] = {}
    for camera, moment, *_ in FRAMES:
        found.setdefault(camera, []).append(moment)
    return found


def observations() -> list[Observation]:
    """The events as they count after review (the rejected jay is gone, the robin is a wren)."""
    found = []
    for camera, moment, species, birds, review in FRAMES:
        if species is None or (review and review[0] == "reject"):
            continue
        found.append(Observation(camera, review[1] if review else species, moment, birds))
    return found


CONFIG = """\
[station]
device_id = "st1"
timezone = "Europe/Berlin"

[storage]
database = "{db}"

[project]
title = "Crafted <survey> & test"

[[cameras]]
name = "north"
path = "{root}/north"

[cameras.deployment]
start = 2026-05-01T00:00:00
end = 2026-05-10
latitude = 52.5
longitude = 13.4

[[cameras]]
name = "south"
path = "{root}/south"

[cameras.deployment]
start = 2026-05-03T12:00:00
end = 2026-05-08T12:00:00
latitude = 52.6
longitude = 13.5
"""


def build(root: Path) -> tuple[Path, Path]:
    """The crafted database written by the real Store (detect, then classify: empty frames have no
    birds) and reviewed through the real ReviewStore; returns (database, config file)."""
    from edge.classify.decision import Decision
    from edge.classify.model import Prediction
    from edge.store.reviews import ReviewStore
    from edge.store.writer import BirdRecord, FrameRecord, Store

    db = root / "edge.db"
    config = root / "edge.toml"
    for camera in ("north", "south"):
        (root / camera).mkdir(parents=True, exist_ok=True)
    config.write_text(CONFIG.format(db=db, root=root), encoding="utf-8")
    clock = lambda: at(12)  # noqa: E731  (after every frame: the events are over)
    store = Store(db, station_tz=ZONE, independence_s=60, station_id="st1", clock=clock)
    reviews: list[tuple[int, tuple[str, str | None]]] = []
    try:
        for camera, moment, species, birds, review in FRAMES:
            sha = hashlib.sha256(f"{camera}{moment.isoformat()}".encode()).hexdigest()
            kind = "unknown" if species == "unknown" else "species"
            records = [BirdRecord((0.1, 0.2 * i, 0.3, 0.2 * i + 0.1), 0.9, "bird", [Prediction(species, 0.8, 0)],
                                  Decision(kind, species, 0.8, "")) for i in range(birds)]
            store.record(FrameRecord(
                path=f"{root}/{camera}/{sha[:8]}.jpg", sha256=sha, camera=camera, size=1, mtime=0.0,
                captured_at=moment, time_source="exif", model_id="m", birds=records,
                detector_id="det"))
            if review is not None:
                event_id = store.db.execute("SELECT event_id FROM frames WHERE sha256 = ?", (sha,)).fetchone()[0]
                reviews.append((int(event_id), review))
        store.close_stale_events(at(12))
    finally:
        store.close()
    reviewer = ReviewStore(db, clock=clock)
    try:
        for event_id, (action, species) in reviews:
            reviewer.review_event(event_id, action, reviewer="ana", species=species)
    finally:
        reviewer.close()
    return db, config
