"""`edge export inaturalist`: a folder for iNaturalist's uploaders, one observation per species a
visit counts; nothing is sent anywhere.

iNaturalist takes observations two ways, and the folder serves both:

- `photos/`: one photo per observation, the visit's frame with the most birds of that species,
  copied with its EXIF set (edge/exports/exif.py): DateTimeOriginal + OffsetTimeOriginal (the
  station-local capture time with its offset), GPS latitude/longitude (the camera's deployment,
  else the station) with GPSHPositioningError (its coordinate_uncertainty_m), ImageDescription
  (the note below). Dropped on the web uploader (inaturalist.org/observations/upload), each
  becomes an observation with its time and place; the species is typed in or taken from the
  file's name, which starts with it.
- `observations.csv`: iNaturalist's "Import observations from a CSV file" (the
  BulkObservationFile importer): a header row, then 8 columns by position: Taxon name, Date
  observed, Description, Place name, Latitude / y coord / northing, Longitude / x coord /
  easting, Tags, Geoprivacy. The date is `YYYY-MM-DD HH:MM:SS +HHMM` (an offset the importer
  reads as the zone). That importer takes no photos and no coordinate precision: both are in
  the Description ("photo: photos/…", "within 30 m").

iNaturalist's rule is one organism per observation: a visit with a dove and a woodpecker is two
observations that share the photo (its FAQ says to duplicate the photo). The taxon is the
scientific name (iNaturalist matches it whatever the rank: "Turdus" for a genus roll-up,
"Turdidae"); unknown birds are left out (a bird nobody could name is no observation to share).
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import sqlite_utils

from edge.classify.decision import NOT_COUNTED_FLAGS
from edge.config import EdgeConfig
from edge.ecology.media import Selection
from edge.exports.exif import ExifError, write_tagged_copy
from edge.exports.sightings import Place, SharingError, Sighting, Skipped, places, sightings
from edge.store.times import parse_utc

COLUMNS = ("Taxon name", "Date observed", "Description", "Place name", "Latitude / y coord / northing",
           "Longitude / x coord / easting", "Tags", "Geoprivacy")
DATE_FORMAT = "%Y-%m-%d %H:%M:%S %z"
TAGS = "trailcam,camera trap"


@dataclass
class InatSummary:
    out: Path
    observations: int = 0
    photos: int = 0
    taxa: set[str] = field(default_factory=set)
    skipped: Skipped = field(default_factory=Skipped)

    def lines(self) -> list[str]:
        return [f"wrote an iNaturalist folder {self.out}: photos/ for the web uploader (time and place in EXIF), "
                "observations.csv for its CSV import; nothing was uploaded",
                f"observations: {self.observations} ({self.photos} photos), taxa: {', '.join(sorted(self.taxa)) or 'none'}",
                *self.skipped.lines()]


def _label(species, kind, state, reviewed, flag) -> str | None:
    """What a detection counts as (edge.ecology.media.Detection.label's rule)."""
    if state == "rejected" or (flag in NOT_COUNTED_FLAGS and not reviewed):
        return None
    if reviewed:
        return reviewed
    return species if kind != "none" and species else "unknown"


def best_frames(conn, event_ids: list[int]) -> dict[int, dict[str | None, tuple]]:
    """event id → {label → (path, stored_path, captured_at) of the frame with the most birds of that
    label (then the most confident)}; the key None holds the visit's frame with the most birds
    of any kind (for a visit a review renamed as a whole)."""
    scores: dict[int, dict[str | None, tuple]] = defaultdict(dict)

    def offer(event_id: int, label: str | None, rank: tuple, frame: tuple) -> None:
        current = scores[event_id].get(label)
        if current is None or rank > current[0]:
            scores[event_id][label] = (rank, frame)

    for start in range(0, len(event_ids), 500):
        chunk = event_ids[start:start + 500]
        marks = ",".join("?" * len(chunk))
        per_frame: dict[tuple[int, int], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        frames: dict[int, tuple] = {}
        for event_id, frame_id, path, stored, captured, species, kind, state, reviewed, confidence, flag in conn.execute(
                f"""SELECT d.event_id, f.id, f.path, f.stored_path, f.captured_at, d.species, d.kind, d.review_state,
                           d.reviewed_species, d.confidence, d.flag
                      FROM detections AS d JOIN frames AS f ON f.id = d.frame_id
                     WHERE d.event_id IN ({marks}) AND f.status = 'ok'""", chunk):
            label = _label(species, kind, state, reviewed, flag)
            frames[frame_id] = (path, stored, captured)
            if label is not None:
                per_frame[(event_id, frame_id)][label].append(confidence or 0.0)
        for (event_id, frame_id), labels in per_frame.items():
            # -captured_at: the earliest of equal frames wins (a tuple compares it as text, reversed below)
            for label, confidences in labels.items():
                offer(event_id, label, (len(confidences), max(confidences), _earlier(frames[frame_id][2])),
                      frames[frame_id])
            offer(event_id, None, (sum(map(len, labels.values())), 0.0, _earlier(frames[frame_id][2])),
                  frames[frame_id])
        for event_id, path, stored, captured, species, confidence in conn.execute(
                f"""SELECT event_id, path, stored_path, captured_at, species, confidence FROM frames
                     WHERE event_id IN ({marks}) AND status = 'ok' AND birds IS NULL""", chunk):
            rank = (1, confidence or 0.0, _earlier(captured))
            if species:
                offer(event_id, species, rank, (path, stored, captured))
            offer(event_id, None, rank, (path, stored, captured))
    return {event_id: {label: frame for label, (_, frame) in labels.items()} for event_id, labels in scores.items()}


def _earlier(captured: str | None) -> float:
    return -parse_utc(captured).timestamp() if captured else float("-inf")


def _file(frame: tuple | None) -> Path | None:
    if frame is None:
        return None
    for candidate in (frame[1], frame[0]):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def _photo(frames: dict[str | None, tuple], label: str | None) -> tuple[tuple, Path] | None:
    """(frame, its file) to share for `label`: the label's best frame, else the visit's best,
    the first whose file is still there. One choice for both, so that the observation's time is
    the time of the photo it carries."""
    for frame in (frames.get(label), frames.get(None)):
        if frame is not None and (source := _file(frame)) is not None:
            return frame, source
    return None


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-") or "bird"


def taxon_name(sighting: Sighting) -> str | None:
    """The name iNaturalist matches: the scientific name ("Turdus sp." as its genus "Turdus")."""
    scientific = (sighting.scientific_name or "").strip()
    if scientific.endswith(" sp."):
        scientific = scientific[:-4].strip()
    return scientific or None


def description(sighting: Sighting, place: Place, photo: str) -> str:
    """The observation's note: where it comes from, who named it, how sure, and what the CSV cannot say."""
    who = (f"identified by {sighting.reviewer} from the photos" if sighting.reviewed else
           f"identified by the model {sighting.model_id or '?'}"
           + (f" with confidence {sighting.confidence:.2f}" if sighting.confidence is not None else "")
           + ", not reviewed by a person")
    where = f"coordinates within {place.uncertainty_m} m" if place.uncertainty_m else "coordinates of the camera"
    model = f"; model {sighting.model_id}" if sighting.reviewed and sighting.model_id else ""
    return (f"Trail camera photo ({place.camera}); {who}{model}; at most {sighting.individuals} in one photo "
            f"of the visit; {where}; photo: {photo}")


def prepare_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SharingError(f"--out: {out} exists and is not an empty folder (nothing was written)")


def export_inaturalist(config: EdgeConfig, db: sqlite_utils.Database, out: Path, selection: Selection, *,
                       include_unreviewed: bool = False, geoprivacy: str | None = None) -> InatSummary:
    """Write the folder `out` (new or empty), or refuse (SharingError) when a camera with
    sightings to export has no coordinates."""
    prepare_out(out)
    zone = config.station.zone
    geoprivacy = geoprivacy or config.sharing.geoprivacy
    summary = InatSummary(out)
    deployments, found = sightings(config, db, selection, summary.skipped)
    located, missing = places(config, deployments)
    chosen: list[Sighting] = []
    db.conn.execute("BEGIN")
    try:
        for sighting in found:
            if not sighting.reviewed and not include_unreviewed:
                summary.skipped.add("species of visits no person reviewed (--include-unreviewed adds them)")
            elif sighting.rank == "unknown":
                summary.skipped.add("unknown birds")
            elif taxon_name(sighting) is None:
                summary.skipped.add("sightings of a label without a scientific name")
            else:
                chosen.append(sighting)
        lacking = sorted({s.camera for s in chosen if s.camera in missing})
        if lacking:
            raise SharingError("iNaturalist observations need coordinates (nothing was written):\n  "
                               + "\n  ".join(missing[camera] for camera in lacking))
        photos = best_frames(db.conn, sorted({s.event_id for s in chosen}))
    finally:
        db.conn.execute("COMMIT")
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        (work / "photos").mkdir()
        with (work / "observations.csv").open("w", encoding="utf-8", newline="") as sink:
            writer = csv.writer(sink, lineterminator="\r\n")
            writer.writerow(COLUMNS)
            for sighting in chosen:
                shared = _photo(photos.get(sighting.event_id, {}), sighting.label)
                if shared is None:
                    summary.skipped.add("observations whose photo file is gone (retention) or was never kept")
                    continue
                frame, source = shared
                taken = parse_utc(frame[2]).astimezone(zone)
                place = located[sighting.camera]
                name = taxon_name(sighting)
                assert name is not None  # sightings without a taxon name were left out above
                photo = (f"photos/{taken:%Y-%m-%d_%H%M%S}_{_slug(name)}_{_slug(sighting.camera)}_"
                         f"{sighting.uid[:8]}.jpg")
                note = description(sighting, place, photo)
                try:
                    write_tagged_copy(source, work / photo, taken=taken, latitude=place.latitude,
                                      longitude=place.longitude, uncertainty_m=place.uncertainty_m, description=note)
                except ExifError as error:
                    summary.skipped.add(f"observations whose photo could not be read ({error})")
                    continue
                summary.photos += 1
                writer.writerow([name, taken.strftime(DATE_FORMAT), note, place.name, f"{place.latitude:.6f}",
                                 f"{place.longitude:.6f}", TAGS, geoprivacy])
                summary.observations += 1
                summary.taxa.add(name)
        for path in (work, work / "photos"):
            os.chmod(path, 0o755)
        if out.exists():
            out.rmdir()  # empty (prepare_out)
        os.replace(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return summary
