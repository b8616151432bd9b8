"""Class labels of a model: a bundle's labels.txt, a separate .txt/.csv, or a .tflite's own.

Third-party classifiers ship labels in different ways: the AIY birds model embeds
`probability-labels-en.txt` in the .tflite (which is also a zip archive) and publishes a
`labelmap.csv` (id,scientific_name,common_name) beside it. We keep both names when a CSV
gives them: operators read common names, MQTT consumers want scientific names.
"""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

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


def parse_text_labels(text: str) -> list[Label]:
    """One label per line; line i is output index i. A trailing empty line is ignored."""
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    labels = []
    for index, line in enumerate(lines):
        name = line.strip()
        if not name:
            raise LabelError(f"line {index + 1} is empty: every output index needs a label")
        labels.append(Label(index, name))
    return labels


def parse_csv_labels(text: str) -> list[Label]:
    """CSV with a header: id (optional, else row order), then name columns.

    Recognised columns: id/index, scientific_name, common_name, name/label. The report name
    is the common name, else the scientific name, else `name`/`label`.
    """
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        raise LabelError("CSV has no header line")
    fields = {field.strip().lower(): field for field in reader.fieldnames}
    by_index: dict[int, Label] = {}
    for row_number, row in enumerate(reader):
        def get(key: str) -> str | None:
            return _clean(row.get(fields[key])) if key in fields else None

        raw_id = get("id") or get("index")
        try:
            index = int(raw_id) if raw_id is not None else row_number
        except ValueError:
            raise LabelError(f"row {row_number + 2}: id {raw_id!r} is not an integer") from None
        scientific = get("scientific_name")
        common = get("common_name")
        name = common or scientific or get("name") or get("label")
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
    return chosen, parse_text_labels(text)
