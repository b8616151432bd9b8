"""What the citizen-science exports (eBird, iNaturalist) share: the sightings a period holds and
the place each camera stood.

A sighting is one species of one visit, as the store counts it after its reviews
(`event_species`: individuals = the species' MaxN, the most birds of it in one frame), with who
said so: a person (the visit's reviewer, or whoever confirmed or corrected one of its birds to
that species: the Camtrap DP export's rule) or the model. Portals built on people's
observations take a person's word: by default only reviewed sightings leave the station.

Visits whose capture time is doubtful (a camera clock in the future or reset: clock_checks)
are never shared: a checklist dated 2000 helps nobody. Visits outside their camera's
deployment are left out as in the other exports.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

import sqlite_utils

from edge.config import EdgeConfig
from edge.ecology.deployments import Deployment, resolve_deployments, trusted
from edge.ecology.media import Selection, deployment_window, events, latest_reviews, reviewed_birds
from edge.store.events import counted
from edge.store.taxa import ranks, taxa
from edge.store.times import parse_utc

UNKNOWN = "unknown"


class SharingError(Exception):
    """The export cannot be written as asked (the CLI exits 2; nothing was written)."""


@dataclass(frozen=True)
class Place:
    """Where a camera stood: its deployment's coordinates, else the station's."""

    camera: str
    name: str
    latitude: float
    longitude: float
    uncertainty_m: int | None


@dataclass(frozen=True)
class Sighting:
    """One species of one visit."""

    event_id: int
    uid: str
    camera: str
    label: str
    scientific_name: str | None
    common_name: str | None
    rank: str  # species | genus | family | order | unknown
    individuals: int  # the species' MaxN in the visit
    frames: int
    started_at: datetime
    ended_at: datetime
    confidence: float | None  # the model's best for this name in the visit (None: only a review said it)
    model_id: str | None
    reviewer: str | None  # who confirmed or corrected it; None: the model's word alone

    @property
    def reviewed(self) -> bool:
        return self.reviewer is not None


@dataclass
class Skipped:
    """What an export left out, by reason (the summary prints it)."""

    reasons: Counter = field(default_factory=Counter)

    def add(self, reason: str, n: int = 1) -> None:
        self.reasons[reason] += n

    def lines(self) -> list[str]:
        return [f"left out: {n} {reason}" for reason, n in sorted(self.reasons.items())]


def _rank(label: str, scientific: str | None, recorded: dict[str, str]) -> str:
    if label == UNKNOWN:
        return UNKNOWN
    if label in recorded:
        return recorded[label]
    if scientific and scientific.endswith(" sp."):
        return "genus"
    return "species"


def places(config: EdgeConfig, deployments: list[Deployment]) -> tuple[dict[str, Place], dict[str, str]]:
    """(camera → its place, camera → what is missing, naming the dotted keys) for `deployments`."""
    index = {camera.name: number for number, camera in enumerate(config.cameras)}
    found: dict[str, Place] = {}
    missing: dict[str, str] = {}
    station = config.station.coordinates
    for deployment in deployments:
        table = deployment.config
        if table.latitude is not None and table.longitude is not None:
            latitude, longitude = table.latitude, table.longitude
        elif station is not None:
            latitude, longitude = station
        else:
            if deployment.camera in index:
                key = f"cameras[{index[deployment.camera]}].deployment"
                missing[deployment.camera] = (f"{key}.latitude, {key}.longitude: missing for camera "
                                              f"{deployment.camera!r} (or station.latitude, station.longitude)")
            else:
                missing[deployment.camera] = (f"camera {deployment.camera!r} has data but no [[cameras]] table "
                                              "(or station.latitude, station.longitude)")
            continue
        name = table.location_name or f"{config.station.device_id} {deployment.camera}"
        found[deployment.camera] = Place(deployment.camera, name, latitude, longitude, table.coordinate_uncertainty_m)
    return found, missing


def sightings(config: EdgeConfig, db: sqlite_utils.Database, selection: Selection, skipped: Skipped
              ) -> tuple[list[Deployment], Iterator[Sighting]]:
    """(the deployments, every sighting of the period inside them, oldest first per camera).
    Doubtful visits and those outside their deployment are counted in `skipped`; the caller
    decides about unreviewed, unknown and higher-rank sightings."""
    deployments = resolve_deployments(config, db, cameras=list(selection.cameras) or None,
                                      since=selection.since, until=selection.until)
    return deployments, _walk(db, selection, deployments, skipped)


def _walk(db: sqlite_utils.Database, selection: Selection, deployments: list[Deployment],
          skipped: Skipped) -> Iterator[Sighting]:
    conn = db.conn
    windows = {d.camera: deployment_window(d) for d in deployments}
    if not windows:
        return
    names = taxa(db)
    recorded = ranks(db)
    by_event, by_detection = latest_reviews(conn)
    birds = reviewed_birds(conn, by_detection)
    ok = trusted(conn, "events")
    doubtful = set() if ok == "1" else {row[0] for row in conn.execute(
        f"SELECT id FROM events WHERE time_flags IS NOT NULL AND NOT {ok}")}
    for event in events(conn, selection, list(windows)):
        started = parse_utc(event["started_at"])
        if event["id"] in doubtful:
            skipped.add("visits with a doubtful capture time (camera clock)")
            continue
        if not windows[event["camera"]](started):
            skipped.add("visits outside their deployment")
            continue
        counts = event["counts"]
        if counts is None:  # a database older than schema 6 (the CLI refuses those)
            species, individuals = counted(event)
            counts = [] if species is None else [{"species": species, "individuals": individuals,
                                                   "frames": event["frame_count"], "confidence": event["confidence"]}]
        event_reviewed = event["review_state"] in ("confirmed", "corrected") or event["reviewed_individuals"]
        for count in counts:
            label = count["species"]
            reviewer = None
            if event_reviewed:
                reviewer = by_event.get(event["id"], ("a reviewer", None))[0]
            elif (event["id"], label) in birds:
                reviewer = birds[(event["id"], label)][0]
            taxon = names.get(label)
            scientific = taxon.scientific_name if taxon else None
            yield Sighting(
                event["id"], event["uid"], event["camera"], label, scientific, taxon.common_name if taxon else None,
                _rank(label, scientific, recorded), int(count["individuals"]), int(count["frames"]), started,
                parse_utc(event["ended_at"]), count["confidence"], event["model_id"], reviewer)
