"""Glue between the store and the MQTT area: event changes and tallies → outbox rows.

The store calls `enqueue` inside the frame's transaction; this turns what changed into
messages with edge/publish/messages.py and writes them with edge/store/outbox.py, so a message exists
exactly when its frame result is committed. Nothing here touches the network.
"""

from __future__ import annotations

from collections.abc import Mapping

import sqlite_utils

from edge.store.writer import EventChange


class OutboxWriter:
    def __init__(self, device_id: str, station_tz: str, model_id: str | None, scientific_names: Mapping[str, str],
                 max_rows: int, model_version: str | None = None, *, namer=None,
                 common_names: Mapping[str, str] | None = None):
        """`namer` (edge.classify.names.Namer, the station's language) names the labels of every
        model this writer follows; `common_names` are the first model's, where it is known already."""
        from edge.publish.messages import MessageContext  # the MQTT area's module, imported only when MQTT is on

        self.namer = namer
        self.context = MessageContext(device_id=device_id, station_tz=station_tz, model_id=model_id,
                                      model_version=model_version, scientific_names=dict(scientific_names),
                                      common_names=dict(common_names or {}))
        self.max_rows = max_rows

    def set_model(self, model_id: str, scientific_names: Mapping[str, str], model_version: str | None = None,
                  common_names: Mapping[str, str] | None = None) -> None:
        """After a model reload (SIGHUP) new messages name the new model."""
        from edge.publish.messages import MessageContext

        self.context = MessageContext(device_id=self.context.device_id, station_tz=self.context.station_tz,
                                      model_id=model_id, model_version=model_version,
                                      scientific_names=dict(scientific_names), common_names=dict(common_names or {}))

    def follow_model(self, classifier) -> None:
        """Name this classifier (edge.classify.model.Classifier) in new messages: called when the
        store opens with the loaded model and after each reload."""
        self.set_model(classifier.model_id, classifier.spec.scientific_names, classifier.spec.model_version,
                       common_names(classifier.spec.labels, self.namer))

    def message_context(self):
        """The current MessageContext (station zone, model, scientific names): what the MQTT
        publisher's day snapshots are written with, handed to it by the wiring."""
        return self.context

    def enqueue(self, db: sqlite_utils.Database, changes: list[EventChange],
                tallies_today: dict[str, dict[str, int]] | None, today: str, species_touched: set[str]) -> list:
        """Write the messages for these changes (and today's counts snapshot when given) into the
        open transaction; returns them, for the store's Commit."""
        from edge.publish import messages
        from edge.store import outbox
        from edge.store.counts import stored_counts, visits_on_day

        for change in changes:  # what each visit counts per species travels with it
            if "species_counts" not in change.event:
                change.event = {**change.event, "species_counts": stored_counts(db.conn, int(change.event["id"]))}
        batch = [messages.event_message(change.event, change.change, self.context) for change in changes]
        if tallies_today is not None:
            batch.extend(messages.counts_messages(tallies_today, today, self.context, changed=species_touched,
                                                  visits=visits_on_day(db.conn, today)))
        if batch:
            outbox.enqueue(db, batch, self.max_rows)
        return batch


def common_names(labels, namer) -> dict[str, str]:
    """Label → its common name in the station's language (`namer`: edge.classify.names.Namer)
    for labels that have one; empty without a namer (payloads then say `common_name: null`)."""
    if namer is None:
        return {}
    found = {}
    for label in labels:
        name = namer.common(label.name, label.scientific_name, label.common_name)
        if name:
            found[label.name] = name
    return found
