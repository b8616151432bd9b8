"""The wiring hands the MQTT publisher and the metrics everything they read at construction.

`edge.daemon.wiring.build` returns a daemon whose publisher already has its health and info
sources and whose metrics already report the notification queue: nothing is set afterwards, so
no call order can leave a part without its input. Built from a real TOML, not started (no
broker, no model loaded, nothing created).
"""

from __future__ import annotations

from pathlib import Path

from prometheus_client import generate_latest

from edge.config import load_config
from edge.daemon.wiring import build
from edge.operate.health import mqtt_health_payload
from edge.operate.notify import Notifier
from edge.publish.messages import INFO_TOPIC


def _config(tmp_path: Path, model: Path) -> Path:
    camera = tmp_path / "cam"
    camera.mkdir()
    path = tmp_path / "edge.toml"
    path.write_text(f"""
[station]
device_id = "st1"
timezone = "Europe/Berlin"
[model]
path = "{model}"
[[cameras]]
name = "cam"
path = "{camera}"
[storage]
database = "{tmp_path / 'state' / 'edge.db'}"
[health]
metrics_port = 9
[mqtt]
enabled = true
host = "127.0.0.1"
port = 9
[notify]
enabled = true
urls = ["json://127.0.0.1:9/ok"]
""")
    return path


def test_the_publisher_and_the_metrics_are_complete_when_built(tmp_path: Path, aiy_model_dir: Path) -> None:
    config = load_config(_config(tmp_path, aiy_model_dir / "model.tflite"))
    daemon = build(config, notifier=Notifier(notify_socket=""))
    publisher = daemon.publisher
    assert publisher is not None
    sources = publisher.sources
    # health: the daemon's own HealthState, the one status.json and the metrics report.
    assert sources.health is not None
    daemon.health.set(backlog=7)
    payload = sources.health()
    expected = mqtt_health_payload(daemon.health.snapshot(), "st1")
    del payload["updated_at"], expected["updated_at"]  # the time of each snapshot
    assert payload == expected
    assert payload["backlog"] == 7 and payload["device"] == "st1"
    # info: the device card as of now (no model loaded yet: the outbox writer's context says so).
    assert sources.info is not None
    info = sources.info()
    assert info is not None and info.topic == INFO_TOPIC and info.retain
    # The metrics (not served: nothing listens before on_start) report the notification queue.
    text = generate_latest(daemon.health.metrics.registry).decode()
    assert "trailcam_notifications_queued 0.0" in text
    assert not (tmp_path / "state").exists()  # building creates nothing


def test_without_field_operations_there_is_no_health_topic(tmp_path: Path, aiy_model_dir: Path) -> None:
    config = load_config(_config(tmp_path, aiy_model_dir / "model.tflite"))
    daemon = build(config, field=False)
    assert daemon.publisher is not None
    assert daemon.publisher.sources.health is None
    assert daemon.publisher.sources.info is not None
    assert daemon.health.metrics is None
