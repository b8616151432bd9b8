"""[sharing] section: what citizen-science portals need that nothing else in the configuration says.

eBird files every checklist under a country and a state or province (its import refuses rows
without them), and iNaturalist asks how precisely an observation's place may be shown. Only
`edge export ebird` and `edge export inaturalist` read this section; the daemon never does.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from edge.config.base import Section

_COUNTRY = re.compile(r"^[A-Z]{2}$")
_REGION = re.compile(r"^(?:([A-Z]{2})-)?([A-Z0-9]{1,3})$")


class SharingConfig(Section):
    country_code: str | None = Field(
        default=None,
        description="The station's country as an ISO 3166-1 alpha-2 code (e.g. \"US\", \"DE\"): eBird's "
                    "Country Code column (required by `edge export ebird`)")
    state_province: str | None = Field(
        default=None,
        description="The state or province as eBird codes it, the part after the country of its region code "
                    "(\"NY\" for US-NY, \"BE\" for DE-BE; \"US-NY\" is accepted too): eBird's State/Province "
                    "column (required by `edge export ebird`)")
    geoprivacy: Literal["open", "obscured", "private"] = Field(
        default="obscured",
        description="iNaturalist's geoprivacy of exported observations: open, obscured (shown within about "
                    "20 km: a garden camera is someone's home) or private")

    @field_validator("country_code")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        if value is not None and not _COUNTRY.match(value.upper()):
            raise ValueError("must be a two-letter ISO 3166-1 country code such as 'US' or 'DE'")
        return value.upper() if value else value

    @field_validator("state_province")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        if value is not None and not _REGION.match(value.upper()):
            raise ValueError("must be eBird's state or province code such as 'NY' (or 'US-NY')")
        return value.upper() if value else value

    @model_validator(mode="after")
    def _same_country(self) -> SharingConfig:
        if self.state_province and "-" in self.state_province:
            country, region = self.state_province.split("-", 1)
            if self.country_code is not None and country != self.country_code:
                raise ValueError(f"state_province {self.state_province!r} is not in country_code "
                                 f"{self.country_code!r}")
            self.country_code = self.country_code or country
            self.state_province = region
        return self
