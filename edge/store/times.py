"""The database's one time format: UTC ISO 8601 text with milliseconds and `Z`.

Stored times are text so that SQLite compares them as it sorts them; every reader and writer
formats and parses through these two functions (a seconds-only bound would sort after every
row of its own second).
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo


def format_utc(moment: datetime) -> str:
    """UTC ISO 8601 with milliseconds and `Z`, the database's one format.

    Always with milliseconds so that text order is time order (`03.500Z` < `03Z` otherwise).
    """
    moment = moment.astimezone(UTC)
    return moment.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def parse_utc(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def local_day(moment: datetime, zone: tzinfo) -> str:
    """The station-local date of an instant (ISO): the day its tallies belong to."""
    return moment.astimezone(zone).date().isoformat()
