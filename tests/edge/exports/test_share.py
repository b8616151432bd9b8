"""`edge export ebird` and `edge export inaturalist` on the crafted station (tests/edge/exports/conftest.py),
read back with plain csv and Pillow and checked against what the formats' documentation states
and against `edge counts`.

eBird Record Format (ebird.org/import, "eBird Record Format (Extended)"): 19 columns in a fixed
order, no header row, Date MM/DD/YYYY, Start Time HH:MM (24-hour). iNaturalist's CSV import
(its BulkObservationFile importer): a header row, then 8 columns by position: Taxon name, Date
observed, Description, Place name, Latitude / y coord / northing, Longitude / x coord /
easting, Tags, Geoprivacy; a date's zone as a trailing +HHMM.
"""

from __future__ import annotations

import csv
import re
import sqlite3
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import pytest
from PIL import ExifTags, Image

from tests.edge.exports.conftest import Station, build_station
from tests.edge.exports.helpers import edge, edge_counts

EBIRD_COLUMNS = ["Common Name", "Genus", "Species", "Number", "Species Comments", "Location Name", "Latitude",
                 "Longitude", "Date", "Start Time", "State/Province", "Country Code", "Protocol",
                 "Number of Observers", "Duration", "All observations reported?", "Effort Distance Miles",
                 "Effort area acres", "Submission Comments"]
INAT_COLUMNS = ["Taxon name", "Date observed", "Description", "Place name", "Latitude / y coord / northing",
                "Longitude / x coord / easting", "Tags", "Geoprivacy"]
NAMED = {"European Robin": "robin", "Eurasian Jay": "jay", "Mourning Dove": "dove", "Downy Woodpecker": "woodpecker",
         "Eastern Bluebird": "bluebird", "House Sparrow": "sparrow"}
SHARING = '\n[sharing]\ncountry_code = "DE"\nstate_province = "BE"\n'


@pytest.fixture
def shared(station: Station) -> Station:
    """The station with eBird's country and state, and its frames as real JPEGs."""
    with station.config.open("a") as handle:
        handle.write(SHARING)
    conn = sqlite3.connect(station.db)
    for (path,) in conn.execute("SELECT path FROM frames"):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (96, 64), (90, 120, 60)).save(path, format="JPEG", quality=90)
    conn.close()
    return station


def ebird(station: Station, out: Path, env, *extra: str):
    return edge(["export", "ebird", "--config", str(station.config), "--out", str(out), *extra], env)


def records(path: Path) -> list[dict[str, str]]:
    """The eBird file read by position (it has no header), as EBIRD_COLUMNS → value."""
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows and all(len(row) == 19 for row in rows)
    return [dict(zip(EBIRD_COLUMNS, row)) for row in rows]


def test_ebird_record_format(shared: Station, tmp_path: Path, edge_env) -> None:
    out = tmp_path / "ebird.csv"
    result = ebird(shared, out, edge_env, "--include-unreviewed")
    assert result.returncode == 0, result.stderr
    first = out.read_text(encoding="utf-8").splitlines()[0]
    assert not first.startswith("Common Name")  # no header row: eBird would read it as a sighting
    rows = records(out)
    for row in rows:
        assert re.fullmatch(r"\d{2}/\d{2}/\d{4}", row["Date"]), row["Date"]
        assert re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", row["Start Time"]), row["Start Time"]
        assert (row["Protocol"], row["Number of Observers"], row["All observations reported?"]) == ("Stationary", "1", "N")
        assert (row["State/Province"], row["Country Code"]) == ("BE", "DE")
        assert int(row["Duration"]) >= 1 and int(row["Number"]) >= 1
        assert row["Effort Distance Miles"] == row["Effort area acres"] == ""
        assert row["Common Name"] in NAMED
    robin = next(row for row in rows if row["Common Name"] == "European Robin")
    assert (robin["Genus"], robin["Species"]) == ("Erithacus", "rubecula")
    assert (robin["Location Name"], robin["Latitude"], robin["Longitude"]) == ("garden feeder", "52.520000", "13.400000")
    # The feeder's day: 08:00 Berlin (06:00 UTC) to its last photo at 15:00; the gate's on the next day.
    assert (robin["Date"], robin["Start Time"], robin["Duration"]) == ("05/01/2026", "08:00", "420")
    jay = next(row for row in rows if row["Common Name"] == "Eurasian Jay")
    assert (jay["Date"], jay["Location Name"], jay["Latitude"]) == ("05/02/2026", "garden gate", "52.530000")
    # Unknown birds and the wren (no scientific or common name) are left out, and said so.
    assert "left out: 1 unknown birds" in result.stdout
    assert "left out: 1 sightings without a scientific or common name" in result.stdout


def test_ebird_counts_round_trip(shared: Station, tmp_path: Path, edge_env) -> None:
    """Per visit, the Numbers add up to `edge counts --individuals`; per day, a species' Number is
    the largest of its visits' (MaxN), never their sum."""
    visits = tmp_path / "visits.csv"
    assert ebird(shared, visits, edge_env, "--include-unreviewed", "--per", "visit").returncode == 0
    summed: dict[str, int] = defaultdict(int)
    largest: dict[tuple[str, str, str], int] = defaultdict(int)
    for row in records(visits):
        label = NAMED[row["Common Name"]]
        summed[label] += int(row["Number"])
        key = (row["Location Name"], row["Date"], label)
        largest[key] = max(largest[key], int(row["Number"]))
    counts = edge_counts(shared.db, edge_env)
    assert dict(summed) == {label: n for label, n in counts.items() if label in NAMED.values()}
    assert summed["robin"] == 6  # 3 + 2 (the jay a reviewer made two robins) + 1

    days = tmp_path / "days.csv"
    assert ebird(shared, days, edge_env, "--include-unreviewed").returncode == 0
    per_day = {(row["Location Name"], row["Date"], NAMED[row["Common Name"]]): int(row["Number"])
               for row in records(days)}
    assert per_day == dict(largest)
    assert per_day[("garden feeder", "05/01/2026", "robin")] == 3
    # One checklist per camera and day: one start time per (place, date).
    starts = {(row["Location Name"], row["Date"]): row["Start Time"] for row in records(days)}
    assert len(starts) == len({(r["Location Name"], r["Date"], r["Start Time"]) for r in records(days)}) == 2


def test_ebird_reviewed_only_by_default(shared: Station, tmp_path: Path, edge_env) -> None:
    out = tmp_path / "reviewed.csv"
    result = ebird(shared, out, edge_env)
    assert result.returncode == 0, result.stderr
    rows = records(out)
    # The jay visit a reviewer corrected to two robins is the only reviewed visit with an eBird name
    # (carla confirmed a wren, which has no name to give eBird).
    assert [(row["Common Name"], row["Number"]) for row in rows] == [("European Robin", "2")]
    assert "identified by ada" in rows[0]["Species Comments"]
    assert "species of visits no person reviewed (--include-unreviewed adds them)" in result.stdout


def test_ebird_refuses_without_coordinates_or_region(tmp_path: Path, edge_env) -> None:
    station = build_station(tmp_path / "bare", coordinates=False)
    out = tmp_path / "ebird.csv"
    result = ebird(station, out, edge_env, "--include-unreviewed")
    assert result.returncode == 2
    assert "cameras[0].deployment.latitude, cameras[0].deployment.longitude: missing for camera 'feeder'" in result.stderr
    assert "sharing.country_code: missing" in result.stderr and "sharing.state_province: missing" in result.stderr
    assert not out.exists()
    # The flags give the region; coordinates are still missing.
    result = ebird(station, out, edge_env, "--include-unreviewed", "--country", "de", "--state", "DE-BE")
    assert result.returncode == 2 and "sharing.country_code" not in result.stderr
    assert "cameras[0].deployment.latitude" in result.stderr and not out.exists()
    result = ebird(station, out, edge_env, "--country", "Germany")
    assert result.returncode == 2 and "--country: 'Germany'" in result.stderr


def test_ebird_refuses_an_existing_file(shared: Station, tmp_path: Path, edge_env) -> None:
    out = tmp_path / "ebird.csv"
    out.write_text("keep me")
    result = ebird(shared, out, edge_env)
    assert result.returncode == 2 and "exists" in result.stderr and out.read_text() == "keep me"
    assert ebird(shared, out, edge_env, "--force").returncode == 0
    assert records(out)[0]["Common Name"] == "European Robin"


def inaturalist(station: Station, out: Path, env, *extra: str):
    return edge(["export", "inaturalist", "--config", str(station.config), "--out", str(out), *extra], env)


def test_inaturalist_folder(shared: Station, tmp_path: Path, edge_env) -> None:
    out = tmp_path / "inat"
    result = inaturalist(shared, out, edge_env, "--include-unreviewed")
    assert result.returncode == 0, result.stderr
    with (out / "observations.csv").open(encoding="utf-8", newline="") as handle:
        table = list(csv.reader(handle))
    assert table[0] == INAT_COLUMNS
    rows = [dict(zip(INAT_COLUMNS, row)) for row in table[1:]]
    assert all(len(row) == 8 for row in table)
    # One observation per species of each visit: the mixed visits give two each.
    taxa = sorted(row["Taxon name"] for row in rows)
    assert taxa == sorted(["Erithacus rubecula"] * 3 + ["Zenaida macroura", "Dryobates pubescens", "Sialia sialis",
                                                        "Passer domesticus", "Garrulus glandarius"])
    photos = sorted(p.name for p in (out / "photos").iterdir())
    assert len(photos) == len(rows)
    conn = sqlite3.connect(shared.db)
    captured = {row[0] for row in conn.execute("SELECT captured_at FROM frames")}
    conn.close()
    for row in rows:
        assert row["Geoprivacy"] == "obscured" and row["Tags"] == "trailcam,camera trap"
        taken = datetime.strptime(row["Date observed"], "%Y-%m-%d %H:%M:%S %z")
        assert taken.utcoffset().total_seconds() == 7200  # Berlin in May
        photo = re.search(r"photo: (photos/\S+\.jpg)", row["Description"]).group(1)
        assert (out / photo).is_file()
        with Image.open(out / photo) as image:
            exif = image.getexif()
            sub, gps = exif.get_ifd(ExifTags.IFD.Exif), exif.get_ifd(ExifTags.IFD.GPSInfo)
            assert sub[0x9003] == taken.strftime("%Y:%m:%d %H:%M:%S") and sub[0x9011] == "+02:00"
            latitude = float(gps[2][0]) + float(gps[2][1]) / 60 + float(gps[2][2]) / 3600
            longitude = float(gps[4][0]) + float(gps[4][1]) / 60 + float(gps[4][2]) / 3600
            assert (gps[1], gps[3]) == ("N", "E")
            assert abs(latitude - float(row["Latitude / y coord / northing"])) < 1e-6
            assert abs(longitude - float(row["Longitude / x coord / easting"])) < 1e-6
            assert exif[0x010E] == row["Description"]
            if row["Place name"] == "garden feeder":
                assert float(gps[31]) == 30.0 and "within 30 m" in row["Description"]
        # The photo's time is a frame of the visit (UTC in the database).
        assert any(datetime.fromisoformat(c.replace("Z", "+00:00")) == taken for c in captured)
    robin = max((row for row in rows if row["Taxon name"] == "Erithacus rubecula"),
                key=lambda row: int(re.search(r"at most (\d+)", row["Description"]).group(1)))
    assert robin["Date observed"] == "2026-05-01 08:00:05 +0200"  # the frame with three robins


def test_inaturalist_photo_is_copied_losslessly(shared: Station, tmp_path: Path, edge_env) -> None:
    """Only the EXIF segment changes: the compressed picture is the camera's, byte for byte."""
    out = tmp_path / "inat"
    assert inaturalist(shared, out, edge_env).returncode == 0
    (photo,) = list((out / "photos").iterdir())  # the reviewed visit: the jay corrected to robin
    source = shared.feeder / "IMG_0005.JPG"
    scan = source.read_bytes().index(b"\xff\xda")
    assert photo.read_bytes().endswith(source.read_bytes()[scan:])
    with Image.open(photo) as copied, Image.open(source) as original:
        assert copied.tobytes() == original.tobytes()


def test_inaturalist_refuses_without_coordinates(tmp_path: Path, edge_env) -> None:
    station = build_station(tmp_path / "bare", coordinates=False)
    out = tmp_path / "inat"
    result = inaturalist(station, out, edge_env, "--include-unreviewed")
    assert result.returncode == 2
    assert "cameras[0].deployment.latitude, cameras[0].deployment.longitude: missing for camera 'feeder'" in result.stderr
    assert not out.exists()
    out.mkdir()
    (out / "x").write_text("")
    result = inaturalist(station, out, edge_env)
    assert result.returncode == 2 and "not an empty folder" in result.stderr


def test_the_photo_and_its_time_come_from_the_same_frame(tmp_path: Path) -> None:
    """The label's best frame lost its file (retention): the visit's best frame is shared, with
    that frame's own time, never the missing frame's time on another frame's photo."""
    from edge.exports.inaturalist import _photo

    kept = tmp_path / "kept.jpg"
    kept.write_bytes(b"\xff\xd8\xff\xd9")
    gone = (str(tmp_path / "gone.jpg"), None, "2026-05-01T06:00:00Z")
    visit_best = (str(kept), None, "2026-05-01T06:00:05Z")
    frame, source = _photo({"Cardinalis cardinalis": gone, None: visit_best}, "Cardinalis cardinalis")
    assert (frame, source) == (visit_best, kept)
    assert _photo({"Cardinalis cardinalis": gone}, "Cardinalis cardinalis") is None
