"""The web app's event page for a visit from a video clip, in real chromium: the sampled frames
with their boxes (decoded from the clip at their offsets), the crops, and the clip itself in a
<video> the browser plays when it can (H.264 MP4 here); the clip is served by id, with ranges."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from edge.config import load_config
from edge.web.app import create_app
from tests.edge.daemon.clips.conftest import FPS, edge, rows, set_mtime, write_clip, write_config
from tests.edge.web.conftest import Client, Served, browser  # noqa: F401 - the fixture (real chromium)


def test_the_event_page_shows_a_clips_sampled_frames_with_boxes_and_plays_it(
        tmp_path: Path, feeder_pictures, aiy_model_dir: Path, ssd_detector_dir: Path, cli_env: dict[str, str],
        browser) -> None:
    camera = tmp_path / "feeder"
    camera.mkdir()
    clip = write_clip(camera / "CLIP0001.MP4", feeder_pictures, FPS,
                      metadata={"creation_time": "2026-05-01T07:30:00.000000Z"})
    set_mtime(clip, datetime(2026, 5, 1, 7, 31, tzinfo=UTC))
    db = tmp_path / "state" / "edge.db"
    # The COCO SSD takes a stump of this backdrop for a person now and then (score 0.5-0.6): with
    # [privacy] hide_people such a clip would be withheld, which is not what this test is about.
    config = write_config(tmp_path / "edge.toml", camera, db, aiy_model_dir, ssd_detector_dir,
                          "[privacy]\nhide_people = false\n")
    run = edge(["run", "--once", "--config", str(config)], cli_env)
    assert run.returncode == 0, run.stderr
    (event_id,), = rows(db, "SELECT id FROM events")
    (clip_id,), = rows(db, "SELECT id FROM clips")
    shown = rows(db, "SELECT COUNT(*) FROM frames WHERE event_id = ?", (event_id,))[0][0]
    assert shown >= 4

    served = Served(create_app(load_config(config, environ={})))
    try:
        client = Client(served.port)
        whole = client.get(f"/clip/{clip_id}")
        assert whole.status == 200 and whole.headers["content-type"] == "video/mp4"
        assert whole.body == clip.read_bytes()
        part = client.request("GET", f"/clip/{clip_id}", headers={"Range": "bytes=0-99"})
        assert part.status == 206 and len(part.body) == 100
        assert client.get(f"/clip/{clip_id + 1}").status == 404

        page = browser.new_page()
        try:
            page.goto(f"{served.url}/event/{event_id}")
            images = page.locator(".frame img[src^='/img/frame/']")
            assert images.count() == shown
            page.evaluate("() => document.querySelectorAll('img').forEach(i => { i.loading = 'eager'; })")  # not lazy
            page.wait_for_function("() => [...document.querySelectorAll('.frame img')].every(i => i.complete)")
            widths = page.eval_on_selector_all(".frame img[src^='/img/frame/']", "imgs => imgs.map(i => i.naturalWidth)")
            assert widths == [1280] * shown  # each sampled frame decoded from the clip, boxes drawn
            crops = page.eval_on_selector_all("img.crop", "imgs => imgs.map(i => i.naturalWidth)")
            assert crops and set(crops) == {224}
            assert page.locator(".clip-offset").count() == shown
            video = page.locator(f"video#clip-{clip_id}")
            assert video.count() == 1
            if page.evaluate("() => document.createElement('video').canPlayType('video/mp4')"):
                page.wait_for_function(f"() => document.querySelector('video#clip-{clip_id}').readyState >= 1",
                                       timeout=30000)
                duration = page.evaluate(f"() => document.querySelector('video#clip-{clip_id}').duration")
                assert abs(duration - 6.0) < 0.2
        finally:
            page.close()
    finally:
        served.stop()
