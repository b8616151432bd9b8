"""Operate: running unattended in the field.

notify (systemd sd_notify) · health (in-memory health, status.json, what `edge status` reads)
· metrics (Prometheus) · retention (keep, archive or delete after commit; the disk guard) ·
service (the systemd unit, config skeleton and credential that `edge install-service` writes) ·
field (FieldOperations: these hooked into the daemon for `edge run`).
"""
