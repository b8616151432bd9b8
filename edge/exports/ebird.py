"""`edge export ebird`: the station's sightings as eBird checklists, in eBird Record Format.

eBird's import tool (ebird.org/import, "eBird Record Format (Extended)") reads a CSV of 19
columns in a fixed order and no header row (a header would be read as a sighting), one row per
species per checklist; rows with the same location, date, start time and protocol form one
checklist:

    Common Name, Genus, Species, Number, Species Comments, Location Name, Latitude, Longitude,
    Date (MM/DD/YYYY), Start Time (HH:MM, 24-hour), State/Province, Country Code, Protocol,
    Number of Observers, Duration (minutes), All observations reported? (Y/N),
    Effort Distance Miles, Effort area acres, Submission Comments

What a camera can honestly say in it:

- a checklist per camera (its place) and station-local day, or per visit (`per="visit"`);
- Number: a stationary count reports the most birds of a species seen at once. A visit's
  count is its MaxN (the most birds of the species in one frame); a day's is the largest MaxN
  of its visits, never their sum (the same robin visiting ten times is one robin, not ten);
- Protocol "Stationary", one observer, Duration from the camera's first to its last frame of
  the day (or the visit's length), at least one minute;
- All observations reported: "N". A camera sees a small field, unknown birds and (by default)
  what no person reviewed are left out: eBird must not read absences into the list;
- names: the model's English common name with the scientific name split into Genus and
  Species (eBird's import matches either; no eBird taxonomy is shipped or downloaded, so no
  eBird species codes). A genus roll-up ("Turdus sp.") is written as Genus "Turdus",
  Species "sp.", eBird's form for a "spuh"; family and order roll-ups and unknown birds have
  no reliable eBird name and are left out (counted in the summary).
"""

from __future__ import annotations

import csv
import math
import os
import tempfile
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Literal

import sqlite_utils

from edge.config import EdgeConfig
from edge.ecology.deployments import trusted
from edge.ecology.media import Selection
from edge.exports.sightings import SharingError, Sighting, Skipped, places, sightings
from edge.store.times import format_utc, parse_utc

COLUMNS = ("Common Name", "Genus", "Species", "Number", "Species Comments", "Location Name", "Latitude",
           "Longitude", "Date", "Start Time", "State/Province", "Country Code", "Protocol", "Number of Observers",
           "Duration", "All observations reported?", "Effort Distance Miles", "Effort area acres",
           "Submission Comments")
PROTOCOL = "Stationary"
OBSERVERS = 1
ALL_REPORTED = "N"
DATE_FORMAT, TIME_FORMAT = "%m/%d/%Y", "%H:%M"
Per = Literal["day", "visit"]


@dataclass
class EbirdSummary:
    out: Path
    checklists: int = 0
    rows: int = 0
    species: set[str] = field(default_factory=set)
    skipped: Skipped = field(default_factory=Skipped)

    def lines(self) -> list[str]:
        return [f"wrote eBird Record Format {self.out} (19 columns, no header row: upload it at "
                "https://ebird.org/import as \"eBird Record Format (Extended)\")",
                f"checklists: {self.checklists}, species rows: {self.rows}, species: "
                f"{', '.join(sorted(self.species)) or 'none'}", *self.skipped.lines()]


@dataclass
class _Checklist:
    camera: str
    day: date
    start: datetime  # local
    end: datetime    # local
    visits: int = 0
    # label → [sighting with the largest MaxN, number of visits]
    species: dict[str, list] = field(default_factory=dict)


def _name(sighting: Sighting) -> tuple[str, str, str] | None:
    """(Common Name, Genus, Species) or None when eBird has no reliable name for it."""
    scientific = (sighting.scientific_name or "").strip()
    parts = scientific.split()
    if sighting.rank == "genus":
        genus = parts[0] if parts else sighting.label.split()[0]
        return (sighting.common_name or f"{genus} sp.", genus, "sp.")
    if sighting.rank != "species":
        return None
    common = (sighting.common_name or "").strip()
    if len(parts) >= 2:
        return (common, parts[0], " ".join(parts[1:]))
    return (common, "", "") if common else None


def _frame_spans(db: sqlite_utils.Database, selection: Selection, cameras: list[str], zone
                 ) -> dict[tuple[str, date], tuple[datetime, datetime]]:
    """(camera, local day) → the local times of its first and last ok frame with a trusted time:
    how long the camera watched that day, as far as its frames show."""
    ok = trusted(db.conn, "frames")
    clauses, params = [f"camera IN ({', '.join('?' * len(cameras))})"], list(cameras)
    if selection.since is not None:
        clauses.append("captured_at >= ?")
        params.append(format_utc(selection.since))
    if selection.until is not None:
        clauses.append("captured_at < ?")
        params.append(format_utc(selection.until))
    spans: dict[tuple[str, date], tuple[datetime, datetime]] = {}
    for camera, first, last in db.conn.execute(
            f"""SELECT camera, MIN(captured_at), MAX(captured_at) FROM frames
                 WHERE status = 'ok' AND captured_at IS NOT NULL AND {ok} AND {' AND '.join(clauses)}
                 GROUP BY camera, substr(captured_at, 1, 13)""", params):
        # grouped by UTC hour (an index-friendly bucket), merged into local days here
        for moment in (parse_utc(first).astimezone(zone), parse_utc(last).astimezone(zone)):
            key = (camera, moment.date())
            low, high = spans.get(key, (moment, moment))
            spans[key] = (min(low, moment), max(high, moment))
    return spans


def _minutes(start: datetime, end: datetime) -> int:
    return max(1, math.ceil((end - start).total_seconds() / 60))


def export_ebird(config: EdgeConfig, db: sqlite_utils.Database, out: Path, selection: Selection, *,
                 include_unreviewed: bool = False, per: Per = "day", country: str | None = None,
                 state: str | None = None, force: bool = False) -> EbirdSummary:
    """Write the CSV `out` (refused when it exists unless `force`, or when a camera with
    sightings to export has no coordinates, or eBird's country or state is unknown)."""
    if out.exists() and (out.is_dir() or not force):
        raise SharingError(f"--out: {out} exists (nothing was written"
                           + ("" if out.is_dir() else "; --force replaces it") + ")")
    country = country or config.sharing.country_code
    state = state or config.sharing.state_province
    problems = []
    if not country:
        problems.append("sharing.country_code: missing (eBird files every checklist under a country: e.g. "
                        "country_code = \"US\", or --country US)")
    if not state:
        problems.append("sharing.state_province: missing (eBird's State/Province: e.g. state_province = \"NY\", "
                        "or --state NY)")
    zone = config.station.zone
    summary = EbirdSummary(out)
    deployments, found = sightings(config, db, selection, summary.skipped)
    located, missing = places(config, deployments)
    checklists: dict[tuple, _Checklist] = {}
    cameras_used: set[str] = set()
    db.conn.execute("BEGIN")  # one snapshot for the sightings and the frames' spans
    try:
        for sighting in found:
            if not sighting.reviewed and not include_unreviewed:
                summary.skipped.add("species of visits no person reviewed (--include-unreviewed adds them)")
                continue
            if sighting.rank == "unknown":
                summary.skipped.add("unknown birds (eBird has no name for a bird the model could not name)")
                continue
            if _name(sighting) is None:
                summary.skipped.add("sightings without a scientific or common name" if sighting.rank == "species"
                                    else f"{sighting.rank} roll-ups (no reliable eBird name)")
                continue
            cameras_used.add(sighting.camera)
            if sighting.camera in missing:
                continue
            start, end = sighting.started_at.astimezone(zone), sighting.ended_at.astimezone(zone)
            key = (sighting.camera, start.date()) if per == "day" else (sighting.camera, sighting.uid)
            checklist = checklists.get(key)
            if checklist is None:
                checklist = checklists[key] = _Checklist(sighting.camera, start.date(), start, end)
            checklist.start, checklist.end = min(checklist.start, start), max(checklist.end, end)
            best = checklist.species.get(sighting.label)
            if best is None:
                checklist.species[sighting.label] = [sighting, 1, {sighting.uid}]
            else:
                if sighting.individuals > best[0].individuals:
                    best[0] = sighting
                best[2].add(sighting.uid)
                best[1] = len(best[2])
        spans = _frame_spans(db, selection, sorted({c.camera for c in checklists.values()}), zone) \
            if per == "day" and checklists else {}
    finally:
        db.conn.execute("COMMIT")
    problems += [missing[camera] for camera in sorted(cameras_used) if camera in missing]
    if problems:
        raise SharingError("eBird needs what is missing here (nothing was written):\n  " + "\n  ".join(problems))
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as sink:
            writer = csv.writer(sink, lineterminator="\r\n")
            for key in sorted(checklists, key=lambda k: (checklists[k].camera, checklists[k].start)):
                checklist = checklists[key]
                if per == "day":
                    frames = spans.get((checklist.camera, checklist.day))
                    if frames is not None:
                        checklist.start, checklist.end = min(checklist.start, frames[0]), max(checklist.end, frames[1])
                place = located[checklist.camera]
                comment = _submission_comment(config, checklist, per)
                summary.checklists += 1
                for _label, (sighting, visits, _) in sorted(checklist.species.items()):
                    named = _name(sighting)
                    assert named is not None  # sightings without an eBird name were left out above
                    common, genus, species = named
                    writer.writerow([
                        common, genus, species, sighting.individuals, _species_comment(sighting, visits, per),
                        place.name, f"{place.latitude:.6f}", f"{place.longitude:.6f}",
                        checklist.start.strftime(DATE_FORMAT), checklist.start.strftime(TIME_FORMAT),
                        state, country, PROTOCOL, OBSERVERS, _minutes(checklist.start, checklist.end), ALL_REPORTED,
                        "", "", comment])
                    summary.rows += 1
                    summary.species.add(common or f"{genus} {species}")
        os.chmod(temporary, 0o644)
        os.replace(temporary, out)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return summary


def _species_comment(sighting: Sighting, visits: int, per: Per) -> str:
    most = f"at most {sighting.individuals} in one photo"
    seen = f"{visits} camera visit{'s' if visits != 1 else ''}" if per == "day" else "one camera visit"
    who = (f"identified by {sighting.reviewer} from the photos" if sighting.reviewed else
           f"identified by the model {sighting.model_id or '?'}"
           + (f" (confidence {sighting.confidence:.2f})" if sighting.confidence is not None else "")
           + ", not reviewed by a person")
    return f"{most}; {seen}; {who}"


def _submission_comment(config: EdgeConfig, checklist: _Checklist, per: Per) -> str:
    span = "the camera's first to last photo of the day" if per == "day" else "one visit"
    return (f"Automated camera-trap count (trailcam station {config.station.device_id}, camera {checklist.camera}). "
            f"Numbers are the most birds of a species in one photo, never a sum of visits. Duration: {span}. "
            "Not a complete checklist: the camera sees a small field and birds it could not name are left out.")
