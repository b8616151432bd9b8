"""Running the real CLI and reading what it wrote (plain csv and json, no project code)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path


def edge(args: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge", *args], env=env, capture_output=True, text=True, timeout=timeout)


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def label_of(row: dict[str, str]) -> str:
    """The trailcam label an observation carries in observationTags (`label:<label>`)."""
    tags = dict(tag.strip().split(":", 1) for tag in row["observationTags"].split("|") if tag.strip())
    return tags["label"]


def event_counts(package: Path) -> tuple[dict[str, int], dict[str, int]]:
    """(individuals, events) per label from the event-level observations (blank ones count nothing)."""
    individuals: dict[str, int] = defaultdict(int)
    visits: dict[str, int] = defaultdict(int)
    for row in rows(package / "observations.csv"):
        if row["observationLevel"] == "event" and row["observationType"] != "blank":
            individuals[label_of(row)] += int(row["count"])
            visits[label_of(row)] += 1
    return dict(individuals), dict(visits)


def edge_counts(db: Path, env: dict[str, str], *extra: str, unit: str = "--individuals") -> dict[str, int]:
    """`edge counts --by total` of the real CLI, as label → number."""
    args = ["counts", "--db", str(db), "--by", "total", "--format", "json", *extra]
    if unit:
        args.insert(1, unit)
    result = edge(args, env)
    assert result.returncode == 0, result.stderr
    key = "individuals" if unit == "--individuals" else "events"
    return {row["species"]: row[key] for row in json.loads(result.stdout)}
