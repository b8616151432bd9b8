"""Class labels of a model: a bundle's labels.txt, a separate .txt/.csv, or a .tflite's own.

Third-party classifiers ship labels in different ways: the AIY birds model embeds
`probability-labels-en.txt` in the .tflite (which is also a zip archive) and publishes a
`labelmap.csv` (id,scientific_name,common_name) beside it. We keep both names when a CSV
gives them: operators read common names, MQTT consumers want scientific names. The iNat-trained
Coral models write each line as "Scientific name (Common name)": both names come out of it. A
trainer bundle's manifest may carry a `taxonomy` (`trainer train --taxonomy FILE`): label →
scientific and common name, applied with `with_taxonomy`. Camtrap DP exports need the
scientific name of every species, so a label without one is reported there, not guessed.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_MISSING = {"", "none", "null", "nan"}


class LabelError(ValueError):
    """Labels that cannot be read or do not fit the model."""


@dataclass(frozen=True)
class Label:
    index: int
    name: str  # what the database and reports call the class
    scientific_name: str | None = None
    common_name: str | None = None


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return None if value.lower() in _MISSING else value


# "Poecile atricapillus (Black-capped Chickadee)": a Latin binomial or trinomial, then a common
# name in parentheses (Coral's inat_bird_labels.txt, iNaturalist exports).
_SCIENTIFIC_COMMON = re.compile(r"^(?P<scientific>[A-Z][a-z]+(?: (?:× )?[a-z][a-z-]+){1,2}) \((?P<common>[^()]+)\)$")
# A binomial or trinomial alone ("Haemorhous cassinii"): genus capitalised, epithets lower case.
_SCIENTIFIC = re.compile(r"^[A-Z][a-z]+(?: (?:× )?[a-z][a-z-]+){1,2}$")


def split_scientific_common(text: str) -> tuple[str | None, str | None]:
    """(scientific, common) of a "Scientific (Common)" label, else (None, None)."""
    match = _SCIENTIFIC_COMMON.match(text.strip())
    if match is None:
        return None, None
    return match["scientific"], match["common"].strip()


def looks_scientific(text: str) -> bool:
    """Whether a label reads as a Latin binomial or trinomial. Only used for labels a
    third-party .tflite embeds (AIY's are scientific names): a trainer's class folder such
    as "Blue jay" would pass too, so bundles never go through this guess."""
    return bool(_SCIENTIFIC.match(text.strip()))


def scientific_of(label: Label) -> str | None:
    """A label's scientific name: the one its labels file gives, else the label itself when it
    reads as a Latin name (AIY's embedded labels are scientific names). The species prior and the
    taxonomy both match labels by it."""
    if label.scientific_name:
        return label.scientific_name
    return label.name if looks_scientific(label.name) else None


def with_taxonomy(labels: list[Label], taxonomy: Mapping[str, Any]) -> list[Label]:
    """Labels with the scientific and common names a bundle manifest's `taxonomy` gives
    (label → {"scientific_name": ..., "common_name": ...}); names already known are kept
    when the taxonomy has none. Unknown labels in the taxonomy are ignored."""
    result = []
    for label in labels:
        entry = taxonomy.get(label.name)
        if not isinstance(entry, Mapping):
            result.append(label)
            continue
        result.append(dataclasses.replace(
            label,
            scientific_name=_clean(entry.get("scientific_name")) or label.scientific_name,
            common_name=_clean(entry.get("common_name")) or label.common_name))
    return result


def parse_text_labels(text: str, *, scientific_if_binomial: bool = False) -> list[Label]:
    """One label per line; line i is output index i. A trailing empty line is ignored.

    The label is the whole line (what the database stores, unchanged from earlier versions);
    a "Scientific (Common)" line also gives both names, and with `scientific_if_binomial` (a
    third-party model's embedded labels) a line that is a Latin name is its scientific name."""
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    labels = []
    for index, line in enumerate(lines):
        name = line.strip()
        if not name:
            raise LabelError(f"line {index + 1} is empty: every output index needs a label")
        scientific, common = split_scientific_common(name)
        if scientific is None and scientific_if_binomial and looks_scientific(name):
            scientific = name
        labels.append(Label(index, name, scientific, common))
    return labels


def parse_csv_labels(text: str) -> list[Label]:
    """CSV with a header: id (optional, else row order), then name columns.

    Recognised columns: id/index, scientific_name, common_name, name/label. The report name
    is `name`/`label` when the file has one (a trainer's class names stay what the database
    stores), else the common name, else the scientific name.
    """
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        raise LabelError("CSV has no header line")
    fields = {field.strip().lower(): field for field in reader.fieldnames}
    by_index: dict[int, Label] = {}
    for row_number, row in enumerate(reader):
        def get(key: str, row: dict[str, str | None] = row) -> str | None:
            # `row` bound at definition: this row's cell, never a later row's (ruff B023).
            return _clean(row.get(fields[key])) if key in fields else None

        raw_id = get("id") or get("index")
        try:
            index = int(raw_id) if raw_id is not None else row_number
        except ValueError:
            raise LabelError(f"row {row_number + 2}: id {raw_id!r} is not an integer") from None
        scientific = get("scientific_name")
        common = get("common_name")
        name = get("name") or get("label") or common or scientific
        if name is None:
            raise LabelError(f"row {row_number + 2}: no common_name, scientific_name, name or label")
        if index in by_index:
            raise LabelError(f"row {row_number + 2}: duplicate id {index}")
        by_index[index] = Label(index, name, scientific, common)
    if sorted(by_index) != list(range(len(by_index))):
        raise LabelError("CSV ids must cover 0..N-1 without gaps")
    return [by_index[i] for i in range(len(by_index))]


def load_labels_file(path: Path) -> list[Label]:
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as error:
        raise LabelError(f"{path}: cannot read labels: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise LabelError(f"{path}: labels are not UTF-8 text") from None
    try:
        if Path(path).suffix.lower() == ".csv":
            return parse_csv_labels(text)
        return parse_text_labels(text)
    except LabelError as error:
        raise LabelError(f"{path}: {error}") from None


def embedded_labels(tflite_path: Path) -> tuple[str, list[Label]] | None:
    """Labels packed into the .tflite's zip (TFLite metadata), or None when there are none.

    Prefers an English file (`*-en.txt`), then any .txt; `vocab`/`tokenizer` files of text
    models are not class labels but image classifiers do not carry them.
    """
    try:
        with zipfile.ZipFile(tflite_path) as archive:
            names = [n for n in archive.namelist() if n.lower().endswith(".txt")]
            if not names:
                return None
            names.sort(key=lambda n: (not n.lower().endswith("-en.txt"), n))
            chosen = names[0]
            text = archive.read(chosen).decode("utf-8-sig")
    except zipfile.BadZipFile:
        return None
    return chosen, parse_text_labels(text, scientific_if_binomial=True)
