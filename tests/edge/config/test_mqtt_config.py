"""[mqtt] config: defaults, errors that name the key, password sources that never leak."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from edge.config import EdgeConfig, load_config
from edge.config.mqtt import MqttConfig


def error_locs(exc: ValidationError) -> list[str]:
    return [".".join(str(p) for p in e["loc"]) for e in exc.errors()]


def test_defaults_are_safe() -> None:
    cfg = MqttConfig()
    assert not cfg.enabled and cfg.port == 1883 and cfg.prefix == "trailcam"
    assert not cfg.use_tls and cfg.outbox_max_rows == 100_000
    assert cfg.resolved_client_id("st-1") == "trailcam-st-1"
    assert cfg.base_topic("st-1") == "trailcam/st-1"


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"prot": 1}, "mqtt.prot"),
        ({"port": 0}, "mqtt.port"),
        ({"prefix": "a/#"}, "mqtt.prefix"),
        ({"device_id": "st-1"}, "mqtt.device_id"),  # the identity is [station] device_id
        ({"password_file": "/nonexistent/pw"}, "mqtt.password_file"),
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
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    assert MqttConfig().read_password() is None and MqttConfig().password_source() == "none"
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "mqtt_password").write_text("from-systemd\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    assert (MqttConfig().read_password(), MqttConfig().password_source()) == ("from-systemd", "credential")
    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    cfg = MqttConfig(password_file=secret)
    assert (cfg.read_password(), cfg.password_source()) == ("from-file", "file")
    with pytest.raises(ValidationError, match="password once"):
        MqttConfig(password="x", password_file=secret)


def test_password_from_environment_override_is_masked(tmp_path: Path) -> None:
    empty = tmp_path / "edge.toml"
    empty.write_text("[mqtt]\nenabled = true\nusername = \"cam\"\n")
    config = load_config(empty, environ={"TRAILCAM__MQTT__PASSWORD": "from-env-Secret"})
    assert config.mqtt.read_password() == "from-env-Secret"
    assert config.mqtt.password_source() == "config"
    for text in (repr(config), str(config.mqtt), config.model_dump_json()):
        assert "from-env-Secret" not in text
