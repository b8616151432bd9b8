"""What a notification says and shows: its title, body and pictures, read from the store when it goes out.

Rendered at delivery, not when queued: the visit may have grown (more birds, a better crop,
a better confidence) between the frame that earned the notification and the moment a target
takes it, and a review in between decides whether it goes at all (edge/alerts/delivery.py).

Pictures: the visit's best crop (`<state>/snapshots/<events.snapshot>`, written with a
detector, edge/operate/snapshots.py); without one, the visit's best frame of the species,
scaled down to PICTURE_MAX_PX as a JPEG in a scratch folder (a camera's 5 MB original is
not a push notification). Targets that take no attachments get the text (Apprise says which).
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from PIL import Image, ImageOps

from edge.alerts.rules import describe_season
from edge.classify.names import Namer
from edge.store.notifications import Notification
from edge.store.times import parse_utc

log = logging.getLogger(__name__)

PICTURE_MAX_PX = 1280
PHRASES = {
    "new_species": "new species at this station",
    "out_of_range": "possible rarity (out of its usual range)",
    "first_of_year": "first of the year",
    "first_of_season": "first of the season",
    "first_of_day": "first today",
    "every_visit": "visit",
}


@dataclass
class Message:
    title: str
    body: str
    pictures: list[Path] = field(default_factory=list)
    scratch: list[Path] = field(default_factory=list)  # pictures made for this message: removed after it

    def cleanup(self) -> None:
        for path in self.scratch:
            path.unlink(missing_ok=True)


class Renderer:
    """Turns a queued row into a Message, reading the station's database."""

    def __init__(self, *, station: str, zone: ZoneInfo, namer: Namer, snapshots: Path, scratch: Path,
                 web_url: str = "", attach: bool = True, digest_pictures: int = 3, southern: bool = False) -> None:
        self.station = station
        self.zone = zone
        self.namer = namer
        self.snapshots = Path(snapshots)
        self.scratch = Path(scratch)
        self.web_url = web_url.rstrip("/")
        self.attach = attach
        self.digest_pictures = digest_pictures
        self.southern = southern

    def name(self, conn: sqlite3.Connection, species: str) -> str:
        row = conn.execute("SELECT scientific_name, common_name FROM taxa WHERE name = ?", (species,)).fetchone()
        scientific, common = (row[0], row[1]) if row else (None, None)
        return self.namer.display(species, scientific, common)

    def visit(self, conn: sqlite3.Connection, row: Notification, event: dict) -> Message:
        species = row.species or "?"
        name = self.name(conn, species)
        reasons = list(row.reasons) or ["every_visit"]
        phrases = []
        for reason in reasons:
            phrase = PHRASES.get(reason, reason)
            if reason == "first_of_season" and row.day:
                phrase = f"first of {describe_season(row.day, self.southern)}"
            if reason == "first_of_year" and row.day:
                phrase = f"first of {row.day[:4]}"
            phrases.append(phrase)
        counted = conn.execute("SELECT individuals FROM event_species WHERE event_id = ? AND species = ?",
                               (row.event_id, species)).fetchone()
        birds = int(counted[0]) if counted else 1
        vote = conn.execute("SELECT best_confidence FROM event_votes WHERE event_id = ? AND species = ?",
                            (row.event_id, species)).fetchone()
        confidence = vote[0] if vote and vote[0] is not None else event.get("confidence")
        started = parse_utc(event["started_at"]).astimezone(self.zone)
        lines = [f"{name}{f' ({species})' if name != species else ''} at {event['camera']}, "
                 f"{started:%Y-%m-%d %H:%M} ({self.zone.key})",
                 f"{birds} bird{'s' if birds != 1 else ''}"
                 + (f", confidence {float(confidence):.0%}" if confidence is not None else ""),
                 "Why: " + "; ".join(phrases)]
        if event.get("review_state") in ("confirmed", "corrected"):
            lines.append(f"Reviewed: {event['review_state']}")
        if self.web_url:
            lines.append(f"{self.web_url}/event/{int(event['id'])}")
        message = Message(f"{name}: {phrases[0]} ({self.station})", "\n".join(lines))
        if self.attach:
            self._visit_picture(conn, message, row, event)
        return message

    def digest(self, conn: sqlite3.Connection, row: Notification) -> Message:
        day = row.day or ""
        tallies = conn.execute(
            """SELECT species, SUM(events), SUM(individuals) FROM daily_tallies WHERE day = ? AND events > 0
               GROUP BY species ORDER BY SUM(events) DESC, species""", (day,)).fetchall()
        visits = int(conn.execute("SELECT COUNT(DISTINCT event_id) FROM event_species WHERE day = ?",
                                  (day,)).fetchone()[0])
        named = [(species, int(v), int(b or 0)) for species, v, b in tallies]
        lines = [f"{self.name(conn, s)}: {v} visit{'s' if v != 1 else ''}, {b} bird{'s' if b != 1 else ''}"
                 for s, v, b in named] or ["No visits recorded."]
        if self.web_url:
            lines.append(f"{self.web_url}/events")
        message = Message(f"{self.station}, {day}: {visits} visit{'s' if visits != 1 else ''}, "
                          f"{len(named)} species", "\n".join(lines))
        if self.attach and self.digest_pictures:
            self._digest_pictures(conn, message, day)
        return message

    # -- pictures ---------------------------------------------------------------------------

    def _visit_picture(self, conn: sqlite3.Connection, message: Message, row: Notification, event: dict) -> None:
        crop = self._snapshot(event.get("snapshot"))
        if crop is not None:
            message.pictures.append(crop)
            return
        frame = conn.execute(
            """SELECT COALESCE(stored_path, path) FROM frames WHERE event_id = ? AND species = ?
               ORDER BY confidence DESC, id LIMIT 1""", (row.event_id, row.species)).fetchone()
        if frame is not None:
            made = self._scaled(Path(frame[0]), f"{row.id}.jpg")
            if made is not None:
                message.pictures.append(made)
                message.scratch.append(made)

    def _digest_pictures(self, conn: sqlite3.Connection, message: Message, day: str) -> None:
        """The day's best crops: one a species (the most visited first), then by confidence."""
        seen: set[str] = set()
        for species, snapshot in conn.execute(
                """SELECT e.species, e.snapshot FROM events AS e JOIN event_species AS s
                       ON s.event_id = e.id AND s.species = e.species
                   WHERE s.day = ? AND e.snapshot IS NOT NULL AND COALESCE(e.review_state, '') != 'rejected'
                   ORDER BY e.confidence DESC, e.id""", (day,)):
            if species in seen:
                continue
            crop = self._snapshot(snapshot)
            if crop is not None:
                seen.add(species)
                message.pictures.append(crop)
            if len(message.pictures) >= self.digest_pictures:
                return

    def _snapshot(self, name: str | None) -> Path | None:
        if not name:
            return None
        path = self.snapshots / name
        return path if path.parent == self.snapshots and path.is_file() else None

    def _scaled(self, source: Path, name: str) -> Path | None:
        """A JPEG of at most PICTURE_MAX_PX a side from a frame file, in the scratch folder."""
        target = self.scratch / name
        try:
            with Image.open(source) as image:
                picture = ImageOps.exif_transpose(image).convert("RGB")
                picture.thumbnail((PICTURE_MAX_PX, PICTURE_MAX_PX))
                self.scratch.mkdir(parents=True, exist_ok=True)
                picture.save(target, "JPEG", quality=85)
        except (OSError, ValueError) as error:
            log.info("notify: no picture from %s: %s", source, error)
            return None
        return target

