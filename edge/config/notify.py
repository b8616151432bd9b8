"""[notify] section: push notifications through Apprise (rules and delivery: edge/alerts/, docs/notifications.md).

Apprise URLs often hold a token or a password (`tgram://bottoken/chatid`,
`mailto://user:password@host`): they are only ever logged as their scheme and a short hash,
and may come from the environment (`TRAILCAM__NOTIFY__URLS='["ntfy://..."]'`) instead of the
file. Whether each URL is one Apprise understands is checked at start (`edge check`, `edge
run`), where Apprise is importable; this module only checks the shape of the keys.
"""

from __future__ import annotations

import re
from datetime import time
from typing import Literal

from pydantic import Field, field_validator, model_validator

from edge.config.base import Section

# What may trigger a visit's notification (edge/alerts/rules.py says how each is decided).
TRIGGERS = ("new_species", "out_of_range", "first_of_year", "first_of_season", "first_of_day", "every_visit")

_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_RANGE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")


def parse_clock(value: str) -> time:
    """"HH:MM" (24 h) → a time; the validators below have checked the shape."""
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


class NotifyConfig(Section):
    enabled: bool = Field(
        False, description="Send notifications (needs the `notify` extra: pip install 'trailcam[notify]', "
                           "which brings Apprise). Queued in the database in the frame's own transaction and "
                           "delivered by a background thread, so nothing is lost across restarts")
    urls: list[str] = Field(
        default_factory=list,
        description="Apprise URLs, one per target (ntfy://, tgram://, mailto://, pover://, hassio://, json://, "
                    "...; docs/notifications.md has examples). They may hold tokens: prefer the environment, "
                    "TRAILCAM__NOTIFY__URLS='[\"ntfy://...\"]'. Checked at start")
    triggers: list[Literal[TRIGGERS]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: ["new_species", "out_of_range", "first_of_year", "first_of_season"],
        description="What makes a visit worth a notification: new_species (never seen at this station "
                    "before), out_of_range (flagged by the species prior: a possible rarity), first_of_year, "
                    "first_of_season (seasons start on 20 Mar, 21 Jun, 22 Sep, 21 Dec; swapped south of the "
                    "equator by [station] latitude), first_of_day, every_visit")
    species: list[str] = Field(
        default_factory=list,
        description="Only these species notify (labels as counted, e.g. scientific names); empty = every species")
    exclude_species: list[str] = Field(
        default_factory=list, description="These species never notify (e.g. the house sparrows of every visit)")
    min_confidence: float = Field(
        0.0, ge=0.0, le=1.0,
        description="A species notifies only when its best confidence in the visit is at least this; a visit "
                    "whose confidence rises above it later in the burst notifies then")
    include_unknown: bool = Field(
        False, description="Also notify visits counted as `unknown` (a bird the model could not name), by "
                           "first_of_day and every_visit only")
    cooldown_s: float = Field(
        3600.0, ge=0.0, le=365 * 86400,
        description="After a species' notification, no other of the same species for this long (seconds), "
                    "whatever triggered it; 0 = none")
    max_age_s: float = Field(
        86400.0, gt=0, le=30 * 86400,
        description="A notification not delivered this long after it became due (seconds) expires: counted, "
                    "never sent. Visits that started longer ago than this (a backlog of old frames) do "
                    "not notify at all")
    quiet_hours: str = Field(
        "", description="\"HH:MM-HH:MM\" in the station's time zone (e.g. \"22:00-07:00\") when nothing is "
                        "sent; empty = none")
    quiet_hours_action: Literal["defer", "drop"] = Field(
        "defer", description="defer: what falls due in quiet hours is sent when they end (within max_age_s); "
                             "drop: it is dropped (counted)")
    digest_at: str = Field(
        "", description="\"HH:MM\" station time of a daily digest of the day (visits and birds per species, "
                        "the best pictures); empty = no digest")
    digest_pictures: int = Field(
        3, ge=0, le=10, description="How many of the day's best pictures the digest attaches")
    attach: bool = Field(
        True, description="Attach the visit's best crop (with a detector; else the best frame, scaled down) "
                          "where the target takes attachments")
    web_url: str = Field(
        "", description="The web app's address as the reader reaches it (e.g. \"http://trailcam.local:8470\"): "
                        "notifications then link to the visit's page, <web_url>/event/<id>; empty = no link")
    retry_backoff_s: float = Field(
        30.0, gt=0, le=86400, description="First wait before a failed delivery is tried again; doubles each try")
    retry_max_backoff_s: float = Field(
        3600.0, gt=0, le=86400, description="The longest wait between two tries of a failed delivery")
    timeout_s: float = Field(
        30.0, gt=0, le=600, description="How long one delivery to one target may take (Apprise's socket timeout)")

    @field_validator("urls")
    @classmethod
    def _urls_have_a_scheme(cls, value: list[str]) -> list[str]:
        for index, url in enumerate(value):
            if "://" not in url.strip():
                raise ValueError(f"[{index}] is not an Apprise URL (scheme://...): see docs/notifications.md")
        return [url.strip() for url in value]

    @field_validator("quiet_hours")
    @classmethod
    def _quiet_hours_shape(cls, value: str) -> str:
        value = value.strip()
        if value and not _RANGE.match(value):
            raise ValueError('must be "HH:MM-HH:MM" (24 h, station time), e.g. "22:00-07:00", or empty')
        if value and value[:5] == value[6:]:
            raise ValueError("start and end are the same: empty means no quiet hours")
        return value

    @field_validator("digest_at")
    @classmethod
    def _digest_shape(cls, value: str) -> str:
        value = value.strip()
        if value and not _CLOCK.match(value):
            raise ValueError('must be "HH:MM" (24 h, station time), e.g. "20:30", or empty')
        return value

    @field_validator("web_url")
    @classmethod
    def _web_url_shape(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and not re.match(r"^https?://[^\s/]+", value):
            raise ValueError('must start with http:// or https:// (e.g. "http://trailcam.local:8470"), or be empty')
        return value

    @model_validator(mode="after")
    def _enabled_needs_targets(self) -> NotifyConfig:
        if self.enabled and not self.urls:
            raise ValueError("enabled needs at least one URL in urls")
        if self.retry_max_backoff_s < self.retry_backoff_s:
            raise ValueError("retry_max_backoff_s must be at least retry_backoff_s")
        return self

    @property
    def quiet(self) -> tuple[time, time] | None:
        """(start, end) of the quiet hours, station time; None when there are none."""
        if not self.quiet_hours:
            return None
        start, end = self.quiet_hours.split("-")
        return parse_clock(start), parse_clock(end)

    @property
    def digest_time(self) -> time | None:
        return parse_clock(self.digest_at) if self.digest_at else None
