"""With the detector, a notification carries the visit's best crop (the 224 px JPEG the classifier
saw, edge/operate/snapshots.py), posted base64 by Apprise's json:// target."""

from __future__ import annotations

import base64
import io
import os
import time
from pathlib import Path

from PIL import Image

from benchmarks.scenes import compose
from tests.edge.conftest import ThreadDaemon, count_rows, query_rows, wait_for


def test_the_visit_s_best_crop_is_attached(tmp_path: Path, make_config, birds25_dir: Path, ssd_detector_dir: Path,
                                            receiver) -> None:
    receiver.start()
    camera = tmp_path / "feeder"
    camera.mkdir()
    cardinals = sorted((birds25_dir / "NORTHERN CARDINAL").glob("*.jpg"))
    scene = compose(birds25_dir, (1920, 1080), 1, (0.08,), seed=21, sources=cardinals[:1])
    frame = camera / "IMG_0001.JPG"
    frame.write_bytes(scene.jpeg())
    taken = time.time() - 60  # no EXIF: the file time is the capture time
    os.utime(frame, (taken, taken))
    config = make_config([{"name": "feeder", "path": str(camera)}], detector={"path": str(ssd_detector_dir)},
                         notify={"enabled": True, "urls": [receiver.url], "triggers": ["new_species"]})
    db = config.storage.database
    runner = ThreadDaemon(config).start()
    try:
        wait_for(lambda: count_rows(db, "SELECT count(*) FROM notifications WHERE state = 'sent'") == 1, 120,
                 what="the new species' notification")
    finally:
        runner.stop()
    (snapshot,) = query_rows(db, "SELECT snapshot FROM events")[0]
    crop_file = db.parent / "snapshots" / snapshot
    (message,) = receiver.messages()
    assert "Why: new species at this station" in message["message"]
    (attachment,) = message["attachments"]
    sent = base64.b64decode(attachment["base64"])
    assert attachment["filename"] == snapshot and sent == crop_file.read_bytes()
    with Image.open(io.BytesIO(sent)) as picture:
        assert picture.size == (224, 224)
