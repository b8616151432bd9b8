"""Repeat-detection elimination through the real daemon: a decoy (the same bird photo, pasted at
the same place of a real bird-free trail-camera frame, ../shared/data/trailcam-nobird) frame after
frame on three days, under the light of each frame → `edge run --once` with the shared SSD
detector and the AIY classifier → counted until its place is due ([repeats] min_repeats = 4,
min_days = 2 here, to keep the run short), then recorded with flag `repeat` and never counted:
no visit, no tally, no MQTT event (a real mosquitto). A real bird at that place is counted. Then
the exports (Camtrap DP: blank, tagged `decision:repeat`; COCO Camera Traps: left out), the CLI:
`edge repeats list`, `edge repeats release ID` (and a bad id: exit 2), and the decoy is counted
again from the next run on.

The shared SSD finds the decoy at the same box in every frame (IoU 0.95-0.98 between frames, the
look's correlation 0.99; the other birds pasted into the same square: IoU 0.82-0.85, look 0.5-0.7:
checked when the scene was chosen), so what is asserted is the daemon's, not luck."""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image, ImageEnhance

from benchmarks.scenes import compose
from tests.edge.exports.conftest import standards_dir  # noqa: F401 - the fixture (Camtrap DP 1.0.2, offline)
from tests.fixtures.broker import Broker, Subscriber

BACKDROP = "speciesnet__test_data_blank.jpg"
SIZE = (1920, 1080)
PASTE = (700, 450, 1100, 850)  # the decoy's square: left, top, right, bottom
SPECIES = "Northern Cardinal"
CAMERA = "north"


def _edge(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge", *args], env=env, capture_output=True, text=True, timeout=300)


def _query(db: Path, sql: str, params: tuple = ()) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def _write(folder: Path, name: str, source: Path, backdrop: Image.Image, birds25_dir: Path, at: datetime,
           light: float) -> None:
    """A frame: `source` pasted into PASTE on the backdrop, the whole frame under `light`."""
    scene = compose(birds25_dir, SIZE, 1, (0.08,), seed=1, sources=[source], backdrop=backdrop, boxes=[PASTE])
    buffer = io.BytesIO()
    ImageEnhance.Brightness(scene.image).enhance(light).save(buffer, "JPEG", quality=88)
    path = folder / name
    path.write_bytes(buffer.getvalue())
    os.utime(path, (at.timestamp(), at.timestamp()))


@pytest.mark.broker
def test_a_decoy_is_counted_until_due_then_suppressed_and_a_release_counts_it_again(
        birds25_dir: Path, trailcam_nobird_dir: Path, ssd_detector_dir: Path, aiy_model_dir: Path,
        cli_env: dict[str, str], broker: Broker, standards_dir: Path, tmp_path: Path) -> None:
    backdrop = Image.open(trailcam_nobird_dir / BACKDROP).convert("RGB")
    decoy = sorted((birds25_dir / "NORTHERN CARDINAL").glob("*.jpg"))[0]
    visitor = sorted((birds25_dir / "DOWNY WOODPECKER").glob("*.jpg"))[1]
    camera = tmp_path / CAMERA
    camera.mkdir()
    start = (datetime.now(UTC) - timedelta(days=10)).replace(hour=8, minute=0, second=0, microsecond=0)
    # Day 0 and 1: the decoy three times a day, 10 minutes apart (each frame its own visit).
    # Day 2: the decoy again, and a real bird in the same square an hour later.
    plan = [(0, 0, decoy), (0, 1, decoy), (0, 2, decoy), (1, 0, decoy), (1, 1, decoy), (1, 2, decoy),
            (2, 0, decoy), (2, 6, visitor)]
    for index, (day, slot, source) in enumerate(plan):
        _write(camera, f"IMG_{index:04d}.JPG", source, backdrop, birds25_dir,
               start + timedelta(days=day, minutes=10 * slot), 0.85 + 0.04 * index)
    state = tmp_path / "state"
    mqtt = broker.mqtt_config()
    config = tmp_path / "edge.toml"
    config.write_text(f"""
[station]
timezone = "UTC"
device_id = "rde"
[model]
path = "{aiy_model_dir}"
labels = "{aiy_model_dir / 'labelmap.csv'}"
[detector]
path = "{ssd_detector_dir}"
[repeats]
min_repeats = 4
min_days = 2
[[cameras]]
name = "{CAMERA}"
path = "{camera}"
[cameras.deployment]
latitude = 40.71
longitude = -74.0
[storage]
database = "{state / 'edge.db'}"
[project]
title = "Repeat detections"
sampling_design = "opportunistic"
license = "CC0-1.0"
[[project.contributors]]
title = "Ada Observer"
role = "contact"
[mqtt]
enabled = true
host = "{mqtt['host']}"
port = {mqtt['port']}
""")
    subscriber = Subscriber(broker, ["#"])
    try:
        run = _edge(["run", "--once", "--config", str(config)], cli_env)
        assert run.returncode == 0, run.stdout + run.stderr
        assert "suppressed as a repeat" in run.stderr
        db = state / "edge.db"
        rows = _query(db, """SELECT f.path, d.kind, d.species, d.model_species, d.flag, d.event_id
                             FROM detections AS d JOIN frames AS f ON f.id = d.frame_id ORDER BY f.captured_at, d.rank""")
        assert [Path(r[0]).name for r in rows] == [f"IMG_{i:04d}.JPG" for i in range(len(plan))]  # one box a frame
        decoys = rows[:7]
        # Counted three times; the fourth repeat on the second day makes the place due: suppressed from there.
        assert [(r[1], r[2], r[4], r[5] is not None) for r in decoys] == (
            [("species", SPECIES, None, True)] * 3 + [("none", None, "repeat", False)] * 4)
        assert all(r[3] == SPECIES for r in decoys[3:])  # what it would have counted as, kept
        # The real bird in the decoy's square: another box and look, counted.
        assert rows[7][4] is None and rows[7][2] not in (None, SPECIES) and rows[7][5] is not None
        # The counts: three cardinal visits, not seven.
        tallies = dict(_query(db, "SELECT species, SUM(events) FROM daily_tallies GROUP BY species"))
        assert tallies[SPECIES] == 3 and sum(tallies.values()) == 4
        # MQTT: one `new` event per counted visit, none for a suppressed frame.
        news = subscriber.wait_for(
            lambda got: [json.loads(m.payload) for m in got if m.topic.endswith("/events")
                         and json.loads(m.payload)["change"] == "new"] if any(
                m.topic.endswith("/events") and '"end"' in m.payload for m in got) else None,
            what="the run's event messages")
        assert sorted(n["species"] for n in news).count(SPECIES) == 3 and len(news) == 4
    finally:
        subscriber.close()

    # The exports: a suppressed box is no animal (Camtrap DP: blank, tagged why, no count; COCO
    # Camera Traps: no annotation); the package validates and its counts are `edge counts`.
    env = dict(cli_env, XDG_CACHE_HOME=str(tmp_path / "cache"))
    package = tmp_path / "package"
    exported = _edge(["export", "camtrap-dp", "--config", str(config), "--out", str(package), "--validate",
                      str(standards_dir)], env)
    assert exported.returncode == 0 and "valid Camtrap DP 1.0.2 package" in exported.stdout, exported.stderr
    with (package / "observations.csv").open(encoding="utf-8", newline="") as handle:
        media = [r for r in csv.DictReader(handle) if r["observationLevel"] == "media"]
    sha_of = dict(_query(db, "SELECT path, sha256 FROM frames"))
    suppressed = {sha_of[r[0]] for r in decoys[3:]}
    tagged = [r for r in media if r["mediaID"] in suppressed]
    assert len(tagged) == 4 and all((r["observationType"], r["observationTags"], r["count"], r["scientificName"])
                                    == ("blank", "decision:repeat", "", "") for r in tagged)
    assert sum(r["observationType"] == "animal" for r in media) == 4  # three decoys counted, the visitor
    coco_file = tmp_path / "coco.json"
    exported = _edge(["export", "coco-ct", "--config", str(config), "--out", str(coco_file)], env)
    assert exported.returncode == 0, exported.stderr
    annotated = {a["image_id"] for a in json.loads(coco_file.read_text())["annotations"] if a.get("bbox")}
    assert len(annotated) == 4 and not annotated & suppressed

    # The list: one suppressed place, its numbers; candidates on request.
    listed = _edge(["repeats", "list", "--config", str(config), "--format", "json"], cli_env)
    assert listed.returncode == 0, listed.stderr
    [place] = json.loads(listed.stdout)
    assert (place["camera"], place["state"], place["repeats"], place["days"], place["counted"],
            place["suppressed"]) == (CAMERA, "suppressed", 7, 3, 3, 4)
    assert place["first_seen"].startswith(start.strftime("%Y-%m-%dT08:00"))
    table = _edge(["repeats", "list", "--config", str(config), "--state", "all"], cli_env)
    assert table.returncode == 0 and table.stdout.splitlines()[0].split()[:4] == ["id", "camera", "state", "box"]
    states = [line.split()[:3] for line in table.stdout.splitlines()[2:]]
    assert states[0] == [str(place["id"]), CAMERA, "suppressed"] and ["candidate"] == [s[2] for s in states[1:]]

    bad = _edge(["repeats", "release", "999", "--config", str(config)], cli_env)
    assert bad.returncode == 2 and "no repeat place 999" in bad.stderr
    done = _edge(["repeats", "release", str(place["id"]), "--config", str(config), "--reviewer", "alice"], cli_env)
    assert done.returncode == 0, done.stderr
    assert f"place {place['id']} of camera {CAMERA}: released" in done.stdout
    again = _edge(["repeats", "release", str(place["id"]), "--config", str(config)], cli_env)
    assert again.returncode == 0 and "already released by alice" in again.stdout

    # Day 3: the decoy twice more. Released: counted, however alike it looks.
    for slot in range(2):
        _write(camera, f"IMG_{20 + slot:04d}.JPG", decoy, backdrop, birds25_dir,
               start + timedelta(days=3, minutes=10 * slot), 0.8 - 0.04 * slot)  # lights no earlier frame had
    run = _edge(["run", "--once", "--config", str(config)], cli_env)
    assert run.returncode == 0, run.stderr
    later = _query(db, """SELECT d.species, d.flag FROM detections AS d JOIN frames AS f ON f.id = d.frame_id
                          WHERE f.path LIKE '%IMG_002%' ORDER BY f.path""")
    assert later == [(SPECIES, None), (SPECIES, None)]
    assert dict(_query(db, "SELECT species, SUM(events) FROM daily_tallies GROUP BY species"))[SPECIES] == 5
    [after] = json.loads(_edge(["repeats", "list", "--config", str(config), "--format", "json"], cli_env).stdout)
    assert (after["state"], after["repeats"], after["counted"], after["released_by"]) == ("released", 9, 5, "alice")
