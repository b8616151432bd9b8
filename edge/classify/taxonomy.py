"""The classifier's labels in a taxonomy (species → genus → family → order), and the roll-up.

Why: a classifier that cannot tell two congeners apart spreads its score over both, and the
top-1 alone is then below its threshold: the frame became `unknown`, though the model was sure
of the genus. Camera-trap classifiers such as SpeciesNet count such a bird at the lowest rank
that is certain; so does trailcam (`decide`, edge/classify/decision.py, step "roll-up").

Where the ranks come from (nothing here is invented or shipped):

- species: a trinomial (a subspecies label, e.g. AIY's `Junco hyemalis hyemalis`) belongs to
  its binomial; when the model has a label for that species, the roll-up counts that label;
- genus: the first word of the scientific name (a binomial's genus is part of its name);
- family and order: only from a taxonomy file the user provides ([taxonomy] file): the
  eBird/Clements taxonomy CSV as downloaded, or a plain `scientific_name,genus,family,order`
  CSV (docs/taxonomy.md says where to get it and its terms). A species the file lacks is
  placed by its genus when the file puts that genus in exactly one family.

The roll-up rule (RollUp.find): sum the scores over each taxon's member labels, over ALL the
classifier's scores (the pipeline asks for every label when the roll-up is on, and stores only
[model] top_k; the extra cost is building the list, well under a millisecond on x86); try the
ranks from the lowest (species: subspecies summed into their species, then genus, family,
order) and take the first taxon whose sum reaches its rank's threshold. Every threshold is at
least 0.5, so at most one taxon of a rank can reach it: the rule never has to choose.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from edge.classify.labels import Label, scientific_of

# The ranks a roll-up walks, lowest first ("class" is not offered: every bird is Aves, which
# is what `unknown` already says).
ROLLUP_RANKS: tuple[str, ...] = ("species", "genus", "family", "order")


class TaxonomyError(ValueError):
    """A taxonomy file that cannot be read; the message names the file and the problem."""


@dataclass(frozen=True)
class Taxon:
    """A taxon a bird can be counted as. `name` is what the database stores and counts
    ("Junco hyemalis", "Turdus sp.", "Turdidae", "Passeriformes"); it has the `name`,
    `scientific_name` and `common_name` that edge.store.taxa records for every label."""

    name: str
    rank: str
    scientific_name: str
    common_name: str | None = None


@dataclass(frozen=True)
class Placement:
    """One scientific name's higher ranks as a taxonomy file gives them."""

    family: str | None
    order: str | None
    family_common: str | None = None
    order_common: str | None = None


def genus_of(scientific: str | None) -> str | None:
    """The genus of a binomial or trinomial: its first word ("Turdus migratorius" → "Turdus")."""
    if not scientific:
        return None
    first = scientific.split()[0]
    return first if re.fullmatch(r"[A-Z][a-z]+", first) else None


def species_of(scientific: str | None) -> str | None:
    """The species of a binomial or trinomial ("Junco hyemalis hyemalis" → "Junco hyemalis");
    None for a hybrid ("A b × c" belongs to no one species) or a name that is not a binomial."""
    if not scientific or "×" in scientific or " x " in scientific:
        return None
    words = scientific.split()
    if len(words) < 2 or genus_of(scientific) is None or not re.fullmatch(r"[a-z][a-z-]+", words[1]):
        return None
    return f"{words[0]} {words[1]}"


# Column names as the taxonomy files name them (compared case-insensitively):
# eBird's taxonomy download (SCI_NAME, FAMILY "Turdidae (Thrushes and Allies)", ORDER1), the
# eBird API's CSV (SCIENTIFIC_NAME, FAMILY_SCI_NAME, FAMILY_COM_NAME, ORDER), the Clements
# checklist ("scientific name", "family", "order") and the plain scientific_name,genus,family,order.
_SCIENTIFIC_COLUMNS = ("scientific_name", "sci_name", "scientific name")
_FAMILY_COLUMNS = ("family_sci_name", "family")
_FAMILY_COMMON_COLUMNS = ("family_com_name", "family_common_name", "family_common")
_ORDER_COLUMNS = ("order1", "order", "order_sci_name")
_ORDER_COMMON_COLUMNS = ("order_common_name", "order_common")
_WITH_COMMON = re.compile(r"^(?P<scientific>[A-Z][A-Za-z]+)\s*(?:\((?P<common>[^()]*)\))?$")


def _split_named(text: str | None) -> tuple[str | None, str | None]:
    """'Turdidae (Thrushes and Allies)' → ('Turdidae', 'Thrushes and Allies'); 'Turdidae' → ('Turdidae', None)."""
    text = (text or "").strip()
    if not text:
        return None, None
    match = _WITH_COMMON.match(text)
    if match is None:
        return None, None
    common = (match["common"] or "").strip() or None
    return match["scientific"], common


def parse_taxonomy_csv(text: str, source: str = "taxonomy file") -> dict[str, Placement]:
    """Scientific name → its family and order, from one of the CSV shapes above."""
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        raise TaxonomyError(f"{source}: no header line")
    columns = {name.strip().lower(): name for name in reader.fieldnames if name}

    def pick(candidates: Sequence[str]) -> str | None:
        return next((columns[c] for c in candidates if c in columns), None)

    scientific_col = pick(_SCIENTIFIC_COLUMNS)
    family_col, order_col = pick(_FAMILY_COLUMNS), pick(_ORDER_COLUMNS)
    if scientific_col is None or (family_col is None and order_col is None):
        raise TaxonomyError(
            f"{source}: needs a scientific name column ({', '.join(c.upper() for c in _SCIENTIFIC_COLUMNS)}) and "
            f"a FAMILY or ORDER column; it has {', '.join(reader.fieldnames)}")
    family_common_col, order_common_col = pick(_FAMILY_COMMON_COLUMNS), pick(_ORDER_COMMON_COLUMNS)
    placements: dict[str, Placement] = {}
    for row in reader:
        scientific = (row.get(scientific_col) or "").strip()
        if not scientific:
            continue
        family, family_common = _split_named(row.get(family_col) if family_col else None)
        order, order_common = _split_named(row.get(order_col) if order_col else None)
        if family_common_col:
            family_common = (row.get(family_common_col) or "").strip() or family_common
        if order_common_col:
            order_common = (row.get(order_common_col) or "").strip() or order_common
        if family or order:
            placements.setdefault(scientific, Placement(family, order, family_common, order_common))
    if not placements:
        raise TaxonomyError(f"{source}: no row gives a family or an order")
    return placements


def read_taxonomy_file(path: Path) -> dict[str, Placement]:
    """parse_taxonomy_csv of a file (UTF-8, a BOM allowed: spreadsheet exports write one)."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as error:
        raise TaxonomyError(f"{path}: cannot read the taxonomy file: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise TaxonomyError(f"{path}: the taxonomy file is not UTF-8 text") from None
    return parse_taxonomy_csv(text, str(path))


class Taxonomy:
    """Each label's taxon at each rank (None where unknown), and each taxon's member labels."""

    def __init__(self, labels: Iterable[Label], placements: Mapping[str, Placement] | None = None) -> None:
        labels = list(labels)
        placements = placements or {}
        by_genus: dict[str, set[Placement]] = {}
        for placed_name, placed in placements.items():
            placed_genus = genus_of(placed_name)
            if placed_genus is not None:
                by_genus.setdefault(placed_genus, set()).add(Placement(placed.family, placed.order,
                                                                       placed.family_common, placed.order_common))
        # The model's own label for a species, so that subspecies are counted with it.
        species_labels = {scientific_of(label): label for label in labels if scientific_of(label)}
        self._of: dict[str, dict[str, Taxon]] = {}
        self.unplaced: list[str] = []  # labels the file gave no family for (reported, never guessed)
        for label in labels:
            scientific = scientific_of(label)
            genus = genus_of(scientific)
            if scientific is None or genus is None:
                continue
            ranks: dict[str, Taxon] = {}
            species = species_of(scientific)
            if species is not None:
                own = species_labels.get(species)
                ranks["species"] = Taxon(own.name if own else species, "species", species,
                                         own.common_name if own else None)
            ranks["genus"] = Taxon(f"{genus} sp.", "genus", genus)
            placement = placements.get(scientific) or (placements.get(species) if species else None)
            if placement is None and len(by_genus.get(genus, ())) == 1:
                placement = next(iter(by_genus[genus]))
            if placement is not None and placement.family:
                ranks["family"] = Taxon(placement.family, "family", placement.family, placement.family_common)
            elif placements:
                self.unplaced.append(label.name)
            if placement is not None and placement.order:
                ranks["order"] = Taxon(placement.order, "order", placement.order, placement.order_common)
            self._of[label.name] = ranks
        self._members: dict[str, dict[str, set[str]]] = {rank: {} for rank in ROLLUP_RANKS}
        self._taxa: dict[str, Taxon] = {}
        for name, ranks in self._of.items():
            for rank, taxon in ranks.items():
                self._members[rank].setdefault(taxon.name, set()).add(name)
                self._taxa.setdefault(taxon.name, taxon)

    def taxon_of(self, label: str, rank: str) -> Taxon | None:
        """The label's taxon at `rank` (species, genus, family, order), None where unknown."""
        return self._of.get(label, {}).get(rank)

    def members(self, taxon_name: str, rank: str) -> frozenset[str]:
        """The labels summed into a taxon."""
        return frozenset(self._members.get(rank, {}).get(taxon_name, ()))

    def roll_up_taxa(self) -> list[Taxon]:
        """Every taxon a roll-up can count that is not itself a model label (genera, families,
        orders, species known only through subspecies labels): the daemon records their names
        in `taxa` beside the model's labels, so reports can name them."""
        own = set(self._of)
        return sorted((t for t in self._taxa.values() if t.name not in own), key=lambda t: (t.rank, t.name))

    def has_rank(self, rank: str) -> bool:
        return bool(self._members.get(rank))


@dataclass(frozen=True)
class RollUp:
    """The roll-up rule over one taxonomy: per-rank thresholds (the species rank uses the
    threshold decide() applies to the top-1, so subspecies summed into a species need what the
    species itself needs)."""

    taxonomy: Taxonomy
    thresholds: Mapping[str, float]  # "genus", "family", "order" → the summed score it needs

    def find(self, predictions: Sequence, species_threshold: float) -> tuple[Taxon, float] | None:
        """The lowest-rank taxon whose summed score over `predictions` reaches its threshold,
        with that sum; None when no taxon does (the bird stays `unknown`). `predictions` are
        edge.classify.model.Prediction (label, score); labels outside the taxonomy (the no-bird
        label, a trainer's class without a scientific name) are in no taxon."""
        for rank in ROLLUP_RANKS:
            threshold = species_threshold if rank == "species" else self.thresholds.get(rank)
            if threshold is None or not self.taxonomy.has_rank(rank):
                continue
            sums: dict[str, float] = {}
            for prediction in predictions:
                taxon = self.taxonomy.taxon_of(prediction.label, rank)
                if taxon is not None:
                    sums[taxon.name] = sums.get(taxon.name, 0.0) + prediction.score
            if not sums:
                continue
            best = max(sums, key=lambda name: (sums[name], name))
            if sums[best] >= threshold:
                member = next(iter(self.taxonomy.members(best, rank)))
                taxon = self.taxonomy.taxon_of(member, rank)
                assert taxon is not None
                return taxon, min(sums[best], 1.0)
        return None


def build_rollup(labels: Iterable[Label], *, file: Path | None = None, genus_threshold: float = 0.5,
                 family_threshold: float = 0.6, order_threshold: float = 0.7) -> RollUp:
    """The RollUp for a model's labels and an optional taxonomy file ([taxonomy] section)."""
    placements = read_taxonomy_file(file) if file is not None else None
    return RollUp(Taxonomy(labels, placements),
                  {"genus": genus_threshold, "family": family_threshold, "order": order_threshold})


def rollup_from_config(labels: Iterable[Label], config) -> RollUp | None:
    """build_rollup from a TaxonomyConfig; None when [taxonomy] rollup is off."""
    if not config.rollup:
        return None
    return build_rollup(labels, file=config.file, genus_threshold=config.genus_threshold,
                        family_threshold=config.family_threshold, order_threshold=config.order_threshold)
