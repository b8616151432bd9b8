"""[mqtt] section: broker, topics, security and outbox bound (owned by the MQTT area).

The password should not sit in the TOML file (often world-readable, copied into backups and bug
reports): it comes from `password_file`, from the environment (`TRAILCAM__MQTT__PASSWORD`,
the generic override of the `password` key), or from `$CREDENTIALS_DIRECTORY/mqtt_password`
(systemd LoadCredential=). It is a SecretStr (masked in repr and dumps), read afresh on every
connection attempt (a fixed password file needs no restart) and never logged.

The device id is `[station] device_id`: one identity for the database, the topics and Home
Assistant.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator

from edge.config.base import SECTION_CONFIG, TomlFilePath

CREDENTIAL_NAME = "mqtt_password"


class MqttConfig(BaseModel):
    model_config = SECTION_CONFIG

    enabled: bool = False
    host: str = "localhost"
    port: int = Field(1883, ge=1, le=65535)
    prefix: str = "trailcam"
    client_id: str | None = None  # None: "trailcam-<[station] device_id>"
    keepalive_s: int = Field(60, ge=5, le=65535)

    username: str | None = None
    password: SecretStr | None = None  # meant for TRAILCAM__MQTT__PASSWORD; prefer password_file
    password_file: TomlFilePath | None = None

    tls: bool = False  # implied by ca_file
    ca_file: TomlFilePath | None = None
    cert_file: TomlFilePath | None = None
    key_file: TomlFilePath | None = None
    tls_insecure: bool = False  # skip host name verification (self-signed lab brokers only)

    reconnect_min_s: float = Field(1.0, gt=0)
    reconnect_max_s: float = Field(300.0, gt=0)
    connect_timeout_s: float = Field(10.0, gt=0)
    poll_interval_s: float = Field(1.0, gt=0, le=60)  # fallback; commits are noticed at once
    batch_window_s: float = Field(0.1, ge=0, le=10)  # gather a burst of frames into one batch
    max_inflight: int = Field(20, ge=1, le=1000)
    drain_timeout_s: float = Field(3.0, ge=0)  # on clean shutdown, try this long to empty the outbox
    outbox_max_rows: int = Field(100_000, ge=10)
    health_interval_s: float = Field(60.0, gt=0)  # retained `health` republished this often (and at once on pause/resume)

    discovery: bool = True
    discovery_prefix: str = "homeassistant"

    @field_validator("prefix", "discovery_prefix")
    @classmethod
    def _topic_prefix(cls, value: str) -> str:
        if not value or value.startswith("/") or value.endswith("/") or any(c in value for c in "+#\0"):
            raise ValueError("must be a non-empty MQTT topic without wildcards or leading/trailing '/'")
        return value

    @model_validator(mode="after")
    def _checks(self) -> "MqttConfig":
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be >= reconnect_min_s")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file must be given together (client certificate)")
        if self.password is not None and self.password_file is not None:
            raise ValueError("give the password once: password (environment) or password_file, not both")
        return self

    @property
    def use_tls(self) -> bool:
        return self.tls or self.ca_file is not None or self.cert_file is not None

    def resolved_client_id(self, device_id: str) -> str:
        return self.client_id or f"trailcam-{device_id}"

    def base_topic(self, device_id: str) -> str:
        return f"{self.prefix}/{device_id}"

    def read_password(self) -> str | None:
        """The password from the config/environment, file or systemd credential; None = none."""
        if self.password is not None:
            return self.password.get_secret_value()
        if self.password_file is not None:
            return Path(self.password_file).read_text(encoding="utf-8").rstrip("\r\n")
        credential = _credential_path()
        if credential is not None:
            return credential.read_text(encoding="utf-8").rstrip("\r\n")
        return None

    def password_source(self) -> Literal["config", "file", "credential", "none"]:
        """Where the password comes from, for status output (never the password itself)."""
        if self.password is not None:
            return "config"
        if self.password_file is not None:
            return "file"
        return "credential" if _credential_path() is not None else "none"


def _credential_path() -> Path | None:
    creds = os.environ.get("CREDENTIALS_DIRECTORY")
    if creds and (Path(creds) / CREDENTIAL_NAME).is_file():
        return Path(creds) / CREDENTIAL_NAME
    return None
