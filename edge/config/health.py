"""[health] section: status, watchdog and metrics endpoint (owned by field operation)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class HealthConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metrics_port: int = 0  # 0 = no Prometheus endpoint
    metrics_host: str = "127.0.0.1"
