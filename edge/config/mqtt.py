"""[mqtt] section: broker, topics, security and outbox bound (owned by the MQTT area)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class MqttConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    host: str = "localhost"
    port: int = 1883
    prefix: str = "trailcam"
