"""[prior] section: the species prior, which species can be at the station in a given week
(rules: edge/classify/prior.py, docs/prior.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from edge.config.base import Section, TomlPath


class PriorConfig(Section):
    source: Literal["none", "birdnet", "checklist"] = Field(
        default="none",
        description='Where the prior comes from: "none" (every label counts as before), "birdnet" (BirdNET\'s '
                    "species-range model: occurrence by latitude, longitude and week; CC BY-NC-SA 4.0, "
                    "non-commercial; `edge models pull birdnet-geo-v2.4`) or \"checklist\" (a CSV of scientific "
                    "names you provide, e.g. exported from eBird, iNaturalist or GBIF: the licence-free path). "
                    "birdnet needs [station] latitude and longitude (or each camera's deployment coordinates)")
    model: TomlPath | None = Field(
        default=None,
        description="With source = \"birdnet\": the folder holding BirdNET_GLOBAL_6K_V2.4_MData_Model_V2_FP16.tflite "
                    "and BirdNET_GLOBAL_6K_V2.4_Labels.txt. Unset: birdnet-geo-v2.4 in the model folder "
                    "(models/ beside [storage] database), where `edge models pull birdnet-geo-v2.4` puts it")
    checklist: TomlPath | None = Field(
        default=None,
        description="With source = \"checklist\": a CSV (comma, tab or semicolon) with a scientific-name column "
                    "(scientific_name, Scientific Name, species, scientificName, taxon_name, ...) and optionally a "
                    "frequency or occurrence column (0 to 1, or a percentage); without one every listed species "
                    "scores 1 and every other one 0")
    threshold: float = Field(
        default=0.03, ge=0.0, le=1.0,
        description="A label whose occurrence score is below this is out of range at the station that week "
                    "(BirdNET-Pi's default 0.03); an out-of-range top-1 gives way to the best in-range "
                    "prediction, see docs/prior.md")
    rarity_confidence: float = Field(
        default=0.9, ge=0.0, le=1.0,
        description="An out-of-range top-1 scored at least this high is a possible rarity: the frame counts as "
                    "`unknown`, keeps the model's species and is flagged out_of_range for review (never dropped)")
    week: int | None = Field(
        default=None, ge=1, le=48,
        description="A fixed BirdNET week (1 to 48, four per month) instead of each frame's capture date in the "
                    "station's time zone: for a camera whose clock cannot be trusted. Unset: from the capture date")
