"""[notify] is checked where the operator looks: the configuration names the key, `edge check`
(exit 2) names the URL's index and never prints the URL (it may hold a token)."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date
from pathlib import Path

import pytest

from edge.alerts.rules import season
from edge.alerts.targets import target_id
from edge.config import ConfigError, load_config


def _load(tmp_path: Path, notify: dict):
    empty = tmp_path / "edge.toml"
    empty.touch()
    return load_config(empty, overrides={"notify": notify}, environ={})


@pytest.mark.parametrize(("notify", "expected"), [
    ({"enabled": True}, "notify: enabled needs at least one URL in urls"),
    ({"urls": ["ntfy.sh/topic"]}, "notify.urls: [0] is not an Apprise URL"),
    ({"quiet_hours": "22-07"}, "notify.quiet_hours: must be \"HH:MM-HH:MM\""),
    ({"digest_at": "25:00"}, "notify.digest_at: must be \"HH:MM\""),
    ({"triggers": ["first_of_week"]}, "notify.triggers[0]: Input should be"),
    ({"web_url": "trailcam.local"}, "notify.web_url: must start with http://"),
])
def test_bad_keys_are_named(tmp_path: Path, notify: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as raised:
        _load(tmp_path, notify)
    assert any(problem.startswith(expected) for problem in raised.value.problems), raised.value.problems


def test_edge_check_names_the_bad_url_without_printing_it(tmp_path: Path, aiy_model: Path, cli_env) -> None:
    camera = tmp_path / "cam"
    camera.mkdir()
    secret = "pover://SECRET-TOKEN"  # a Pushover URL without its application token
    config = tmp_path / "edge.toml"
    config.write_text(f"""
[model]
path = "{aiy_model}"
[[cameras]]
name = "cam"
path = "{camera}"
[storage]
database = "{tmp_path / 'edge.db'}"
[notify]
enabled = true
urls = ["json://127.0.0.1:9/ok", "nosuchscheme://x"]
""")
    check = subprocess.run([sys.executable, "-m", "edge", "check", "--config", str(config)], env=cli_env,
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 2, check.stdout + check.stderr
    assert "notify.urls[1]: Apprise does not understand this nosuchscheme:// URL" in check.stdout
    assert "notify.urls[0]" not in check.stdout
    config.write_text(config.read_text().replace('"nosuchscheme://x"', f'"{secret}"'))
    check = subprocess.run([sys.executable, "-m", "edge", "check", "--config", str(config)], env=cli_env,
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 2 and "notify.urls[1]" in check.stdout
    assert "SECRET-TOKEN" not in check.stdout + check.stderr
    assert not (tmp_path / "edge.db").exists()  # a refused start creates nothing


def test_target_ids_hide_the_url() -> None:
    ident = target_id("tgram://123456:SECRET/42")
    assert ident.startswith("tgram:") and "SECRET" not in ident and len(ident) == len("tgram:") + 10


def test_seasons_follow_birdnet_go_and_swap_south() -> None:
    assert season(date(2026, 3, 19)) == ("winter", date(2025, 12, 21), date(2026, 3, 19))
    assert season(date(2026, 3, 20)) == ("spring", date(2026, 3, 20), date(2026, 6, 20))
    assert season(date(2026, 12, 31)) == ("winter", date(2026, 12, 21), date(2027, 3, 19))
    assert season(date(2026, 7, 1), southern=True)[0] == "winter"


def test_metrics_report_the_queue(tmp_path: Path) -> None:
    from datetime import datetime

    from prometheus_client import generate_latest

    from edge.operate.metrics import Metrics, MetricsSources
    from edge.store import notifications
    from edge.store.db import immediate
    from edge.store.writer import Store

    store = Store(tmp_path / "edge.db")
    now = datetime.now(UTC)
    with immediate(store.conn):
        notifications.enqueue(store.conn, kind="digest", key="digest:2026-05-14", targets=["json:a", "json:b"], now=now)
        (first, *_) = [row.id for row in notifications.due(store.conn, now)]
        notifications.finish(store.conn, first, "sent", now)
    metrics = Metrics(sources=MetricsSources(notifications=lambda: notifications.figures(store.conn)))
    text = generate_latest(metrics.registry).decode()
    store.close()
    assert "trailcam_notifications_queued 1.0" in text
    assert 'trailcam_notifications_total{outcome="sent"} 1.0' in text
    assert "trailcam_notification_failed_attempts_total 0.0" in text
