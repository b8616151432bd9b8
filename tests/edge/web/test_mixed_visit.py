"""The count is the product: one visit with two species counts each species, everywhere.

A composed wide trail-camera frame with a Mourning Dove and a Downy Woodpecker (real birds25
photos) goes through the real daemon (the shared SSD detector and AIY classifier, a real
mosquitto). `edge counts --individuals`, the retained MQTT `counts`, the web app's Today page in a
real browser and the Camtrap DP export (validated offline) all count 1 dove + 1 woodpecker. A
review in the web app that moves the woodpecker to the dove species makes them all count
2 doves (two in one frame) and no woodpecker; undo restores 1 + 1 everywhere.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path

import pytest

from benchmarks.scenes import compose
from edge.config import load_config
from edge.web.app import create_app
from tests.edge.conftest import ThreadDaemon
from tests.edge.exports.conftest import edge_env, standards_dir  # noqa: F401 - fixtures this test shares
from tests.edge.exports.helpers import edge, edge_counts, event_counts
from tests.edge.web.conftest import PASSWORDS, Client, Served, logged_in_page, users_toml
from tests.fixtures.broker import Broker, Subscriber, wait_until

pytestmark = pytest.mark.broker

DOVE, WOODPECKER = "Mourning Dove", "Downy Woodpecker"  # the AIY labels (labelmap.csv's common names)
SCIENTIFIC = {DOVE: "Zenaida macroura", WOODPECKER: "Dryobates pubescens"}
SEED = 40  # the SSD finds both pasted birds of this scene, AIY names each (checked with `edge classify`)


@pytest.fixture
def mixed(birds25_dir: Path, ssd_detector_dir: Path, aiy_model_dir: Path, broker: Broker, tmp_path: Path,
          user_hashes) -> tuple[Path, Path]:
    camera = tmp_path / "feeder"
    camera.mkdir()
    sources = [sorted((birds25_dir / "MOURNING DOVE").glob("*.jpg"))[0],
               sorted((birds25_dir / "DOWNY WOODPECKER").glob("*.jpg"))[0]]
    scene = compose(birds25_dir, (1920, 1080), 2, (0.08, 0.08), seed=SEED, sources=sources)
    frame = camera / "IMG_0001.JPG"
    frame.write_bytes(scene.jpeg())
    stamp = max(time.time() - 60, time.time() // 86400 * 86400 + 1)  # today (UTC), a minute ago
    os.utime(frame, (stamp, stamp))
    mqtt = broker.mqtt_config(prefix="tc")
    users = users_toml(user_hashes)
    config = tmp_path / "edge.toml"
    config.write_text(f"""
[station]
device_id = "mixed"
timezone = "UTC"
[model]
path = "{aiy_model_dir}"
labels = "{aiy_model_dir / 'labelmap.csv'}"
[detector]
path = "{ssd_detector_dir}"
[storage]
database = "{tmp_path / 'state' / 'edge.db'}"
[mqtt]
{chr(10).join(f'{k} = {json.dumps(v)}' for k, v in mqtt.items())}
[project]
title = "Mixed visits"
sampling_design = "opportunistic"
license = "CC0-1.0"
[[project.contributors]]
title = "Ada Observer"
role = "contact"
{users}
[[cameras]]
name = "feeder"
path = "{camera}"
[cameras.deployment]
latitude = 40.0
longitude = -83.0
""")
    return config, tmp_path / "state" / "edge.db"


def _today(page, base: str) -> dict[str, tuple[int, int]]:
    """The Today page's table: species → (visits, birds), species with a visit only."""
    page.goto(base + "/")
    rows = page.locator("#today-counts tbody tr[data-species]")
    found = {}
    for i in range(rows.count()):
        row = rows.nth(i)
        visits = int(row.locator("td.events").inner_text())
        if visits:
            found[row.get_attribute("data-species")] = (visits, int(row.locator("td.individuals").inner_text()))
    return found


def _retained_counts(broker: Broker, device: str) -> dict[str, tuple[int, int]]:
    late = Subscriber(broker, [f"tc/{device}/counts"], persistent=False)
    try:
        messages = late.wait_for(lambda ms: [m for m in ms if m.retain], what="retained counts")
        species = json.loads(messages[-1].payload)["species"]
        return {k: (v["events"], v["individuals"]) for k, v in species.items() if v["events"]}
    finally:
        late.close()


def _camtrap(config: Path, out: Path, standards_dir: Path, env: dict[str, str]) -> dict[str, int]:
    result = edge(["export", "camtrap-dp", "--config", str(config), "--out", str(out), "--validate",
                   str(standards_dir)], env)
    assert result.returncode == 0, result.stdout + result.stderr
    individuals, _visits = event_counts(out)
    return individuals


def test_a_mixed_visit_counts_each_species_everywhere_and_reviews_move_them(
        mixed: tuple[Path, Path], broker: Broker, browser, standards_dir: Path, edge_env, tmp_path: Path) -> None:
    config_path, db = mixed
    config = load_config(config_path, environ={})
    runner = ThreadDaemon(config).start()
    served = Served(create_app(config))
    try:
        wait_until(lambda: db.exists() and sqlite3.connect(db).execute(
            "SELECT COUNT(*) FROM frames WHERE status = 'ok'").fetchone()[0] == 1, 120, "the frame recorded")
        conn = sqlite3.connect(db)
        birds = conn.execute("SELECT id, species FROM detections ORDER BY rank").fetchall()
        event_id = conn.execute("SELECT id FROM events").fetchone()[0]
        conn.close()
        assert sorted(s for _, s in birds) == sorted([DOVE, WOODPECKER]), birds
        one_each = {DOVE: (1, 1), WOODPECKER: (1, 1)}

        def everywhere() -> dict[str, dict[str, tuple[int, int]]]:
            wait_until(lambda: sqlite3.connect(db).execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 0, 30,
                       "outbox drained")
            visits = edge_counts(db, edge_env, unit="")
            individuals = edge_counts(db, edge_env)
            cli = {s: (visits[s], individuals[s]) for s in visits}
            context, page, _ = logged_in_page(browser, served.url)
            web = _today(page, served.url)
            context.close()
            return {"edge counts": cli, "mqtt": _retained_counts(broker, "mixed"), "web": web}

        seen = everywhere()
        assert seen == {"edge counts": one_each, "mqtt": one_each, "web": one_each}
        package = _camtrap(config_path, tmp_path / "dp1", standards_dir, edge_env)
        assert package == {DOVE: 1, WOODPECKER: 1}

        # A person moves the woodpecker to the dove species: two doves in one frame.
        client = Client(served.port)
        assert client.login("alice", PASSWORDS["alice"]).status == 303
        token = client.csrf()
        woodpecker = next(i for i, s in birds if s == WOODPECKER)
        refused = client.post_json("/api/review", {"event_id": event_id, "detection_id": woodpecker,
                                                   "action": "correct", "species": "mourn"}, token)
        assert refused.status == 400 and "not a species this station knows" in refused.json()["error"]
        moved = client.post_json("/api/review", {"event_id": event_id, "detection_id": woodpecker,
                                                 "action": "correct", "species": "mourning dove"}, token)
        assert moved.status == 200, moved.text
        assert moved.json()["review"]["species"] == DOVE  # stored under the model's label
        two_doves = {DOVE: (1, 2)}
        assert everywhere() == {"edge counts": two_doves, "mqtt": two_doves, "web": two_doves}
        assert _camtrap(config_path, tmp_path / "dp2", standards_dir, edge_env) == {DOVE: 2}

        undone = client.post_json("/api/undo", {"review_id": moved.json()["review"]["id"]}, token)
        assert undone.status == 200, undone.text
        assert everywhere() == {"edge counts": one_each, "mqtt": one_each, "web": one_each}
        assert _camtrap(config_path, tmp_path / "dp3", standards_dir, edge_env) == {DOVE: 1, WOODPECKER: 1}
    finally:
        served.stop()
        runner.stop()
