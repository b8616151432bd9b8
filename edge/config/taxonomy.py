"""[taxonomy] section: the taxonomic roll-up and where the names people read come from.

Rules: edge/classify/taxonomy.py (the roll-up) and edge/classify/names.py (common names in
the station's language, `[station] language`). docs/taxonomy.md explains both.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from edge.config.base import Section, TomlFilePath, TomlPath

# Why 0.5 is the floor of every roll-up threshold: the summed scores of the taxa of one rank
# share the model's probability mass (at most 1), so at most one taxon per rank can reach a
# threshold above one half: the roll-up can never choose between two.
_FLOOR = 0.5


class TaxonomyConfig(Section):
    rollup: bool = Field(
        default=True,
        description="When no species is confident enough, count the bird at the lowest rank whose summed "
                    "score reaches that rank's threshold (`Turdus sp.`, then `Turdidae`, then `Passeriformes`) "
                    "instead of `unknown`. On by default: it only ever replaces an `unknown`, never a species "
                    "the model is sure of, and says what the model does know. Genus needs no file (the first "
                    "word of the scientific name); family and order need `file`")
    file: TomlFilePath | None = Field(
        default=None,
        description="A taxonomy CSV giving each species' family and order: the eBird/Clements taxonomy as "
                    "downloaded (columns SCI_NAME or SCIENTIFIC_NAME, FAMILY such as \"Turdidae (Thrushes "
                    "and Allies)\" or FAMILY_SCI_NAME, ORDER or ORDER1) or a plain CSV scientific_name,genus,"
                    "family,order. Unset: roll-up to genus only")
    genus_threshold: float = Field(
        default=0.5, ge=_FLOOR, le=1.0,
        description="Summed score of a genus's labels that counts the bird as `<Genus> sp.` (0.5: the same "
                    "bar as [classify] threshold's default; a genus is a weaker claim than any of its species)")
    family_threshold: float = Field(
        default=0.6, ge=_FLOOR, le=1.0,
        description="Summed score a family needs (higher than genus: sums over many labels collect the "
                    "model's scattered small scores)")
    order_threshold: float = Field(
        default=0.7, ge=_FLOOR, le=1.0,
        description="Summed score an order needs")
    names: TomlPath | None = Field(
        default=None,
        description="Folder of the common-names pack (`edge models pull birdnet-names`) that gives the "
                    "labels names in [station] language, and English names to models that have none. "
                    "Unset: models/birdnet-names beside [storage] database, when it is there")

    @model_validator(mode="after")
    def _coarser_needs_more(self) -> TaxonomyConfig:
        if not self.genus_threshold <= self.family_threshold <= self.order_threshold:
            raise ValueError("thresholds must not decrease with the rank: genus_threshold <= family_threshold "
                             "<= order_threshold (a coarser taxon says less, so it needs at least as much)")
        return self
