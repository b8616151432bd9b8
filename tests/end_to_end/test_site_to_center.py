"""A device's messages over a site's bridged broker, a cut link, the collector, PostgreSQL, and
`edge counts` answering the same from the device's file and from the central database.

Everything real: the daemon's writer queues the outbox (edge/store/writer.py with the
OutboxWriter), the Publisher drains it to a site mosquitto, whose bridge (`edge bridge-config`)
forwards to a central mosquitto, where `collector run` (a real process) writes PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import edge
from edge.cli.commands import main
from edge.config.mqtt import MqttConfig
from edge.publish.messages import info_message
from edge.publish.mqtt import Publisher, PublisherSources
from edge.publish.outbox_writer import OutboxWriter
from edge.store import outbox
from edge.store.db import open_readonly
from tests.collector.helpers import CollectorProcess, count, query
from tests.fixtures.broker import Broker, wait_until
from tests.fixtures.station import DEVICE, ZONE, finish, write_visits

pytestmark = pytest.mark.broker
VISITS = 40


def outbox_depth(db: Path) -> int:
    reader = open_readonly(db)
    try:
        return outbox.depth(reader)
    finally:
        reader.conn.close()


def central_matches_device(central: str, device_db: Path) -> bool:
    """Every event arrived with its final state (change, frame count, species, review)."""
    reader = open_readonly(device_db)
    try:
        own = {(uid, frames, "end" if state == "closed" else "open", review) for uid, frames, state, review in
               reader.conn.execute("SELECT uid, frame_count, state, review_state FROM events")}
    finally:
        reader.conn.close()
    rows = query(central, "SELECT uid, frame_count, change, review FROM events WHERE device = ?", (DEVICE,))
    return {(uid, frames, "end" if change == "end" else "open", review) for uid, frames, change, review in rows} == own


def report(capsys, *args: str) -> str:  # noqa: ANN001
    assert main(list(args)) == 0
    return capsys.readouterr().out


def test_bridge_cut_mid_stream_then_same_counts_centrally(broker_factory: Callable[..., Broker], postgres_db: str,
                                                         tmp_path: Path, capsys) -> None:  # noqa: ANN001
    central = broker_factory("plain")
    confd = tmp_path / "conf.d"
    confd.mkdir()
    assert main(["bridge-config", "--remote", f"{central.host}:{central.port}", "--out", str(confd / "bridge.conf"),
                 "--name", "site-a", "--restart-timeout", "1:2"]) == 0
    site = broker_factory("plain", extra=[f"include_dir {confd}"])
    collector = CollectorProcess(central, postgres_db, tmp_path).start()
    device_db = tmp_path / "trailcam.db"
    writer = OutboxWriter(DEVICE, ZONE, "aiy-test", {}, 100_000)
    publisher = Publisher(MqttConfig(**site.mqtt_config(discovery=False)), device_db, DEVICE,
                          PublisherSources(info=lambda: info_message(writer.message_context(), [],
                                                                     software_version=edge.__version__)))
    try:
        write_visits(device_db, range(VISITS // 2), total=VISITS, outbox=writer)
        publisher.start()
        wait_until(lambda: count(postgres_db, "events") == VISITS // 2, 30, "the first half in PostgreSQL")

        central.stop()  # the site's link is cut: the rest is queued at the site
        write_visits(device_db, range(VISITS // 2, VISITS), total=VISITS, outbox=writer)
        finish(device_db, total=VISITS, outbox=writer)
        wait_until(lambda: outbox_depth(device_db) == 0, 30, "the site broker took every message")
        central.start()
        wait_until(lambda: central_matches_device(postgres_db, device_db), 60,
                   "every event in PostgreSQL with its final change and review")
    finally:
        publisher.stop()
        assert collector.stop() == 0, collector.log_text()
    assert query(postgres_db, "SELECT timezone, software_version FROM devices WHERE device = ?", (DEVICE,)) == [
        (ZONE, edge.__version__)]
    assert count(postgres_db, "rejected_messages") == 0
    capsys.readouterr()  # what bridge-config printed
    for args in (["counts", "--by", "day"], ["counts", "--by", "hour"], ["counts", "--by", "total", "--individuals"],
                 ["counts", "--by", "hour", "--individuals", "--camera", "cam1"], ["events", "--limit", "0"]):
        own = report(capsys, *args, "--format", "csv", "--db", str(device_db))
        fleet = report(capsys, *args, "--format", "csv", "--db", postgres_db, "--device", DEVICE)
        assert fleet == own, args
        assert len(own.splitlines()) > 3, args
