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

from pydantic import Field, SecretStr, field_validator, model_validator

from edge.config.base import Section, TomlFilePath

CREDENTIAL_NAME = "mqtt_password"


class MqttConfig(Section):
    enabled: bool = Field(
        False, description="Publish events, counts, status and health to an MQTT broker (through the outbox "
                           "table in the database, so nothing is lost while the broker is away)")
    host: str = Field("localhost", description="Broker host name or address")
    port: int = Field(1883, ge=1, le=65535, description="Broker port (usually 8883 with TLS)")
    prefix: str = Field(
        "trailcam", description="First topic level: messages go to `<prefix>/<device_id>/...` (device_id "
                                "from [station]); no wildcards (+, #), no leading or trailing '/'")
    client_id: str | None = Field(
        None, description="MQTT client id. Unset: `trailcam-<device_id>` ([station] device_id)")
    keepalive_s: int = Field(60, ge=5, le=65535, description="MQTT keepalive interval, seconds")

    username: str | None = Field(
        None, description="User name to log in with; unset = no login (a password is then not sent either)")
    password: SecretStr | None = Field(
        None, description="Password to log in with. Meant for the environment (TRAILCAM__MQTT__PASSWORD), not "
                          "this file; prefer password_file or the systemd credential mqtt_password, which is "
                          "read when neither is given. Not together with password_file")
    password_file: TomlFilePath | None = Field(
        None, description="A file holding the password (one line), read afresh at every connection attempt")

    tls: bool = Field(
        False, description="Connect with TLS, verifying the broker against the system's CA certificates "
                           "(implied by ca_file or cert_file)")
    ca_file: TomlFilePath | None = Field(
        None, description="CA certificate (PEM) to verify the broker with, instead of the system's")
    cert_file: TomlFilePath | None = Field(
        None, description="Client certificate (PEM) for brokers that require one; needs key_file")
    key_file: TomlFilePath | None = Field(
        None, description="Private key (PEM) of cert_file; needs cert_file")
    tls_insecure: bool = Field(
        False, description="Skip the check that the broker's certificate names its host (self-signed lab "
                           "brokers only)")

    reconnect_min_s: float = Field(
        1.0, gt=0, description="First delay before reconnecting after a failure; it doubles (with jitter) "
                               "up to reconnect_max_s")
    reconnect_max_s: float = Field(
        300.0, gt=0, description="Longest delay between reconnection attempts; at least reconnect_min_s")
    connect_timeout_s: float = Field(
        10.0, gt=0, description="How long to wait for the broker to answer a connection attempt")
    poll_interval_s: float = Field(
        1.0, gt=0, le=60, description="Fallback interval for looking at the outbox; new rows are noticed "
                                      "at once anyway")
    batch_window_s: float = Field(
        0.1, ge=0, le=10, description="Wait this long after a commit to gather a burst of frames into one "
                                      "batch (superseded counts snapshots in it are skipped)")
    max_inflight: int = Field(
        20, ge=1, le=1000, description="Messages published but not yet acknowledged by the broker, at most")
    drain_timeout_s: float = Field(
        3.0, ge=0, description="On a clean shutdown, keep publishing the outbox for up to this long; what "
                               "is left is sent after the next start")
    outbox_max_rows: int = Field(
        100_000, ge=10, description="Bound of the outbox while the broker is away: when full, queued counts "
                                    "snapshots are coalesced, then the oldest messages dropped (logged)")
    health_interval_s: float = Field(
        60.0, gt=0, description="The retained `health` message is republished this often (and at once on "
                                "pause and resume)")

    discovery: bool = Field(
        True, description="Publish Home Assistant MQTT discovery configs (retained; again whenever Home "
                          "Assistant announces itself online)")
    discovery_prefix: str = Field(
        "homeassistant", description="Home Assistant's discovery topic prefix; same rules as prefix")

    @field_validator("prefix", "discovery_prefix")
    @classmethod
    def _topic_prefix(cls, value: str) -> str:
        if not value or value.startswith("/") or value.endswith("/") or any(c in value for c in "+#\0"):
            raise ValueError("must be a non-empty MQTT topic without wildcards or leading/trailing '/'")
        return value

    @model_validator(mode="after")
    def _checks(self) -> MqttConfig:
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
