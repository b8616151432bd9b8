"""Names and places for ecologists: scientific names from every label format, the taxa the
daemon records, the deployment and project tables of the configuration, and `edge check`'s
list of what a Camtrap DP export would lack."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from edge.classify.decision import Decision
from edge.classify.labels import Label, parse_csv_labels, parse_text_labels
from edge.classify.model import resolve_model
from edge.config import ConfigError, load_config
from edge.ecology.deployments import lacks, resolve_deployments
from edge.store.db import open_readonly
from edge.store.taxa import record_taxa, taxa
from edge.store.writer import FrameRecord, Store

T0 = datetime(2026, 5, 1, 6, 0, tzinfo=UTC)


# ---- labels ------------------------------------------------------------------------------

def test_inat_scientific_common_lines_give_both_names_and_keep_the_label():
    labels = parse_text_labels("Poecile atricapillus (Black-capped Chickadee)\n"
                               "Anas superciliosa × platyrhynchos (Pacific Black Duck x Mallard)\n"
                               "Blue jay\nbackground\n")
    assert labels[0] == Label(0, "Poecile atricapillus (Black-capped Chickadee)", "Poecile atricapillus",
                              "Black-capped Chickadee")
    assert labels[1].scientific_name == "Anas superciliosa × platyrhynchos"
    # A trainer's class name that merely looks like two words is not taken for Latin.
    assert labels[2] == Label(2, "Blue jay") and labels[3].scientific_name is None


def test_aiy_embedded_latin_names_are_scientific_names_and_its_labelmap_adds_common_ones(aiy_model_dir: Path):
    embedded = resolve_model(aiy_model_dir / "model.tflite")
    named = {label.name: label for label in embedded.labels}
    assert named["Cardinalis cardinalis"].scientific_name == "Cardinalis cardinalis"
    assert named[embedded.no_bird_label].scientific_name is None  # 'None', the background class
    with_map = resolve_model(aiy_model_dir / "model.tflite", aiy_model_dir / "labelmap.csv")
    cardinal = next(label for label in with_map.labels if label.scientific_name == "Cardinalis cardinalis")
    assert cardinal.common_name == "Northern Cardinal" and cardinal.name == "Northern Cardinal"


def test_a_csv_with_a_name_column_keeps_the_name_as_the_label():
    labels = parse_csv_labels("id,name,scientific_name,common_name\n0,NORTHERN CARDINAL,Cardinalis cardinalis,"
                              "Northern Cardinal\n1,blue_jay,,\n")
    assert labels[0] == Label(0, "NORTHERN CARDINAL", "Cardinalis cardinalis", "Northern Cardinal")
    assert labels[1] == Label(1, "blue_jay")


def test_a_bundle_manifest_taxonomy_names_the_classes(tmp_path: Path, aiy_model_dir: Path):
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    shutil.copy(aiy_model_dir / "model.tflite", bundle / "model.tflite")
    names = [label.name for label in resolve_model(aiy_model_dir / "model.tflite").labels]
    (bundle / "labels.txt").write_text("".join(f"class {i}\n" for i in range(len(names))), encoding="utf-8")
    (bundle / "manifest.json").write_text(json.dumps({
        "format": "trailcam-bundle", "format_version": 1, "labels_file": "labels.txt",
        "taxonomy": {"class 0": {"scientific_name": "Haemorhous cassinii", "common_name": "Cassin's Finch"},
                     "no such class": {"scientific_name": "Nullus nullus"}}}), encoding="utf-8")
    spec = resolve_model(bundle)
    assert spec.labels[0] == Label(0, "class 0", "Haemorhous cassinii", "Cassin's Finch")
    assert spec.labels[1] == Label(1, "class 1") and spec.scientific_names == {"class 0": "Haemorhous cassinii"}


# ---- taxa in the database ----------------------------------------------------------------

def test_the_daemon_records_its_model_s_names_at_start(make_config, thread_daemon, aiy_model_dir: Path):
    config = make_config(model={"labels": str(aiy_model_dir / "labelmap.csv")})
    thread_daemon(config).stop()
    db = open_readonly(config.storage.database)
    try:
        names = taxa(db)
    finally:
        db.conn.close()
    labels = resolve_model(aiy_model_dir / "model.tflite", aiy_model_dir / "labelmap.csv").labels
    assert {label.name for label in labels} <= set(names)
    assert names["Northern Cardinal"].scientific_name == "Cardinalis cardinalis"
    # Beside the model's 965 labels, the taxa a roll-up may count ([taxonomy] rollup, on by default).
    assert names["Cardinalis sp."].scientific_name == "Cardinalis"
    assert names["Northern Cardinal"].model_id and names["Northern Cardinal"].model_id.startswith("aiy_birds_v1-")


def test_a_later_model_without_names_keeps_the_names_an_earlier_one_gave(tmp_path: Path):
    store = Store(tmp_path / "t.db")
    try:
        store.record_taxa([Label(0, "Northern Cardinal", "Cardinalis cardinalis", "Northern Cardinal")], "aiy")
        store.record_taxa([Label(0, "Northern Cardinal"), Label(1, "blue_jay")], "bundle-2")
        names = taxa(store.db)
    finally:
        store.close()
    assert names["Northern Cardinal"].scientific_name == "Cardinalis cardinalis"
    assert names["Northern Cardinal"].model_id == "bundle-2" and names["blue_jay"].scientific_name is None


def test_a_database_before_schema_5_has_no_taxa_and_says_so_by_an_empty_map(tmp_path: Path):
    conn = sqlite3.connect(tmp_path / "old.db")
    conn.execute("CREATE TABLE frames (id INTEGER)")
    conn.commit()
    import sqlite_utils

    assert taxa(sqlite_utils.Database(conn)) == {}
    with pytest.raises(sqlite3.OperationalError):  # record_taxa is for migrated databases only
        record_taxa(sqlite_utils.Database(conn), [Label(0, "x")], None)


# ---- configuration -----------------------------------------------------------------------

def _config(tmp_path: Path, text: str):
    path = tmp_path / "edge.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path, environ={})


CAMERA = '[[cameras]]\nname = "north"\npath = "/tmp/trailcam-north"\n'


@pytest.mark.parametrize("deployment, problem", [
    ("latitude = 52.5", "cameras[0].deployment: latitude and longitude go together"),
    ("latitude = 91.0\nlongitude = 0.0", "cameras[0].deployment.latitude: Input should be less than or equal to 90"),
    ("start = 2026-06-01\nend = 2026-05-01", "cameras[0].deployment: end (2026-05-01) must be after start"),
    ('feature_type = "feeder"', "cameras[0].deployment.feature_type: Input should be 'roadPaved'"),
    ('start = "2026-05-01"', "cameras[0].deployment.start"),
    ('id = "has space"', "cameras[0].deployment.id: must be 1-128 letters"),
])
def test_a_bad_deployment_names_its_dotted_key(tmp_path: Path, deployment: str, problem: str):
    with pytest.raises(ConfigError) as caught:
        _config(tmp_path, CAMERA + "[cameras.deployment]\n" + deployment + "\n")
    assert any(line.startswith(problem) for line in caught.value.problems), caught.value.problems


def test_deployments_start_and_end_come_from_the_config_or_the_frames(tmp_path: Path):
    config = _config(tmp_path, '[station]\ndevice_id = "feeder-1"\ntimezone = "Europe/Berlin"\n' + CAMERA
                     + "[cameras.deployment]\nlatitude = 52.5\nlongitude = 13.4\nstart = 2026-05-01T08:00:00\n"
                     + "end = 2026-05-03\n"
                     + '[[cameras]]\nname = "south"\npath = "/tmp/trailcam-south"\n')
    store = Store(tmp_path / "t.db", station_tz="Europe/Berlin")
    try:
        for n, (camera, hours) in enumerate([("north", 1), ("south", 5), ("south", 30), ("gone", 2)]):
            sha = hashlib.sha256(f"frame {n}".encode()).hexdigest()
            store.record(FrameRecord(path=f"/{camera}/{n}.jpg", sha256=sha, camera=camera, size=1, mtime=0.0,
                                     captured_at=T0 + timedelta(hours=hours), time_source="exif", model_id="m",
                                     decision=Decision("species", "Cardinalis cardinalis", 0.9, "ok")))
        found = {d.camera: d for d in resolve_deployments(config, store.db)}
        clipped = {d.camera: d for d in resolve_deployments(
            config, store.db, since=T0 + timedelta(hours=24), until=T0 + timedelta(hours=48))}
    finally:
        store.close()
    north = found["north"]
    # A local date-time is Berlin time (UTC+2 in May); an end date includes that whole day.
    assert north.start == datetime(2026, 5, 1, 6, 0, tzinfo=UTC) and north.start_source == "config"
    assert north.end == datetime(2026, 5, 3, 22, 0, tzinfo=UTC) and north.days() == pytest.approx(2 + 16 / 24)
    assert north.deployment_id == "feeder-1-north" and north.latitude == 52.5
    south = found["south"]
    assert (south.start, south.start_source) == (T0 + timedelta(hours=5), "first frame")
    # Ends are exclusive: a data-derived one is just after the last frame, which stays inside.
    assert (south.end, south.end_source) == (T0 + timedelta(hours=30, milliseconds=1), "last frame")
    assert not south.configured
    assert "gone" in found  # removed from the configuration, still has data
    assert clipped["north"].start == T0 + timedelta(hours=24) and clipped["north"].start_source == "period"
    # No configured end: the last frame (hour 30, inside the period), not the period's end.
    assert clipped["south"].end == T0 + timedelta(hours=30, milliseconds=1)
    assert clipped["south"].end_source == "last frame"
    assert clipped["north"].end == T0 + timedelta(hours=48) and clipped["north"].end_source == "period"
    assert "gone" not in clipped  # its one frame is before the period


def test_lacks_lists_every_missing_piece_by_its_dotted_key(tmp_path: Path):
    bare = _config(tmp_path, CAMERA + '[[cameras]]\nname = "south"\npath = "/tmp/s"\n[cameras.deployment]\n'
                   'id = "d1"\n')
    lines = lacks(bare)
    keys = [line.split(":", 1)[0] for line in lines]
    assert keys == ["project.title", "project.contributors", "project.sampling_design", "project.license",
                    "cameras[0].deployment",
                    "cameras[1].deployment.latitude, cameras[1].deployment.longitude", "cameras[1].deployment.start"]
    complete = _config(tmp_path, '[project]\ntitle = "Feeders"\nlicense = "CC0-1.0"\nsampling_design = "targeted"\n'
                       '[[project.contributors]]\ntitle = "Ada"\nrole = "principalInvestigator"\n' + CAMERA
                       + "[cameras.deployment]\nlatitude = 1.0\nlongitude = 2.0\nstart = 2026-05-01\n")
    assert lacks(complete) == []


def test_edge_check_warns_about_what_an_export_lacks_and_still_exits_0(tmp_path: Path, aiy_model_dir: Path, capsys):
    from edge.cli.commands import main

    (tmp_path / "cam").mkdir()
    path = tmp_path / "edge.toml"
    path.write_text(f'[model]\npath = "{aiy_model_dir / "model.tflite"}"\n[storage]\ndatabase = "{tmp_path / "t.db"}"\n'
                    f'[[cameras]]\nname = "cam"\npath = "{tmp_path / "cam"}"\n', encoding="utf-8")
    code = main(["check", "--config", str(path)])
    out = SimpleNamespace(text=capsys.readouterr().out)
    assert code == 0, out.text
    assert "export: warning: project.title: missing" in out.text
    assert "export: warning: cameras[0].deployment: missing for camera 'cam'" in out.text
    # Every AIY species label is a Latin name (hybrids "A b × c" included): none lacks one.
    assert "labels have no scientific name" not in out.text
    assert not (tmp_path / "t.db").exists()  # a check creates nothing


def test_a_one_frame_visit_at_the_data_derived_end_is_counted_by_the_report(tmp_path: Path):
    """A deployment without a configured end ends at its last record, and ends are exclusive:
    the last frame (here a one-frame visit) must still be inside, or `edge report` would count
    one visit fewer than `edge counts`."""
    from edge.ecology.analyses import ALL, analyse, load
    from edge.store.queries import counts

    config = _config(tmp_path, CAMERA)
    store = Store(tmp_path / "t.db")
    try:
        for n, minutes in enumerate([0, 1, 120]):  # a visit of two frames, then a one-frame visit
            sha = hashlib.sha256(f"frame {n}".encode()).hexdigest()
            store.record(FrameRecord(path=f"/north/{n}.jpg", sha256=sha, camera="north", size=1, mtime=0.0,
                                     captured_at=T0 + timedelta(minutes=minutes), time_source="exif", model_id="m",
                                     decision=Decision("species", "Cardinalis cardinalis", 0.9, "ok")))
        loaded = load(config, store.db)
        expected = sum(row["events"] for row in counts(store.db, by="total"))
    finally:
        store.close()
    result = analyse(loaded.sites, loaded.frames, loaded.observations, loaded.zone)
    assert expected == 2
    assert [row.events for row in result.rai if row.deployment_id == ALL] == [expected]
    assert loaded.sites[0].end == T0 + timedelta(minutes=120, milliseconds=1)
