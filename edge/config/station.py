"""[station] section: who this device is and which clock its reports follow."""

from __future__ import annotations

import re
import socket
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

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
                    "daily tallies, and of camera clocks whose EXIF times carry no offset; times are "
                    "stored in UTC")
    language: str = Field(
        default="en",
        description="Language of the common names people read (CLI tables, web app, MQTT, Home Assistant, "
                    "the report): a code of the names pack, e.g. \"en\", \"de\", \"fr\", \"pt_BR\" "
                    "(`edge models pull birdnet-names`; docs/taxonomy.md lists them). A label without a name in "
                    "it shows its scientific name; exports and payloads carry scientific names beside")

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

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)
