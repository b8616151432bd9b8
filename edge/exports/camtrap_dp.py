"""`edge export camtrap-dp`: the station's data as a Camtrap DP 1.0.2 package (TDWG).

Camtrap DP is what ecologists' tools read (GBIF's IPT, the camtrapdp R package, Agouti,
TRAPPER): datapackage.json (project, people, licences, coverage) and three tables, deployments
(where each camera stood, from when to when), media (one row per frame) and observations. GBIF
publishes only EVENT-level observations: one per species a visit counts (edge/store/events.py,
"Per-species counts in a visit"), its `count` that species' MaxN (the most birds of it in one
frame), so a Mourning Dove and a Downy Woodpecker at the feeder together are two observations
of one eventID, and their counts add up to `edge counts --individuals` as the standard requires;
a visit that counts nothing (rejected) is one blank. MEDIA-level observations keep the detail:
one per detected bird with its box, one blank per frame the detector found empty, one per frame
classified whole, and one `human` / `vehicle` per frame in which a detector with such classes
(MegaDetector) found people / vehicles (instead of the blank when there is no bird). With
[privacy] hide_people (the default) a frame with a person is listed with filePublic false, as the
standard asks for media that must stay private.

What a reviewer said wins and is said to be human (classifiedBy: the reviewer); the machine's
rows name the model. Everything streams (csv module, one cursor per table), so a year of
frames costs no more memory than a day. The package is written into a temporary folder and
renamed into place: an export that fails half-way leaves nothing behind.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

import edge
from edge.classify.decision import NOT_BIRD, UNCONFIRMED
from edge.config import EdgeConfig
from edge.detect.repeats import REPEAT
from edge.ecology.deployments import Deployment, project_lacks, resolve_deployments
from edge.ecology.media import (
    Frame,
    Selection,
    camera_folders,
    deployment_window,
    events,
    frames,
    latest_reviews,
    local_text,
    media_type,
    relative_path,
    reviewed_birds,
    utc_now,
)
from edge.store.events import counted
from edge.store.taxa import Taxon, taxa
from edge.store.times import parse_utc

VERSION = "1.0.2"
BASE_URL = f"https://raw.githubusercontent.com/tdwg/camtrap-dp/{VERSION}/"
PROFILE_URL = BASE_URL + "camtrap-dp-profile.json"
TABLES = ("deployments", "media", "observations")
SCHEMA_URLS = {name: f"{BASE_URL}{name}-table-schema.json" for name in TABLES}

# Column order of the 1.0.2 table schemas (tests/edge/exports checks them against the schema files).
DEPLOYMENT_FIELDS = (
    "deploymentID", "locationID", "locationName", "latitude", "longitude", "coordinateUncertainty",
    "deploymentStart", "deploymentEnd", "setupBy", "cameraID", "cameraModel", "cameraDelay", "cameraHeight",
    "cameraDepth", "cameraTilt", "cameraHeading", "detectionDistance", "timestampIssues", "baitUse",
    "featureType", "habitat", "deploymentGroups", "deploymentTags", "deploymentComments",
)
MEDIA_FIELDS = (
    "mediaID", "deploymentID", "captureMethod", "timestamp", "filePath", "filePublic", "fileName",
    "fileMediatype", "exifData", "favorite", "mediaComments",
)
OBSERVATION_FIELDS = (
    "observationID", "deploymentID", "mediaID", "eventID", "eventStart", "eventEnd", "observationLevel",
    "observationType", "cameraSetupType", "scientificName", "count", "lifeStage", "sex", "behavior",
    "individualID", "individualPositionRadius", "individualPositionAngle", "individualSpeed", "bboxX", "bboxY",
    "bboxWidth", "bboxHeight", "classificationMethod", "classifiedBy", "classificationTimestamp",
    "classificationProbability", "observationTags", "observationComments",
)
MIN_BOX_SIDE = 1e-15  # the observations schema's bboxWidth/bboxHeight minimum


class ExportError(Exception):
    """The export cannot be written as asked (the CLI exits 2; nothing was written)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass
class ExportSummary:
    """What was written, and what an ecologist should know about it."""

    out: Path
    deployments: int = 0
    media: int = 0
    event_observations: int = 0
    media_observations: int = 0
    observation_types: dict[str, int] = field(default_factory=dict)
    without_scientific_name: set[str] = field(default_factory=set)
    from_data: list[str] = field(default_factory=list)  # "deployment: start from the first frame"
    outside: int = 0  # frames and events outside their deployment's start and end, left out
    private_media: int = 0  # frames with a person, filePublic false ([privacy] hide_people)
    problems: list[str] = field(default_factory=list)  # what --force wrote anyway
    warnings: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        types = ", ".join(f"{kind} {n}" for kind, n in sorted(self.observation_types.items()))
        out = [f"wrote Camtrap DP {VERSION} package {self.out}",
               f"deployments: {self.deployments}",
               f"media: {self.media}",
               f"observations: {self.event_observations} event-level ({types or 'none'}), "
               f"{self.media_observations} media-level"]
        if self.private_media:
            out.append(f"media with people kept private (filePublic false, [privacy] hide_people): {self.private_media}")
        if self.without_scientific_name:
            out.append("labels without a scientific name (scientificName left empty): "
                       + ", ".join(sorted(self.without_scientific_name)))
        out += [f"deployment {line}" for line in self.from_data]
        if self.outside:
            out.append(f"left out: {self.outside} frames and events outside their deployment's start and end")
        out += [f"warning: {line}" for line in self.warnings]
        out += [f"written despite (--force): {line}" for line in self.problems]
        return out


# -- what would make the package invalid ---------------------------------------------------


def problems(config: EdgeConfig, deployments: list[Deployment]) -> tuple[list[str], list[str]]:
    """(blocking, warnings): what Camtrap DP requires and is missing, one line per dotted key, and
    what it only recommends. A camera with data but no [[cameras]] table has no key to name: it is
    named by camera."""
    blocking, warnings = project_lacks(config.project), []
    project = config.project
    if not project.license:
        warnings.append("project.license: missing (no licences in datapackage.json; GBIF publishes only licensed data)")
    elif not project.media_license:
        warnings.append(f"project.media_license: missing (the media licence is taken to be {project.license})")
    index = {camera.name: i for i, camera in enumerate(config.cameras)}
    for deployment in deployments:
        if deployment.camera not in index:
            blocking.append(f"camera {deployment.camera!r}: has data in the database but no [[cameras]] table "
                            "(no deployment: latitude and longitude are required by Camtrap DP)")
            continue
        key = f"cameras[{index[deployment.camera]}].deployment"
        if not deployment.configured:
            blocking.append(f"{key}: missing for camera {deployment.camera!r} (latitude and longitude are required "
                            "by Camtrap DP)")
        elif deployment.latitude is None or deployment.longitude is None:
            blocking.append(f"{key}.latitude, {key}.longitude: missing for camera {deployment.camera!r} "
                            "(required by Camtrap DP)")
    return blocking, warnings


def prepare_out(out: Path) -> None:
    """Refuse an output folder that holds anything (an export never mixes with other files)."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExportError([f"--out: {out} exists and is not an empty folder (nothing was written)"])


# -- the tables ----------------------------------------------------------------------------


def _text(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def deployment_row(deployment: Deployment, zone) -> dict[str, Any]:
    table = deployment.config
    return {
        "deploymentID": deployment.deployment_id,
        "locationID": table.location_id,
        "locationName": table.location_name or deployment.camera,
        "latitude": table.latitude,
        "longitude": table.longitude,
        "coordinateUncertainty": table.coordinate_uncertainty_m,
        "deploymentStart": local_text(deployment.start, zone),
        "deploymentEnd": local_text(deployment.end, zone),
        "setupBy": table.setup_by,
        "cameraID": table.camera_id,
        "cameraModel": table.camera_model,
        "cameraDelay": table.camera_delay_s,
        "cameraHeight": table.camera_height_m,
        "cameraDepth": table.camera_depth_m,
        "cameraTilt": table.camera_tilt,
        "cameraHeading": table.camera_heading,
        "detectionDistance": table.detection_distance_m,
        "timestampIssues": deployment.timestamp_issues,
        "baitUse": table.bait_use,
        "featureType": table.feature_type,
        "habitat": table.habitat,
        "deploymentGroups": " | ".join(table.groups) or None,
        "deploymentTags": " | ".join(table.tags) or None,
        "deploymentComments": table.comments,
    }


def clamp_box(ymin: float, xmin: float, ymax: float, xmax: float) -> tuple[float, float, float, float]:
    """(bboxX, bboxY, bboxWidth, bboxHeight) within the schema's bounds: x, y in [0, 1], sides in
    [1e-15, 1] and inside the frame. A box the detector kept is inside already (identity)."""
    x = min(max(xmin, 0.0), 1.0)
    y = min(max(ymin, 0.0), 1.0)
    width = min(max(min(xmax, 1.0) - x, MIN_BOX_SIDE), 1.0)
    height = min(max(min(ymax, 1.0) - y, MIN_BOX_SIDE), 1.0)
    return x, y, width, height


_TIME_SOURCES = {
    "exif": "EXIF time with its offset", "exif-local": "EXIF time read in the station's zone",
    "exif-camera": "EXIF time read in the camera's own zone", "mtime": "the file's time (no EXIF time)",
}


def time_comment(source: str | None, flags: str | None) -> str | None:
    """Where a medium's timestamp came from, when a reader should know (a file time, a corrected
    clock, a doubtful or resolved time); None for a plain EXIF time."""
    base, corrected, _ = (source or "").partition("+corrected")
    parts = []
    if base == "mtime" or corrected or flags:
        parts.append(f"timestamp: {_TIME_SOURCES.get(base, base or 'unknown')}")
    if corrected:
        parts.append("camera clock corrected")
    if flags:
        parts.append("time flags: " + flags.replace(",", ", "))
    return "; ".join(parts) or None


def taxon_rank(name: str) -> str | None:
    """The rank a scientific name's form shows: `Genus species` → species, a third lower-case word →
    subspecies, one capitalised word → family (-idae), order (-formes) or genus; else unknown."""
    words = name.split()
    if not words or not words[0][:1].isupper():
        return None
    if len(words) == 1:
        return "family" if name.endswith("idae") else "order" if name.endswith("formes") else "genus"
    if all(word.islower() and word.isalpha() for word in words[1:]):
        return {2: "species", 3: "subspecies"}.get(len(words))
    return None


class _Writer:
    """One export's state: the taxa, the reviewers, and what the summary counts."""

    def __init__(self, config: EdgeConfig, conn, summary: ExportSummary, names: dict[str, Taxon]) -> None:
        self.config = config
        self.zone = config.station.zone
        self.conn = conn
        self.summary = summary
        self.names = names
        self.event_reviews, self.detection_reviews = latest_reviews(conn)
        self.bird_reviews = reviewed_birds(conn, self.detection_reviews)
        self.used_names: dict[str, Taxon | None] = {}
        self.folders = camera_folders(config)
        base = config.project.media_base_url
        self.base_url = base
        methods = config.project.capture_method
        self.capture_method = methods[0] if len(methods) == 1 else None

    def scientific(self, label: str) -> str | None:
        taxon = self.names.get(label)
        if taxon is None or not taxon.scientific_name:
            self.summary.without_scientific_name.add(label)
            return None
        self.used_names[taxon.scientific_name] = taxon
        return taxon.scientific_name

    def typed(self, label: str | None) -> tuple[str, str | None]:
        """(observationType, scientificName) of what something counts as."""
        if label is None:
            return "blank", None
        if label == "unknown":
            return "unknown", None
        return "animal", self.scientific(label)

    def event_rows(self, event: dict, deployment: Deployment) -> list[dict[str, Any]]:
        """The visit's event-level observations: one per species it counts (count = that species'
        MaxN, so event-level counts add up to `edge counts --individuals`), or one blank when it
        counts nothing (rejected). The headline species keeps the event's uid as its observationID
        (what the previous releases wrote for the whole visit); every other species gets
        `<uid>:<label>`. A database older than schema 6: the visit as its headline, as before."""
        headline, individuals = counted(event)
        counts = event.get("counts")
        if counts is None:
            return [self.event_row(event, deployment, headline, individuals, event["uid"], event["confidence"])]
        if not counts:
            return [self.event_row(event, deployment, None, individuals, event["uid"], None)]
        return [self.event_row(event, deployment, c["species"], c["individuals"], event["uid"], event["confidence"])
                if c["species"] == headline else
                self.event_row(event, deployment, c["species"], c["individuals"], f"{event['uid']}:{c['species']}",
                               c["confidence"])
                for c in counts]

    def event_row(self, event: dict, deployment: Deployment, label: str | None, individuals: int,
                  observation_id: str, confidence: float | None) -> dict[str, Any]:
        """One event-level observation of `label` (None: blank). Who classified it: the reviewer of
        the visit, else the person who confirmed or corrected a bird of it to `label` (rejected its
        birds, for a blank), else the model (with the event's confidence for its headline, that
        name's best for another)."""
        kind, scientific = self.typed(label)
        reviewed = event["review_state"] is not None or event["reviewed_individuals"] is not None
        row: dict[str, Any] = {
            "observationID": observation_id, "deploymentID": deployment.deployment_id, "eventID": event["uid"],
            "eventStart": local_text(event["started_at"], self.zone),
            "eventEnd": local_text(event["ended_at"], self.zone),
            "observationLevel": "event", "observationType": kind, "scientificName": scientific,
            "count": individuals if kind != "blank" else None,
            "observationTags": f"label:{label}" if label else None,
        }
        bird = self.bird_reviews.get((event["id"], label))
        if reviewed:
            reviewer, created = self.event_reviews.get(event["id"], (None, event["reviewed_at"]))
            row.update(classificationMethod="human", classifiedBy=reviewer,
                       classificationTimestamp=local_text(event["reviewed_at"] or created, self.zone)
                       if (event["reviewed_at"] or created) else None)
        elif bird is not None:
            row.update(classificationMethod="human", classifiedBy=bird[0],
                       classificationTimestamp=local_text(bird[1], self.zone) if bird[1] else None)
        else:
            row.update(classificationMethod="machine", classifiedBy=event["model_id"],
                       classificationProbability=_probability(confidence))
        self.summary.observation_types[kind] = self.summary.observation_types.get(kind, 0) + 1
        return row

    def media_row(self, frame: Frame, deployment: Deployment) -> dict[str, Any]:
        relative = relative_path(self.folders, frame.camera, frame.path)
        private = self.config.privacy.hide_people and "person" in frame.object_counts()
        if private:
            self.summary.private_media += 1
        return {
            "mediaID": frame.sha256, "deploymentID": deployment.deployment_id, "captureMethod": self.capture_method,
            "timestamp": local_text(frame.captured_at, self.zone),
            "filePath": (self.base_url + relative) if self.base_url and not private else relative,
            "filePublic": self.base_url is not None and not private, "fileName": relative.rsplit("/", 1)[-1],
            "fileMediatype": media_type(frame.path),
            "mediaComments": time_comment(frame.time_source, frame.time_flags),
        }

    def clip_media_row(self, frame: Frame, deployment: Deployment) -> dict[str, Any]:
        """A video clip's one media row: its content hash, its start, its video media type."""
        row = self.media_row(frame, deployment)
        row.update(mediaID=frame.clip_sha256 or frame.sha256,
                   timestamp=local_text(frame.clip_captured_at or frame.captured_at, self.zone))
        return row

    def media_observations(self, frame: Frame, deployment: Deployment) -> Iterable[dict[str, Any]]:
        stamp = local_text(frame.captured_at, self.zone)
        common = {"deploymentID": deployment.deployment_id, "mediaID": frame.sha256, "eventStart": stamp,
                  "eventEnd": stamp, "observationLevel": "media"}
        people = frame.object_counts()
        for kind, count in people.items():
            # People and vehicles (a MegaDetector's other classes): the frame is a human / vehicle one.
            observation_type = "human" if kind == "person" else "vehicle"
            yield {**common, "observationID": f"{frame.sha256}:{kind}", "eventID": None,
                   "observationType": observation_type, "scientificName": None, "count": count,
                   "classificationMethod": "machine", "observationTags": f"detector:{kind}"}
        if people and frame.birds == 0 and not frame.detections:
            return  # no bird: the human / vehicle rows say what the frame shows (no blank)
        if frame.birds is None or (frame.birds == 0 and not frame.detections):
            # Classified whole (no detector) or empty: one observation of the whole frame.
            label = frame.species if frame.birds is None else None
            kind, scientific = self.typed(label)
            yield {**common, "observationID": f"{frame.sha256}:0", "eventID": frame.event_uid,
                   "observationType": kind, "scientificName": scientific, "count": 1 if label else None,
                   "classificationMethod": "machine",
                   "classifiedBy": frame.model_id if frame.birds is None else None,
                   "classificationProbability": _probability(frame.confidence) if label else None,
                   "observationTags": f"label:{label}" if label else None}
            return
        for detection in frame.detections:
            label = detection.label
            kind, scientific = self.typed(label)
            tags = f"label:{label}" if label else None
            unsure = False
            if detection.not_bird:
                # The classifier's veto (issue 21): an animal the detector boxed that is no bird,
                # so no bird taxon; counted nowhere else (no event, no tally). A box neither model
                # was sure of is `unknown`, the standard's type for "maybe an animal".
                unsure = detection.flag == UNCONFIRMED
                kind = "unknown" if unsure else "animal"
                tags = f"decision:{UNCONFIRMED if unsure else NOT_BIRD}"
            elif detection.repeat:  # a place suppressed as never moving (a rock): blank, tagged why
                tags = f"decision:{REPEAT}"
            x, y, width, height = clamp_box(detection.ymin, detection.xmin, detection.ymax, detection.xmax)
            row = {**common, "observationID": f"{frame.sha256}:{detection.rank}",
                   "eventID": detection.event_uid or frame.event_uid, "observationType": kind,
                   "scientificName": scientific, "count": 1 if label or (detection.not_bird and not unsure) else None,
                   "bboxX": x, "bboxY": y, "bboxWidth": width, "bboxHeight": height,
                   "observationTags": tags}
            if detection.review_state is not None:
                reviewer, created = self.detection_reviews.get(detection.id, (None, None))
                row.update(classificationMethod="human", classifiedBy=reviewer,
                           classificationTimestamp=local_text(created, self.zone) if created else None)
            else:
                row.update(classificationMethod="machine", classifiedBy=frame.model_id,
                           classificationProbability=_probability(detection.confidence))
            yield row


def _probability(value: float | None) -> float | None:
    return None if value is None else min(max(float(value), 0.0), 1.0)


class _Table:
    """A CSV table written row by row in the schema's column order (unknown keys are an error)."""

    def __init__(self, writer, fields: tuple[str, ...]) -> None:
        self.writer = writer
        self.fields = fields
        self.known = frozenset(fields)

    def writerow(self, row: dict[str, Any]) -> None:
        if not self.known.issuperset(row):
            raise KeyError(f"not a column: {sorted(set(row) - self.known)}")
        self.writer.writerow([_text(row.get(name)) for name in self.fields])


def _csv(path: Path, fields: tuple[str, ...]):
    handle = path.open("w", encoding="utf-8", newline="")
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(fields)
    return handle, _Table(writer, fields)




# -- the package ---------------------------------------------------------------------------


def export_camtrap_dp(config: EdgeConfig, db: sqlite_utils.Database, out: Path, selection: Selection, *,
                      force: bool = False, now: datetime | None = None) -> ExportSummary:
    """Write the package into `out` (new or empty). Raises ExportError, having written nothing,
    when `out` holds anything or when Camtrap DP's required metadata is missing (unless `force`:
    then it writes and the summary lists what is missing)."""
    prepare_out(out)
    deployments = resolve_deployments(
        config, db, cameras=list(selection.cameras) or None, since=selection.since, until=selection.until)
    blocking, warnings = problems(config, deployments)
    if blocking and not force:
        raise ExportError(blocking + ["(nothing was written; --force writes the package anyway and lists what is "
                                      "missing)"])
    summary = ExportSummary(out, problems=blocking if force else [], warnings=warnings)
    zone = config.station.zone
    by_camera = {d.camera: d for d in deployments}
    windows = {d.camera: deployment_window(d) for d in deployments}
    cameras = list(by_camera)
    for d in deployments:
        for end, source in (("start", d.start_source), ("end", d.end_source)):
            if source != "config":
                summary.from_data.append(f"{d.deployment_id}: {end} from the {source}")
        if d.doubtful_frames or d.doubtful_events:
            summary.warnings.append(
                f"deployment {d.deployment_id}: {d.doubtful_frames} frame(s) and {d.doubtful_events} visit(s) of camera "
                f"{d.camera} have a doubtful capture time (a camera clock in the future, reset, or before the "
                "deployment's start): timestampIssues true; they are left out of the deployment's start and end "
                "(docs/edge.md, \"Camera clocks\")")

    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        work.chmod(0o755)  # mkdtemp's 0700 is for the work in progress, not for the package to share
        writer = _Writer(config, db.conn, summary, taxa(db))
        handle, table = _csv(work / "deployments.csv", DEPLOYMENT_FIELDS)
        with handle:
            for deployment in deployments:
                table.writerow(deployment_row(deployment, zone))
        summary.deployments = len(deployments)

        first = last = None
        observations, observed = _csv(work / "observations.csv", OBSERVATION_FIELDS)
        with observations:
            if cameras:
                db.conn.execute("BEGIN")  # one snapshot for every table (WAL: the daemon keeps writing)
                try:
                    for event in events(db.conn, selection, cameras):
                        if not windows[event["camera"]](parse_utc(event["started_at"])):
                            summary.outside += 1
                            continue
                        for row in writer.event_rows(event, by_camera[event["camera"]]):
                            observed.writerow(row)
                            summary.event_observations += 1
                    media, listed = _csv(work / "media.csv", MEDIA_FIELDS)
                    clips_listed: set[int] = set()
                    with media:
                        for frame in frames(db.conn, selection, cameras):
                            moment = frame.moment
                            if not windows[frame.camera](moment):
                                summary.outside += 1
                                continue
                            first = moment if first is None or moment < first else first
                            last = moment if last is None or moment > last else last
                            deployment = by_camera[frame.camera]
                            if frame.clip_id is not None:
                                # A video clip is one media row (fileMediatype video/...), its
                                # observations the visits' (event level): its sampled frames are
                                # no media of their own.
                                if frame.clip_id not in clips_listed:
                                    clips_listed.add(frame.clip_id)
                                    listed.writerow(writer.clip_media_row(frame, deployment))
                                    summary.media += 1
                                continue
                            listed.writerow(writer.media_row(frame, deployment))
                            summary.media += 1
                            for row in writer.media_observations(frame, deployment):
                                observed.writerow(row)
                                summary.media_observations += 1
                finally:
                    db.conn.execute("COMMIT")
            else:
                _csv(work / "media.csv", MEDIA_FIELDS)[0].close()
        moments = [m for m in (first, last) if m is not None]
        descriptor = package_descriptor(config, deployments, writer.used_names, moments, selection, now or utc_now())
        (work / "datapackage.json").write_text(json.dumps(descriptor, indent=2, ensure_ascii=False) + "\n",
                                               encoding="utf-8")
        if out.exists():
            out.rmdir()  # empty (checked above): the finished package takes its place
        os.replace(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return summary


def package_descriptor(config: EdgeConfig, deployments: list[Deployment], used: dict[str, Taxon | None],
                       moments: list[datetime], selection: Selection, now: datetime) -> dict[str, Any]:
    """datapackage.json: the profile, the people, licences, the project, coverage in space, time and
    taxa, and the three resources with their schema URLs."""
    project = config.project
    zone = config.station.zone
    device = config.station.device_id
    key = "|".join([device, ",".join(sorted(d.deployment_id for d in deployments)),
                    selection.since.isoformat() if selection.since else "", selection.until.isoformat()
                    if selection.until else ""])
    descriptor: dict[str, Any] = {
        "profile": PROFILE_URL,
        "name": _slug(project.acronym or project.title or f"trailcam-{device}"),
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"trailcam:camtrap-dp:{key}")),
        "created": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "title": project.title or f"Camera-trap observations of station {device}",
        "contributors": [{k: v for k, v in c.model_dump().items() if v is not None} for c in project.contributors],
        "description": (f"Bird visits counted by the trailcam station {device} (detector and classifier on the "
                        "edge, reviewed where a person reviewed them): event-level observations are one per "
                        "species of each independent visit, with the most birds of that species in one frame "
                        "(MaxN); media-level observations are the detected birds with their boxes."),
        "version": "1.0",
        "sources": [{"title": "trailcam", "version": edge.__version__}],
    }
    if project.license:
        descriptor["licenses"] = [{"name": project.license, "scope": "data"},
                                  {"name": project.media_license or project.license, "scope": "media"}]
    if project.bibliographic_citation:
        descriptor["bibliographicCitation"] = project.bibliographic_citation
    block: dict[str, Any] = {"id": project.id, "title": project.title, "acronym": project.acronym,
                             "description": project.description, "path": project.path,
                             "samplingDesign": project.sampling_design,
                             "captureMethod": list(project.capture_method),
                             "individualAnimals": project.individual_animals,
                             "observationLevel": ["media", "event"]}
    descriptor["project"] = {k: v for k, v in block.items() if v is not None}
    # Both or neither (the deployment config says so); both checked so the pair is typed float.
    points = sorted({(d.longitude, d.latitude) for d in deployments
                     if d.latitude is not None and d.longitude is not None})
    spatial: dict[str, Any] = {"type": "MultiPoint", "coordinates": [list(p) for p in points]}
    if points:
        longitudes, latitudes = [p[0] for p in points], [p[1] for p in points]
        spatial["bbox"] = [min(longitudes), min(latitudes), max(longitudes), max(latitudes)]
    descriptor["spatial"] = spatial
    span = moments or [d.start for d in deployments] + [d.end for d in deployments]
    if span:
        descriptor["temporal"] = {"start": min(span).astimezone(zone).date().isoformat(),
                                  "end": max(span).astimezone(zone).date().isoformat()}
    else:
        day = now.astimezone(zone).date().isoformat()
        descriptor["temporal"] = {"start": day, "end": day}
    taxonomic = []
    for scientific in sorted(used):
        taxon = used[scientific]
        entry: dict[str, Any] = {"scientificName": scientific}
        rank = taxon_rank(scientific)
        if rank:
            entry["taxonRank"] = rank
        if taxon is not None and taxon.common_name:
            entry["vernacularNames"] = {"eng": taxon.common_name}
        taxonomic.append(entry)
    descriptor["taxonomic"] = taxonomic
    descriptor["resources"] = [
        {"name": name, "path": f"{name}.csv", "profile": "tabular-data-resource", "format": "csv",
         "mediatype": "text/csv", "encoding": "utf-8", "schema": SCHEMA_URLS[name]} for name in TABLES]
    return descriptor


def _slug(text: str) -> str:
    """A Data Package name: lower-case letters, digits, '-', '_' and '.'."""
    cleaned = "".join(ch if ch.isalnum() and ch.isascii() else "-" for ch in text.lower())
    return "-".join(part for part in cleaned.split("-") if part) or "trailcam"
