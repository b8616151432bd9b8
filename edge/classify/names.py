"""Names people read: a label's common name in the station's language ([station] language).

Where names come from, in this order:

1. the model's own common name (a labels CSV such as AIY's labelmap.csv, a bundle's
   taxonomy, Coral's "Scientific (Common)" lines), taken to be English: it is kept where the
   station's language is English;
2. the names pack, `edge models pull birdnet-names`: BirdNET's label lists (6,522 species, about
   35 languages, `Scientific name_Common name` per line) from the PyPI wheel birdnet-analyzer
   2.4.0; English (eBird 2024 names) from the same wheel's eBird_taxonomy_codes_2024E.json;
3. else the scientific name, else the label (`display_name`).

Names are matched by scientific name: exactly, then a subspecies by its species ("Ardea
herodias occidentalis" → "Ardea herodias"), then a synonym through an English name both agree
on (a model that says "Carduelis cannabina, Eurasian Linnet" gets the pack's "Linaria cannabina"
names). Nothing is matched by guessing: a label that finds no name shows its scientific name.

Catalogue classifiers that come without common names (aiy-birds-v1: scientific names only)
get the pack's English names as their `common_name` (`with_common_names`), so that the `taxa`
table and the exports have English names without a hand-made labels file.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from edge.classify.labels import Label

log = logging.getLogger(__name__)

PACK_NAME = "birdnet-names"  # the catalogue entry (edge/classify/catalogue.py)
ENGLISH = "en"
# The English names: the keys of this eBird code table are "Scientific name_Common name" (the
# same names, line for line, as BirdNET_GLOBAL_6K_V2.4_Labels.txt, which the wheel lacks).
ENGLISH_FILE = "eBird_taxonomy_codes_2024E.json"
LANGUAGE_FILE = "BirdNET_GLOBAL_6K_V2.4_Labels_{language}.txt"


class NamesError(ValueError):
    """A names file that cannot be read."""


def language_file(language: str) -> str:
    """The pack's file for a language code ("de" → BirdNET_GLOBAL_6K_V2.4_Labels_de.txt)."""
    return ENGLISH_FILE if language == ENGLISH else LANGUAGE_FILE.format(language=language)


def parse_label_lines(text: str) -> dict[str, str]:
    """BirdNET's `Scientific name_Common name` lines → scientific → common (first wins)."""
    names: dict[str, str] = {}
    for line in text.splitlines():
        scientific, sep, common = line.strip().partition("_")
        if sep and scientific and common.strip():
            names.setdefault(scientific.strip(), common.strip())
    return names


def parse_ebird_codes(text: str) -> dict[str, str]:
    """eBird_taxonomy_codes_*.json (keys "Scientific_Common" → code, and code → "Scientific_Common")."""
    try:
        data = json.loads(text)
    except ValueError as error:
        raise NamesError(f"not JSON: {error}") from None
    if not isinstance(data, Mapping):
        raise NamesError("not a JSON object")
    return parse_label_lines("\n".join(key for key in data if "_" in key))


def read_language(folder: Path, language: str) -> dict[str, str] | None:
    """scientific → common name in `language` from a pulled pack; None when the pack lacks it."""
    path = Path(folder) / language_file(language)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        raise NamesError(f"{path}: cannot read names: {error}") from None
    try:
        return parse_ebird_codes(text) if language == ENGLISH else parse_label_lines(text)
    except NamesError as error:
        raise NamesError(f"{path}: {error}") from None


def available_languages(folder: Path) -> list[str]:
    """The language codes a pulled pack holds."""
    folder = Path(folder)
    found = [ENGLISH] if (folder / ENGLISH_FILE).is_file() else []
    prefix, suffix = LANGUAGE_FILE.split("{language}")
    found += sorted(p.name[len(prefix):-len(suffix)] for p in folder.glob(prefix + "*" + suffix))
    return found


def _species(scientific: str) -> str | None:
    words = scientific.split()
    return f"{words[0]} {words[1]}" if len(words) >= 3 and "×" not in words else None


@dataclass(frozen=True)
class Names:
    """Common names in one language, and the English ones that synonyms are matched through."""

    language: str
    local: Mapping[str, str]    # scientific → name in `language`
    english: Mapping[str, str]  # scientific → English name (may be the same mapping)

    def match(self, scientific: str | None, english_common: str | None = None) -> str | None:
        """The pack's scientific name for a label: exact, its species, or the species whose
        English name is the label's (a synonym); None when none matches."""
        if scientific:
            if scientific in self.local:
                return scientific
            species = _species(scientific)
            if species and species in self.local:
                return species
        if english_common:
            folded = english_common.casefold()
            candidates = [s for s, name in self.english.items() if name.casefold() == folded and s in self.local]
            if len(candidates) == 1:
                return candidates[0]
        return None

    def common_name(self, scientific: str | None, english_common: str | None = None) -> str | None:
        """The name in `language` of a scientific name (see match), or None."""
        found = self.match(scientific, english_common)
        return self.local[found] if found else None


def load_names(folder: Path | None, language: str) -> Names | None:
    """The names of a pulled pack in `language` (None: no pack, or not that language)."""
    if folder is None or not Path(folder).is_dir():
        return None
    local = read_language(folder, language)
    if local is None:
        return None
    english = local if language == ENGLISH else (read_language(folder, ENGLISH) or {})
    return Names(language, local, english)


def default_pack_folder(database: Path) -> Path:
    """Where `edge models pull birdnet-names` puts the pack: models/ beside the database."""
    return Path(database).parent / "models" / PACK_NAME


def pack_folder(config) -> Path:
    """[taxonomy] names, else the default folder beside [storage] database."""
    return config.taxonomy.names or default_pack_folder(config.storage.database)


def with_common_names(labels: Iterable[Label], english: Names | None) -> list[Label]:
    """Labels with an English common name from the pack where the model gives none (so the
    `taxa` table and the exports have one); a model's own name is never replaced."""
    labels = list(labels)
    if english is None:
        return labels
    result = []
    for label in labels:
        if label.common_name is None:
            scientific = label.scientific_name or label.name
            common = english.common_name(scientific)
            if common is not None:
                label = replace(label, common_name=common, scientific_name=label.scientific_name or scientific)
        result.append(label)
    return result


def display_name(name: str, scientific: str | None = None, common: str | None = None) -> str:
    """The name a person reads: the common name, else the scientific name, else the label.

    The one rule for the CLI tables, the web app, MQTT, Home Assistant and the report. A genus
    roll-up ("Turdus sp.", scientific name "Turdus") reads as its label, the birders' way."""
    if common:
        return common
    if name.endswith(" sp.") and scientific and name.startswith(scientific):
        return name
    return scientific or name


@dataclass(frozen=True)
class Namer:
    """display_name in the station's language: a label's own (English) common name where the
    station reads English, else the pack's name in the station's language."""

    language: str = ENGLISH
    names: Names | None = None

    def common(self, name: str, scientific: str | None, common: str | None) -> str | None:
        """The common name in the station's language, or None."""
        if self.language == ENGLISH and common:
            return common
        if self.names is not None:
            found = self.names.common_name(scientific or name, common)
            if found:
                return found
        return None

    def display(self, name: str, scientific: str | None = None, common: str | None = None) -> str:
        return display_name(name, scientific, self.common(name, scientific, common))


def namer(language: str, folder: Path | None) -> Namer:
    """The Namer for a station: its language and the pulled pack (if any)."""
    return Namer(language, load_names(folder, language))


def station_namer(config) -> Namer:
    """The Namer of a configured station ([station] language, the pack of `pack_folder`), built
    once by a long-running reader (the daemon's MQTT, the web app, the report). A pack that
    cannot be read costs the names, not the start: the model's own names are used."""
    try:
        return namer(config.station.language, pack_folder(config))
    except NamesError as error:
        log.warning("taxonomy.names: %s; names people read fall back to the model's own", error)
        return Namer(config.station.language)
