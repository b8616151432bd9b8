"""[health] section: status snapshot, watchdog and the metrics endpoint (owned by field operation)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from edge.config.base import SECTION_CONFIG


class HealthConfig(BaseModel):
    model_config = SECTION_CONFIG

    metrics_port: int = Field(
        0, ge=0, le=65535, description="Prometheus text endpoint port; 0 = no endpoint")
    metrics_host: str = Field(
        "127.0.0.1", description="address the metrics endpoint binds (keep it on localhost)")
    status_interval_s: float = Field(
        15.0, gt=0, description="how often the daemon rewrites status.json (systemd's STATUS line follows every change)")
    rate_window_s: float = Field(
        300.0, gt=0, description="window over which `edge status` computes frames per minute")
