"""The web app over a real uvicorn on 127.0.0.1 and a database the real daemon made: every page
with real data, login, the rate limit, cookie flags, CSRF, the read-only role, pictures by id
(path tricks → 404), reviews moving the tallies and undo restoring them, and the start-up refusal."""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from edge.web.app import WebStartError, check_startup, create_app
from edge.web.auth import verify_password
from tests.edge.web.conftest import PASSWORDS, Client, Served, Station


def _query(db: Path, sql: str, params: tuple = ()) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def _write(db: Path, sql: str, params: tuple = ()) -> None:
    conn = sqlite3.connect(db)
    try:
        with conn:
            conn.execute(sql, params)
    finally:
        conn.close()


@pytest.fixture
def open_app(station: Station):
    served = Served(create_app(station.config()))
    yield served
    served.stop()


@pytest.fixture
def login_app(station: Station, user_hashes):
    served = Served(create_app(station.config({"users": user_hashes, "login_attempts": 3})))
    yield served
    served.stop()


def _tallies(db: Path) -> dict[str, tuple[int, int]]:
    return {species: (events, individuals) for species, events, individuals in _query(
        db, "SELECT species, SUM(events), SUM(individuals) FROM daily_tallies GROUP BY species HAVING SUM(events) > 0")}


def test_every_page_answers_with_real_data(open_app: Served, station: Station) -> None:
    events = _query(station.database, "SELECT id, species, snapshot, best_detection_id FROM events ORDER BY id")
    assert len(events) == 3, events
    frames = _query(station.database, "SELECT id FROM frames WHERE event_id IS NOT NULL")
    client = Client(open_app.port)
    today = client.get("/")
    assert today.status == 200
    for _, species, _, _ in events:
        assert f'data-species="{species}"' in today.text
    assert "/img/snapshot/" in today.text
    species = client.get("/species?name=" + events[0][1].replace(" ", "+"))
    assert species.status == 200 and species.text.count('<svg class="chart') == 2
    heatmap = client.get("/heatmap")
    assert heatmap.status == 200 and '<svg class="chart heatmap"' in heatmap.text and events[0][1] in heatmap.text
    listing = client.get("/events?reviewed=no")
    assert listing.status == 200 and listing.text.count('class="event-row') == 3
    assert client.get("/events?reviewed=yes").text.count('class="event-row') == 0
    assert client.get("/events?camera=elsewhere").text.count('class="event-row') == 0
    event = client.get(f"/event/{events[0][0]}")
    assert event.status == 200 and "/img/frame/" in event.text and "/img/crop/" in event.text
    assert client.get("/event/999999").status == 404
    queue = client.get("/queue")
    assert queue.status == 200 and queue.text.count('class="item') == 3 and "<datalist" in queue.text
    # The species search offers the model's labels with their common names, not its no-bird class.
    assert '<option value="House Sparrow">House Sparrow (Passer domesticus)</option>' in queue.text
    assert '<option value="background">' not in queue.text
    assert client.get("/health").status == 200
    for path in (f"/img/snapshot/{events[0][0]}", f"/img/frame/{frames[0][0]}?boxes=1", f"/img/frame/{frames[0][0]}",
                 f"/img/crop/{events[0][3]}"):
        reply = client.get(path)
        assert reply.status == 200 and reply.headers["content-type"] == "image/jpeg" and reply.body[:2] == b"\xff\xd8", path
    css = client.get("/static/app.css")
    assert css.status == 200 and "svg.chart" in css.text
    assert "default-src 'self'" in today.headers["content-security-policy"]


def test_login_wrong_password_and_cookie_flags(login_app: Served) -> None:
    client = Client(login_app.port)
    first = client.get("/")
    assert first.status == 303 and first.headers["location"].startswith("/login")
    assert client.get("/img/snapshot/1").status == 401
    wrong = client.login("alice", "not-her-password")
    assert wrong.status == 401 and "wrong name or password" in wrong.text
    good = client.login("alice", PASSWORDS["alice"])
    assert good.status == 303
    cookie = client.set_cookies[-1].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "max-age=" in cookie and "secure" not in cookie
    page = client.get("/")
    assert page.status == 200 and "alice (admin)" in page.text
    # A tampered cookie is no session.
    client.cookie = client.cookie[:-2] + ("00" if not client.cookie.endswith("00") else "11")
    assert client.get("/").status == 303


def test_failed_logins_are_rate_limited(login_app: Served) -> None:
    client = Client(login_app.port)
    for _ in range(3):
        assert client.login("alice", "guess").status == 401
    blocked = client.login("alice", PASSWORDS["alice"])
    assert blocked.status == 429
    assert client.login("bob", PASSWORDS["bob"]).status == 303  # another user name is not blocked


def test_csrf_is_required_on_every_post(login_app: Served, station: Station) -> None:
    event_id = _query(station.database, "SELECT MIN(id) FROM events")[0][0]
    client = Client(login_app.port)
    client.get("/login")
    assert client.form("/login", {"name": "alice", "password": PASSWORDS["alice"]}).status == 403
    assert client.login("alice", PASSWORDS["alice"]).status == 303
    body = {"event_id": event_id, "action": "confirm"}
    assert client.post_json("/api/review", body, None).status == 403
    assert client.post_json("/api/review", body, "not-the-token").status == 403
    assert client.form(f"/event/{event_id}/review", {"action": "confirm"}).status == 403
    assert client.form(f"/event/{event_id}/review", {"action": "confirm", "csrf": "wrong"}).status == 403
    assert _query(station.database, "SELECT COUNT(*) FROM reviews")[0][0] == 0
    token = client.csrf()
    done = client.post_json("/api/review", body, token)
    assert done.status == 200 and done.json()["review"]["reviewer"] == "alice"
    assert client.form(f"/event/{event_id}/review", {"action": "individuals", "individuals": "4",
                                                     "csrf": token}).status == 303
    assert _query(station.database, "SELECT review_state, reviewed_individuals FROM events WHERE id = ?",
                  (event_id,)) == [("confirmed", 4)]


def test_the_read_role_sees_everything_and_cannot_review(login_app: Served, station: Station) -> None:
    event_id = _query(station.database, "SELECT MIN(id) FROM events")[0][0]
    client = Client(login_app.port)
    assert client.login("bob", PASSWORDS["bob"]).status == 303
    for path in ("/", "/species", "/heatmap", "/events", f"/event/{event_id}", "/queue", "/health"):
        assert client.get(path).status == 200, path
    token = client.csrf()
    assert client.post_json("/api/review", {"event_id": event_id, "action": "confirm"}, token).status == 403
    assert client.form(f"/event/{event_id}/review", {"action": "reject", "csrf": token}).status == 403
    assert _query(station.database, "SELECT COUNT(*) FROM reviews")[0][0] == 0


def test_reviews_move_the_tallies_and_undo_restores_them(open_app: Served, station: Station) -> None:
    events = _query(station.database, "SELECT id, species, individuals FROM events ORDER BY id")
    before = _tallies(station.database)
    client = Client(open_app.port)
    token = client.csrf()
    corrected = client.post_json("/api/review", {"event_id": events[0][0], "action": "correct",
                                                 "species": "House Sparrow"}, token).json()["review"]
    rejected = client.post_json("/api/review", {"event_id": events[1][0], "action": "reject"}, token).json()["review"]
    after = _tallies(station.database)
    assert after["House Sparrow"] == (1, events[0][2])
    assert after.get(events[1][1], (0, 0))[0] == before[events[1][1]][0] - 1
    today = client.get("/").text
    assert 'data-species="House Sparrow"' in today
    history = client.get(f"/event/{events[0][0]}").text
    assert "House Sparrow" in history and "corrected" in history
    assert client.post_json("/api/review", {"event_id": 999999, "action": "confirm"}, token).status == 400
    assert client.post_json("/api/review", {"event_id": events[2][0], "action": "dance"}, token).status == 400
    for review in (rejected, corrected):
        assert client.post_json("/api/undo", {"review_id": review["id"]}, token).status == 200
    assert _tallies(station.database) == before
    assert client.post_json("/api/undo", {"review_id": corrected["id"]}, token).status == 400  # undone already


def test_the_event_page_shows_a_doubtful_camera_clock(open_app: Served, station: Station) -> None:
    """frames.time_flags and events.time_flags (edge/store/clock_checks.py) on the event page."""
    event_id, frame_id = _query(station.database, "SELECT event_id, id FROM frames WHERE event_id IS NOT NULL "
                                                  "ORDER BY id LIMIT 1")[0]
    client = Client(open_app.port)
    assert "Doubtful camera clock" not in client.get(f"/event/{event_id}").text
    _write(station.database, "UPDATE frames SET time_flags = 'ambiguous,out-of-order' WHERE id = ?", (frame_id,))
    _write(station.database, "UPDATE events SET time_flags = 'out-of-order' WHERE id = ?", (event_id,))
    page = client.get(f"/event/{event_id}").text
    assert 'id="time-flags">Doubtful camera clock (out-of-order)' in page
    assert '<small class="flag time-flags">time: ambiguous, out-of-order</small>' in page


def test_one_bird_is_reviewed_from_the_event_page(open_app: Served, station: Station) -> None:
    """The event page offers per-bird buttons; a bird's review is stored (for the training set)
    and leaves the counts as they are, and it shows in the page's history."""
    event_id, detection_id = _query(station.database,
                                    "SELECT event_id, id FROM detections WHERE event_id IS NOT NULL ORDER BY id")[0]
    before = _tallies(station.database)
    client = Client(open_app.port)
    page = client.get(f"/event/{event_id}").text
    assert f'name="detection_id" value="{detection_id}"' in page
    reply = client.form(f"/event/{event_id}/review", {"csrf": client.csrf(), "detection_id": str(detection_id),
                                                       "action": "correct", "species": "House Sparrow"})
    assert reply.status == 303
    assert _query(station.database, f"SELECT review_state, reviewed_species FROM detections WHERE id = {detection_id}") == [
        ("corrected", "House Sparrow")]
    assert _tallies(station.database) == before
    assert f"(bird {detection_id}) House Sparrow" in client.get(f"/event/{event_id}").text
    review_id = _query(station.database, f"SELECT MAX(id) FROM reviews WHERE detection_id = {detection_id}")[0][0]
    assert client.form(f"/review/{review_id}/undo", {"csrf": client.csrf()}).status == 303
    assert _query(station.database, f"SELECT review_state FROM detections WHERE id = {detection_id}") == [(None,)]


def test_pictures_are_served_by_id_only(open_app: Served, station: Station, tmp_path: Path) -> None:
    client = Client(open_app.port)
    event_id, snapshot = _query(station.database, "SELECT id, snapshot FROM events WHERE snapshot IS NOT NULL")[0]
    frame_id = _query(station.database, "SELECT MIN(id) FROM frames")[0][0]
    for path in ("/img/snapshot/../../edge.db", "/img/snapshot/..%2F..%2Fedge.db", "/img/frame/%2Fetc%2Fpasswd",
                 "/img/frame//etc/passwd", "/img/snapshot/" + snapshot, "/img/crop/-1", "/img/frame/1.0",
                 "/img/frame/99999999999999999999999", "/img/frame/9223372036854775808",
                 f"/img/snapshot/{event_id}/..%2f..%2fedge.db", "/static/../app.py", "/static/%2e%2e/app.py"):
        assert client.get(path).status == 404, path
    outside = tmp_path / "secret.jpg"
    outside.write_bytes((station.camera / "IMG_0000.JPG").read_bytes())
    snapshots = station.database.parent / "snapshots"
    (snapshots / "link.jpg").symlink_to(outside)
    for name in ("../edge.db", str(outside), "link.jpg", "..", ""):
        _write(station.database, "UPDATE events SET snapshot = ? WHERE id = ?", (name, event_id))
        assert client.get(f"/img/snapshot/{event_id}").status == 404, name
    link = station.camera.parent / "camera-link.jpg"  # inside nothing: beside the camera folder
    link.write_bytes(outside.read_bytes())
    inner_link = station.camera / f"link-{os.getpid()}-{tmp_path.name}.jpg"
    inner_link.symlink_to(outside)
    try:
        for path in (str(outside), "/etc/passwd", str(station.camera / ".." / link.name), str(inner_link)):
            _write(station.database, "UPDATE frames SET path = ?, stored_path = NULL WHERE id = ?", (path, frame_id))
            assert client.get(f"/img/frame/{frame_id}").status == 404, path
    finally:
        inner_link.unlink()
        link.unlink()


def test_beyond_loopback_it_refuses_to_start_without_a_login(station: Station, cli_env, user_hashes) -> None:
    config = station.root / "edge.toml"
    state = station.root / "fresh-state"
    config.write_text(station.config_text.replace(str(station.database), str(state / "edge.db")))
    run = subprocess.run([sys.executable, "-m", "edge", "web", "--config", str(config), "--host", "0.0.0.0"],
                         env=cli_env, check=False, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2, run.stderr
    assert "web.host" in run.stderr and "web.users" in run.stderr
    assert not state.exists()
    with pytest.raises(WebStartError):
        check_startup(station.config({"host": "192.168.1.20"}))
    assert [u.name for u in check_startup(station.config({"host": "0.0.0.0", "users": user_hashes}))] == ["alice", "bob"]
    assert check_startup(station.config({"host": "::1"})) == []


def test_the_credential_gives_the_admin_login(station: Station, tmp_path: Path, monkeypatch, user_hashes) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "web_password_hash").write_text(user_hashes[0]["password_hash"] + "\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    users = check_startup(station.config({"host": "0.0.0.0"}))
    assert [(u.name, u.role) for u in users] == [("admin", "admin")]
    assert verify_password(PASSWORDS["alice"], users[0].password_hash)


def test_session_secret_is_generated_private(open_app: Served, station: Station) -> None:
    secret = station.database.parent / "web_session_secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600 and len(secret.read_text().strip()) >= 32


def test_hash_password_reads_stdin(cli_env) -> None:
    run = subprocess.run([sys.executable, "-m", "edge", "web", "hash-password"], input="correct horse\n",
                         env=cli_env, check=False, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    hashed = run.stdout.strip()
    assert hashed.startswith("scrypt$16384$8$1$") and verify_password("correct horse", hashed)
    assert not verify_password("correct horse!", hashed)


def test_logout_expiry_and_no_open_redirect(login_app: Served) -> None:
    client = Client(login_app.port)
    reply = client.form("/login", {"csrf": client.csrf(), "name": "alice", "password": PASSWORDS["alice"],
                                   "next": "//evil.example/"})
    assert reply.status == 303 and reply.headers["location"] == "/"
    assert client.get("/events").status == 200
    assert client.form("/logout", {"csrf": client.csrf()}).status == 303
    assert client.get("/events").status == 303


def test_an_expired_or_foreign_session_is_none() -> None:
    from edge.web.auth import SessionSigner

    now = [1000.0]
    signer = SessionSigner(b"k" * 32, max_age_s=60, clock=lambda: now[0])
    cookie = signer.dump(signer.new("alice", "admin"))
    assert signer.load(cookie).user == "alice"
    assert SessionSigner(b"j" * 32, 60, clock=lambda: now[0]).load(cookie) is None  # another secret
    now[0] += 61
    assert signer.load(cookie) is None


def test_frame_images_can_be_turned_off(station: Station) -> None:
    served = Served(create_app(station.config({"frame_images": False})))
    try:
        client = Client(served.port)
        event_id, detection_id = _query(station.database, "SELECT id, best_detection_id FROM events LIMIT 1")[0]
        frame_id = _query(station.database, "SELECT MIN(id) FROM frames")[0][0]
        assert client.get(f"/img/frame/{frame_id}").status == 404
        assert client.get(f"/img/crop/{detection_id}").status == 404
        assert client.get(f"/img/snapshot/{event_id}").status == 200
        assert "/img/frame/" not in client.get(f"/event/{event_id}").text
    finally:
        served.stop()


def test_edge_web_serves_and_logs_its_url(station: Station, cli_env) -> None:
    from tests.fixtures.broker import free_port

    config = station.root / "edge.toml"
    config.write_text(station.config_text)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "edge", "web", "--config", str(config), "--port", str(port)],
                            env=cli_env, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        for line in proc.stderr:
            lines.append(line)
            if "Uvicorn running" in line or "Application startup complete" in line:
                break
        assert any(f"serving the trailcam web app on http://127.0.0.1:{port}/" in line for line in lines), lines
        assert Client(port).get("/").status == 200
        # sqlite-utils would import pandas where it is installed (this environment has it): the
        # long-lived process keeps it out (+65 MB resident; docs/benchmarks.md).
        import importlib.util

        if importlib.util.find_spec("pandas") is not None:
            assert "/pandas/" not in Path(f"/proc/{proc.pid}/maps").read_text()
    finally:
        proc.terminate()
        rest = proc.communicate(timeout=30)[1]
    # A graceful stop (uvicorn re-raises SIGTERM after shutting down: systemd counts that as clean).
    assert proc.returncode in (0, -signal.SIGTERM) and "Finished server process" in rest, rest


# A small names pack as `edge models pull birdnet-names` leaves it (edge/classify/names.py):
# BirdNET's "Scientific name_Common name" lines per language, English from the eBird code table.
GERMAN = {"Cardinalis cardinalis": "Rotkardinal", "Spinus tristis": "Goldzeisig",
          "Poecile atricapillus": "Schwarzkopfmeise", "Passer domesticus": "Haussperling"}


def test_a_german_station_reads_german_names_and_keeps_the_labels(station: Station, tmp_path: Path) -> None:
    """[station] language = "de" with a names pack: the Today page shows the German name (the
    scientific name beside it), while data-species, links and the species filter keep the label."""
    from edge.classify.names import ENGLISH_FILE, language_file

    pack = tmp_path / "birdnet-names"
    pack.mkdir()
    (pack / language_file("de")).write_text("".join(f"{s}_{n}\n" for s, n in GERMAN.items()), encoding="utf-8")
    (pack / ENGLISH_FILE).write_text('{"Cardinalis cardinalis_Northern Cardinal": "norcar"}', encoding="utf-8")
    taxa = dict(_query(station.database, "SELECT name, scientific_name FROM taxa"))
    counted = [label for (label,) in _query(station.database, "SELECT DISTINCT species FROM events")]
    named = [label for label in counted if taxa.get(label) in GERMAN]
    assert named, (counted, [taxa.get(label) for label in counted])
    served = Served(create_app(station.config(station={"language": "de"}, taxonomy={"names": str(pack)})))
    try:
        client = Client(served.port)
        today = client.get("/").text
        for label in named:
            german, scientific = GERMAN[taxa[label]], taxa[label]
            assert f'data-species="{label}"' in today  # what the browser tests click and read
            assert f'>{german}</a> <small class="scientific">{scientific}</small>' in today
            assert f'data-species="{label}" title="{scientific}">{german} × ' in today  # the visit's card
            assert f'href="/species?name={label.replace(" ", "%20")}"' in today
        label = named[0]
        species = client.get("/species?name=" + label.replace(" ", "+")).text
        assert f"<h1>{GERMAN[taxa[label]]} " in species and f'<option value="{label}" selected>{GERMAN[taxa[label]]}' in species
        listing = client.get("/events?species=" + label.replace(" ", "+")).text
        assert listing.count('class="event-row') >= 1 and GERMAN[taxa[label]] in listing
        assert GERMAN[taxa[label]] in client.get("/heatmap").text
        assert GERMAN[taxa[label]] in client.get("/queue").text
        event_id = _query(station.database, "SELECT id FROM events WHERE species = ? ORDER BY id", (label,))[0][0]
        assert f"Event {event_id}: {GERMAN[taxa[label]]} × " in client.get(f"/event/{event_id}").text
    finally:
        served.stop()
