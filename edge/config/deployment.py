"""`[[cameras]]` `deployment` sub-tables and the `[project]` section: what ecologists need to know
about where and how the frames were taken.

A camera-trap data set is only science with its metadata: where each camera stood (a deployment,
in Camtrap DP's words: one camera at one location for one period), since when and until when (the
effort that relative abundance divides by), how high, whether it was baited, who set it up, and
whose project it is under which licence. None of it changes what the daemon does; the exports
(edge/ecology) and `edge report` read it, and `edge check` says what an export would lack.

Field names follow Camtrap DP 1.0.2's deployments table and package metadata (snake_case here,
camelCase there), so a reader of either recognises them.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from edge.config.base import Section

# Camtrap DP 1.0.2 deployments.featureType.
FeatureType = Literal[
    "roadPaved", "roadDirt", "trailHiking", "trailGame", "roadUnderpass", "roadOverpass", "roadBridge",
    "culvert", "burrow", "nestSite", "carcass", "waterSource", "fruitingTree",
]
# Camtrap DP 1.0.2 project.samplingDesign.
SamplingDesign = Literal[
    "simpleRandom", "systematicRandom", "clusteredRandom", "experimental", "targeted", "opportunistic",
]
CaptureMethod = Literal["activityDetection", "timeLapse"]
ContributorRole = Literal["contact", "principalInvestigator", "rightsHolder", "publisher", "contributor"]

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
Moment = dt.datetime | dt.date


def as_aware(value: Moment, zone: dt.tzinfo, *, end: bool = False) -> dt.datetime:
    """A configured start or end as an aware date-time: a TOML local date-time is in the station's
    zone, a bare date is that local day's start (or, for an end, the next day's start: the end
    day is included, as `--until DATE` includes it)."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=zone)
    day = value + dt.timedelta(days=1) if end else value
    return dt.datetime.combine(day, dt.time(), tzinfo=zone)


def _default_capture_method() -> list[CaptureMethod]:
    """A fresh list per project (a mutable default must not be shared), typed so the literal
    checks against CaptureMethod."""
    return ["activityDetection"]


class DeploymentConfig(Section):
    """One camera at one location for one period (Camtrap DP's deployment)."""

    id: str | None = Field(
        default=None,
        description="deploymentID: unique within the project and stable across exports (letters, digits, "
                    "'.', '_', ':' or '-'). Unset: `<device_id>-<camera name>`")
    location_id: str | None = Field(
        default=None, description="locationID: an identifier of the location, shared by the deployments at the "
                                  "same spot over time")
    location_name: str | None = Field(default=None, description="locationName: the location's name")
    latitude: float | None = Field(
        default=None, ge=-90, le=90, description="Decimal degrees, WGS84 (required by Camtrap DP)")
    longitude: float | None = Field(
        default=None, ge=-180, le=180, description="Decimal degrees, WGS84 (required by Camtrap DP)")
    coordinate_uncertainty_m: int | None = Field(
        default=None, ge=1, description="coordinateUncertainty: the coordinates' uncertainty radius in metres "
                                        "(about 30 for a phone's GPS)")
    start: Moment | None = Field(
        default=None,
        description="deploymentStart: when the camera was set up, a TOML date-time (with offset, or local to "
                    "[station] timezone) or date. Unset: the camera's first frame (the export says so)")
    end: Moment | None = Field(
        default=None,
        description="deploymentEnd: when it was taken down; a date includes that whole day. Unset: the "
                    "camera's last frame, or the end of the exported period (the export says so)")
    setup_by: str | None = Field(default=None, description="setupBy: who set the camera up")
    camera_id: str | None = Field(default=None, description="cameraID: the camera's serial number or asset tag")
    camera_model: str | None = Field(
        default=None, description="cameraModel: manufacturer and model, e.g. \"Reconyx-PC800\"")
    camera_delay_s: int | None = Field(
        default=None, ge=0, description="cameraDelay: the camera's pre-set seconds between two triggers")
    camera_height_m: float | None = Field(default=None, ge=0, description="cameraHeight: metres above the ground")
    camera_depth_m: float | None = Field(
        default=None, ge=0, description="cameraDepth: metres below the water surface (aquatic deployments)")
    camera_tilt: int | None = Field(
        default=None, ge=-90, le=90, description="cameraTilt: degrees from horizontal (-90 straight down)")
    camera_heading: int | None = Field(
        default=None, ge=0, le=360, description="cameraHeading: degrees from north (0) clockwise")
    detection_distance_m: float | None = Field(
        default=None, ge=0, description="detectionDistance: the farthest an animal is detected, in metres")
    timestamp_issues: bool | None = Field(
        default=None, description="timestampIssues: true when the camera's clock was known to be wrong "
                                  "(date-times of its media are unreliable)")
    bait_use: bool | None = Field(default=None, description="baitUse: whether bait (or a feeder) attracted animals")
    feature_type: FeatureType | None = Field(
        default=None, description="featureType: the feature the camera watches (Camtrap DP's vocabulary: "
                                  "nestSite, waterSource, fruitingTree, trailGame, ...)")
    habitat: str | None = Field(default=None, description="habitat: a short description of the habitat")
    groups: list[str] = Field(
        default_factory=list, description="deploymentGroups: groups the deployment belongs to (a study "
                                          "area, a season, a treatment)")
    tags: list[str] = Field(default_factory=list, description="deploymentTags: free keywords")
    comments: str | None = Field(default=None, description="deploymentComments")

    @field_validator("id", "location_id")
    @classmethod
    def _identifier(cls, value: str | None) -> str | None:
        if value is not None and not _ID.match(value):
            raise ValueError("must be 1-128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> DeploymentConfig:
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("latitude and longitude go together: give both or neither")
        if self.start is not None and self.end is not None:
            start, end = as_aware(self.start, dt.UTC), as_aware(self.end, dt.UTC, end=True)
            if end <= start:
                raise ValueError(f"end ({self.end}) must be after start ({self.start})")
        return self


class ContributorConfig(Section):
    """One person or organisation of the project (Camtrap DP package contributors)."""

    title: str = Field(min_length=1, description="Name of the person or organisation")
    email: str | None = Field(default=None, description="E-mail address")
    role: ContributorRole = Field(
        default="contributor",
        description="contact, principalInvestigator, rightsHolder, publisher or contributor")
    organization: str | None = Field(default=None, description="The person's organisation")
    path: str | None = Field(default=None, description="A web page or ORCID of the contributor")


class ProjectConfig(Section):
    """The project the station's data belongs to (Camtrap DP package and project metadata)."""

    id: str | None = Field(default=None, description="The project's identifier (e.g. a DOI or a short code)")
    title: str | None = Field(default=None, description="The project's title (required by Camtrap DP)")
    acronym: str | None = Field(default=None, description="A short name")
    description: str | None = Field(default=None, description="What the project studies, in a paragraph")
    path: str | None = Field(default=None, description="The project's web page")
    contributors: list[ContributorConfig] = Field(
        default_factory=list,
        description="People and organisations: `[[project.contributors]]` tables with title, email, role, "
                    "organization, path (at least one is required by Camtrap DP)")
    license: str | None = Field(
        default=None,
        description="The data's licence as an SPDX identifier or Creative Commons name (e.g. \"CC0-1.0\", "
                    "\"CC-BY-4.0\"); required to publish on GBIF")
    media_license: str | None = Field(
        default=None, description="The licence of the photos themselves (e.g. \"CC-BY-NC-4.0\")")
    sampling_design: SamplingDesign | None = Field(
        default=None,
        description="How the locations were chosen: simpleRandom, systematicRandom, clusteredRandom, "
                    "experimental, targeted (e.g. at feeders) or opportunistic (required by Camtrap DP)")
    capture_method: list[CaptureMethod] = Field(
        default_factory=_default_capture_method,
        description="How the cameras were triggered: activityDetection (motion/heat) and/or timeLapse")
    individual_animals: bool = Field(
        default=False, description="Whether individuals are identified (never, by this software)")
    bibliographic_citation: str | None = Field(default=None, description="How to cite the data")
    media_base_url: str | None = Field(
        default=None,
        description="Where the photos are published (a URL prefix); media.csv's filePath is this plus the "
                    "frame's path relative to its camera folder, and filePublic is true. Unset: relative "
                    "paths, filePublic false")

    @field_validator("media_base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s]+$", value):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/") + "/" if value else value
