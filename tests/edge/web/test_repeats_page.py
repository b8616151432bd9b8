"""The web app's Repeats page over a real uvicorn: the places repeat-detection elimination
suppressed, each with its picture (the place's box cut from the frame of its latest detection,
served by id), and Release through the form with the review's login, role and CSRF rules; in the
real browser (Debian's chromium driven by Playwright) too.

The station: real frames on disk (a decoy pasted at the same place of a real trail-camera frame,
../shared/data/trailcam-nobird, under another light each time) recorded by the real Store with the
crops' looks, nine frames on three days ([repeats] min_repeats 4, min_days 2): one suppressed place.
The daemon with the real detector making such a place is tests/edge/detect/test_repeats_daemon.py."""

from __future__ import annotations

import hashlib
import io
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from benchmarks.scenes import compose
from edge.classify.decision import Decision
from edge.classify.model import Prediction
from edge.config import load_config
from edge.detect.finder import crop_birds
from edge.detect.model import Box
from edge.detect.repeats import RepeatRules, look_of
from edge.store.writer import BirdRecord, FrameRecord, Store
from edge.web.app import create_app
from tests.edge.web.conftest import PASSWORDS, Client, Served, logged_in_page, pictures_settled

SIZE = (960, 540)
PASTE = (350, 225, 550, 425)
BOX = (PASTE[1] / SIZE[1], PASTE[0] / SIZE[0], PASTE[3] / SIZE[1], PASTE[2] / SIZE[0])


def _query(db: Path, sql: str, params: tuple = ()) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


@pytest.fixture
def repeat_station(birds25_dir: Path, trailcam_nobird_dir: Path, tmp_path: Path, user_hashes) -> tuple[Path, Path]:
    """(edge.toml, database) of a station with one suppressed place and one candidate."""
    camera = tmp_path / "north"
    camera.mkdir()
    backdrop = Image.open(trailcam_nobird_dir / "speciesnet__test_data_blank.jpg").convert("RGB")
    decoy = sorted((birds25_dir / "NORTHERN CARDINAL").glob("*.jpg"))[0]
    database = tmp_path / "state" / "edge.db"
    start = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
    store = Store(database, clock=lambda: start + timedelta(days=30), repeat_rules=RepeatRules(min_repeats=4, min_days=2))
    try:
        for index in range(9):
            scene = compose(birds25_dir, SIZE, 1, (0.08,), seed=1, sources=[decoy], backdrop=backdrop, boxes=[PASTE])
            image = ImageEnhance.Brightness(scene.image).enhance(0.8 + 0.04 * index)
            buffer = io.BytesIO()
            image.save(buffer, "JPEG", quality=88)
            path = camera / f"IMG_{index:04d}.JPG"
            path.write_bytes(buffer.getvalue())
            crop = crop_birds(Image.open(path).convert("RGB"), [Box(*BOX, 0.7, 0, "bird")], (224, 224))[0]
            decision = Decision("species", "Northern Cardinal", 0.9, "ok")
            bird = BirdRecord(BOX, 0.7, "bird", [Prediction("Northern Cardinal", 0.9, 0)], decision, look_of(crop))
            store.record(FrameRecord(
                path=str(path), sha256=hashlib.sha256(buffer.getvalue()).hexdigest(), camera="north",
                size=len(buffer.getvalue()), mtime=0.0, captured_at=start + timedelta(days=index // 3, minutes=index),
                time_source="exif", model_id="m", birds=[bird], detector_id="d"))
        # A candidate elsewhere: a bird seen twice at another place.
        other = np.asarray(Image.open(sorted((birds25_dir / "CEDAR WAXWING").glob("*.jpg"))[0]).convert("RGB"))
        for minute in (0, 30):
            decision = Decision("species", "Cedar Waxwing", 0.9, "ok")
            bird = BirdRecord((0.1, 0.1, 0.2, 0.2), 0.7, "bird", [], decision, look_of(other))
            store.record(FrameRecord(path=str(camera / f"JAY_{minute}.JPG"), sha256=f"jay{minute}", camera="north",
                                     size=1, mtime=0.0, captured_at=start + timedelta(days=4, minutes=minute),
                                     time_source="exif", model_id="m", birds=[bird], detector_id="d"))
    finally:
        store.close()
    config = tmp_path / "edge.toml"
    config.write_text(f"""
[station]
timezone = "UTC"
[[cameras]]
name = "north"
path = "{camera}"
[storage]
database = "{database}"
[repeats]
min_repeats = 4
min_days = 2
""")
    return config, database


def _app(config: Path, **web) -> Served:
    return Served(create_app(load_config(config, overrides={"web": web} if web else None, environ={})))


def test_the_page_lists_places_with_their_picture_and_release_needs_an_admin_and_csrf(
        repeat_station: tuple[Path, Path], user_hashes) -> None:
    config, database = repeat_station
    [(place_id, state)] = _query(database, "SELECT id, state FROM repeat_places WHERE state = 'suppressed'")
    served = _app(config, users=user_hashes)
    try:
        bob = Client(served.port)
        assert bob.login("bob", PASSWORDS["bob"]).status == 303
        page = bob.get("/repeats")
        assert page.status == 200
        assert f'data-place-id="{place_id}" data-state="suppressed"' in page.text
        assert f'src="/img/repeat/{place_id}"' in page.text and "seen <span class=\"repeats\">9</span>" in page.text
        assert 'id="repeat-candidates"' in page.text and "releasing a place needs an admin login" in page.text
        picture = bob.get(f"/img/repeat/{place_id}")
        assert picture.status == 200 and picture.headers["content-type"] == "image/jpeg"
        with Image.open(io.BytesIO(picture.body)) as image:
            assert image.size == (224, 224)
        assert bob.get("/img/repeat/999").status == 404
        # The read role may look, not release.
        refused = bob.form(f"/repeats/{place_id}/release", {"csrf": bob.csrf()})
        assert refused.status == 403
        alice = Client(served.port)
        alice.login("alice", PASSWORDS["alice"])
        assert alice.form(f"/repeats/{place_id}/release", {}).status == 403  # no CSRF token
        assert alice.form("/repeats/999/release", {"csrf": alice.csrf()}).status == 404
        assert _query(database, "SELECT state FROM repeat_places WHERE id = ?", (place_id,)) == [("suppressed",)]
        done = alice.form(f"/repeats/{place_id}/release", {"csrf": alice.csrf()})
        assert done.status == 303 and done.headers["location"] == "/repeats"
        assert _query(database, "SELECT state, released_by FROM repeat_places WHERE id = ?", (place_id,)) == [
            ("released", "alice")]
    finally:
        served.stop()


def test_pictures_can_be_turned_off(repeat_station: tuple[Path, Path]) -> None:
    config, database = repeat_station
    [(place_id,)] = _query(database, "SELECT id FROM repeat_places WHERE state = 'suppressed'")
    served = _app(config, frame_images=False)
    try:
        client = Client(served.port)
        assert client.get(f"/img/repeat/{place_id}").status == 404
        assert "/img/repeat/" not in client.get("/repeats").text
    finally:
        served.stop()


def test_release_in_the_browser(browser, repeat_station: tuple[Path, Path], user_hashes) -> None:
    config, database = repeat_station
    [(place_id,)] = _query(database, "SELECT id FROM repeat_places WHERE state = 'suppressed'")
    served = _app(config, users=user_hashes)
    try:
        # Straight to the page after the login (this station's visits have no snapshot files:
        # the Today page would ask for pictures that are not there).
        context, page, problems = logged_in_page(browser, served.url, "/repeats")
        assert page.locator("nav a.on").inner_text() == "Repeats"
        card = page.locator(f'article[data-place-id="{place_id}"]')
        assert card.get_attribute("data-state") == "suppressed"
        picture = card.locator("img")
        picture.wait_for()
        pictures_settled(page)
        assert picture.evaluate("img => img.complete && img.naturalWidth") == 224
        card.get_by_role("button", name="Release: birds are here").click()
        page.wait_for_url(served.url + "/repeats")
        card = page.locator(f'article[data-place-id="{place_id}"]')
        assert card.get_attribute("data-state") == "released"
        assert "released by alice" in card.inner_text()
        assert card.get_by_role("button").count() == 0
        assert _query(database, "SELECT state, released_by FROM repeat_places WHERE id = ?", (place_id,)) == [
            ("released", "alice")]
        assert problems == []
        context.close()
    finally:
        served.stop()
