"""Deployments: one camera at one place for one period, resolved from the configuration and the data.

Camtrap DP needs, per deployment, an id, coordinates and a start and end; relative abundance
divides by the camera-days between them. The operator writes them in `[cameras.deployment]`;
what is left out is filled from the frames (first and last frame of the camera) and said so,
never invented: coordinates cannot be filled, so `lacks` lists them for `edge check` and the
exports refuse to write a package Camtrap DP would reject (unless told to go ahead).

Frames and visits whose capture time is doubtful (`future`, `before-deployment`, `out-of-order`:
edge/store/clock_checks.py) are no record of when the camera worked: a clock reset to 2000
would start the deployment in 2000, a clock set to 2035 end it there. They are left out of the
first and last record, and the deployment says how many it has (`doubtful_frames`,
`doubtful_events`): its media's times are known to have issues (Camtrap DP `timestampIssues`).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import sqlite_utils

from edge.config import EdgeConfig
from edge.config.deployment import DeploymentConfig, ProjectConfig, as_aware
from edge.store.clock_checks import trusted_sql
from edge.store.times import parse_utc

# A data-derived end is the last record plus this (ends are exclusive; times are stored in ms).
LAST_RECORD_MARGIN = timedelta(milliseconds=1)

Source = Literal["config", "first frame", "last frame", "period"]


@dataclass(frozen=True)
class Deployment:
    """A camera's deployment as the exports and the report use it (times aware, UTC)."""

    deployment_id: str
    camera: str
    config: DeploymentConfig  # the configured table, or an empty one
    start: datetime
    end: datetime
    start_source: Source
    end_source: Source
    first_frame: datetime | None
    last_frame: datetime | None
    configured: bool  # the camera has a [cameras.deployment] table
    # The camera's frames and visits with a doubtful capture time (whenever their clock said they
    # were taken: a wrong time cannot place them in or out of a period).
    doubtful_frames: int = 0
    doubtful_events: int = 0

    @property
    def latitude(self) -> float | None:
        return self.config.latitude

    @property
    def longitude(self) -> float | None:
        return self.config.longitude

    def days(self) -> float:
        """The deployment's length in days (camera-days of effort, before gaps)."""
        return max(0.0, (self.end - self.start).total_seconds() / 86400.0)

    @property
    def timestamp_issues(self) -> bool | None:
        """Camtrap DP's timestampIssues: true when the camera has frames or visits with a doubtful
        capture time (whatever the configuration says: the data prove it), else as configured."""
        if self.doubtful_frames or self.doubtful_events:
            return True
        return self.config.timestamp_issues


def deployment_id(config: EdgeConfig, camera: str, deployment: DeploymentConfig | None) -> str:
    """The configured id, else `<device_id>-<camera>` (stable while neither changes)."""
    if deployment is not None and deployment.id:
        return deployment.id
    return f"{config.station.device_id}-{camera}"


def trusted(conn: sqlite3.Connection, table: str = "frames", alias: str = "") -> str:
    """An SQL condition on `table`'s rows (named `alias` in the query, if any): a capture time
    that is not doubtful (edge/store/clock_checks.py). A database older than schema 6, read
    before the daemon migrated it, has no flags: every row is trusted there."""
    if not any(row[1] == "time_flags" for row in conn.execute(f"PRAGMA table_info({table})")):
        return "1"
    return trusted_sql(f"{alias}.time_flags" if alias else "time_flags")


def doubtful_counts(db: sqlite_utils.Database, camera: str) -> tuple[int, int]:
    """(frames, events) of the camera with a doubtful capture time: the partial index of the
    flagged frames, and the camera's events."""
    conn = db.conn
    frames_ok, events_ok = trusted(conn, "frames"), trusted(conn, "events")
    if frames_ok == "1":
        return 0, 0
    frames = conn.execute(f"SELECT COUNT(*) FROM frames WHERE camera = ? AND time_flags IS NOT NULL AND NOT {frames_ok}",
                          (camera,)).fetchone()[0]
    events = conn.execute(f"SELECT COUNT(*) FROM events WHERE camera = ? AND time_flags IS NOT NULL AND NOT {events_ok}",
                          (camera,)).fetchone()[0]
    return int(frames), int(events)


def _frame_span(db: sqlite_utils.Database, camera: str) -> tuple[datetime | None, datetime | None]:
    """The camera's first and last record: its ok frames and its events, those with a doubtful
    capture time left out. Events count too because retention prunes old frame rows but never
    events, and a pruned visit must stay inside its deployment (it is in `edge counts`). Each end
    is one probe of an index (frames by camera and capture time, events by camera and start),
    not a scan of the camera's frames (past the few doubtful ones at that end)."""
    conn = db.conn
    frames_ok, events_ok = trusted(conn, "frames"), trusted(conn, "events")
    ends = []
    for order in ("ASC", "DESC"):
        frame = conn.execute(
            f"SELECT captured_at FROM frames WHERE camera = ? AND captured_at IS NOT NULL AND status = 'ok' "
            f"AND {frames_ok} ORDER BY captured_at {order} LIMIT 1", (camera,)).fetchone()
        column = "started_at" if order == "ASC" else "ended_at"
        event = conn.execute(
            f"SELECT {column} FROM events WHERE camera = ? AND {events_ok} ORDER BY started_at {order} LIMIT 1",
            (camera,)).fetchone()
        found = [parse_utc(row[0]) for row in (frame, event) if row and row[0]]
        ends.append((min(found) if order == "ASC" else max(found)) if found else None)
    return ends[0], ends[1]


def database_cameras(db: sqlite_utils.Database) -> list[str]:
    """Cameras that have frames or events in the database (a camera removed from the configuration
    still has its data)."""
    rows = db.conn.execute("SELECT camera FROM frames UNION SELECT camera FROM events ORDER BY 1").fetchall()
    return [row[0] for row in rows]


def resolve_deployments(
    config: EdgeConfig,
    db: sqlite_utils.Database,
    *,
    cameras: list[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[Deployment]:
    """The deployments of the configured cameras and of every other camera with data, each clipped
    to [since, until) when given. Start: configured, else the first frame, else `since`; end:
    configured, else the last frame (a camera silent at the end of the period is not given
    effort it may not have had: `end_source` says so), else `until`. A camera with no frames and no
    configured start is left out (it has no effort to report)."""
    zone = config.station.zone
    configured = {camera.name: camera.deployment for camera in config.cameras}
    names = list(configured) + [name for name in database_cameras(db) if name not in configured]
    if cameras:
        names = [name for name in names if name in cameras]
    found = []
    for name in names:
        table = configured.get(name)
        first, last = _frame_span(db, name)
        start: datetime | None
        end: datetime | None
        start_source: Source
        end_source: Source
        if table is not None and table.start is not None:
            start, start_source = as_aware(table.start, zone).astimezone(UTC), "config"
        elif first is not None:
            start, start_source = first, "first frame"
        else:
            start, start_source = since, "period"
        if table is not None and table.end is not None:
            end, end_source = as_aware(table.end, zone, end=True).astimezone(UTC), "config"
        elif last is not None:
            # Ends are exclusive everywhere (a configured end date is the next day's start,
            # --until likewise): a data-derived end lies just after the last record, so the last
            # frame and a one-frame visit at that instant are inside, in the exports and the report.
            end, end_source = last + LAST_RECORD_MARGIN, "last frame"
        else:
            end, end_source = until, "period"
        if start is None or end is None:
            continue
        if since is not None and since > start:
            start, start_source = since, "period"
        if until is not None and until < end:
            end, end_source = until, "period"
        if end < start:  # the period misses the deployment
            continue
        found.append(Deployment(
            deployment_id(config, name, table), name, table or DeploymentConfig(), start, end,
            start_source, end_source, first, last, table is not None, *doubtful_counts(db, name)))
    return found


def project_lacks(project: ProjectConfig) -> list[str]:
    """The project metadata Camtrap DP requires and `project` lacks, one line per dotted key. One
    function because `edge check` (lacks) and the export (camtrap_dp.problems) must agree on what
    blocks a package: the export refuses exactly what the check warns about."""
    problems = []
    if not project.title:
        problems.append("project.title: missing (Camtrap DP requires the project's title)")
    if not project.contributors:
        problems.append("project.contributors: none (Camtrap DP requires at least one [[project.contributors]])")
    if project.sampling_design is None:
        problems.append("project.sampling_design: missing (Camtrap DP requires it, e.g. \"targeted\" at feeders)")
    return problems


def lacks(config: EdgeConfig) -> list[str]:
    """What a Camtrap DP export of this configuration would lack, one line per dotted key
    (`edge check` prints them as warnings: counting works without any of it)."""
    problems = project_lacks(config.project)
    project = config.project
    if not project.license:
        problems.append("project.license: missing (GBIF publishes only licensed data, e.g. \"CC0-1.0\" or \"CC-BY-4.0\")")
    ids: dict[str, str] = {}
    for index, camera in enumerate(config.cameras):
        key = f"cameras[{index}].deployment"
        table = camera.deployment
        if table is None:
            problems.append(f"{key}: missing for camera {camera.name!r} (latitude and longitude are required by "
                            "Camtrap DP; start and end default to its first and last frame)")
            continue
        if table.latitude is None:
            problems.append(f"{key}.latitude, {key}.longitude: missing for camera {camera.name!r} "
                            "(required by Camtrap DP)")
        if table.start is None:
            problems.append(f"{key}.start: missing for camera {camera.name!r} (the export uses its first frame: "
                            "effort is underestimated when the camera saw nothing at first)")
        did = deployment_id(config, camera.name, table)
        if did in ids:
            problems.append(f"{key}.id: {did!r} is also the deployment of camera {ids[did]!r} (ids are unique)")
        ids[did] = camera.name
    return problems


def labels_without_scientific_name(labels, no_bird_label: str | None = None) -> list[str]:
    """Species labels (not the no-bird class) with no scientific name: Camtrap DP's
    scientificName stays empty for them and the export lists them."""
    return [label.name for label in labels if not label.scientific_name and label.name != no_bird_label]
