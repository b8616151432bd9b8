"""Real trail-camera frames: never a bird that is not there, the same numbers everywhere (issue 21).

The 27 real camera-trap frames of ../shared/data/trailcam-nobird (opossums, skunks, foxes,
squirrels, black bears, empty triggers, infrared nights, banners) go through the real daemon
(the shared COCO SSD detector and AIY classifier, a real mosquitto). The shared manifest says
`birds: 0` for all 27, but two of them (ENA24 49 and 7951, labelled "American Crow" by ENA24)
show a crow plainly: those are birds and must be counted; the other 25 must count nothing.

Measured on this set before the "neither model sure" rule (`[classify]
unnamed_min_detector_score`): 4 of the 25 bird-free frames counted an `unknown` bird (three
squirrels and an opossum at night, detector scores 0.51-0.57, crops the classifier could not
name) and the crow frame 7951 counted a stone beside its crow. After: `edge counts`, the
retained MQTT counts, the web app's Today page and the Camtrap DP export all count exactly the
two crows; the boxes on the mammals are recorded (`unconfirmed`) and exported as `unknown`
observations without a taxon.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import time
from pathlib import Path

import piexif
import pytest

from edge.config import load_config
from edge.web.app import create_app
from tests.edge.conftest import ThreadDaemon
from tests.edge.exports.conftest import edge_env, standards_dir  # noqa: F401 - fixtures this test shares
from tests.edge.exports.helpers import edge, edge_counts, event_counts
from tests.edge.web.conftest import Served, logged_in_page, users_toml
from tests.edge.web.test_mixed_visit import _retained_counts, _today
from tests.fixtures.broker import Broker, wait_until

pytestmark = pytest.mark.broker

# The two frames of trailcam-nobird with a crow in plain view (the manifest's `birds: 0` is wrong
# for them; ENA24's own label is American Crow), and where the crow is (ymin, xmin, ymax, xmax).
CROWS = {"zamba__tests_assets_images_ena24_small_49.jpg": (0.68, 0.35, 0.98, 0.57),
         "zamba__tests_assets_images_ena24_small_7951.jpg": (0.47, 0.23, 0.65, 0.39)}


def _without_exif(source: Path, target: Path) -> None:
    """The frame's own bytes with its EXIF block removed (losslessly), so that its file time,
    set to today, is its capture time: the web app's Today page and the retained MQTT counts are
    about today, and these frames were taken in 2015-2016."""
    out = io.BytesIO()
    piexif.remove(source.read_bytes(), out)
    target.write_bytes(out.getvalue())


@pytest.fixture
def station(trailcam_nobird_dir: Path, ssd_detector_dir: Path, aiy_model_dir: Path, broker: Broker,
            tmp_path: Path, user_hashes) -> tuple[Path, Path, list[str]]:
    camera = tmp_path / "trail"
    camera.mkdir()
    names = sorted(p.name for p in trailcam_nobird_dir.iterdir() if p.suffix.lower() == ".jpg")
    assert len(names) == 27 and set(CROWS) <= set(names)
    start = max(time.time() - 600, time.time() // 86400 * 86400 + 1)  # today (UTC), minutes ago
    for index, name in enumerate(names):
        target = camera / name
        _without_exif(trailcam_nobird_dir / name, target)
        stamp = start + 11 * index  # 11 s apart: each frame its own visit (independence_s = 10)
        os.utime(target, (stamp, stamp))
    mqtt = broker.mqtt_config(prefix="tc")
    users = users_toml(user_hashes)
    config = tmp_path / "edge.toml"
    config.write_text(f"""
[station]
device_id = "trail"
timezone = "UTC"
[model]
path = "{aiy_model_dir}"
labels = "{aiy_model_dir / 'labelmap.csv'}"
[detector]
path = "{ssd_detector_dir}"
[events]
independence_s = 10
[storage]
database = "{tmp_path / 'state' / 'edge.db'}"
[mqtt]
{chr(10).join(f'{k} = {json.dumps(v)}' for k, v in mqtt.items())}
[project]
title = "Real trail-camera frames"
sampling_design = "opportunistic"
license = "CC0-1.0"
[[project.contributors]]
title = "Ada Observer"
role = "contact"
{users}
[[cameras]]
name = "trail"
path = "{camera}"
[cameras.deployment]
latitude = 35.8
longitude = -78.6
""")
    return config, tmp_path / "state" / "edge.db", names


def _overlaps(box: tuple[float, ...], region: tuple[float, ...]) -> bool:
    ymin, xmin, ymax, xmax = box
    return ymin < region[2] and region[0] < ymax and xmin < region[3] and region[1] < xmax


def test_real_bird_free_frames_count_nothing_and_the_crows_count_everywhere(
        station: tuple[Path, Path, list[str]], broker: Broker, browser, standards_dir: Path, edge_env,
        tmp_path: Path) -> None:
    config_path, db, names = station
    config = load_config(config_path, environ={})
    runner = ThreadDaemon(config).start()
    served = Served(create_app(config))
    try:
        wait_until(lambda: db.exists() and sqlite3.connect(db).execute(
            "SELECT COUNT(*) FROM frames WHERE status = 'ok'").fetchone()[0] == 27, 300, "27 frames recorded")
        wait_until(lambda: sqlite3.connect(db).execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 0, 30,
                   "outbox drained")
        conn = sqlite3.connect(db)
        counted = conn.execute(
            "SELECT f.path, d.ymin, d.xmin, d.ymax, d.xmax, d.species FROM detections d JOIN frames f ON f.id = d.frame_id "
            "WHERE d.kind != 'none'").fetchall()
        flags = conn.execute("SELECT flag, COUNT(*) FROM detections WHERE kind = 'none' GROUP BY flag").fetchall()
        events = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        conn.close()
        # Exactly one counted bird per crow frame, on the crow; nothing on the 25 others.
        assert sorted(Path(p).name for p, *_ in counted) == sorted(CROWS), counted
        for path, ymin, xmin, ymax, xmax, _species in counted:
            assert _overlaps((ymin, xmin, ymax, xmax), CROWS[Path(path).name]), (path, ymin, xmin, ymax, xmax)
        assert events == 2
        # The boxes on mammals and the stone are recorded, never counted.
        assert dict(flags).get("unconfirmed", 0) >= 5, flags

        crows = {species for *_, species in counted}
        visits = edge_counts(db, edge_env, unit="")
        individuals = edge_counts(db, edge_env)
        cli = {s: (visits[s], individuals[s]) for s in visits}
        assert sum(v for v, _ in cli.values()) == 2 and sum(i for _, i in cli.values()) == 2
        assert set(cli) == crows, cli
        assert _retained_counts(broker, "trail") == cli
        context, page, _ = logged_in_page(browser, served.url)
        assert _today(page, served.url) == cli
        context.close()

        package = tmp_path / "dp"
        result = edge(["export", "camtrap-dp", "--config", str(config_path), "--out", str(package), "--validate",
                       str(standards_dir)], edge_env)
        assert result.returncode == 0, result.stdout + result.stderr
        individuals_dp, visits_dp = event_counts(package)
        assert (individuals_dp, visits_dp) == ({s: i for s, (_, i) in cli.items()}, {s: v for s, (v, _) in cli.items()})
        with (package / "observations.csv").open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        unsure = [r for r in rows if r["observationTags"] == "decision:unconfirmed"]
        assert unsure and all(r["observationType"] == "unknown" and not r["scientificName"] for r in unsure)
    finally:
        served.stop()
        runner.stop()
