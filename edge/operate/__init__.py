"""Operate: running unattended in the field.

notify (systemd sd_notify) · health (HealthState in memory, StatusWriter: status.json and
systemd's STATUS line, the MQTT health payload) · status_reader (what `edge status` reads:
status.json and the database) · metrics (Prometheus) · retention (keep, archive or delete
after commit; the disk guard) · service (the systemd unit, config skeleton and credential that `edge install-service` writes) ·
field (FieldOperations: these as the daemon's hooks for `edge run`, registered by
edge/daemon/wiring.py).
"""
