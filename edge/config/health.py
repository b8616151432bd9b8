"""[health] section: status snapshot, watchdog and the metrics endpoint (owned by field operation)."""

from __future__ import annotations

from pydantic import Field

from edge.config.base import Section


class HealthConfig(Section):
    metrics_port: int = Field(
        0, ge=0, le=65535, description="Port of the Prometheus text endpoint (/metrics); 0 = no endpoint")
    metrics_host: str = Field(
        "127.0.0.1", description="Address the metrics endpoint binds (keep it on localhost unless a firewall "
                                 "guards the port)")
    status_interval_s: float = Field(
        15.0, gt=0, description="How often the daemon rewrites status.json beside the database (systemd's "
                                "STATUS= line follows every change); `edge status` calls a snapshot older "
                                "than 6 intervals (and at least a minute) stale")
    rate_window_s: float = Field(
        300.0, gt=0, description="Window over which the frames-per-minute rate is computed (status.json, "
                                 "`edge status`)")
