"""[mqtt] config: defaults, errors that name the key, password sources that never leak."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from edge.config import EdgeConfig
from edge.config.mqtt import MqttConfig


def error_locs(exc: ValidationError) -> list[str]:
    return [".".join(str(p) for p in e["loc"]) for e in exc.errors()]


def test_defaults_are_safe() -> None:
    cfg = MqttConfig()
    assert not cfg.enabled and cfg.port == 1883 and cfg.prefix == "trailcam"
    assert not cfg.use_tls and cfg.outbox_max_rows == 100_000
    assert cfg.resolved_client_id() == f"trailcam-{cfg.resolved_device_id()}"
    assert cfg.base_topic() == f"trailcam/{cfg.resolved_device_id()}"


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"prot": 1}, "mqtt.prot"),
        ({"port": 0}, "mqtt.port"),
        ({"prefix": "a/#"}, "mqtt.prefix"),
        ({"device_id": "Station 7"}, "mqtt.device_id"),
        ({"password_file": "/nonexistent/pw"}, "mqtt.password_file"),
        ({"password": "inline"}, "mqtt.password"),
        ({"outbox_max_rows": 1}, "mqtt.outbox_max_rows"),
    ],
)
def test_errors_name_the_key(settings: dict, key: str) -> None:
    with pytest.raises(ValidationError) as info:
        EdgeConfig(mqtt=settings)
    assert key in error_locs(info.value)


def test_cert_needs_key_and_backoff_order(tmp_path: Path) -> None:
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    with pytest.raises(ValidationError, match="cert_file and key_file"):
        MqttConfig(cert_file=cert)
    with pytest.raises(ValidationError, match="reconnect_max_s"):
        MqttConfig(reconnect_min_s=10, reconnect_max_s=1)
    assert MqttConfig(ca_file=cert).use_tls


def test_password_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRAILCAM_MQTT_PASSWORD", raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    assert MqttConfig().read_password() is None and MqttConfig().password_source() == "none"
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "mqtt_password").write_text("from-systemd\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    assert (MqttConfig().read_password(), MqttConfig().password_source()) == ("from-systemd", "credential")
    monkeypatch.setenv("TRAILCAM_MQTT_PASSWORD", "from-env")
    assert (MqttConfig().read_password(), MqttConfig().password_source()) == ("from-env", "env")
    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    cfg = MqttConfig(password_file=secret)
    assert (cfg.read_password(), cfg.password_source()) == ("from-file", "file")
    assert "from-file" not in repr(cfg) and "from-file" not in cfg.model_dump_json()
