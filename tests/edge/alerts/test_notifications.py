"""Notifications through the real daemon, the AIY classifier, real birds25 frames and Apprise's
json:// target posting to a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import base64
import io
import sqlite3
from datetime import UTC, datetime, timedelta

from PIL import Image

from edge.alerts.delivery import Deliverer, in_quiet_hours
from edge.config.notify import NotifyConfig
from edge.daemon.wiring import notifications as build_notifications
from edge.operate.status_reader import collect_status
from edge.store.db import connect
from edge.store.reviews import ReviewStore
from tests.edge.alerts.conftest import two_visits, yesterday_noon
from tests.edge.conftest import ThreadDaemon, count_rows, query_rows, wait_for

OK_FRAMES = "SELECT count(*) FROM frames WHERE status = 'ok'"
CARDINAL = "Cardinalis cardinalis"


def _notify(receiver, **extra) -> dict:
    return {"enabled": True, "urls": [receiver.url], "max_age_s": 3 * 86400.0, "retry_backoff_s": 0.2,
            "retry_max_backoff_s": 0.5, **extra}


def _run_until(config, condition, what: str) -> ThreadDaemon:
    runner = ThreadDaemon(config).start()
    try:
        wait_for(condition, 120, what=what)
    finally:
        runner.stop()
    return runner


def test_first_of_day_fires_once_with_picture_and_link(tmp_path, make_config, bird_photo, receiver) -> None:
    receiver.start()
    camera = tmp_path / "cam"
    two_visits(camera, bird_photo)
    config = make_config([{"name": "cam", "path": str(camera)}],
                         notify=_notify(receiver, triggers=["first_of_day"], cooldown_s=0.0,
                                        web_url="http://trailcam.local:8470/"))
    db = config.storage.database
    _run_until(config, lambda: count_rows(db, OK_FRAMES) >= 4 and count_rows(
        db, "SELECT count(*) FROM notifications WHERE state = 'sent'") >= 1, "frames and a notification")

    assert count_rows(db, "SELECT count(*) FROM events") == 2
    messages = receiver.messages()
    assert len(messages) == 1, messages
    message = messages[0]
    first_event = query_rows(db, "SELECT id FROM events ORDER BY started_at LIMIT 1")[0][0]
    assert message["path"] == "/hook"
    assert message["title"] == f"{CARDINAL}: first today (test)"
    assert f"http://trailcam.local:8470/event/{first_event}" in message["message"]
    assert "Why: first today" in message["message"]
    # Without a detector the picture is the visit's best frame, scaled down, as a JPEG.
    (attachment,) = message["attachments"]
    assert attachment["mimetype"] == "image/jpeg"
    with Image.open(io.BytesIO(base64.b64decode(attachment["base64"]))) as picture:
        assert picture.format == "JPEG" and max(picture.size) <= 1280
    rows = query_rows(db, "SELECT kind, key, species, reasons, state FROM notifications")
    assert rows == [("visit", f"visit:{first_event}:{CARDINAL}", CARDINAL, "first_of_day", "sent")]
    # The scratch picture is gone once sent.
    assert not any((db.parent / "notify-pictures").glob("*.jpg"))


def test_cooldown_holds_back_a_second_visit(tmp_path, make_config, bird_photo, receiver) -> None:
    receiver.start()
    camera = tmp_path / "cam"
    two_visits(camera, bird_photo)
    config = make_config([{"name": "cam", "path": str(camera)}],
                         notify=_notify(receiver, triggers=["every_visit"], cooldown_s=3600.0))
    db = config.storage.database
    _run_until(config, lambda: count_rows(db, OK_FRAMES) >= 4 and count_rows(
        db, "SELECT count(*) FROM notifications WHERE state = 'sent'") >= 1, "frames and a notification")

    assert count_rows(db, "SELECT count(*) FROM events") == 2
    assert len(receiver.messages()) == 1
    assert count_rows(db, "SELECT value FROM notification_stats WHERE key = 'suppressed_cooldown'") == 1


def test_without_cooldown_every_visit_notifies(tmp_path, make_config, bird_photo, receiver) -> None:
    receiver.start()
    camera = tmp_path / "cam"
    two_visits(camera, bird_photo)
    config = make_config([{"name": "cam", "path": str(camera)}],
                         notify=_notify(receiver, triggers=["every_visit"], cooldown_s=0.0, attach=False))
    db = config.storage.database
    _run_until(config, lambda: count_rows(db, "SELECT count(*) FROM notifications WHERE state = 'sent'") >= 2,
               "two notifications")
    messages = receiver.messages()
    assert len(messages) == 2 and all(m["attachments"] == [] or "attachments" not in m for m in messages)


def test_allow_list_and_min_confidence_filter(tmp_path, make_config, bird_photo, receiver) -> None:
    receiver.start()
    camera = tmp_path / "cam"
    two_visits(camera, bird_photo)
    config = make_config([{"name": "cam", "path": str(camera)}],
                         notify=_notify(receiver, triggers=["every_visit"], cooldown_s=0.0,
                                        species=["Poecile atricapillus"]))
    db = config.storage.database
    _run_until(config, lambda: count_rows(db, OK_FRAMES) >= 4, "frames")
    assert count_rows(db, "SELECT count(*) FROM notifications") == 0

    strict = tmp_path / "strict"
    two_visits(strict, bird_photo)
    config = make_config([{"name": "cam", "path": str(strict)}],
                         storage={"database": str(tmp_path / "strict.db")},
                         notify=_notify(receiver, triggers=["every_visit"], cooldown_s=0.0, min_confidence=1.0))
    _run_until(config, lambda: count_rows(config.storage.database, OK_FRAMES) >= 4, "frames")
    assert count_rows(config.storage.database, "SELECT count(*) FROM notifications") == 0
    assert receiver.messages() == []


def test_receiver_down_then_up_is_delivered_once_and_counted(tmp_path, make_config, bird_photo, receiver) -> None:
    camera = tmp_path / "cam"
    two_visits(camera, bird_photo)
    config = make_config([{"name": "cam", "path": str(camera)}],
                         notify=_notify(receiver, triggers=["first_of_day"], cooldown_s=0.0))
    db = config.storage.database
    runner = ThreadDaemon(config).start()
    try:
        wait_for(lambda: count_rows(db, "SELECT count(*) FROM notifications WHERE attempts >= 2") >= 1, 120,
                 what="tries against a closed port")
        status = collect_status(db)["notifications"]
        assert status["queued"] == 1 and status["sent"] == 0 and status["failed_attempts"] >= 2
        assert runner.daemon.notifications.last_error.startswith("json:")  # the target's id, never its URL
        receiver.start()
        wait_for(lambda: count_rows(db, "SELECT count(*) FROM notifications WHERE state = 'sent'") == 1, 60,
                 what="delivery once the receiver is up")
        wait_for(lambda: runner.daemon.notifications.figures().get("sent") == 1, 30, what="figures refreshed")
    finally:
        runner.stop()
    assert len(receiver.messages()) == 1
    figures = collect_status(db)["notifications"]
    assert figures["queued"] == 0 and figures["sent"] == 1 and figures["failed_attempts"] >= 2


def test_a_visit_reviewed_not_a_bird_before_delivery_is_not_notified(tmp_path, make_config, bird_photo,
                                                                     receiver) -> None:
    camera = tmp_path / "cam"
    two_visits(camera, bird_photo)
    config = make_config([{"name": "cam", "path": str(camera)}],
                         notify=_notify(receiver, triggers=["first_of_day"], cooldown_s=0.0))
    db = config.storage.database
    runner = ThreadDaemon(config).start()
    try:
        wait_for(lambda: count_rows(db, OK_FRAMES) >= 4 and count_rows(
            db, "SELECT count(*) FROM notifications WHERE attempts >= 1") >= 1, 120, what="a failed try")
        event_id = query_rows(db, "SELECT event_id FROM notifications")[0][0]
        reviews = ReviewStore(db, station_tz="UTC")
        reviews.review_event(event_id, "reject", reviewer="tester")
        reviews.close()
        receiver.start()
        wait_for(lambda: count_rows(db, "SELECT count(*) FROM notifications WHERE state = 'dropped'") == 1, 60,
                 what="the notification dropped")
    finally:
        runner.stop()
    assert receiver.messages() == []
    assert query_rows(db, "SELECT outcome FROM notifications") == [("review",)]
    assert collect_status(db)["notifications"]["dropped_review"] == 1


def _deliverer(config, clock) -> tuple[Deliverer, sqlite3.Connection]:
    _, deliverer = build_notifications(config)
    deliverer.clock = clock
    deliverer.open_targets()
    return deliverer, connect(config.storage.database)


def test_quiet_hours_defer_or_drop_and_the_digest(tmp_path, make_config, bird_photo, receiver) -> None:
    receiver.start()
    camera = tmp_path / "cam"
    two_visits(camera, bird_photo)
    config = make_config([{"name": "cam", "path": str(camera)}],
                         notify=_notify(receiver, triggers=["first_of_day"], cooldown_s=0.0))
    db = config.storage.database
    _run_until(config, lambda: count_rows(db, "SELECT count(*) FROM notifications WHERE state = 'sent'") >= 1,
               "the visit's notification")
    receiver.received.clear()
    day = yesterday_noon().date().isoformat()

    # The digest of the visits' day, due at 21:00 station time, sent in quiet hours 21:30-06:00: deferred to 06:00.
    late = datetime.fromisoformat(f"{day}T21:45:00+00:00")
    digest = {**config.notify.model_dump(), "digest_at": "21:00", "quiet_hours": "21:30-06:00"}
    deferring = config.model_copy(update={"notify": NotifyConfig(**digest)})
    now = [late]
    deliverer, conn = _deliverer(deferring, lambda: now[0])
    deliverer.deliver_due(conn)
    assert receiver.messages() == []
    (row,) = query_rows(db, "SELECT key, state, due_at FROM notifications WHERE kind = 'digest'")
    assert row == (f"digest:{day}", "queued", (late + timedelta(hours=8, minutes=15)).strftime("%Y-%m-%dT%H:%M:%S.000Z"))
    now[0] = late + timedelta(hours=8, minutes=16)  # 06:01 the next morning
    deliverer.deliver_due(conn)
    (message,) = receiver.messages()
    assert message["title"] == f"test, {day}: 2 visits, 1 species"
    assert message["message"].splitlines()[0] == f"{CARDINAL}: 2 visits, 2 birds"
    assert count_rows(db, "SELECT count(*) FROM notifications WHERE kind = 'digest' AND state = 'sent'") == 1
    deliverer.deliver_due(conn)  # one digest a day
    assert len(receiver.messages()) == 1
    conn.close()

    # drop: a row due in quiet hours is dropped and counted.
    dropping = config.model_copy(update={"notify": NotifyConfig(**{**digest, "quiet_hours_action": "drop"})})
    now = [late + timedelta(days=1)]
    deliverer, conn = _deliverer(dropping, lambda: now[0])
    deliverer.deliver_due(conn)
    conn.close()
    assert query_rows(db, "SELECT state, outcome FROM notifications WHERE key = ?",
                      (f"digest:{(late + timedelta(days=1)).date().isoformat()}",)) == [("dropped", "quiet_hours")]
    assert len(receiver.messages()) == 1


def test_quiet_hours_span_midnight() -> None:
    from datetime import time
    from zoneinfo import ZoneInfo

    berlin = ZoneInfo("Europe/Berlin")
    quiet = (time(22, 0), time(7, 0))
    at = lambda text: datetime.fromisoformat(text).replace(tzinfo=berlin)  # noqa: E731
    assert in_quiet_hours(at("2026-05-14T21:59"), berlin, quiet) is None
    assert in_quiet_hours(at("2026-05-14T22:00"), berlin, quiet) == at("2026-05-15T07:00").astimezone(UTC)
    assert in_quiet_hours(at("2026-05-15T06:59"), berlin, quiet) == at("2026-05-15T07:00").astimezone(UTC)
    assert in_quiet_hours(at("2026-05-15T07:00"), berlin, quiet) is None
    assert in_quiet_hours(at("2026-05-15T12:00"), berlin, (time(9, 0), time(17, 0))) == at(
        "2026-05-15T17:00").astimezone(UTC)


def test_expired_rows_are_counted_not_sent(tmp_path, make_config, bird_photo, receiver) -> None:
    camera = tmp_path / "cam"
    two_visits(camera, bird_photo)
    config = make_config([{"name": "cam", "path": str(camera)}],
                         notify=_notify(receiver, triggers=["first_of_day"], cooldown_s=0.0, retry_backoff_s=3600.0,
                                        retry_max_backoff_s=3600.0))
    db = config.storage.database
    _run_until(config, lambda: count_rows(db, "SELECT count(*) FROM notifications WHERE attempts >= 1") >= 1,
               "a failed try")
    receiver.start()
    later = [datetime.now(UTC) + timedelta(days=4)]
    deliverer, conn = _deliverer(config, lambda: later[0])
    deliverer.deliver_due(conn)
    conn.close()
    assert receiver.messages() == []
    assert query_rows(db, "SELECT state FROM notifications") == [("expired",)]
    assert collect_status(db)["notifications"]["expired"] == 1
