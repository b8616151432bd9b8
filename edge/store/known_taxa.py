"""The names a review may correct a bird to: the taxa this station knows.

A correction is a count: a typo ("mourn", "Xyzzy bird") stored as a species would be counted as
one, in the tallies, MQTT and every export. So a review must name a taxon the station knows —
a label of the classifier (by its label, scientific or common name, any case), a taxon recorded
in the database's `taxa` table (earlier models' labels, rolled-up taxa such as `Turdus sp.`),
or a species already counted at this station (including one added earlier as new) — and is
stored under that taxon's label. Anything else is refused with the closest names, unless the
reviewer says explicitly that it is a new species (`new_species`), which the review records
as typed.
"""

from __future__ import annotations

import difflib
import sqlite3
import unicodedata
from collections.abc import Iterable, Mapping


def fold(name: str) -> str:
    """Case, accents and spacing do not make another name ("mourning  dove" = "Mourning Dove")."""
    text = unicodedata.normalize("NFKD", name)
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(text.casefold().replace("_", " ").split())


class KnownTaxa:
    """Folded name → the label the database stores for it."""

    def __init__(self, entries: Iterable[tuple[str, Iterable[str | None]]]) -> None:
        self._labels: dict[str, str] = {}
        self._names: dict[str, str] = {}  # every name, as written, → label (for suggestions)
        for label, aliases in entries:
            for name in (label, *aliases):
                if name:
                    self._labels.setdefault(fold(name), label)
                    self._names.setdefault(name, label)

    @classmethod
    def of_station(cls, conn: sqlite3.Connection, labels: Iterable[Mapping[str, str]] = ()) -> KnownTaxa:
        """The model's labels (dicts with name, common, scientific: the web app's species list),
        the database's `taxa`, and the species counted here."""
        entries: list[tuple[str, list[str | None]]] = [
            (str(label["name"]), [label.get("common"), label.get("scientific")]) for label in labels if label.get("name")]
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "taxa" in tables:
            entries += [(name, [scientific, common]) for name, scientific, common in conn.execute(
                "SELECT name, scientific_name, common_name FROM taxa")]
        entries += [(row[0], []) for row in conn.execute(
            "SELECT DISTINCT species FROM daily_tallies WHERE events > 0 OR frames > 0")]
        return cls(entries)

    def __len__(self) -> int:
        return len(set(self._labels.values()))

    def resolve(self, name: str) -> str | None:
        """The stored label for a name the station knows, else None."""
        return self._labels.get(fold(name))

    def suggestions(self, name: str, n: int = 3) -> list[str]:
        """The closest known names (for the refusal's message)."""
        folded = {fold(k): k for k in self._names}
        close = difflib.get_close_matches(fold(name), list(folded), n=n, cutoff=0.6)
        starts = [k for f, k in folded.items() if fold(name) and f.startswith(fold(name))][:n]
        return list(dict.fromkeys([*(folded[c] for c in close), *starts]))[:n]
