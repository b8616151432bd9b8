"""The fleet area: a central database of either engine, created empty per test."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(params=["postgresql", "sqlite"])
def central_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh central database: a PostgreSQL URL (real server) or a SQLite file path."""
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_db")
    return str(tmp_path / "central.sqlite")
