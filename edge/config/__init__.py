"""Edge configuration: one TOML file, validated at start (owned by the edge-core area).

Sections live one per module (as in Frigate's frigate/config/): this module assembles them,
loads the TOML, applies environment overrides and turns validation errors into messages that
name the key and the problem.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from edge.config.health import HealthConfig
from edge.config.mqtt import MqttConfig
from edge.config.retention import RetentionConfig


class EdgeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    health: HealthConfig = Field(default_factory=HealthConfig)
