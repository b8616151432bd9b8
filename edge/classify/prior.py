"""The species prior, "where and when": which species can be at the station in the week of a frame.

A classifier trained on the world's birds does not know that a camera in Ohio sees American
Robins and not European Robins. The prior tells decide() (edge/classify/decision.py) which of
the classifier's labels are expected at the station's coordinates in the week of the frame's
capture, so that a look-alike from another continent does not become the count.

Sources ([prior] source):

* ``birdnet``: BirdNET's species-range ("meta-data") model
  (``BirdNET_GLOBAL_6K_V2.4_MData_Model_V2_FP16.tflite`` + ``BirdNET_GLOBAL_6K_V2.4_Labels.txt``,
  CC BY-NC-SA 4.0: non-commercial; `edge models pull birdnet-geo-v2.4`): input (latitude,
  longitude, week 1..48), output one occurrence score 0..1 for each of 6,522 species. Run with the
  edge's own TFLite runtime (`load_interpreter_class`: ai-edge-litert, else tflite-runtime), once
  per (latitude, longitude, week): an LRU cache, so the model costs nothing per frame.
* ``checklist``: a CSV of scientific names the user provides (eBird, iNaturalist or GBIF export):
  the licence-free path. A listed species scores its frequency column (0..1) or 1; a species the
  list does not name scores 0 (a checklist says what occurs; what it leaves out is not expected).
* ``none``: no prior; decide() is exactly what it was.

Names. The classifier's labels and the source's names do not always agree. A label is matched,
in this order, by (1) its scientific name exactly; (2) its species: a trinomial
(*Ardea herodias occidentalis*) matches its binomial; (3) the same common name, compared
case-, punctuation- and grey/gray-insensitively (a synonym whose genus or epithet changed); (4)
a genus change that kept the species epithet (*Phalacrocorax pelagicus* → *Urile pelagicus*), only
when exactly one source name has that epithet and the common names end in the same word
("Cormorant"): an epithet alone misleads (*Morus serrator* is a gannet, *Mergus serrator* a
merganser), so a label without a common name is not matched this way. Hybrids ("×") and labels without a scientific
name are not matched. A label that found no match has NO prior opinion: it is never out of
range for that reason (`unmatched_labels` lists them for `edge check`, the log and the docs). With
a checklist a label that found no match is simply not on the list, so it scores 0, except
hybrids and labels without a scientific name, which the list cannot judge (no opinion); the
checklist's names that match no label are listed instead (`unmatched_names`), since a name
spelt another way there is the likely mistake.

The combining rule (`range_aware`, called by decide() after the no-bird and deny checks):

* A label whose occurrence is below ``[prior] threshold`` (default 0.03, BirdNET-Pi's) is out of
  range. A label without an occurrence (no match) is in range as far as the prior knows.
* Top-1 in range (or no opinion): the decision is unchanged.
* Top-1 out of range, scored below ``[prior] rarity_confidence`` (default 0.9): the out-of-range
  predictions among the top-k are set aside and the best remaining species stands in, with the
  share of the model's belief it holds among what is left: score / (1 − the scores set aside).
  The belief outside the top-k is counted as in range, so the share never overstates what the
  model said. It then passes the normal rules (allow list, its threshold) like any top-1; below
  the threshold the frame is `unknown`. Nothing in range among the top-k: `unknown`.
* Top-1 out of range and scored at least ``rarity_confidence``: a possible rarity. The model
  left at most 1 − rarity_confidence of its belief to every in-range species together, too
  little to name one (with a uint8 output a single 1/256 step would become a certainty), so the
  frame is `unknown`, flagged ``out_of_range`` for review, never silently renamed or dropped.
* Either way the decision keeps the model's own top-1 (`model_species`, `model_confidence`).

Week: BirdNET's 48-week year, four weeks per month: days 1-7 are week 1 of the month, 8-14 week 2,
15-21 week 3 and 22 to the month's end week 4 (`birdnet_week`), from the capture date in the
station's time zone.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import numpy as np

from edge.classify.labels import Label, scientific_of
from edge.classify.model import ModelError, Prediction, load_interpreter_class

if TYPE_CHECKING:
    from edge.config import EdgeConfig

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.03  # BirdNET-Pi's default species-occurrence threshold
DEFAULT_RARITY_CONFIDENCE = 0.9
CATALOGUE_NAME = "birdnet-geo-v2.4"  # `edge models pull` name (edge/classify/catalogue.py)
RANGE_MODEL_FILE = "BirdNET_GLOBAL_6K_V2.4_MData_Model_V2_FP16.tflite"
RANGE_LABELS_FILE = "BirdNET_GLOBAL_6K_V2.4_Labels.txt"
RANGE_LICENCE = "CC BY-NC-SA 4.0"
CACHE_SIZE = 128  # (latitude, longitude, week) entries: a station's cameras over a year fit many times


class PriorError(Exception):
    """A prior that cannot be loaded: a missing or unreadable model or checklist."""


# -- weeks ---------------------------------------------------------------------------------------


def birdnet_week(day: date) -> int:
    """BirdNET's week of the year, 1..48: four per month, days 1-7, 8-14, 15-21 and 22-end."""
    return (day.month - 1) * 4 + min(4, (day.day - 1) // 7 + 1)


def local_week(moment: datetime, zone: ZoneInfo | timezone) -> int:
    """The BirdNET week of an instant in the station's time zone (a naive time is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return birdnet_week(moment.astimezone(zone).date())


# -- names ---------------------------------------------------------------------------------------


_HYBRID = re.compile(r"(^|\s)(×|x)(\s|$)")
_LEADING_NAME = re.compile(r"^([A-Z][a-z]+)\s+(?:×\s*)?([a-z][a-z-]+)(?:\s+(?:(?:ssp|subsp|var)\.\s+)?([a-z][a-z-]+))?")


_NOT_EPITHETS = frozenset({"sp", "spp", "cf", "aff", "sect", "x"})  # "Turdus sp.": a genus, not a species


def is_hybrid(scientific: str) -> bool:
    """*Anas platyrhynchos × rubripes*, *Vermivora chrysoptera x cyanoptera*: no range of its own."""
    return bool(_HYBRID.search(scientific))


def clean_scientific(text: str) -> str | None:
    """The binomial or trinomial at the start of a name, without author or rank markers
    ("Turdus migratorius Linnaeus, 1766" → "Turdus migratorius"); None when it is not one."""
    text = " ".join(text.split())
    if is_hybrid(text):
        return text
    match = _LEADING_NAME.match(text)
    if match is None or match.group(2) in _NOT_EPITHETS:
        return None
    return " ".join(part for part in match.groups() if part)


def binomial(scientific: str) -> str:
    """The species of a name: its first two words (a subspecies' species)."""
    return " ".join(scientific.split()[:2])


def fold_common(name: str) -> str:
    """A common name compared without case, punctuation or the grey/gray spelling."""
    words = re.sub(r"[^0-9a-z]+", " ", name.casefold()).split()
    return " ".join("gray" if word == "grey" else word for word in words)


def _group_noun(common: str | None) -> str | None:
    """The last word of a common name ("Pelagic Cormorant" → "cormorant"), what kind of bird it is."""
    if not common:
        return None
    words = fold_common(re.sub(r"\([^)]*\)", " ", common)).split()
    return words[-1] if words else None


@dataclass(frozen=True)
class SourceName:
    """One species as a source names it."""

    scientific: str
    common: str | None = None


@dataclass(frozen=True)
class LabelMatch:
    """How one label of the classifier found its species in the source (or why it did not)."""

    label: str
    indices: tuple[int, ...]  # the source names it takes its occurrence from; empty: no match
    how: str                  # exact | subspecies | common name | genus change | "" (no match)
    reason: str = ""          # why no match: hybrid, no scientific name, not in the source

    @property
    def matched(self) -> bool:
        return bool(self.indices)


class NameMatcher:
    """Matches labels to a source's names (the rules in the module docstring)."""

    def __init__(self, names: Sequence[SourceName]) -> None:
        self.names = list(names)
        self._exact: dict[str, list[int]] = {}
        self._species: dict[str, list[int]] = {}
        self._common: dict[str, list[int]] = {}
        self._epithet: dict[str, list[int]] = {}
        for index, name in enumerate(self.names):
            self._exact.setdefault(name.scientific, []).append(index)
            if is_hybrid(name.scientific):
                continue
            species = binomial(name.scientific)
            self._species.setdefault(species, []).append(index)
            if name.common:
                self._common.setdefault(fold_common(name.common), []).append(index)
            words = species.split()
            if len(words) == 2:
                self._epithet.setdefault(words[1], []).append(index)

    def match(self, label: Label) -> LabelMatch:
        scientific = scientific_of(label)
        if scientific is None:
            return LabelMatch(label.name, (), "", "no scientific name")
        scientific = " ".join(scientific.split())
        if is_hybrid(scientific):
            return LabelMatch(label.name, (), "", "hybrid")
        if scientific in self._exact:
            return LabelMatch(label.name, tuple(self._exact[scientific]), "exact")
        species = binomial(scientific)
        if species in self._species:
            return LabelMatch(label.name, tuple(self._species[species]), "subspecies" if species != scientific else "species")
        if label.common_name:
            # "American Crow (caurinus)": a form lumped into a species, named after it.
            plain = re.sub(r"\([^)]*\)", " ", label.common_name)
            for key in dict.fromkeys((fold_common(label.common_name), fold_common(plain))):
                found = self._common.get(key, [])
                if found and len({binomial(self.names[i].scientific) for i in found}) == 1:
                    return LabelMatch(label.name, tuple(found), "common name")
        words = species.split()
        group = _group_noun(label.common_name)
        if len(words) == 2 and group:
            # The same epithet under another genus is a moved species only if the common names
            # agree on what bird it is: an epithet alone misleads (Morus serrator, a gannet, and
            # Mergus serrator, a merganser). Without a common name there is no such check: no match.
            found = [i for i in self._epithet.get(words[1], [])
                     if binomial(self.names[i].scientific).split()[0] != words[0]
                     and _group_noun(self.names[i].common) == group]
            if found and len({binomial(self.names[i].scientific) for i in found}) == 1:
                return LabelMatch(label.name, tuple(found), "genus change")
        return LabelMatch(label.name, (), "", "not in the source")


def match_labels(labels: Iterable[Label], names: Sequence[SourceName],
                 skip: Iterable[str] = ()) -> dict[str, LabelMatch]:
    """label name → its match, for every label but `skip` (the no-bird label is no species)."""
    skipped = set(skip)
    matcher = NameMatcher(names)
    return {label.name: matcher.match(label) for label in labels if label.name not in skipped}


# -- what decide() gets: the occurrence at a station and week, and the rule ------------------------


@dataclass(frozen=True)
class Occurrence(Mapping[str, float]):
    """label → occurrence score 0..1 at one station in one week, with the rule's thresholds.

    A Mapping, as DecisionContext.occurrence documents: a label absent from it has no prior
    opinion (it found no match in the source) and is never out of range for that reason.
    """

    scores: Mapping[str, float]
    threshold: float = DEFAULT_THRESHOLD
    rarity_confidence: float = DEFAULT_RARITY_CONFIDENCE
    week: int | None = None
    source: str = ""

    def __getitem__(self, label: str) -> float:
        return self.scores[label]

    def __iter__(self) -> Iterator[str]:
        return iter(self.scores)

    def __len__(self) -> int:
        return len(self.scores)

    def in_range(self, label: str) -> bool | None:
        """True / False, or None when the prior has no opinion on the label."""
        score = self.scores.get(label)
        return None if score is None else score >= self.threshold

    def expected(self) -> list[str]:
        """The labels in range, best occurrence first."""
        return sorted((label for label, s in self.scores.items() if s >= self.threshold),
                      key=lambda label: (-self.scores[label], label))


@dataclass(frozen=True)
class RangeChoice:
    """What the prior made of a top-k whose top-1 is out of range (`range_aware`)."""

    top: Prediction                   # the model's own top-1
    occurrence: float                 # its occurrence score (below the threshold)
    rarity: bool                      # top-1 scored >= rarity_confidence: flag it, name nothing
    predictions: list[Prediction]     # the in-range rest, scores as shares of what is left; [] = none

    @property
    def reason(self) -> str:
        where = f"{self.top.label} out of range (occurrence {self.occurrence:.3f})"
        if self.rarity:
            return f"{where}, scored {self.top.score:.3f}: a possible rarity, flagged for review"
        return where


def range_aware(predictions: Sequence[Prediction], occurrence: Mapping[str, float],
                not_species: frozenset[str] = frozenset()) -> RangeChoice | None:
    """The rule's step for decide(): None when the top-1 is in range (or the prior has no
    opinion on it); else the RangeChoice (see the module docstring). `not_species`: labels that
    are never a stand-in (the no-bird label: the model's top-1 said "a bird")."""
    if not predictions:
        return None
    threshold = getattr(occurrence, "threshold", DEFAULT_THRESHOLD)
    rarity_confidence = getattr(occurrence, "rarity_confidence", DEFAULT_RARITY_CONFIDENCE)
    top = predictions[0]
    top_occurrence = occurrence.get(top.label)
    if top_occurrence is None or top_occurrence >= threshold:
        return None
    rarity = top.score >= rarity_confidence
    out = [p for p in predictions
           if p.label not in not_species and (s := occurrence.get(p.label)) is not None and s < threshold]
    left = 1.0 - sum(p.score for p in out)  # the in-range belief, counting what lies beyond the top-k
    rest: list[Prediction] = []
    if not rarity and left > 0:
        for p in predictions:
            if p in out or p.label in not_species:
                continue
            rest.append(Prediction(p.label, min(1.0, p.score / left), p.index))
    return RangeChoice(top, float(top_occurrence), rarity, rest)


# -- the sources ---------------------------------------------------------------------------------


class RangeModel:
    """BirdNET's species-range model: (latitude, longitude, week) → 6,522 occurrence scores.

    Run with the edge's TFLite runtime (ai-edge-litert, else tflite-runtime), one thread. Not
    thread-safe on its own (BirdNetPrior adds the lock); `invocations` counts the model runs.
    """

    def __init__(self, folder: Path) -> None:
        folder = Path(folder)
        self.folder = folder
        self.model_path = folder / RANGE_MODEL_FILE
        self.labels_path = folder / RANGE_LABELS_FILE
        if not self.model_path.is_file():
            raise PriorError(f"{folder}: no {RANGE_MODEL_FILE} (`edge models pull {CATALOGUE_NAME}` gets it)")
        self.names = read_birdnet_labels(self.labels_path)
        interpreter_class, self.runtime = load_interpreter_class()
        try:
            self._interpreter = interpreter_class(model_path=str(self.model_path), num_threads=1)
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as error:
            raise PriorError(f"{self.model_path}: the TFLite runtime cannot load it: {error}") from None
        inputs = self._interpreter.get_input_details()
        outputs = self._interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1 or int(np.prod(inputs[0]["shape"])) != 3:
            raise PriorError(f"{self.model_path}: not a range model (expected one input of (latitude, longitude, week))")
        self._input, self._output = inputs[0], outputs[0]
        size = int(np.prod(self._output["shape"]))
        if size != len(self.names):
            raise PriorError(f"{self.model_path}: {size} outputs but {self.labels_path} has {len(self.names)} names")
        self.invocations = 0

    def scores(self, latitude: float, longitude: float, week: int) -> np.ndarray:
        """Occurrence 0..1 per name (label-file order); week 1..48, or -1 for the whole year."""
        sample = np.array([[latitude, longitude, week]], dtype=np.float32).reshape(self._input["shape"])
        self._interpreter.set_tensor(self._input["index"], sample)
        self._interpreter.invoke()
        self.invocations += 1
        return np.array(self._interpreter.get_tensor(self._output["index"]), dtype=np.float32).reshape(-1)


def read_birdnet_labels(path: Path) -> list[SourceName]:
    """BirdNET's label list: one `Scientific name_Common name` per line."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise PriorError(f"{path}: cannot read the range model's labels: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise PriorError(f"{path}: the range model's labels are not UTF-8 text") from None
    names = []
    for line in text.splitlines():
        scientific, _, common = line.strip().partition("_")
        names.append(SourceName(scientific.strip(), common.strip() or None))
    while names and not names[-1].scientific:
        names.pop()
    return names


# Header names (folded: lower case, letters and digits only) of the columns a checklist export uses.
SCIENTIFIC_COLUMNS = ("scientificname", "sciname", "species", "taxonspeciesname", "acceptedscientificname",
                      "taxonname", "latinname", "verbatimscientificname", "name")
COMMON_COLUMNS = ("commonname", "comname", "primarycomname", "englishname", "vernacularname", "taxoncommonname")
FREQUENCY_COLUMNS = ("frequency", "freq", "occurrence", "reportingrate", "frequencypercent", "percentfrequency",
                     "abundance")


def _fold_header(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", "", text.casefold())


@dataclass(frozen=True)
class ChecklistEntry:
    name: SourceName
    frequency: float
    row: int


def read_checklist(path: Path) -> list[ChecklistEntry]:
    """A user's checklist CSV (comma, tab or semicolon): the scientific-name column found by its
    header, an optional common-name and frequency column; a file without a recognised header
    is read as one scientific name per line. Rows without a name are skipped."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as error:
        raise PriorError(f"{path}: cannot read the checklist: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise PriorError(f"{path}: the checklist is not UTF-8 text (export it as UTF-8 CSV)") from None
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise PriorError(f"{path}: the checklist is empty")
    first = lines[0]
    delimiter = max(",\t;", key=first.count) if any(d in first for d in ",\t;") else ","
    rows = list(csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter))
    header = [_fold_header(cell) for cell in rows[0]]

    def column(candidates: tuple[str, ...]) -> int | None:
        for candidate in candidates:
            if candidate in header:
                return header.index(candidate)
        return None

    scientific_at = column(SCIENTIFIC_COLUMNS)
    if scientific_at is None:
        if clean_scientific(rows[0][0]) is None:
            known = ", ".join(("scientific_name", "Scientific Name", "species", "scientificName", "taxon_name"))
            raise PriorError(f"{path}: no scientific-name column (a header such as {known}) and the first "
                             f"line is not a scientific name")
        scientific_at, common_at, frequency_at, body, first_row = 0, None, None, rows, 1
    else:
        common_at, frequency_at, body, first_row = column(COMMON_COLUMNS), column(FREQUENCY_COLUMNS), rows[1:], 2
    entries = []
    for number, row in enumerate(body, start=first_row):
        raw = row[scientific_at].strip() if scientific_at < len(row) else ""
        scientific = clean_scientific(raw) if raw else None
        if scientific is None:
            continue  # a higher taxon ("Turdus sp."), a blank or a spuh: no species to list
        common = row[common_at].strip() if common_at is not None and common_at < len(row) else None
        frequency = 1.0
        if frequency_at is not None and frequency_at < len(row) and row[frequency_at].strip():
            frequency = _frequency(row[frequency_at], header[frequency_at], path, number)
        entries.append(ChecklistEntry(SourceName(scientific, common or None), frequency, number))
    if not entries:
        where = f"column {rows[0][scientific_at]!r}" if first_row == 2 else "the first column"
        raise PriorError(f"{path}: the checklist names no species: {where} holds no scientific names "
                         f"(binomials such as 'Turdus migratorius')")
    return entries


def _frequency(text: str, column: str, path: Path, row: int) -> float:
    value = text.strip()
    percent = value.endswith("%") or "percent" in column
    try:
        number = float(value.rstrip("%").strip())
    except ValueError:
        raise PriorError(f"{path}: row {row}: frequency {text!r} is not a number") from None
    if percent:
        number /= 100.0
    if not 0.0 <= number <= 1.0:
        raise PriorError(f"{path}: row {row}: frequency {text!r} is not between 0 and 1 (or 0% and 100%)")
    return number


class SpeciesPrior:
    """A source of occurrence scores for the classifier's labels (BirdNetPrior, ChecklistPrior)."""

    source = "none"
    description = ""

    def __init__(self, labels: Sequence[Label], no_bird_label: str | None, *, threshold: float = DEFAULT_THRESHOLD,
                 rarity_confidence: float = DEFAULT_RARITY_CONFIDENCE) -> None:
        self.labels = list(labels)
        self.no_bird_label = no_bird_label
        self.threshold = threshold
        self.rarity_confidence = rarity_confidence
        self.matches: dict[str, LabelMatch] = {}

    def occurrence(self, latitude: float | None, longitude: float | None, week: int) -> Occurrence:
        raise NotImplementedError

    def unmatched_labels(self) -> list[LabelMatch]:
        """The labels that found no name in the source, in label order: they have no prior opinion
        (BirdNET), or are unlisted (a checklist), never excluded for a spelling."""
        return [m for m in self.matches.values() if not m.matched]

    def summary(self) -> str:
        matched = sum(m.matched for m in self.matches.values())
        return f"{self.description}: {matched} of {len(self.matches)} labels matched"

    def _occurrence(self, values: Sequence[float] | np.ndarray, week: int, default: float | None) -> Occurrence:
        """label → the best score of its matched names; `default` for a label without a match
        that the source can judge (a checklist's unlisted species: 0), None: no opinion."""
        scores: dict[str, float] = {}
        for label, found in self.matches.items():
            if found.matched:
                scores[label] = float(max(values[i] for i in found.indices))
            elif default is not None and found.reason == "not in the source":
                scores[label] = default
        return Occurrence(scores, self.threshold, self.rarity_confidence, week, self.source)


class BirdNetPrior(SpeciesPrior):
    """BirdNET's range model behind an LRU cache of (latitude, longitude, week)."""

    source = "birdnet"

    def __init__(self, folder: Path, labels: Sequence[Label], no_bird_label: str | None = None, *,
                 threshold: float = DEFAULT_THRESHOLD, rarity_confidence: float = DEFAULT_RARITY_CONFIDENCE,
                 cache_size: int = CACHE_SIZE) -> None:
        super().__init__(labels, no_bird_label, threshold=threshold, rarity_confidence=rarity_confidence)
        self.model = RangeModel(folder)
        self.description = f"BirdNET range model {folder} ({RANGE_LICENCE}, runtime {self.model.runtime})"
        self.matches = match_labels(self.labels, self.model.names, skip=[no_bird_label] if no_bird_label else [])
        self._cache: OrderedDict[tuple[float, float, int], Occurrence] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def occurrence(self, latitude: float | None, longitude: float | None, week: int) -> Occurrence:
        if latitude is None or longitude is None:
            raise PriorError("the BirdNET range model needs coordinates ([station] latitude and longitude)")
        key = (round(float(latitude), 4), round(float(longitude), 4), int(week))
        with self._lock:
            found = self._cache.get(key)
            if found is not None:
                self._cache.move_to_end(key)
                return found
            found = self._occurrence(self.model.scores(*key), key[2], None)
            self._cache[key] = found
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
            return found


class ChecklistPrior(SpeciesPrior):
    """A user's checklist: the same occurrence everywhere and all year (it is the station's list)."""

    source = "checklist"

    def __init__(self, path: Path, labels: Sequence[Label], no_bird_label: str | None = None, *,
                 threshold: float = DEFAULT_THRESHOLD, rarity_confidence: float = DEFAULT_RARITY_CONFIDENCE) -> None:
        super().__init__(labels, no_bird_label, threshold=threshold, rarity_confidence=rarity_confidence)
        self.entries = read_checklist(path)
        self.description = f"checklist {path} ({len(self.entries)} species)"
        names = [entry.name for entry in self.entries]
        self.matches = match_labels(self.labels, names, skip=[no_bird_label] if no_bird_label else [])
        self._values = [entry.frequency for entry in self.entries]
        self._fixed = self._occurrence(self._values, 0, 0.0)

    def occurrence(self, latitude: float | None, longitude: float | None, week: int) -> Occurrence:
        return self._fixed

    def unmatched_names(self) -> list[ChecklistEntry]:
        """The checklist's species that no label matched (a name spelt another way, or a species
        the classifier does not know)."""
        used = {i for m in self.matches.values() for i in m.indices}
        return [entry for i, entry in enumerate(self.entries) if i not in used]


# -- the station: coordinates per camera, the week of a frame --------------------------------------


@dataclass
class StationPrior:
    """The prior at this station: each camera's coordinates (its deployment's, else the
    station's), the frame's week in the station's zone (or the fixed [prior] week)."""

    prior: SpeciesPrior
    zone: ZoneInfo | timezone = UTC
    default: tuple[float, float] | None = None
    cameras: dict[str, tuple[float, float]] = field(default_factory=dict)
    week: int | None = None

    def coordinates(self, camera: str | None) -> tuple[float, float] | None:
        return self.cameras.get(camera or "", self.default)

    def occurrence_at(self, camera: str | None, captured_at: datetime) -> Occurrence:
        """The occurrence for a frame of `camera` captured at `captured_at` (cached per place and week)."""
        week = self.week if self.week is not None else local_week(captured_at, self.zone)
        where = self.coordinates(camera) or (None, None)
        return self.prior.occurrence(where[0], where[1], week)


def models_dir(config: EdgeConfig) -> Path:
    """Where `edge models pull` puts models by default: models/ beside the database."""
    return Path(config.storage.database).parent / "models"


def range_model_folder(config: EdgeConfig) -> Path:
    """[prior] model, else the pulled birdnet-geo-v2.4 in the model folder."""
    return Path(config.prior.model) if config.prior.model is not None else models_dir(config) / CATALOGUE_NAME


def camera_coordinates(config: EdgeConfig) -> dict[str, tuple[float, float]]:
    """Camera name → its deployment's (latitude, longitude), for cameras that have them."""
    found = {}
    for camera in config.cameras:
        deployment = camera.deployment
        if deployment is not None and deployment.latitude is not None and deployment.longitude is not None:
            found[camera.name] = (deployment.latitude, deployment.longitude)
    return found


def load_prior(config: EdgeConfig, labels: Sequence[Label], no_bird_label: str | None) -> StationPrior | None:
    """The configured prior for these labels, None for source = "none". A PriorError's message
    starts with the dotted key it is about (prior.model, prior.checklist, station.latitude)."""
    settings = config.prior
    if settings.source == "none":
        return None
    options: dict[str, Any] = {"threshold": settings.threshold, "rarity_confidence": settings.rarity_confidence}
    prior: SpeciesPrior
    if settings.source == "birdnet":
        cameras = camera_coordinates(config)
        missing = [c.name for c in config.cameras if c.name not in cameras]
        if config.station.coordinates is None and (missing or not config.cameras):
            which = f" (cameras without [cameras.deployment] coordinates: {', '.join(missing)})" if missing else ""
            raise PriorError(f"station.latitude: the BirdNET range prior needs the station's coordinates: set "
                             f"[station] latitude and longitude{which}")
        folder = range_model_folder(config)
        if not folder.is_dir():
            raise PriorError(f"prior.model: {folder}: no such folder (`edge models pull {CATALOGUE_NAME}` puts "
                             f"the range model there, or set [prior] model)")
        try:
            prior = BirdNetPrior(folder, labels, no_bird_label, **options)
        except (PriorError, ModelError) as error:
            raise PriorError(f"prior.model: {error}") from None
    else:
        path = settings.checklist
        if path is None:
            raise PriorError('prior.checklist: source = "checklist" needs a checklist file (a CSV of scientific names)')
        if not Path(path).is_file():
            raise PriorError(f"prior.checklist: {path}: checklist file not found")
        try:
            prior = ChecklistPrior(Path(path), labels, no_bird_label, **options)
        except PriorError as error:
            raise PriorError(f"prior.checklist: {error}") from None
    return StationPrior(prior, config.station.zone, config.station.coordinates, camera_coordinates(config),
                        settings.week)
