"""Fixtures of the web tests: a station database made by the real daemon, the app served by a
real uvicorn on a free loopback port, and a small HTTP client that keeps the session cookie.

The database: `edge run --once` with the shared SSD detector and the AIY classifier over six
composed trail-camera frames (benchmarks/scenes.py): three visits of two frames each, a few
minutes before now (today, UTC), so every page has real events, detections, crops and snapshots.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from benchmarks.scenes import compose
from edge.config import EdgeConfig, load_config
from edge.web.auth import hash_password
from tests.fixtures.broker import free_port, wait_until

VISITS = (("NORTHERN CARDINAL", (1, 2)), ("AMERICAN GOLDFINCH", (1, 1)), ("BLACK-CAPPED CHICKADEE", (2, 1)))
PASSWORDS = {"alice": "alice-pass-1", "bob": "bob-pass-2"}


@dataclass(frozen=True)
class Station:
    """A state folder the daemon filled, and the TOML that describes it."""

    root: Path
    camera: Path
    database: Path
    config_text: str

    def config(self, web: dict[str, Any] | None = None, **sections: Any) -> EdgeConfig:
        path = self.root / "edge.toml"
        path.write_text(self.config_text)
        overrides = {k: v for k, v in {"web": web, **sections}.items() if v}
        return load_config(path, overrides=overrides or None, environ={})


def _times() -> list[float]:
    """Frame times: visits 3 minutes apart, frames 5 s apart, ending a minute ago, all today (UTC)."""
    now = time.time()
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    start = max(now - 600, midnight + 1)
    return [start + 180 * visit + 5 * frame for visit in range(3) for frame in range(2)]


def _record_visits(root: Path, birds25_dir: Path, starts: list[float], aiy_model_dir: Path,
                   ssd_detector_dir: Path, cli_env: dict[str, str], extra: str = "") -> Station:
    """The VISITS' frames (composed 1080p scenes of birds25 photos) in a camera folder, the n-th
    visit's frames 5 s apart from starts[n] (Unix time), recorded by one real `edge run --once`
    with the shared SSD and AIY; `extra`: more configuration."""
    camera = root / "feeder"
    camera.mkdir()
    index = 0
    for (species, birds), start in zip(VISITS, starts, strict=True):
        photos = sorted((birds25_dir / species).glob("*.jpg"))
        for frame, n in enumerate(birds):
            scene = compose(birds25_dir, (1920, 1080), n, (0.08,) * n, seed=40 + index, sources=photos[:n])
            path = camera / f"IMG_{index:04d}.JPG"
            path.write_bytes(scene.jpeg())
            stamp = start + 5 * frame
            os.utime(path, (stamp, stamp))
            index += 1
    state = root / "state"
    text = f"""
[station]
timezone = "UTC"
[model]
path = "{aiy_model_dir}"
labels = "{aiy_model_dir / 'labelmap.csv'}"
[detector]
path = "{ssd_detector_dir}"
[[cameras]]
name = "feeder"
path = "{camera}"
[storage]
database = "{state / 'edge.db'}"
{extra}"""
    (root / "edge.toml").write_text(text)
    run = subprocess.run([sys.executable, "-m", "edge", "run", "--once", "--config", str(root / "edge.toml")],
                         env=cli_env, check=False, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    return Station(root, camera, state / "edge.db", text)


def _copy_of(template: Station, tmp_path: Path) -> Station:
    """A copy of a recorded station's state folder (reviews and retention change it), same camera folder."""
    state = tmp_path / "state"
    shutil.copytree(template.database.parent, state)
    text = template.config_text.replace(str(template.database), str(state / "edge.db"))
    root = tmp_path / "conf"
    root.mkdir()
    return Station(root, template.camera, state / "edge.db", text)


@pytest.fixture(scope="session")
def station_template(birds25_dir: Path, ssd_detector_dir: Path, aiy_model_dir: Path, cli_env: dict[str, str],
                     tmp_path_factory: pytest.TempPathFactory) -> Station:
    starts = _times()[::2]  # visits 3 minutes apart, all today
    return _record_visits(tmp_path_factory.mktemp("web-station"), birds25_dir, starts, aiy_model_dir,
                          ssd_detector_dir, cli_env)


@pytest.fixture
def station(station_template: Station, tmp_path: Path) -> Station:
    """A copy of the daemon's state folder (reviews change it), same camera folder."""
    return _copy_of(station_template, tmp_path)


@pytest.fixture(scope="session")
def user_hashes() -> list[dict[str, str]]:
    return [{"name": "alice", "password_hash": hash_password(PASSWORDS["alice"]), "role": "admin"},
            {"name": "bob", "password_hash": hash_password(PASSWORDS["bob"]), "role": "read"}]


def users_toml(user_hashes: list[dict[str, str]]) -> str:
    """The [[web.users]] tables of a configuration, one per user of `user_hashes`."""
    return "".join(f'[[web.users]]\nname = "{u["name"]}"\npassword_hash = "{u["password_hash"]}"\nrole = "{u["role"]}"\n'
                   for u in user_hashes)


# Every picture of the page asked for now (lazy ones too) and waited for until each has loaded
# or failed: a wait that ends when the pictures do. Playwright's "networkidle" (no request for
# 500 ms) is a guess its documentation discourages; under a loaded CI it once ran out at 30 s.
_PICTURES_SETTLED = """async () => {
  const pictures = Array.from(document.images);
  for (const picture of pictures) picture.loading = 'eager';
  await Promise.all(pictures.map((picture) => picture.complete ? null : new Promise((done) => {
    picture.addEventListener('load', done, {once: true});
    picture.addEventListener('error', done, {once: true});
  })));
  return pictures.length;
}"""


def pictures_settled(page: Any) -> int:
    """Wait until the page has loaded and every <img> on it has loaded or failed; how many there are."""
    page.wait_for_load_state("load")
    return int(page.evaluate(_PICTURES_SETTLED))


def logged_in_page(browser, base: str, next_path: str = "/") -> tuple[Any, Any, list[str]]:
    """A phone-wide browser context with alice logged in and on `next_path`, and the list the
    page's console errors and uncaught exceptions are collected into."""
    context = browser.new_context(viewport={"width": 412, "height": 860})  # a phone's width
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(base + "/login" + (f"?next={next_path}" if next_path != "/" else ""))
    page.fill("input[name=name]", "alice")
    page.fill("input[name=password]", PASSWORDS["alice"])
    page.click("button[type=submit]")
    page.wait_for_url(base + next_path)
    return context, page, problems


class Served:
    """An ASGI app on a real uvicorn in a thread, on a free 127.0.0.1 port."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None,
                                                    access_log=False, lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait_until(lambda: self.server.started, 20, "uvicorn started")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(20)


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Client:
    """HTTP/1.1 over http.client: keeps the session cookie, never follows redirects."""

    port: int
    cookie: str | None = None
    set_cookies: list[str] = field(default_factory=list)

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> Reply:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            sent = dict(headers or {})
            if self.cookie:
                sent["Cookie"] = f"trailcam_session={self.cookie}"
            conn.request(method, path, body=body, headers=sent)
            response = conn.getresponse()
            reply = Reply(response.status, response.headers, response.read())
        finally:
            conn.close()
        for line in reply.headers.get_all("set-cookie") or []:
            self.set_cookies.append(line)
            name, _, rest = line.partition("=")
            if name == "trailcam_session":
                self.cookie = rest.split(";", 1)[0]
        return reply

    def get(self, path: str) -> Reply:
        return self.request("GET", path)

    def csrf(self) -> str:
        page = self.get("/login") if self.cookie is None else None
        text = (page or self.get("/login")).text
        marker = 'name="csrf-token" content="'
        return text.split(marker, 1)[1].split('"', 1)[0]

    def form(self, path: str, data: dict[str, str]) -> Reply:
        return self.request("POST", path, urlencode(data).encode(),
                            {"Content-Type": "application/x-www-form-urlencoded"})

    def post_json(self, path: str, data: Any, token: str | None) -> Reply:
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["X-CSRF-Token"] = token
        return self.request("POST", path, json.dumps(data).encode(), headers)

    def login(self, name: str, password: str) -> Reply:
        return self.form("/login", {"csrf": self.csrf(), "name": name, "password": password, "next": "/"})


def _missing(reason: str) -> None:
    if os.environ.get("TRAILCAM_REQUIRE_BROWSER") == "1":
        pytest.fail(f"TRAILCAM_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium driven by Playwright (its own browser download is not reachable here)."""
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        _missing("chromium is not installed (apt-get install chromium; make system-deps)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package is not installed (pip install '.[dev]')")
    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        launched.close()


def may_day(today: date) -> date:
    """A day in May before `today`: where an old SD card's backlog lies."""
    this_year = date(today.year, 5, 14)
    return this_year if this_year < today else date(today.year - 1, 5, 14)


@pytest.fixture(scope="session")
def days_station(birds25_dir: Path, ssd_detector_dir: Path, aiy_model_dir: Path, cli_env: dict[str, str],
                 tmp_path_factory: pytest.TempPathFactory) -> Station:
    """The VISITS' frames on three days, recorded by one real `edge run --once` with
    [retention] snapshot_days = 30: the cardinal's visit on a May day (a backlog imported
    today), the goldfinch's yesterday, the chickadee's today (UTC)."""
    now = datetime.now(UTC)
    today = now.date()
    starts = [datetime.combine(may_day(today), datetime.min.time(), UTC).replace(hour=6, minute=30),
              datetime.combine(today - timedelta(days=1), datetime.min.time(), UTC).replace(hour=12),
              max(now - timedelta(minutes=5), datetime.combine(today, datetime.min.time(), UTC) + timedelta(seconds=1))]
    return _record_visits(tmp_path_factory.mktemp("web-days"), birds25_dir, [start.timestamp() for start in starts],
                          aiy_model_dir, ssd_detector_dir, cli_env, extra="[retention]\nsnapshot_days = 30\n")


@pytest.fixture
def days(days_station: Station, tmp_path: Path) -> Station:
    """A copy of the three-day station's state folder (reviews and retention change it), same camera folder."""
    return _copy_of(days_station, tmp_path)
