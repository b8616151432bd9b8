"""`edge report` over a real database: the crafted data set of report_data.py written by the real
Store and reviewed through the real ReviewStore, the real CLI in a subprocess, the HTML with its
embedded plots (matplotlib is in the development venv) and without them (the edge-floor venv,
.venv-min, has no matplotlib), and the CSVs equal to the analyses."""

from __future__ import annotations

import base64
import csv
import os
import re
import subprocess
import sys
from datetime import UTC
from pathlib import Path

import pytest

from edge.config import load_config
from edge.ecology import analyses as an
from edge.ecology.report import ReportOutputError, tables, write_report
from edge.store.db import open_readonly
from tests.edge.ecology.report_data import SITES, ZONE, at, build, frame_times, observations
from tests.edge.exports.conftest import build_station
from tests.edge.exports.helpers import edge_counts

REPO = Path(__file__).resolve().parents[3]
MIN_PYTHON = REPO / ".venv-min" / "bin" / "python"
CSVS = ["effort.csv", "gaps.csv", "rai.csv", "accumulation.csv", "activity.csv", "occupancy.csv",
        "detection_histories.csv", "detection_effort.csv", "detection_histories/jay.csv",
        "detection_histories/robin.csv", "detection_histories/wren.csv"]


@pytest.fixture(scope="module")
def crafted(tmp_path_factory) -> tuple[Path, Path]:
    return build(tmp_path_factory.mktemp("crafted"))


def run_edge(args: list[str], cli_env: dict[str, str], python: str = sys.executable) -> subprocess.CompletedProcess:
    return subprocess.run([python, "-m", "edge", *args], env=cli_env, capture_output=True, text=True, timeout=180)


def read_csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


def analysed(config_path: Path, **options) -> tuple[an.Analyses, dict]:
    config = load_config(config_path)
    db = open_readonly(config.storage.database)
    try:
        loaded = an.load(config, db, since=options.pop("since", None), until=options.pop("until", None),
                         cameras=options.pop("cameras", None))
    finally:
        db.conn.close()
    return an.analyse(loaded.sites, loaded.frames, loaded.observations, loaded.zone, **options), loaded.taxa


def test_load_reads_what_the_store_wrote_and_the_reviews_decided(crafted) -> None:
    _, config_path = crafted
    config = load_config(config_path)
    db = open_readonly(config.storage.database)
    try:
        loaded = an.load(config, db)
    finally:
        db.conn.close()
    assert [(s.deployment_id, s.camera, s.start, s.end, s.start_source, s.end_source) for s in loaded.sites] == [
        (s.deployment_id, s.camera, s.start, s.end, "config", "config") for s in SITES]
    assert loaded.frames == frame_times()  # empty frames included: they prove the camera alive

    def key(o):
        return (o.camera, o.species, o.started_at.astimezone(UTC), o.individuals)

    assert sorted(map(key, loaded.observations)) == sorted(map(key, observations()))


def test_a_period_clips_the_deployments_and_measures_a_silence_whole(crafted) -> None:
    _, config_path = crafted
    result, _ = analysed(config_path, since=at(6), gap_hours=72, occasion_days=2)
    north, south = result.efforts
    assert (north.site.start, north.site.start_source, north.site.alive_before) == (at(6), "period", at(4))
    # 05-04 00:00 .. 05-08 00:00 silent: the 2 days of it inside the period are a gap.
    assert (north.camera_days, north.gap_days, north.effective_days) == (5.0, 2.0, 3.0)
    assert (south.camera_days, south.gap_days, south.site.alive_before) == (2.5, 0.0, at(5, 9, 40))
    # From 05-06 on: only the 05-08 robin counts (the 05-09 jay is rejected).
    assert {(r.species, r.deployment_id): (r.events, r.effort_days) for r in result.rai} == {
        ("robin", "st1-north"): (1, 3.0), ("robin", "st1-south"): (0, 2.5), ("robin", an.ALL): (1, 5.5)}


def test_edge_report_writes_the_html_with_plots_and_the_tables(crafted, cli_env, tmp_path) -> None:
    pytest.importorskip("matplotlib")
    _, config_path = crafted
    out = tmp_path / "report"
    result = run_edge(["report", "--config", str(config_path), "--out", str(out), "--occasion-days", "2"], cli_env)
    assert result.returncode == 0, result.stderr
    assert "2 deployments, 11.0 camera-days after gaps, 7 events, 3 species" in result.stdout
    html = (out / "report.html").read_text(encoding="utf-8")
    images = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == 5, [alt for alt, _ in images]
    assert all(base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n" for _, data in images)
    assert not re.search(r'(src|href)="(https?:)?//', html) and "<script" not in html  # self-contained
    assert "<h1>Crafted &lt;survey&gt; &amp; test</h1>" in html  # the project title is data: escaped
    assert "matplotlib" not in html

    expected, taxa = analysed(config_path, gap_hours=72, occasion_days=2)
    want = {t.name: [t.header, *t.rows] for t in tables(expected, taxa)}
    assert sorted(want) == sorted(CSVS)
    for name in CSVS:
        assert read_csv(out / name) == want[name], name
    # And the numbers themselves, as hand-computed (report_data.py).
    rai = {(r[0], r[3]): r[4:] for r in read_csv(out / "rai.csv")[1:]}
    assert rai[("robin", "all")] == ["3", "3", "11.0000", "27.2727"]
    assert rai[("wren", "st1-south")] == ["2", "3", "5.0000", "40.0000"]
    assert rai[("unknown", "all")] == ["1", "1", "11.0000", "9.0909"]
    assert read_csv(out / "detection_histories/robin.csv") == [
        ["deployment_id", "o1", "o2", "o3", "o4", "o5"],
        ["st1-north", "1", "0", "NA", "1", "0"],
        ["st1-south", "NA", "0", "0", "0", "NA"]]
    effort = read_csv(out / "effort.csv")
    assert effort[1][:6] == ["st1-north", "north", "2026-05-01T00:00:00+02:00", "config", "2026-05-11T00:00:00+02:00",
                             "config"]
    assert effort[1][6:] == ["8", "10.0000", "1", "4.0000", "6.0000"]
    assert effort[2][6:] == ["4", "5.0000", "0", "0.0000", "5.0000"]
    assert read_csv(out / "gaps.csv")[1] == ["st1-north", "north", "2026-05-04T00:00:00+02:00",
                                             "2026-05-08T00:00:00+02:00", "4.0000", "2026-05-04T00:00:00+02:00",
                                             "2026-05-08T00:00:00+02:00", "96.00"]
    activity = {(r[0], r[3]): r[4:] for r in read_csv(out / "activity.csv")[1:]}
    assert activity[("robin", "6")] == ["2", "0.6667"] and activity[("jay", "18")] == ["1", "1.0000"]
    assert read_csv(out / "occupancy.csv")[1:] == [["jay", "", "", "1", "2", "0.5000"], ["robin", "", "", "1", "2", "0.5000"],
                                                   ["wren", "", "", "1", "2", "0.5000"]]


def test_the_report_without_matplotlib_still_writes_every_table(crafted, cli_env, tmp_path) -> None:
    """The edge-floor venv has no matplotlib (as a Pi without the report extra): the same tables,
    and the page and stderr say how to get the plots."""
    if not MIN_PYTHON.exists():
        pytest.skip(f"{MIN_PYTHON} absent (make min-venv builds it)")
    probe = subprocess.run([str(MIN_PYTHON), "-c", "import matplotlib"], capture_output=True)
    if probe.returncode == 0:
        pytest.skip(f"{MIN_PYTHON} has matplotlib")
    _, config_path = crafted
    out = tmp_path / "plain"
    result = run_edge(["report", "--config", str(config_path), "--out", str(out), "--occasion-days", "2"], cli_env,
                      str(MIN_PYTHON))
    assert result.returncode == 0, result.stderr
    assert "pip install 'trailcam[report]'" in result.stderr
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "pip install &#x27;trailcam[report]&#x27;" in html and "<img" not in html
    expected, taxa = analysed(config_path, gap_hours=72, occasion_days=2)
    for table in tables(expected, taxa):
        assert read_csv(out / table.name) == [table.header, *table.rows], table.name


def test_an_existing_folder_with_files_is_refused_and_left_alone(crafted, cli_env, tmp_path) -> None:
    _, config_path = crafted
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    result = run_edge(["report", "--config", str(config_path), "--out", str(taken)], cli_env)
    assert result.returncode == 2
    assert "exists and is not empty" in result.stderr
    assert [p.name for p in taken.iterdir()] == ["notes.txt"]
    result = run_edge(["report", "--config", str(config_path), "--out", str(taken / "notes.txt")], cli_env)
    assert result.returncode == 2 and "not a folder" in result.stderr
    assert (taken / "notes.txt").read_text() == "mine"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_edge(["report", "--config", str(config_path), "--out", str(empty)], cli_env).returncode == 0
    assert (empty / "report.html").is_file()


@pytest.mark.parametrize("flags, message", [
    (["--occasion-days", "0"], "must be at least 1"),
    (["--gap-hours", "-1"], "0 or more hours"),
    (["--since", "2026-05-09", "--until", "2026-05-02"], "must be after --since"),
    (["--since", "May 3rd"], "is not a date"),
])
def test_bad_options_exit_2_and_write_nothing(crafted, cli_env, tmp_path, flags, message) -> None:
    _, config_path = crafted
    out = tmp_path / "out"
    result = run_edge(["report", "--config", str(config_path), "--out", str(out), *flags], cli_env)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert not out.exists()


def test_db_alone_takes_the_deployments_from_the_frames_and_a_camera_filter(crafted, cli_env, tmp_path) -> None:
    db, _ = crafted
    out = tmp_path / "south"
    result = run_edge(["report", "--db", str(db), "--out", str(out), "--camera", "south", "--camera", "east"], cli_env)
    assert result.returncode == 0, result.stderr
    assert "no deployment with effort in the period for east" in result.stderr
    effort = read_csv(out / "effort.csv")
    # No configuration: the deployment runs from its first to its last frame, and says so.
    assert effort[1][:6] == ["st1-south", "south", "2026-05-03T13:00:00+02:00", "first frame",
                             "2026-05-07T20:00:00+02:00", "last frame"]
    assert {r[3] for r in read_csv(out / "rai.csv")[1:]} == {"st1-south", "all"}
    assert "first frame" in (out / "report.html").read_text(encoding="utf-8")


def test_an_unmigrated_database_is_refused_and_an_empty_one_reported(cli_env, tmp_path) -> None:
    from edge.store.writer import Store

    old = REPO / "tests" / "edge" / "data" / "schema2-3c1b25a.db"
    copy = tmp_path / "old.db"
    copy.write_bytes(old.read_bytes())
    result = run_edge(["report", "--db", str(copy), "--out", str(tmp_path / "a")], cli_env)
    assert result.returncode == 2 and "schema version 2" in result.stderr and "restart the daemon" in result.stderr
    assert not (tmp_path / "a").exists()
    Store(tmp_path / "new.db").close()
    result = run_edge(["report", "--db", str(tmp_path / "new.db"), "--out", str(tmp_path / "b")], cli_env)
    assert result.returncode == 0, result.stderr
    assert "No deployment has effort in the period" in result.stderr
    assert "No deployment has effort in the period" in (tmp_path / "b" / "report.html").read_text(encoding="utf-8")
    assert read_csv(tmp_path / "b" / "effort.csv") == [["deployment_id", "camera", "start", "start_source", "end",
                                                        "end_source", "frames", "camera_days", "gaps", "gap_days",
                                                        "effective_days"]]
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "b").stat().st_mode & 0o777 == 0o777 & ~umask  # as mkdir makes it, not mkdtemp's 0700


def test_species_names_are_escaped_and_file_names_sanitised(tmp_path) -> None:
    evil = '<img src=x onerror="alert(1)">/../x'
    sites = [an.Site("d<1>", "c", at(1), at(3))]
    result = an.analyse(sites, {"c": [at(1, 1), at(2, 1)]}, [an.Observation("c", evil, at(1, 6))], ZONE)
    written = write_report(tmp_path / "r", result, title="t", period="p", plotter=lambda _: {})
    html = (tmp_path / "r" / "report.html").read_text(encoding="utf-8")
    assert evil not in html and "<img" not in html and "d<1>" not in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html and "d&lt;1&gt;" in html
    [matrix] = [name for name in written.files if name.startswith("detection_histories/")]
    assert re.fullmatch(r"detection_histories/[A-Za-z0-9._-]+\.csv", matrix)
    assert (tmp_path / "r" / matrix).parent == tmp_path / "r" / "detection_histories"
    assert read_csv(tmp_path / "r" / "rai.csv")[1][0] == evil  # the CSV keeps the name as it is


def test_write_report_refuses_before_writing(tmp_path) -> None:
    out = tmp_path / "full"
    out.mkdir()
    (out / "x").write_text("x")
    result = an.analyse(SITES, frame_times(), observations(), ZONE)
    with pytest.raises(ReportOutputError):
        write_report(out, result, title="t", period="p")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]  # no staging folder left either


def _per_species(out: Path) -> tuple[dict[str, int], dict[str, int]]:
    """(events, individuals) per species over all deployments, from rai.csv."""
    rows = [r for r in read_csv(out / "rai.csv")[1:] if r[3] == an.ALL]
    return {r[0]: int(r[4]) for r in rows}, {r[0]: int(r[5]) for r in rows}


def test_every_species_of_a_mixed_visit_counts_as_edge_counts_says(tmp_path, cli_env) -> None:
    """The export tests' station: a dove with a woodpecker and a bluebird with two sparrows, each
    one visit (issue 19). Each species is an event of its own with its own MaxN, in the RAI,
    occupancy and detection histories, equal to `edge counts`; the previous release counted
    only the headline (2 doves, 3 bluebirds, no woodpecker, no sparrow)."""
    station = build_station(tmp_path)
    out = tmp_path / "report"
    result = run_edge(["report", "--config", str(station.config), "--out", str(out)], cli_env)
    assert result.returncode == 0, result.stderr
    events, individuals = _per_species(out)
    assert events == edge_counts(station.db, cli_env, unit="")
    assert individuals == edge_counts(station.db, cli_env)
    assert {name: (events[name], individuals[name]) for name in ("dove", "woodpecker", "bluebird", "sparrow")} == {
        "dove": (1, 1), "woodpecker": (1, 1), "bluebird": (1, 1), "sparrow": (1, 2)}
    occupancy = {r[0]: r[3:] for r in read_csv(out / "occupancy.csv")[1:]}
    assert occupancy["woodpecker"] == occupancy["sparrow"] == ["1", "2", "0.5000"]
    assert ["garden-feeder-2026", "1"] == read_csv(out / "detection_histories/woodpecker.csv")[1]
    activity = {(r[0], r[3]): r[4] for r in read_csv(out / "activity.csv")[1:]}
    assert activity[("woodpecker", "14")] == activity[("sparrow", "15")] == "1"


def test_a_database_before_per_species_counts_reports_its_visits_as_that_release_counted(tmp_path, cli_env) -> None:
    """A schema-5 database read before the daemon migrated it has no event_species: the report
    counts its visits as their headline species, as its tallies (`edge counts`) do."""
    copy = tmp_path / "old.db"
    copy.write_bytes((REPO / "tests" / "edge" / "data" / "schema5-c4ed169.db").read_bytes())
    out = tmp_path / "report"
    result = run_edge(["report", "--db", str(copy), "--out", str(out)], cli_env)
    assert result.returncode == 0, result.stderr
    events, individuals = _per_species(out)
    assert events == edge_counts(copy, cli_env, unit="")
    assert individuals == edge_counts(copy, cli_env)
    assert individuals["Zenaida macroura"] == 2 and "Dryobates pubescens" not in events


def test_the_page_and_plots_show_the_station_s_names_and_the_csvs_keep_the_label(tmp_path, monkeypatch) -> None:
    """[station] language = "de": the page and the plots read the German name (the scientific name
    beside it); the CSVs keep the label and scientific name and add the common_name column."""
    from edge.classify.names import Namer, Names
    from edge.ecology import report as report_module
    from edge.store.taxa import Taxon

    sites = [an.Site("d1", "c", at(1), at(3))]
    result = an.analyse(sites, {"c": [at(1, 1), at(2, 1)]}, [an.Observation("c", "AMERICAN ROBIN", at(1, 6))], ZONE)
    taxa = {"AMERICAN ROBIN": Taxon("AMERICAN ROBIN", "Turdus migratorius", "American Robin", "aiy")}
    german = Namer("de", Names("de", {"Turdus migratorius": "Wanderdrossel"}, {"Turdus migratorius": "American Robin"}))
    drawn: list[str] = []
    monkeypatch.setattr(report_module, "render_plots",
                        lambda analysed, readable: drawn.extend(readable(a.species) for a in analysed.activity) or {})
    write_report(tmp_path / "r", result, title="t", period="p", taxa=taxa, namer=german)
    html = (tmp_path / "r" / "report.html").read_text(encoding="utf-8")
    assert "<td>Wanderdrossel</td><td>Turdus migratorius</td>" in html
    assert "<h3>Wanderdrossel <small" in html and "AMERICAN ROBIN" not in html
    rai = read_csv(tmp_path / "r" / "rai.csv")
    assert rai[0][:4] == ["species", "scientific_name", "common_name", "deployment_id"]
    assert rai[1][:3] == ["AMERICAN ROBIN", "Turdus migratorius", "Wanderdrossel"]
    for name in ("activity.csv", "occupancy.csv", "detection_histories.csv"):
        assert read_csv(tmp_path / "r" / name)[1][:3] == ["AMERICAN ROBIN", "Turdus migratorius", "Wanderdrossel"], name
    assert set(drawn) == {"Wanderdrossel"}  # the plots get the same names
