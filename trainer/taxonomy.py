"""`--taxonomy FILE`: scientific and common names for a run's classes, carried into its bundle.

Why: the trainer's classes are folder names ("NORTHERN CARDINAL"), which is what the edge's
database stores and its reports show. Ecological exports (Camtrap DP, GBIF) need the scientific
name of every species, and the edge reads them from the bundle manifest's `taxonomy`
(label → {"scientific_name", "common_name"}, edge.classify.labels.with_taxonomy). This module
reads such names from a CSV and matches them to the data set's classes.

Two CSV shapes are read, told apart by their headers only:

- the Kaggle "BIRDS 525 SPECIES" `birds.csv`: `class id,filepaths,labels,data set,scientific name`,
  one row per IMAGE, so a class comes back on many rows: they are deduplicated, and a class
  given two different scientific (or common) names is refused, naming both and their rows;
- a simple `label,scientific_name[,common_name]`, one row per class.

An all-capitals scientific name ("CARDINALIS CARDINALIS") is written in the usual form
("Cardinalis cardinalis"), which is what Camtrap DP and GBIF expect.

Headers are matched case-insensitively with spaces, hyphens, underscores and camelCase treated
alike: the label column is the first of label | labels | class | class_name | name | species,
the scientific one scientific_name | scientific | latin_name, the common one common_name |
vernacular | vernacular_name | english_name.

Matching (`match_classes`): a file label equal to a class name names it; a class left over is
then matched ignoring case, runs of whitespace and underscores ("Northern_cardinal" names
"NORTHERN CARDINAL"). Classes without a name are reported, not refused (a bundle without names
still works; the edge's `edge check` says which labels lack one); names of classes the data
set does not have are ignored with a note.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from trainer.data import DataError

TAXONOMY_FILE = "taxonomy.json"  # in a run folder: the matched names, copied into the bundle manifest
LABEL_COLUMNS = ("label", "labels", "class", "class_name", "name", "species")
SCIENTIFIC_COLUMNS = ("scientific_name", "scientific", "latin_name")
COMMON_COLUMNS = ("common_name", "vernacular", "vernacular_name", "english_name")
_MISSING = {"", "none", "null", "nan", "n/a"}


class TaxonomyError(DataError):
    """The taxonomy file cannot be used (unreadable, no usable columns, conflicting names): exit 2."""


@dataclass(frozen=True)
class Names:
    """The names one class is known by; either may be None."""

    scientific_name: str | None = None
    common_name: str | None = None

    def as_dict(self) -> dict[str, str]:
        """The manifest entry: only the names that are known."""
        return {key: value for key, value in (("scientific_name", self.scientific_name),
                                              ("common_name", self.common_name)) if value}


@dataclass
class Matched:
    """Names matched to a data set's classes (class → Names, in class order), and what did not match."""

    taxonomy: dict[str, Names] = field(default_factory=dict)
    without_names: list[str] = field(default_factory=list)  # classes of the data set the file does not name
    unused: list[str] = field(default_factory=list)  # file labels that are none of the data set's classes
    loosely: dict[str, str] = field(default_factory=dict)  # class → the file label matched ignoring case/spaces

    def manifest(self) -> dict[str, dict[str, str]]:
        """The bundle manifest's `taxonomy` (and the run folder's taxonomy.json)."""
        return {label: names.as_dict() for label, names in self.taxonomy.items() if names.as_dict()}

    def lines(self, source: Path | str) -> list[str]:
        """What `trainer train|export --taxonomy` tells the user: counts, then the warning and the note."""
        total = len(self.taxonomy) + len(self.without_names)
        out = [f"taxonomy: {source}: names for {len(self.taxonomy)} of {total} classes"]
        if self.without_names:
            out.append(f"taxonomy: warning: {len(self.without_names)} classes have no scientific or common name "
                       f"(the bundle works; exports will list them): {_shown(self.without_names)}")
        if self.unused:
            out.append(f"taxonomy: note: {len(self.unused)} names are for classes not in the data set, ignored: "
                       f"{_shown(self.unused)}")
        return out


def _shown(names: list[str], limit: int = 10) -> str:
    return ", ".join(repr(name) for name in names[:limit]) + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def normalise_header(text: str) -> str:
    """'Scientific Name', 'scientific_name', 'scientificName', 'scientific-name' → 'scientific_name'."""
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", text.strip().lstrip("\ufeff"))
    return re.sub(r"[\s_\-]+", "_", text).strip("_").lower()


def loose_key(label: str) -> str:
    """A class name ignoring case, runs of whitespace and underscores: the second matching pass."""
    return " ".join(label.replace("_", " ").split()).casefold()


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    value = " ".join(value.split())
    return None if value.lower() in _MISSING else value


def scientific_case(name: str) -> str:
    """An all-capitals Latin name ("CARDINALIS CARDINALIS", as a file of upper-case labels may
    write it) in the usual form ("Cardinalis cardinalis": genus capitalised, epithets lower
    case); any other spelling is kept as it is."""
    if not name.isupper():
        return name
    genus, *rest = name.split()
    return " ".join([genus.capitalize(), *(word.lower() for word in rest)])


def _pick(headers: dict[str, str], candidates: Iterable[str]) -> str | None:
    """The file's own header for the first candidate (normalised) it has."""
    for candidate in candidates:
        if candidate in headers:
            return headers[candidate]
    return None


def read_taxonomy(path: Path) -> dict[str, Names]:
    """File label → Names, from a per-class or a per-image CSV (see the module docstring).

    Raises TaxonomyError for a missing or unreadable file, one without a label column and a
    name column, or a label given two different scientific (or common) names."""
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise TaxonomyError(f"--taxonomy: {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise TaxonomyError(f"--taxonomy: cannot read {path}: {error}") from None
    try:
        reader = csv.DictReader(text.splitlines())
        fieldnames = reader.fieldnames or []
        headers: dict[str, str] = {}
        for name in fieldnames:
            headers.setdefault(normalise_header(name or ""), name)
        label_column = _pick(headers, LABEL_COLUMNS)
        scientific_column = _pick(headers, SCIENTIFIC_COLUMNS)
        common_column = _pick(headers, COMMON_COLUMNS)
        if label_column is None or (scientific_column is None and common_column is None):
            raise TaxonomyError(
                f"--taxonomy: {path}: needs a label column ({' | '.join(LABEL_COLUMNS)}) and a scientific_name "
                f"or common_name column; its header is {', '.join(map(repr, fieldnames)) or 'empty'}")
        found: dict[str, dict[str, tuple[str, int]]] = {}  # label → kind → (name, first row)
        for row_number, row in enumerate(reader, start=2):
            label = _clean(row.get(label_column))
            if label is None:
                continue
            entry = found.setdefault(label, {})
            for kind, column in (("scientific_name", scientific_column), ("common_name", common_column)):
                value = _clean(row.get(column)) if column is not None else None
                if value is None:
                    continue
                if kind == "scientific_name":
                    value = scientific_case(value)
                if kind not in entry:
                    entry[kind] = (value, row_number)
                elif entry[kind][0] != value:
                    first, first_row = entry[kind]
                    raise TaxonomyError(
                        f"--taxonomy: {path}: class {label!r} has two {kind.replace('_', ' ')}s: {first!r} "
                        f"(row {first_row}) and {value!r} (row {row_number}); fix the file so each class has one")
    except csv.Error as error:
        raise TaxonomyError(f"--taxonomy: {path} is not a readable CSV: {error}") from None
    return {label: Names(entry.get("scientific_name", (None,))[0], entry.get("common_name", (None,))[0])
            for label, entry in found.items()}


def match_classes(names: Mapping[str, Names], class_names: list[str], source: Path | str = "--taxonomy") -> Matched:
    """The file's names matched to the data set's classes: exactly first, then ignoring case,
    whitespace and underscores. Raises TaxonomyError where two file labels that differ only so
    would name one class differently."""
    matched = Matched()
    used: set[str] = set()
    leftover = []
    for label in class_names:
        if label in names:
            matched.taxonomy[label] = names[label]
            used.add(label)
        else:
            leftover.append(label)
    loose: dict[str, list[str]] = {}
    for label in names:
        if label not in used:
            loose.setdefault(loose_key(label), []).append(label)
    for label in leftover:
        candidates = loose.get(loose_key(label), [])
        distinct = {names[c] for c in candidates}
        if len(distinct) > 1:
            raise TaxonomyError(f"--taxonomy: {source}: class {label!r} is named by {', '.join(map(repr, candidates))} "
                                "with different names; keep one of them")
        if candidates:
            matched.taxonomy[label] = names[candidates[0]]
            matched.loosely[label] = candidates[0]
            used.update(candidates)
        else:
            matched.without_names.append(label)
    matched.taxonomy = {label: matched.taxonomy[label] for label in class_names if label in matched.taxonomy}
    matched.unused = sorted(label for label in names if label not in used)
    return matched


def load_for_classes(path: Path, class_names: list[str]) -> Matched:
    """read_taxonomy + match_classes: what `trainer train` and `trainer export` call."""
    return match_classes(read_taxonomy(path), class_names, path)


def write_run_taxonomy(run_dir: Path, taxonomy: Mapping[str, Mapping[str, str]]) -> Path:
    """RUN/taxonomy.json: class → names, the form the manifest's `taxonomy` takes."""
    path = Path(run_dir) / TAXONOMY_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(dict(taxonomy), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def read_run_taxonomy(run_dir: Path) -> dict[str, dict[str, str]]:
    """RUN/taxonomy.json, or {} for a run trained without --taxonomy."""
    path = Path(run_dir) / TAXONOMY_FILE
    if not path.is_file():
        return {}
    try:
        return _entries(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, json.JSONDecodeError) as error:
        raise TaxonomyError(f"{path}: cannot read the run's taxonomy: {error}") from None


def _entries(data: object) -> dict[str, dict[str, str]]:
    """The well-formed entries of a manifest's or run's taxonomy (label → names with string values)."""
    if not isinstance(data, dict):
        return {}
    out = {}
    for label, entry in data.items():
        if isinstance(entry, dict):
            names = {k: v for k, v in entry.items() if k in ("scientific_name", "common_name") and isinstance(v, str) and v}
            if names:
                out[str(label)] = names
    return out


def bundle_taxonomy(bundle_dir: Path) -> dict[str, dict[str, str]]:
    """A bundle manifest's `taxonomy`, or {}."""
    try:
        manifest = json.loads((Path(bundle_dir) / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return _entries(manifest.get("taxonomy") if isinstance(manifest, dict) else None)


def inherited_taxonomy(source, class_names: list[str]) -> dict[str, dict[str, str]]:
    """The names an --init-from model (trainer.init_from.InitSource) already had, for the
    classes the new run keeps: the fine-tuned bundle does not lose them."""
    if source.kind == "bundle":
        names = bundle_taxonomy(source.path)
    else:
        names = _entries(read_run_taxonomy(source.path))
    return {label: names[label] for label in class_names if label in names}
