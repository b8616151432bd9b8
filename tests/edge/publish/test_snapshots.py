"""Each event's best crop: written after the commit, pruned by retention, published retained on
`snapshot/<camera>` (raw JPEG, as a Home Assistant MQTT camera reads it), announced by discovery."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edge.classify.decision import Decision
from edge.classify.model import Prediction
from edge.config.mqtt import MqttConfig
from edge.config.retention import RetentionConfig
from edge.operate.retention import Retention
from edge.operate.snapshots import SnapshotWriter
from edge.publish.discovery import discovery_messages
from edge.publish.mqtt import Publisher
from edge.store.writer import BirdRecord, FrameRecord, Store
from tests.edge.publish.helpers import make_db
from tests.fixtures.broker import Broker, Subscriber

T0 = datetime(2026, 5, 1, 8, 0, 0, tzinfo=UTC)


def _crop(value: int) -> np.ndarray:
    rgb = np.zeros((224, 224, 3), np.uint8)
    rgb[..., 0] = value
    return rgb


def _frame(store: Store, seconds: float, confidences: list[float]) -> object:
    birds = [BirdRecord((0.1, 0.1 * i, 0.2, 0.1 * i + 0.1), 0.9, "bird", [Prediction("robin", c, 0)],
                        Decision("species", "robin", c, "ok")) for i, c in enumerate(confidences)]
    sha = hashlib.sha256(f"{seconds}{confidences}".encode()).hexdigest()
    return store.record(FrameRecord(path=f"/cam/{seconds}.jpg", sha256=sha, camera="feeder", size=1, mtime=0.0,
                                    captured_at=T0 + timedelta(seconds=seconds), model_id="m", birds=birds,
                                    detector_id="d"))


def test_writer_keeps_the_best_crop_of_each_event(tmp_path: Path) -> None:
    store = Store(tmp_path / "edge.db", clock=lambda: T0 + timedelta(hours=1))
    published: list[tuple[str, Path]] = []
    writer = SnapshotWriter(tmp_path / "snapshots", lambda camera, path: published.append((camera, path)))
    try:
        first = _frame(store, 0, [0.6])
        [path] = writer.write("feeder", first, [_crop(10)])
        assert path.parent == tmp_path / "snapshots" and path.suffix == ".jpg"
        assert not writer.write("feeder", _frame(store, 5, [0.5]), [_crop(99)])  # worse: nothing written
        better = _frame(store, 10, [0.4, 0.9])
        assert writer.write("feeder", better, [_crop(50), _crop(200)]) == [path]
        with Image.open(path) as image:
            assert image.size == (224, 224)
            assert abs(int(np.asarray(image)[..., 0].mean()) - 200) <= 3  # the 0.9 bird's crop, not the 0.4 one
        assert [camera for camera, _ in published] == ["feeder", "feeder"]
        assert not list((tmp_path / "snapshots").glob(".*"))  # no partial file left
    finally:
        store.close()


def test_retention_removes_old_snapshots_and_keeps_the_events(tmp_path: Path) -> None:
    store = Store(tmp_path / "edge.db", clock=lambda: T0 + timedelta(hours=1))
    writer = SnapshotWriter(tmp_path / "snapshots")
    try:
        [path] = writer.write("feeder", _frame(store, 0, [0.7]), [_crop(1)])
        store.close_stale_events(T0 + timedelta(hours=1))
        now = (T0 + timedelta(days=40)).timestamp()
        keep = Retention(RetentionConfig(snapshot_days=60), store.db, clock=lambda: now, snapshot_dir=path.parent)
        assert keep.prune_snapshots() == 0 and path.exists()
        prune = Retention(RetentionConfig(snapshot_days=30), store.db, clock=lambda: now, snapshot_dir=path.parent)
        assert prune.prune_snapshots() == 1
        assert not path.exists()
        assert store.db.execute("SELECT snapshot, individuals FROM events").fetchall() == [(None, 1)]
        assert prune.prune_snapshots() == 0
    finally:
        store.close()


def test_discovery_announces_a_camera_entity_per_camera() -> None:
    configs = {topic: json.loads(payload) for topic, payload in
               discovery_messages("homeassistant", "tc/dev1", "dev1", cameras=["Feeder 1"])}
    camera = configs["homeassistant/camera/trailcam_dev1/snapshot_feeder_1/config"]
    assert camera["topic"] == "tc/dev1/snapshot/feeder_1"
    assert camera["unique_id"] == "trailcam_dev1_snapshot_feeder_1"
    assert "state_topic" not in camera and "value_template" not in camera
    assert not any("/camera/" in topic for topic, _ in discovery_messages("homeassistant", "tc/dev1", "dev1"))


@pytest.mark.broker
def test_latest_snapshot_is_published_retained_and_again_after_a_reconnect(broker: Broker, tmp_path: Path) -> None:
    make_db(tmp_path / "edge.db")
    jpeg = io.BytesIO()
    Image.fromarray(_crop(123)).save(jpeg, "JPEG")
    path = tmp_path / "a.jpg"
    path.write_bytes(jpeg.getvalue())
    config = MqttConfig(**broker.mqtt_config(prefix="tc", discovery=False))
    publisher = Publisher(config, tmp_path / "edge.db", "dev1", cameras=["feeder"])
    publisher.start()
    sub = Subscriber(broker, ["tc/dev1/snapshot/#"], persistent=False)
    try:
        publisher.snapshot_changed("feeder", path)
        got = sub.wait_for(lambda ms: [m for m in ms if m.topic == "tc/dev1/snapshot/feeder"], what="snapshot")
        assert got[-1].raw == jpeg.getvalue() and got[-1].raw[:2] == b"\xff\xd8"
        # A broker that lost its store (a fresh install, a wiped volume) forgets retained messages.
        broker.stop()
        for stored in (broker.workdir / "data").iterdir():
            stored.unlink()
        broker.start()
        late = Subscriber(broker, ["tc/dev1/snapshot/#"], persistent=False)
        try:
            again = late.wait_for(lambda ms: [m for m in ms if m.topic == "tc/dev1/snapshot/feeder"],
                                  timeout=30, what="snapshot republished after the reconnect")
            assert again[-1].raw == jpeg.getvalue()
        finally:
            late.close()
        # Retained: a client that subscribes afterwards (Home Assistant starting) gets it at once.
        third = Subscriber(broker, ["tc/dev1/snapshot/#"], persistent=False)
        try:
            kept = third.wait_for(lambda ms: [m for m in ms if m.retain], what="the retained snapshot")
            assert kept[-1].raw == jpeg.getvalue()
        finally:
            third.close()
    finally:
        publisher.stop()
        sub.close()
