"""A real browser (Debian's chromium driven by Playwright) on the real app: every page loads
without console errors with its SVG charts, and a review made with the KEYBOARD on the review
queue (correct one event's species through the search field, confirm another, mark one not a
bird) changes the Today page, the daily tallies and the retained MQTT counts (a real mosquitto
and the daemon's Publisher); undo (`u`) restores all three.

Skipped without chromium or the playwright package, unless TRAILCAM_REQUIRE_BROWSER=1
(`make test`), which turns the skip into a failure."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from edge.config import MqttConfig
from edge.publish.mqtt import Publisher
from edge.web.app import create_app
from tests.edge.web.conftest import Served, Station, logged_in_page, pictures_settled
from tests.fixtures.broker import Broker, Subscriber

CORRECTED = "House Sparrow"  # a label of the model (labelmap.csv), typed into the search field


def _tallies(db: Path) -> dict[str, tuple[int, int]]:
    conn = sqlite3.connect(db)
    try:
        return {s: (e, i) for s, e, i in conn.execute(
            "SELECT species, SUM(events), SUM(individuals) FROM daily_tallies GROUP BY species HAVING SUM(events) > 0")}
    finally:
        conn.close()


def _queue_order(db: Path) -> list[tuple[int, str, int]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT id, species, individuals FROM events WHERE review_state IS NULL "
                            "ORDER BY confidence IS NOT NULL, confidence, id").fetchall()
    finally:
        conn.close()


def _today_counts(page, base: str) -> dict[str, int]:
    page.goto(base + "/")
    rows = page.locator("#today-counts tbody tr[data-species]")
    counts = {rows.nth(i).get_attribute("data-species"): int(rows.nth(i).locator("td.events").inner_text())
              for i in range(rows.count())}
    return {species: n for species, n in counts.items() if n > 0}  # a species with frames but no visit left


def test_every_page_loads_cleanly(browser, station: Station, user_hashes) -> None:
    served = Served(create_app(station.config({"users": user_hashes})))
    try:
        context, page, problems = logged_in_page(browser, served.url)
        event_id = _queue_order(station.database)[0][0]
        charts = {"/": 0, "/species": 2, "/heatmap": 1, "/events": 0, f"/event/{event_id}": 0, "/queue": 0,
                  "/health": 0}
        for path, count in charts.items():
            response = page.goto(served.url + path)
            assert response.status == 200, path
            pictures_settled(page)
            assert page.locator("svg.chart").count() == count, path
            # A phone's width: wide tables and the heatmap scroll inside their box, never the page.
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), path
        # Every picture on the event page decoded (frames with boxes, crops).
        page.goto(served.url + f"/event/{event_id}")
        pictures_settled(page)
        widths = page.eval_on_selector_all("main img", "els => els.map(e => e.naturalWidth)")
        assert widths and all(w > 0 for w in widths), widths
        assert problems == []
        context.close()
    finally:
        served.stop()


def test_keyboard_review_moves_counts_and_undo_restores_them(browser, station: Station, user_hashes,
                                                             broker: Broker) -> None:
    mqtt = broker.mqtt_config(prefix="tc")
    config = station.config({"users": user_hashes}, mqtt=mqtt)
    device = config.station.device_id
    served = Served(create_app(config))
    publisher = Publisher(MqttConfig(**mqtt), station.database, device)
    publisher.start()
    subscriber = Subscriber(broker, [f"tc/{device}/counts"], persistent=False)
    try:
        order = _queue_order(station.database)
        assert len(order) == 3
        before = _tallies(station.database)
        context, page, problems = logged_in_page(browser, served.url)
        today_before = _today_counts(page, served.url)
        assert today_before == {species: events for species, (events, _) in before.items()}

        page.goto(served.url + "/queue")
        items = page.locator("#queue .item")
        assert [int(items.nth(i).get_attribute("data-event-id")) for i in range(3)] == [e for e, _, _ in order]
        page.keyboard.press("s")
        assert page.evaluate("document.activeElement.id") == "species-input"
        page.keyboard.type(CORRECTED)
        page.keyboard.press("Enter")
        page.locator("#queue .item").nth(0).locator(".outcome").get_by_text("corrected to " + CORRECTED).wait_for()
        page.keyboard.press("c")
        items.nth(1).locator(".outcome").get_by_text("confirmed").wait_for()
        page.keyboard.press("x")
        items.nth(2).locator(".outcome").get_by_text("not a bird").wait_for()

        after = _tallies(station.database)
        (_, first_species, first_birds), _, (_, third_species, _) = order
        expected = dict(before)
        expected[first_species] = (before[first_species][0] - 1, before[first_species][1] - first_birds)
        expected[third_species] = (before[third_species][0] - 1, before[third_species][1] - order[2][2])
        expected[CORRECTED] = (1, first_birds)
        assert after == {k: v for k, v in expected.items() if v[0] > 0}

        def counts_are(tallies: dict[str, tuple[int, int]]):
            wanted = {species: events for species, (events, _) in tallies.items()}

            def check(messages):
                latest = [m for m in messages if m.topic == f"tc/{device}/counts"]
                if not latest:
                    return False
                species = json.loads(latest[-1].payload)["species"]
                return {k: v["events"] for k, v in species.items() if v["events"] > 0} == wanted
            return check
        subscriber.wait_for(counts_are(after), what="retained counts after the reviews")

        other = context.new_page()
        assert _today_counts(other, served.url) == {k: v[0] for k, v in after.items()}

        for _ in range(3):
            page.keyboard.press("u")
            page.locator("#queue-status").get_by_text("undone").wait_for()
            page.locator("#queue-status").evaluate("el => el.textContent = ''")
        assert _tallies(station.database) == before
        subscriber.wait_for(counts_are(before), what="retained counts restored by undo")
        assert _today_counts(other, served.url) == today_before

        # j / k move the selection; a digit sets the individuals of the selected event.
        current = page.locator("#queue .item.current")
        assert current.get_attribute("data-event-id") == str(order[0][0])  # undo went back to the first
        page.keyboard.press("j")
        page.keyboard.press("j")
        page.keyboard.press("k")
        assert current.get_attribute("data-event-id") == str(order[1][0])
        page.keyboard.press("3")
        items.nth(1).locator(".outcome").get_by_text("individuals 3").wait_for()
        conn = sqlite3.connect(station.database)
        try:
            assert conn.execute("SELECT reviewed_individuals FROM events WHERE id = ?", (order[1][0],)).fetchone() == (3,)
        finally:
            conn.close()
        assert problems == []
        context.close()
    finally:
        subscriber.close()
        publisher.stop()
        served.stop()
