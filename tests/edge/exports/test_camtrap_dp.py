"""`edge export camtrap-dp` on a crafted station (real Store and ReviewStore writes, the real CLI):
the package validates offline against the Camtrap DP 1.0.2 files, a broken one fails clearly,
event-level counts equal `edge counts`, reviews come out human, boxes are the detections', and
refusals write nothing."""

from __future__ import annotations

import json
import socket
import sqlite3
from collections import defaultdict
from pathlib import Path

import pytest

from edge.exports import camtrap_dp
from edge.exports.camtrap_dp_validate import validate_package
from tests.edge.exports.conftest import ZONE, Station, build_station, write_config
from tests.edge.exports.helpers import edge, edge_counts, event_counts, label_of, rows


def export(station: Station, out: Path, env: dict[str, str], *extra: str):
    return edge(["export", "camtrap-dp", "--config", str(station.config), "--out", str(out), *extra], env)


@pytest.fixture
def package(station: Station, tmp_path: Path, edge_env: dict[str, str]) -> Path:
    out = tmp_path / "package"
    result = export(station, out, edge_env)
    assert result.returncode == 0, result.stderr
    return out


class NoNetwork:
    """Fails any connection attempt while active: validation must need no network at all."""

    def __enter__(self):
        self.connect, self.create = socket.socket.connect, socket.create_connection

        def refuse(*args, **kwargs):
            raise AssertionError(f"validation tried to use the network: {args[1:] or kwargs}")

        socket.socket.connect = refuse
        socket.create_connection = refuse
        return self

    def __exit__(self, *exc):
        socket.socket.connect, socket.create_connection = self.connect, self.create


def test_the_package_validates_offline(station: Station, tmp_path: Path, edge_env, standards_dir: Path) -> None:
    out = tmp_path / "package"
    result = export(station, out, edge_env, "--validate", str(standards_dir))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid Camtrap DP 1.0.2 package" in result.stdout
    assert sorted(p.name for p in out.iterdir()) == ["datapackage.json", "deployments.csv", "media.csv",
                                                       "observations.csv"]
    with NoNetwork():
        report = validate_package(out, standards_dir)
    assert report.valid, report.lines()
    assert report.rows == {"deployments": 2, "media": 13, "observations": 11 + 21}


def test_a_package_missing_a_deployment_fails_validation_naming_it(package: Path, standards_dir: Path,
                                                                   edge_env) -> None:
    lines = (package / "deployments.csv").read_text().splitlines()
    (package / "deployments.csv").write_text("\n".join(line for line in lines
                                                       if not line.startswith("garden-feeder-2026,")) + "\n")
    with NoNetwork():
        report = validate_package(package, standards_dir)
    assert not report.valid
    text = "\n".join(report.lines())
    assert "media.csv: deploymentID 'garden-feeder-2026' is not a deploymentID of deployments.csv (10 rows, first row 2)" in text
    assert "observations.csv: deploymentID 'garden-feeder-2026' is not a deploymentID of deployments.csv" in text
    # The CLI's own --validate on a folder that is already there is not possible (it refuses the
    # folder); validating a broken copy of the standards is: a profile that is not one.
    broken = package.parent / "standards"
    broken.mkdir()
    for name in ("deployments", "media", "observations"):
        (broken / f"{name}-table-schema.json").write_text((standards_dir / f"{name}-table-schema.json").read_text())
    result = edge(["export", "camtrap-dp", "--config", str(package.parent / "edge.toml"), "--out",
                   str(package.parent / "again"), "--validate", str(broken)], edge_env)
    assert result.returncode == 2
    assert "not a Camtrap DP 1.0.2 folder (missing camtrap-dp-profile.json)" in result.stderr
    assert (package.parent / "again" / "datapackage.json").is_file()  # written, then not validated


def test_a_table_error_is_listed_with_its_row_and_field(package: Path, standards_dir: Path) -> None:
    observations = rows(package / "observations.csv")
    observations[0]["count"] = "0"
    observations[1]["observationType"] = "bird"
    import csv

    with (package / "observations.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(observations[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(observations)
    report = validate_package(package, standards_dir)
    text = "\n".join(report.errors)
    assert "observations.csv row 2, count: constraint-error" in text
    assert "observations.csv row 3, observationType: constraint-error" in text


@pytest.mark.parametrize("period", [[], ["--since", "2026-05-02"], ["--until", "2026-05-01"],
                                    ["--camera", "feeder"], ["--since", "2026-05-01T08:10", "--camera", "feeder"]])
def test_event_counts_sum_to_edge_counts(station: Station, tmp_path: Path, edge_env, period: list[str]) -> None:
    out = tmp_path / "package"
    result = export(station, out, edge_env, *period)
    assert result.returncode == 0, result.stderr
    individuals, visits = event_counts(out)
    assert individuals == edge_counts(station.db, edge_env, *period)
    assert visits == edge_counts(station.db, edge_env, *period, unit="")
    assert individuals  # every period above holds visits


def test_event_level_observations(package: Path, station: Station, tmp_path: Path, edge_env) -> None:
    observed = [row for row in rows(package / "observations.csv") if row["observationLevel"] == "event"]
    visits: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in observed:
        visits[row["eventID"]].append(row)
    conn = sqlite3.connect(station.db)
    by_path = dict(conn.execute("SELECT f.path, e.uid FROM frames AS f JOIN events AS e ON e.id = f.event_id"))
    db_events = {row[0]: row[1:] for row in conn.execute(
        "SELECT uid, confidence, model_id, reviewed_at FROM events")}
    headlines = dict(conn.execute("SELECT uid, COALESCE(reviewed_species, species) FROM events"))
    conn.close()
    assert set(visits) == set(db_events)  # every visit, rejected ones as a blank
    assert len({row["observationID"] for row in observed}) == len(observed)
    # One observation per species the visit counts: the headline keeps the event's uid, another
    # species is <uid>:<label>; the same data export to the same ids.
    for uid, members in visits.items():
        labels = [label_of(r) for r in members if r["observationType"] != "blank"]
        assert len(set(labels)) == len(labels) and (labels or len(members) == 1)
        assert sorted(r["observationID"] for r in members) == sorted(
            uid if r["observationType"] == "blank" or label_of(r) == headlines[uid] else f"{uid}:{label_of(r)}"
            for r in members)
    again = tmp_path / "again"
    assert export(station, again, edge_env).returncode == 0
    assert [r["observationID"] for r in rows(again / "observations.csv")] == [
        r["observationID"] for r in rows(package / "observations.csv")]

    def species(path: str) -> list[tuple[str, str, str]]:
        return sorted((r["observationType"], r["scientificName"], r["count"])
                      for r in visits[by_path[str(station.feeder / path)]])

    assert species("IMG_0008.JPG") == [("animal", "Dryobates pubescens", "1"), ("animal", "Zenaida macroura", "1")]
    assert species("IMG_0009.JPG") == [("animal", "Passer domesticus", "2"), ("animal", "Sialia sialis", "1")]
    for member in visits[by_path[str(station.feeder / "IMG_0009.JPG")]]:
        assert (member["classificationMethod"], member["classifiedBy"]) == ("machine", "aiy-birds-v1")
        assert float(member["classificationProbability"]) == {"bluebird": 0.85, "sparrow": 0.75}[label_of(member)]
    # The robin and the wren of one frame: the wren a reviewer confirmed (bird-level) is hers.
    together = {label_of(r): r for r in visits[by_path[str(station.feeder / "IMG_0007.JPG")]]}
    assert (together["robin"]["classificationMethod"], together["robin"]["classifiedBy"]) == ("machine",
                                                                                            "aiy-birds-v1")
    assert (together["wren"]["observationType"], together["wren"]["scientificName"], together["wren"]["count"],
            together["wren"]["classificationMethod"], together["wren"]["classifiedBy"],
            together["wren"]["classificationTimestamp"]) == ("animal", "", "1", "human", "carla",
                                                             "2026-05-03T08:00:00+02:00")
    events = {uid: members[0] for uid, members in visits.items() if len(members) == 1}

    corrected = events[by_path[str(station.feeder / "IMG_0005.JPG")]]
    assert (corrected["observationType"], corrected["scientificName"], corrected["count"]) == (
        "animal", "Erithacus rubecula", "2")
    assert (corrected["classificationMethod"], corrected["classifiedBy"]) == ("human", "ada")
    assert corrected["classificationTimestamp"] == "2026-05-03T08:00:00+02:00"  # reviewed_at, station-local
    assert corrected["classificationProbability"] == ""
    rejected = events[by_path[str(station.feeder / "IMG_0006.JPG")]]
    assert (rejected["observationType"], rejected["count"], rejected["classificationMethod"],
            rejected["classifiedBy"]) == ("blank", "", "human", "bob")
    unknown = events[by_path[str(station.feeder / "sub/IMG_0004.JPG")]]
    assert (unknown["observationType"], unknown["scientificName"], unknown["count"]) == ("unknown", "", "2")
    first = events[by_path[str(station.feeder / "IMG_0000.JPG")]]
    assert (first["observationType"], first["count"], first["classificationMethod"], first["classifiedBy"]) == (
        "animal", "3", "machine", "aiy-birds-v1")
    assert float(first["classificationProbability"]) == pytest.approx(db_events[first["eventID"]][0])
    assert (first["eventStart"], first["eventEnd"]) == ("2026-05-01T08:00:00+02:00", "2026-05-01T08:00:10+02:00")
    assert all(row["mediaID"] == "" and row["deploymentID"] for row in observed)


def test_media_and_media_level_observations(package: Path, station: Station) -> None:
    conn = sqlite3.connect(station.db)
    frames = {row[0]: row[1:] for row in conn.execute("SELECT sha256, path, birds FROM frames WHERE status = 'ok'")}
    detections = {f"{sha}:{rank}": (xmin, ymin, xmax - xmin, ymax - ymin) for sha, rank, xmin, ymin, xmax, ymax in
                  conn.execute("SELECT f.sha256, d.rank, d.xmin, d.ymin, d.xmax, d.ymax FROM detections AS d "
                               "JOIN frames AS f ON f.id = d.frame_id")}
    conn.close()
    media = {row["mediaID"]: row for row in rows(package / "media.csv")}
    assert set(media) == set(frames)
    for row in media.values():
        assert not row["filePath"].startswith("/") and row["filePublic"] == "false"
        assert row["fileMediatype"] == "image/jpeg" and row["captureMethod"] == "activityDetection"
    assert media[next(s for s, (p, _) in frames.items() if p.endswith("sub/IMG_0004.JPG"))]["filePath"] == \
        "sub/IMG_0004.JPG"
    assert {row["deploymentID"] for row in media.values()} == {"garden-feeder-2026", "garden-gate"}

    observed = [row for row in rows(package / "observations.csv") if row["observationLevel"] == "media"]
    boxes = {row["observationID"]: row for row in observed if row["bboxX"]}
    assert set(boxes) == set(detections)
    for key, row in boxes.items():
        assert (float(row["bboxX"]), float(row["bboxY"]), float(row["bboxWidth"]), float(row["bboxHeight"])) == \
            detections[key]
        assert row["mediaID"] == key.split(":")[0] and row["count"] in ("1", "")
    reviewed = [row for row in boxes.values() if row["classificationMethod"] == "human"]
    assert [(label_of(r), r["classifiedBy"]) for r in reviewed] == [("wren", "carla")]
    empty = [row for row in observed if frames[row["mediaID"]][1] == 0]
    assert [(r["observationType"], r["bboxX"], r["count"]) for r in empty] == [("blank", "", "")]
    whole = [row for row in observed if frames[row["mediaID"]][1] is None]
    assert sorted((r["observationType"], r["scientificName"], r["bboxX"]) for r in whole) == [
        ("animal", "Garrulus glandarius", ""), ("animal", "Garrulus glandarius", ""), ("blank", "", "")]
    assert all(r["eventID"] for r in observed if r["observationType"] == "animal")


def test_package_metadata(package: Path, station: Station, edge_env) -> None:
    descriptor = json.loads((package / "datapackage.json").read_text())
    assert descriptor["profile"] == camtrap_dp.PROFILE_URL
    assert [r["schema"] for r in descriptor["resources"]] == [camtrap_dp.SCHEMA_URLS[n] for n in camtrap_dp.TABLES]
    assert descriptor["licenses"] == [{"name": "CC-BY-4.0", "scope": "data"}, {"name": "CC-BY-NC-4.0", "scope": "media"}]
    assert descriptor["project"]["samplingDesign"] == "targeted"
    assert descriptor["project"]["observationLevel"] == ["media", "event"]
    assert descriptor["contributors"] == [{"title": "Ada Observer", "email": "ada@example.org",
                                           "role": "principalInvestigator"}]
    assert descriptor["spatial"]["type"] == "MultiPoint"
    assert descriptor["spatial"]["bbox"] == [13.40, 52.52, 13.41, 52.53]
    assert descriptor["temporal"] == {"start": "2026-05-01", "end": "2026-05-02"}
    assert descriptor["taxonomic"] == [  # every species of every visit, the mixed visits' second species too
        {"scientificName": "Dryobates pubescens", "taxonRank": "species", "vernacularNames": {"eng": "Downy Woodpecker"}},
        {"scientificName": "Erithacus rubecula", "taxonRank": "species", "vernacularNames": {"eng": "European Robin"}},
        {"scientificName": "Garrulus glandarius", "taxonRank": "species", "vernacularNames": {"eng": "Eurasian Jay"}},
        {"scientificName": "Passer domesticus", "taxonRank": "species", "vernacularNames": {"eng": "House Sparrow"}},
        {"scientificName": "Sialia sialis", "taxonRank": "species", "vernacularNames": {"eng": "Eastern Bluebird"}},
        {"scientificName": "Zenaida macroura", "taxonRank": "species", "vernacularNames": {"eng": "Mourning Dove"}}]
    deployments = {row["deploymentID"]: row for row in rows(package / "deployments.csv")}
    feeder = deployments["garden-feeder-2026"]
    assert (feeder["latitude"], feeder["coordinateUncertainty"], feeder["baitUse"], feeder["deploymentGroups"]) == (
        "52.52", "30", "true", "garden | spring")
    assert deployments["garden-gate"]["deploymentStart"] == "2026-04-30T00:00:00+02:00"  # configured, local


def test_the_summary_says_what_came_from_the_data(station: Station, tmp_path: Path, edge_env) -> None:
    result = export(station, tmp_path / "package", edge_env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "deployments: 2" in out and "media: 13" in out
    assert "observations: 11 event-level (animal 9, blank 1, unknown 1), 21 media-level" in out
    assert "labels without a scientific name (scientificName left empty): wren" in out
    assert "deployment garden-feeder-2026: start from the first frame" in out
    assert "deployment garden-gate: end from the last frame" in out
    assert "garden-gate: start" not in out


def test_refusals_write_nothing(station: Station, tmp_path: Path, edge_env) -> None:
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    result = export(station, taken, edge_env)
    assert result.returncode == 2
    assert "exists and is not an empty folder (nothing was written)" in result.stderr
    assert [p.name for p in taken.iterdir()] == ["notes.txt"]

    write_config(station.config, station.db, station.feeder, station.gate, coordinates=False)
    out = tmp_path / "package"
    result = export(station, out, edge_env)
    assert result.returncode == 2
    assert ("cameras[0].deployment.latitude, cameras[0].deployment.longitude: missing for camera 'feeder'"
            in result.stderr)
    assert not out.exists() and not list(tmp_path.glob(".package.*"))
    result = edge(["export", "camtrap-dp", "--db", str(station.db), "--out", str(out)], edge_env)
    assert result.returncode == 2 and not out.exists()
    assert "project.title: missing" in result.stderr and "camera 'gate': has data" in result.stderr

    result = export(station, out, edge_env, "--force")
    assert result.returncode == 0, result.stderr
    assert "written despite (--force): cameras[0].deployment.latitude" in result.stdout
    assert rows(out / "deployments.csv")[0]["latitude"] == ""


def test_an_empty_out_folder_is_used_and_bad_flags_are_usage_errors(station: Station, tmp_path: Path, edge_env) -> None:
    out = tmp_path / "empty"
    out.mkdir()
    assert export(station, out, edge_env).returncode == 0
    assert (out / "datapackage.json").is_file()
    result = export(station, tmp_path / "x", edge_env, "--camera", "nope")
    assert result.returncode == 2 and "--camera: 'nope': no such camera (known: feeder, gate)" in result.stderr
    result = export(station, tmp_path / "x", edge_env, "--since", "May")
    assert result.returncode == 2 and "--since/--until" in result.stderr
    assert not (tmp_path / "x").exists()


def test_media_base_url_makes_public_paths(tmp_path: Path, edge_env) -> None:
    station = build_station(tmp_path)
    write_config(station.config, station.db, station.feeder, station.gate, base_url="https://photos.example.org/gfb")
    out = tmp_path / "package"
    assert export(station, out, edge_env).returncode == 0
    media = rows(out / "media.csv")
    assert {row["filePublic"] for row in media} == {"true"}
    assert "https://photos.example.org/gfb/sub/IMG_0004.JPG" in {row["filePath"] for row in media}


def test_columns_are_the_schemas_fields(standards_dir: Path) -> None:
    for name, fields in (("deployments", camtrap_dp.DEPLOYMENT_FIELDS), ("media", camtrap_dp.MEDIA_FIELDS),
                         ("observations", camtrap_dp.OBSERVATION_FIELDS)):
        schema = json.loads((standards_dir / f"{name}-table-schema.json").read_text())
        assert tuple(field["name"] for field in schema["fields"]) == fields


def test_boxes_are_clamped_to_the_schema_bounds() -> None:
    assert camtrap_dp.clamp_box(0.1, 0.2, 0.4, 0.6) == (0.2, 0.1, 0.6 - 0.2, 0.4 - 0.1)
    x, y, width, height = camtrap_dp.clamp_box(-0.05, 0.9, 0.2, 1.2)
    assert (x, y) == (0.9, 0.0) and width == pytest.approx(0.1) and height == pytest.approx(0.2)
    assert camtrap_dp.clamp_box(0.5, 0.5, 0.5, 0.5)[2:] == (camtrap_dp.MIN_BOX_SIDE, camtrap_dp.MIN_BOX_SIDE)
    assert [camtrap_dp.taxon_rank(n) for n in ("Erithacus rubecula", "Parus major major", "Corvidae", "Turdus",
                                                "robin")] == ["species", "subspecies", "family", "genus", None]


def test_zone_offsets_follow_the_station(package: Path) -> None:
    """Daylight saving time in Berlin in May: +02:00 on every timestamp."""
    assert ZONE == "Europe/Berlin"
    assert {row["timestamp"][-6:] for row in rows(package / "media.csv")} == {"+02:00"}


def test_visits_whose_frames_were_pruned_stay_in_the_package(station: Station, tmp_path: Path, edge_env,
                                                              standards_dir: Path) -> None:
    """Retention prunes old frame rows (never events): the first visit's frames gone, the feeder's
    deployment still starts at that visit and its count is still in the package."""
    conn = sqlite3.connect(station.db)
    with conn:
        first = [row[0] for row in conn.execute(
            "SELECT id FROM frames WHERE camera = 'feeder' AND captured_at < '2026-05-01T06:01:00.000Z'")]
        assert len(first) == 3
        marks = ",".join("?" * len(first))
        conn.execute(f"DELETE FROM detections WHERE frame_id IN ({marks})", first)
        conn.execute(f"DELETE FROM frames WHERE id IN ({marks})", first)
    conn.close()
    out = tmp_path / "package"
    result = export(station, out, edge_env, "--validate", str(standards_dir))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "left out" not in result.stdout
    assert event_counts(out)[0] == edge_counts(station.db, edge_env)
    feeder = next(row for row in rows(out / "deployments.csv") if row["deploymentID"] == "garden-feeder-2026")
    assert feeder["deploymentStart"] == "2026-05-01T08:00:00+02:00"  # the pruned visit's start
    assert len(rows(out / "media.csv")) == 13 - 3
