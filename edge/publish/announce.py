"""The species a device knows, and their Home Assistant discovery configs, for the publisher.

The publisher (edge/publish/mqtt.py) seeds the species at start (from its `known_species`
source, else the labels with tallies in the database), learns a new one from its first
`counts/<species>` row, and announces them: every config on connect (and when Home Assistant
comes back online), one species' sensor when it is learnt. The day snapshots
(edge/publish/day_snapshot.py) give the known species their zeros.

Why a class of its own: which species are known and what Home Assistant was told is a job
beside sending outbox rows; the discovery payloads themselves are edge/publish/discovery.py's.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable

import paho.mqtt.client as paho

from edge.publish.day_snapshot import ContextSource
from edge.publish.discovery import discovery_messages, species_discovery_message
from edge.publish.messages import COUNTS_TOPIC, topic_segment
from edge.store import outbox
from edge.store.tables import has_table


class SpeciesAnnouncer:
    """Known species (topic segment → label) and their retained discovery configs; the
    publisher thread only."""

    def __init__(self, discovery_prefix: str, base_topic: str, device_id: str, *, enabled: bool,
                 context: ContextSource | None = None, known_species: Callable[[], Iterable[str]] | None = None,
                 health: bool = False, cameras: Iterable[str] = ()) -> None:
        """`enabled`: [mqtt] discovery; `context`: the names people read; `health` and `cameras`:
        the entities announced beside the species (a health topic, the cameras' best crops)."""
        self.discovery_prefix = discovery_prefix
        self.base_topic = base_topic
        self.device_id = device_id
        self.enabled = enabled
        self._context = context
        self._known_species = known_species
        self._health = health
        self._cameras = tuple(cameras)
        self._species: dict[str, str] = {}

    @property
    def labels(self) -> Iterable[str]:
        """The species known so far (a live view: it grows as species are learnt)."""
        return self._species.values()

    def seed(self, conn: sqlite3.Connection) -> None:
        """At start: the `known_species` source's labels, else those with tallies in the database."""
        labels: Iterable[str] = ()
        if self._known_species is not None:
            labels = self._known_species()
        else:
            if has_table(conn, "daily_tallies"):
                labels = [r[0] for r in conn.execute("SELECT DISTINCT species FROM daily_tallies") if r[0]]
        for label in labels:
            self._species.setdefault(topic_segment(label), label)

    def publish_all(self, client: paho.Client) -> None:
        """Every discovery config, retained: on connect and when Home Assistant comes back."""
        for topic, payload in discovery_messages(
            self.discovery_prefix, self.base_topic, self.device_id, self._species.values(),
            health=self._health, cameras=self._cameras, display=self._display(),
        ):
            client.publish(topic, payload, qos=1, retain=True)

    def learn(self, client: paho.Client, row: outbox.OutboxRow) -> None:
        """A species' first counts/<species> row announces its Home Assistant sensor (and
        puts it in the day snapshots)."""
        if not row.topic.startswith(f"{COUNTS_TOPIC}/"):
            return
        segment = row.topic[len(COUNTS_TOPIC) + 1 :]
        if segment in self._species:
            return
        try:
            label = str(json.loads(row.payload)["species"])
        except (ValueError, KeyError, TypeError):
            label = segment
        self._species[segment] = label
        if not self.enabled:
            return
        topic, payload = species_discovery_message(self.discovery_prefix, self.base_topic, self.device_id, label,
                                                   display=self._display())
        if topic.endswith(f"/species_{segment}/config"):  # a label whose topic is not this row's: none
            client.publish(topic, payload, qos=1, retain=True)

    def _display(self) -> Callable[[str], str] | None:
        """A label's name people read for Home Assistant's entity names (the message context's
        scientific and common names); None without a context: the label."""
        ctx = self._context() if self._context is not None else None
        return ctx.display_name if ctx is not None else None
