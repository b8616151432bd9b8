"""[station] section: who this device is and which clock its reports follow."""

from __future__ import annotations

import re
import socket
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from edge.config.base import Section

_DEVICE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_LANGUAGE = re.compile(r"^[a-z]{2}(?:_[A-Za-z]{2})?$")


def _default_device_id() -> str:
    """The host name, cleaned so it is a valid MQTT topic level."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname())[:64]
    return cleaned or "trailcam"


class StationConfig(Section):
    device_id: str = Field(
        default_factory=_default_device_id,
        description="This device's identity in the database, the MQTT topics and Home Assistant: 1-64 "
                    "letters, digits, '-' or '_'. Unset: the host name, cleaned to fit")
    timezone: str = Field(
        default="UTC",
        description="IANA time zone (e.g. \"Europe/Berlin\") of the hour and day boundaries of reports and "
                    "daily tallies, and of camera clocks whose EXIF times carry no offset (unless the "
                    "camera has its own [[cameras]] timezone); times are stored in UTC")
    language: str = Field(
        default="en",
        description="Language of the common names people read (CLI tables, web app, MQTT, Home Assistant, "
                    "the report): a code of the names pack, e.g. \"en\", \"de\", \"fr\", \"pt_BR\" "
                    "(`edge models pull birdnet-names`; docs/taxonomy.md lists them). A label without a name in "
                    "it shows its scientific name; exports and payloads carry scientific names beside")
    latitude: float | None = Field(
        default=None, ge=-90, le=90,
        description="The station's latitude in decimal degrees (WGS84), for the species prior ([prior]); a "
                    "camera's [cameras.deployment] latitude and longitude override it for that camera")
    longitude: float | None = Field(
        default=None, ge=-180, le=180,
        description="The station's longitude in decimal degrees (WGS84, east positive); given with latitude")

    @field_validator("device_id")
    @classmethod
    def _device_id_is_a_topic_level(cls, value: str) -> str:
        if not _DEVICE_ID.match(value):
            raise ValueError("must be 1-64 characters of letters, digits, '-' or '_' (it is an MQTT topic level)")
        return value

    @field_validator("language")
    @classmethod
    def _language_code(cls, value: str) -> str:
        if not _LANGUAGE.match(value):
            raise ValueError("must be a language code such as 'en', 'de' or 'pt_BR'")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone_exists(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r} (e.g. 'Europe/Berlin', 'UTC')") from None
        return value

    @model_validator(mode="after")
    def _coordinates_together(self) -> StationConfig:
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("latitude and longitude go together: give both or neither")
        return self

    @property
    def coordinates(self) -> tuple[float, float] | None:
        """(latitude, longitude), or None when the station has none."""
        if self.latitude is None or self.longitude is None:
            return None
        return (self.latitude, self.longitude)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)
