"""[mqtt] section: broker, topics, security and outbox bound (owned by the MQTT area).

The password is never a plain key of the TOML file (the file is often world-readable and ends
up in backups and bug reports): it comes from `password_file` (e.g. a systemd credential),
from the environment variable named by `password_env`, or from
`$CREDENTIALS_DIRECTORY/mqtt_password` (systemd LoadCredential=). It is read when the
publisher starts and never logged.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, FilePath, field_validator, model_validator

from edge.messages import topic_segment

CREDENTIAL_NAME = "mqtt_password"


class MqttConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    host: str = "localhost"
    port: int = Field(1883, ge=1, le=65535)
    prefix: str = "trailcam"
    device_id: str | None = None  # None: the host name, made topic-safe
    client_id: str | None = None  # None: "trailcam-<device_id>"
    keepalive_s: int = Field(60, ge=5, le=65535)

    username: str | None = None
    password_file: FilePath | None = None
    password_env: str = "TRAILCAM_MQTT_PASSWORD"

    tls: bool = False  # implied by ca_file
    ca_file: FilePath | None = None
    cert_file: FilePath | None = None
    key_file: FilePath | None = None
    tls_insecure: bool = False  # skip host name verification (self-signed lab brokers only)

    reconnect_min_s: float = Field(1.0, gt=0)
    reconnect_max_s: float = Field(300.0, gt=0)
    connect_timeout_s: float = Field(10.0, gt=0)
    poll_interval_s: float = Field(0.5, gt=0, le=60)
    max_inflight: int = Field(20, ge=1, le=1000)
    drain_timeout_s: float = Field(3.0, ge=0)  # on clean shutdown, try this long to empty the outbox
    outbox_max_rows: int = Field(100_000, ge=10)

    discovery: bool = True
    discovery_prefix: str = "homeassistant"

    @field_validator("prefix", "discovery_prefix")
    @classmethod
    def _topic_prefix(cls, value: str) -> str:
        if not value or value.startswith("/") or value.endswith("/") or any(c in value for c in "+#\0"):
            raise ValueError("must be a non-empty MQTT topic without wildcards or leading/trailing '/'")
        return value

    @field_validator("device_id")
    @classmethod
    def _device_id(cls, value: str | None) -> str | None:
        if value is not None and topic_segment(value) != value:
            raise ValueError(f"use lower-case letters, digits, '-' and '_' (e.g. {topic_segment(value)!r})")
        return value

    @model_validator(mode="after")
    def _checks(self) -> "MqttConfig":
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be >= reconnect_min_s")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file must be given together (client certificate)")
        return self

    @property
    def use_tls(self) -> bool:
        return self.tls or self.ca_file is not None or self.cert_file is not None

    def resolved_device_id(self) -> str:
        return self.device_id or topic_segment(socket.gethostname())

    def resolved_client_id(self) -> str:
        return self.client_id or f"trailcam-{self.resolved_device_id()}"

    def base_topic(self) -> str:
        return f"{self.prefix}/{self.resolved_device_id()}"

    def read_password(self) -> str | None:
        """The password from file, environment or systemd credential; None = no password."""
        if self.password_file is not None:
            return Path(self.password_file).read_text(encoding="utf-8").rstrip("\r\n")
        from_env = os.environ.get(self.password_env)
        if from_env:
            return from_env
        creds = os.environ.get("CREDENTIALS_DIRECTORY")
        if creds and (Path(creds) / CREDENTIAL_NAME).is_file():
            return (Path(creds) / CREDENTIAL_NAME).read_text(encoding="utf-8").rstrip("\r\n")
        return None

    def password_source(self) -> Literal["file", "env", "credential", "none"]:
        """Where the password comes from, for status output (never the password itself)."""
        if self.password_file is not None:
            return "file"
        if os.environ.get(self.password_env):
            return "env"
        creds = os.environ.get("CREDENTIALS_DIRECTORY")
        if creds and (Path(creds) / CREDENTIAL_NAME).is_file():
            return "credential"
        return "none"
