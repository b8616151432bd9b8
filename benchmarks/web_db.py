"""A generated edge database of any size, for the web app's benchmark (benchmarks/web_bench.py).

Shaped like a year of a three-camera station with a detector: bursts of 1-8 frames make a visit,
a visit has 1-3 birds of one of 25 species (some `unknown`), about 30 % of frames are empty (no
detection, no event), one detection row per bird, what each visit counts (`event_species`: its
one species) and daily tallies that agree with the events, and a few reviews. The schema is the daemon's own (a real Store creates it); rows are inserted in
bulk. Deterministic from the seed; cached by size under the given folder.
"""

from __future__ import annotations

import hashlib
import json
import random
import sqlite3
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

from edge.store.times import format_utc
from edge.store.writer import Store

SPECIES = [
    "Cardinalis cardinalis", "Poecile atricapillus", "Cyanocitta cristata", "Turdus migratorius", "Spinus tristis",
    "Sitta carolinensis", "Baeolophus bicolor", "Junco hyemalis", "Haemorhous mexicanus", "Passer domesticus",
    "Zenaida macroura", "Melanerpes carolinus", "Dryobates pubescens", "Sturnus vulgaris", "Sialia sialis",
    "Spizella passerina", "Melospiza melodia", "Agelaius phoeniceus", "Quiscalus quiscula", "Icterus galbula",
    "Pheucticus ludovicianus", "Bombycilla cedrorum", "Thryothorus ludovicianus", "Mimus polyglottos", "Erithacus rubecula",
]
CAMERAS = ["feeder", "pond", "hedge"]
START = datetime(2025, 12, 1, tzinfo=UTC)


def build(path: Path, frames: int, seed: int = 7) -> Path:
    """Write a database of about `frames` frame rows at `path` (replaced if present)."""
    path = Path(path)
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    Store(path).close()  # the daemon's schema, migrations and meta
    rng = random.Random(seed)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("BEGIN")
    frame_rows, detection_rows, event_rows, species_rows = [], [], [], []
    tallies: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    span_s = 365 * 86400
    # Frames spread over the year, in bursts: per visit 1-8 frames 5 s apart.
    frame_id = detection_id = event_id = 0
    weights = [1.0 / (k + 1) for k in range(len(SPECIES))]  # a few common species, a long tail
    while frame_id < frames:
        camera = rng.choice(CAMERAS)
        at = START + timedelta(seconds=rng.uniform(0, span_s))
        if rng.random() < 0.3:  # an empty frame: wind, leaves, light
            frame_id += 1
            frame_rows.append(_frame(frame_id, camera, at, None, None, None, 0))
            continue
        event_id += 1
        species = "unknown" if rng.random() < 0.12 else rng.choices(SPECIES, weights)[0]
        burst = min(rng.randint(1, 8), frames - frame_id)
        best, most = 0.0, 0
        first = at
        for k in range(burst):
            frame_id += 1
            when = first + timedelta(seconds=5 * k)
            birds = rng.choice((1, 1, 1, 2, 2, 3))
            confidence = round(rng.uniform(0.2, 0.99), 4) if species != "unknown" else round(rng.uniform(0.05, 0.5), 4)
            best, most = max(best, confidence), max(most, birds)
            frame_rows.append(_frame(frame_id, camera, when, species, confidence, event_id, birds))
            for rank in range(1, birds + 1):
                detection_id += 1
                y, x = rng.uniform(0, 0.8), rng.uniform(0, 0.8)
                detection_rows.append((detection_id, frame_id, rank, y, x, y + 0.15, x + 0.1, round(rng.uniform(0.5, 0.95), 3),
                                       "bird", "unknown" if species == "unknown" else "species", species, confidence,
                                       json.dumps([[species, confidence]]), event_id))
            day = when.date().isoformat()
            tallies[(day, camera, species)][1] += 1
        ended = first + timedelta(seconds=5 * (burst - 1))
        uid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        event_rows.append((event_id, uid, camera, species, best, format_utc(first), format_utc(ended), burst, "m-1",
                           "closed", most, None, None))
        key = (first.date().isoformat(), camera, species)
        species_rows.append((event_id, species, most, burst, key[0]))  # what the visit counts (one species)
        tallies[key][0] += 1
        tallies[key][2] += most
    conn.executemany(
        """INSERT INTO frames (id, path, sha256, camera, size, mtime, captured_at, time_source, processed_at, status,
               model_id, inference_ms, species, confidence, event_id, birds, detector_id)
           VALUES (?, ?, ?, ?, ?, ?, ?, 'exif', ?, 'ok', 'm-1', 40.0, ?, ?, ?, ?, 'd-1')""", frame_rows)
    conn.executemany(
        """INSERT INTO detections (id, frame_id, rank, ymin, xmin, ymax, xmax, score, detector_label, kind, species,
               confidence, top_k, event_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""", detection_rows)
    conn.executemany(
        """INSERT INTO events (id, uid, camera, species, confidence, started_at, ended_at, frame_count, model_id, state,
               individuals, best_detection_id, snapshot) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""", event_rows)
    # After the events: the triggers tally each row in its event's hour (edge/store/hourly.py).
    conn.executemany("INSERT INTO event_species (event_id, species, individuals, frames, day) VALUES (?, ?, ?, ?, ?)",
                     species_rows)
    conn.executemany(
        "INSERT INTO daily_tallies (day, camera, species, events, frames, individuals) VALUES (?, ?, ?, ?, ?, ?)",
        [(d, c, s, e, f, i) for (d, c, s), (e, f, i) in tallies.items()])
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()
    return path


def _frame(frame_id: int, camera: str, at: datetime, species: str | None, confidence: float | None,
           event_id: int | None, birds: int) -> tuple:
    sha = hashlib.sha256(frame_id.to_bytes(8, "big")).hexdigest()
    text = format_utc(at)
    return (frame_id, f"/srv/{camera}/IMG_{frame_id:07d}.JPG", sha, camera, 2_000_000, at.timestamp(), text, text,
            species, confidence, event_id, birds)


def cached(folder: Path, frames: int, seed: int = 7) -> Path:
    """The database of `frames` frames in `folder`, built once."""
    folder.mkdir(parents=True, exist_ok=True)
    # v2: with event_species (and so hourly_visits); a database cached before is not reused.
    path = folder / f"web-v2-{frames}-{seed}.db"
    if not path.exists():
        partial = folder / f".web-v2-{frames}-{seed}.db"
        build(partial, frames, seed)
        partial.rename(path)
    return path
