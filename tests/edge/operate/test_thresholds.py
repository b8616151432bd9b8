"""`edge thresholds suggest`: the lowest threshold that keeps the reviewed precision at the goal."""

from __future__ import annotations

import pytest

from edge.operate.thresholds import Outcome, lowest_threshold, suggest, toml_lines


def _outcomes(species: str, pairs: list[tuple[float, bool]]) -> list[Outcome]:
    return [Outcome(species, confidence, right) for confidence, right in pairs]


def test_the_lowest_threshold_reaching_the_goal_is_suggested():
    # Right ones at 0.9..0.6, one wrong at 0.55, right at 0.5, two wrong at 0.4 and 0.3.
    items = _outcomes("Wren", [(0.9, True), (0.8, True), (0.7, True), (0.6, True), (0.55, False), (0.5, True),
                               (0.4, False), (0.3, False)])
    assert lowest_threshold(items, 1.0) == (0.6, 1.0, 4)
    threshold, precision, kept = lowest_threshold(items, 0.8)
    assert threshold == 0.5 and precision == pytest.approx(5 / 6) and kept == 5  # not monotone: 0.5 beats 0.55
    assert lowest_threshold(_outcomes("Crow", [(0.9, False), (0.8, True)]), 0.95) is None


def test_ties_keep_every_outcome_of_the_same_confidence():
    items = _outcomes("Tit", [(0.7, True), (0.7, False), (0.6, True)])
    assert lowest_threshold(items, 0.6) == (0.6, pytest.approx(2 / 3), 2)
    assert lowest_threshold(items, 0.9) is None  # 0.7 keeps the wrong one too


def test_species_with_too_few_reviews_are_listed_and_lines_are_toml():
    import tomllib

    outcomes = _outcomes("Parus major", [(0.9, True)] * 20 + [(0.4, False)] * 2) + _outcomes("Crow", [(0.9, True)])
    by_species = {s.species: s for s in suggest(outcomes, 0.95, 20)}
    assert by_species["Crow"].status == "too few reviews" and by_species["Crow"].threshold is None
    assert by_species["Parus major"].threshold == 0.9 and by_species["Parus major"].reviews == 22
    parsed = tomllib.loads("\n".join(toml_lines(list(by_species.values()))))
    assert parsed == {"classify": {"thresholds": {"Parus major": 0.9}}}


def _reviewed_db(tmp_path):
    import sqlite3

    from edge.store.writer import Store

    db = tmp_path / "t.db"
    Store(db).close()
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO events (uid, camera, species, confidence, started_at, ended_at, frame_count, state, review_state) "
                 "VALUES ('u1', 'c', 'Wren', 0.8, '2026-05-01T06:00:00.000Z', '2026-05-01T06:00:00.000Z', 1, 'closed', 'confirmed')")
    conn.commit()
    conn.close()
    return db


def test_write_merges_the_thresholds_and_keeps_the_file(tmp_path):
    """With tomlkit (the dev environment): the thresholds land in [classify], comments and the
    other keys stay, and the file is still a configuration the edge loads."""
    pytest.importorskip("tomlkit", reason="tomlkit absent: the refusal path is tested instead")
    from edge.cli.commands import main
    from edge.config import load_config

    db = _reviewed_db(tmp_path)
    config = tmp_path / "edge.toml"
    config.write_text('# mine\n[station]\ndevice_id = "st1"  # keep me\n[classify]\nthreshold = 0.5\n')
    assert main(["thresholds", "suggest", "--db", str(db), "--min-reviews", "1", "--write", str(config)]) == 0
    text = config.read_text()
    assert text.startswith("# mine\n") and "# keep me" in text and "threshold = 0.5" in text
    loaded = load_config(config, environ={})
    assert loaded.classify.thresholds == {"Wren": 0.8} and loaded.classify.threshold == 0.5
    assert loaded.station.device_id == "st1"


def test_write_without_tomlkit_refuses_and_prints_the_lines(tmp_path, capsys):
    try:
        import tomlkit  # noqa: F401
        pytest.skip("tomlkit is installed here: the refusal path does not apply")
    except ImportError:
        pass
    from edge.cli.commands import main

    db = _reviewed_db(tmp_path)
    config = tmp_path / "edge.toml"
    config.write_text("# mine\n[classify]\nthreshold = 0.5\n")
    assert main(["thresholds", "suggest", "--db", str(db), "--min-reviews", "1", "--write", str(config)]) == 2
    out, err = capsys.readouterr()
    assert "tomlkit" in err and 'thresholds = { "Wren" = 0.8 }' in out
    assert config.read_text() == "# mine\n[classify]\nthreshold = 0.5\n"  # untouched
