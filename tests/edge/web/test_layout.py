"""The web app as people see it, in a real browser (Debian's chromium driven by Playwright) at a
phone's width (390 px) and a desktop's (1280 px), on a database the real daemon made from frames
of three days (tests/edge/web/conftest.py `days_station`: a May backlog, yesterday, today):

- every page: no sideways scroll, no table cell whose content sticks out, species names never
  broken one letter per line, and at 390 px every link of the bar and every button at least
  44 px (a finger);
- the Today page's previous/next day links change the counts shown;
- the species page's period picker shows the May backlog the fixed 30 days hid;
- the events list's thumbnails load (200, image/jpeg); a frame on the event page enlarges on a
  click; its caption names what the visit's title counts, before and after a correction;
- the Health page: a state badge, the problems first, then its sections in words;
- a picture the app cannot serve shows a placeholder, not a broken image.
- the fleet view's pages (`edge web --db <central>`) fit both widths too.

Skipped without chromium or the playwright package, unless TRAILCAM_REQUIRE_BROWSER=1."""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge.config import load_config
from edge.web.app import create_app
from tests.edge.web.conftest import Served, Station, may_day, pictures_settled

WIDTHS = (390, 1280)
TAP = 44  # px: the smallest touch target (WCAG 2.5.5, Apple's and Google's guidelines)


@pytest.fixture
def served(days: Station):
    app = Served(create_app(days.config()))
    yield app
    app.stop()


def _events(db: Path) -> list[tuple[int, str, str]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT id, species, started_at FROM events ORDER BY started_at").fetchall()
    finally:
        conn.close()


def _page(browser, width: int):
    context = browser.new_context(viewport={"width": width, "height": 860})
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    return context, page, problems


# Measured in the page: what sticks out, what is broken per letter, what is too small to tap.
LAYOUT = """() => {
  const root = document.scrollingElement;
  const visible = (el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
  const cut = Array.from(document.querySelectorAll('main td, main th, main .scroll, main .card, main .item, main dd'))
    .filter(visible).filter((el) => el.scrollWidth > el.clientWidth + 1)
    .map((el) => el.tagName + '.' + el.className + ': ' + el.textContent.trim().slice(0, 40));
  const names = Array.from(document.querySelectorAll('main td.name a, main .species-count, main h1'))
    .filter(visible).map((el) => {
      const style = getComputedStyle(el);
      const line = parseFloat(style.lineHeight) || 1.45 * parseFloat(style.fontSize);
      const longest = Math.max(...el.textContent.trim().split(/\\s+/).map((w) => w.length));
      return {text: el.textContent.trim(), lines: el.getBoundingClientRect().height / line,
              words: el.textContent.trim().split(/\\s+/).length, longest, card: el.matches('.species-count')};
    });
  const small = Array.from(document.querySelectorAll('header a, header button, main button, main a.button, main select, main input:not([type=checkbox]):not([type=hidden])'))
    .filter(visible).map((el) => ({what: el.tagName + ' ' + (el.textContent || el.name || '').trim().slice(0, 30),
                                   w: el.getBoundingClientRect().width, h: el.getBoundingClientRect().height}))
    .filter((t) => t.w < 44 || t.h < 44);
  return {scroll: [root.scrollWidth, root.clientWidth], cut, names, small};
}"""


def test_every_page_fits_a_phone_and_a_desktop(browser, served: Served, days: Station) -> None:
    event_id = _events(days.database)[-1][0]
    pages = ["/", "/species", "/heatmap", "/events", f"/event/{event_id}", "/queue", "/repeats", "/health", "/login",
             f"/?day={may_day(datetime.now(UTC).date())}"]
    for width in WIDTHS:
        context, page, problems = _page(browser, width)
        for path in pages:
            assert page.goto(served.url + path).status == 200, path
            pictures_settled(page)
            found = page.evaluate(LAYOUT)
            where = f"{path} at {width} px"
            assert found["scroll"][0] <= found["scroll"][1], f"{where}: sideways scroll {found['scroll']}"
            assert found["cut"] == [], f"{where}: content cut {found['cut']}"
            for name in found["names"]:
                # A name wraps between its words at most: never more lines than words (per letter was
                # 10+ lines for "American Goldfinch"), and one line where the screen is wide.
                assert name["lines"] < name["words"] + 0.5, f"{where}: {name}"
                if width >= 1280 and name["words"] <= 4 and not name["card"]:  # a card is 140 px wide
                    assert name["lines"] < 1.6, f"{where}: {name}"
            if width == 390:
                assert found["small"] == [], f"{where}: touch targets under {TAP} px: {found['small']}"
        assert problems == []
        context.close()


def _today_counts(page) -> dict[str, int]:
    rows = page.locator("#today-counts tbody tr[data-species]")
    return {rows.nth(i).get_attribute("data-species"): int(rows.nth(i).locator("td.events").inner_text())
            for i in range(rows.count())}


def test_previous_and_next_day_change_the_counts(browser, served: Served, days: Station) -> None:
    (_, may_species, _), (_, yesterday_species, _), (_, today_species, _) = _events(days.database)
    today = datetime.now(UTC).date()
    context, page, _ = _page(browser, 390)
    page.goto(served.url + "/")
    assert _today_counts(page) == {today_species: 1}
    assert page.locator("#day-next").count() == 0  # nothing after today
    page.click("#day-previous")
    page.wait_for_url(re.compile(rf"day={today - timedelta(days=1)}"))
    assert _today_counts(page) == {yesterday_species: 1}
    assert page.locator("#visits .card").count() == 1 and yesterday_species in page.locator("#visits").inner_text()
    page.click("#day-previous")
    assert _today_counts(page) == {}
    assert "no birds on" in page.locator("#today-counts").inner_text()
    page.click("#day-next")
    page.click("#day-next")
    page.wait_for_url(re.compile(rf"day={today}"))
    assert _today_counts(page) == {today_species: 1}
    # The date field jumps to any day: the May backlog.
    may = may_day(today)
    page.fill(".day-pick input[name=day]", may.isoformat())
    page.click(".day-pick button")
    page.wait_for_url(re.compile(rf"day={may}"))
    assert _today_counts(page) == {may_species: 1}
    context.close()


def test_the_species_period_picker_shows_a_may_backlog(browser, served: Served, days: Station) -> None:
    may_species = _events(days.database)[0][1]
    may = may_day(datetime.now(UTC).date())
    context, page, _ = _page(browser, 390)
    page.goto(served.url + "/species?name=" + may_species.replace(" ", "+"))
    total = page.locator("#period-total")
    assert re.search(r"\b0\b visits", total.inner_text()), total.inner_text()  # the last 30 days: nothing
    assert may.isoformat() in page.locator("#seen").inner_text()
    page.fill("#period input[name=from]", (may - timedelta(days=10)).isoformat())
    page.fill("#period input[name=to]", (may + timedelta(days=10)).isoformat())
    page.click("#period button")
    page.wait_for_url(re.compile("from="))
    assert re.search(r"\b1\b visits, \b2\b individuals", total.inner_text()), total.inner_text()  # two cardinals
    bars = page.locator("svg.bars rect title").all_text_contents()
    assert f"{may} visits: 1" in bars, bars
    # The "show the 30 days to its last visit" link finds it too.
    page.goto(served.url + "/species?name=" + may_species.replace(" ", "+"))
    page.click("#last-seen")
    assert re.search(r"\b1\b visits", total.inner_text()), total.inner_text()
    context.close()


def test_the_events_list_shows_thumbnails_that_load(browser, served: Served, days: Station) -> None:
    context, page, _ = _page(browser, 390)
    page.goto(served.url + "/events")
    pictures_settled(page)
    sources = page.eval_on_selector_all("#events td.thumb img", "els => els.map(e => [e.getAttribute('src'), e.naturalWidth])")
    assert len(sources) == len(_events(days.database)) == 3, sources
    for source, natural in sources:
        reply = page.request.get(served.url + source)
        assert reply.status == 200 and reply.headers["content-type"] == "image/jpeg", source
        assert natural > 0, source
    context.close()


def test_a_frame_enlarges_on_click_and_its_caption_agrees_with_the_title(browser, served: Served,
                                                                        days: Station) -> None:
    event_id = _events(days.database)[-1][0]
    context, page, problems = _page(browser, 1280)
    page.goto(served.url + f"/event/{event_id}")
    pictures_settled(page)
    frame = page.locator(".frame img").first
    before = frame.bounding_box()
    frame.click()
    enlarged = page.locator(".lightbox img")
    enlarged.wait_for()
    page.wait_for_function("document.querySelector('.lightbox img').naturalWidth > 0")
    after = enlarged.bounding_box()
    assert after["width"] > 1.5 * before["width"] and after["height"] > 1.5 * before["height"], (before, after)
    page.keyboard.press("Escape")
    assert page.locator(".lightbox").count() == 0

    def agree() -> str:
        title = page.locator("#visit-title").inner_text()
        captions = page.locator(".frame .caption .counted [data-species]").all_inner_texts()
        assert captions, "no frame counts a bird"
        for caption in captions:
            name = caption.split(" × ")[0]
            assert name in title, (name, title)
        return title

    assert "Black-capped Chickadee" in agree()
    # A correction of the whole visit renames it in the title and in every frame's caption alike.
    page.fill("input[aria-label='correct species']", "House Sparrow")
    with page.expect_navigation():  # the form posts, and the answer redirects back to the event
        page.locator("form:has(input[aria-label='correct species']) button").click()
    pictures_settled(page)
    title = agree()
    assert "House Sparrow" in title and "Chickadee" not in title
    assert problems == []
    context.close()


def test_the_health_page_reads_like_edge_status(browser, served: Served) -> None:
    context, page, _ = _page(browser, 390)
    page.goto(served.url + "/health")
    badge = page.locator("#health-state")
    assert badge.inner_text() == "not running" and "bad" in badge.get_attribute("class")
    problems = page.locator("#problems")
    assert "The daemon is not running" in problems.inner_text()
    sections = [page.locator(f"#health-{name}") for name in ("daemon", "pictures", "storage", "sending")]
    assert problems.bounding_box()["y"] < min(s.bounding_box()["y"] for s in sections)  # the problems first
    assert re.search(r"\d+(\.\d)? (kB|MB|GB|TB)", sections[2].inner_text()), sections[2].inner_text()
    pictures = sections[1].inner_text()
    assert re.search(r"last picture\s+today \d\d:\d\d \(\d+ minutes? ago|just now", pictures), pictures
    assert "pictures a minute" in pictures or "one picture every" in pictures or "no pictures" in pictures, pictures
    assert "free_bytes" not in page.locator("main").inner_text().split("All facts")[0]
    context.close()


def test_a_picture_it_cannot_serve_shows_a_placeholder(browser, days: Station) -> None:
    """Without the camera's folder (a configuration without [[cameras]] and no folder recorded in
    the database) the frames answer 404 and the event page shows a grey "picture not available"."""
    conn = sqlite3.connect(days.database)
    with conn:
        conn.execute("DELETE FROM picture_folders")
    conn.close()
    config = load_config(None, overrides={"storage": {"database": str(days.database)}}, environ={})
    served = Served(create_app(config))
    try:
        event_id = _events(days.database)[-1][0]
        context, page, _ = _page(browser, 390)
        page.goto(served.url + f"/event/{event_id}")
        pictures_settled(page)
        assert page.locator(".frame .no-picture").count() >= 1
        assert page.locator(".frame img").count() == 0
        assert "picture not available" in page.locator(".frame").first.inner_text()
        context.close()
    finally:
        served.stop()


def test_the_fleet_view_fits_a_phone_and_a_desktop(browser, tmp_path: Path) -> None:
    """`edge web --db <central>`: its pages (the device tables stacked on a phone) at both widths,
    on a central SQLite file loaded through the collector's import from a real station database."""
    from collector.importer import import_file
    from collector.sink import Sink
    from edge.cli.commands import main
    from fleet.web import create_central_app
    from tests.fixtures.station import DEVICE, build_station_db

    device_db = build_station_db(tmp_path / "device" / "trailcam.db", visits=30)
    export = tmp_path / "device.jsonl"
    assert main(["export", "events", "--db", str(device_db), "--out", str(export)]) == 0
    central = str(tmp_path / "central.sqlite")
    sink = Sink(central)
    sink.open()
    try:
        assert import_file(export, sink).events == 30
    finally:
        sink.close()
    config = Station(tmp_path, tmp_path, tmp_path / "unused.db", "").config()
    served = Served(create_central_app(config, central))
    try:
        pages = ["/", "/species", "/heatmap", "/events?from=2026-10-20&to=2026-10-30", "/devices",
                 f"/?device={DEVICE}&day=2026-10-25"]
        for width in WIDTHS:
            context, page, problems = _page(browser, width)
            for path in pages:
                assert page.goto(served.url + path).status == 200, path
                found = page.evaluate(LAYOUT)
                where = f"fleet {path} at {width} px"
                assert found["scroll"][0] <= found["scroll"][1], f"{where}: sideways scroll {found['scroll']}"
                assert found["cut"] == [], f"{where}: content cut {found['cut']}"
                for name in found["names"]:
                    assert name["lines"] < name["words"] + 0.5, f"{where}: {name}"
                if width == 390:
                    assert found["small"] == [], f"{where}: touch targets under {TAP} px: {found['small']}"
            assert problems == []
            context.close()
    finally:
        served.stop()
