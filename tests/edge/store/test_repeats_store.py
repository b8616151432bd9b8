"""Repeat-detection elimination in the store (edge/store/repeats.py through Store.record): a real
SQLite database, decisions given directly, looks made from real photographs (a patch of a real
trail-camera scene is the "rock"; birds25 photos are birds).

The daemon end to end (real frames, the real detector) is tests/edge/detect/test_repeats_daemon.py."""

from __future__ import annotations

import hashlib
import io
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from edge.classify.decision import Decision
from edge.classify.model import Prediction
from edge.detect.repeats import REPEAT, RepeatRules, look_of
from edge.store.repeat_release import release
from edge.store.repeats import RepeatError, get_place, list_places
from edge.store.writer import BirdRecord, FrameRecord, Store

T0 = datetime(2026, 5, 1, 8, 0, 0, tzinfo=UTC)
BOX = (0.40, 0.30, 0.50, 0.38)
RULES = RepeatRules(min_repeats=6, min_days=3)


@pytest.fixture(scope="module")
def rock(trailcam_nobird_dir: Path) -> list[bytes]:
    """Looks of one patch of a real scene as frame after frame sees it: the light and JPEG differ."""
    scene = Image.open(sorted(trailcam_nobird_dir.glob("*.[jJ][pP]*[gG]"))[0]).convert("RGB")
    width, height = scene.size
    side = min(width, height) // 6
    box = (width // 3, height // 2, width // 3 + side, height // 2 + side)
    looks = []
    for index in range(40):
        lit = ImageEnhance.Brightness(scene).enhance(0.8 + 0.01 * index)
        out = io.BytesIO()
        lit.save(out, "JPEG", quality=70 + index % 20)
        frame = Image.open(io.BytesIO(out.getvalue())).convert("RGB")
        looks.append(look_of(np.asarray(frame.crop(box).resize((224, 224), Image.BILINEAR))))
    return looks


@pytest.fixture(scope="module")
def birds(birds25_dir: Path) -> list[bytes]:
    """Looks of 25 real birds (one photo of each species)."""
    folders = sorted(f for f in birds25_dir.iterdir() if f.is_dir())
    return [look_of(np.asarray(Image.open(sorted(f.glob("*.jpg"))[0]).convert("RGB"))) for f in folders]


def _bird(look: bytes, box=BOX, species: str = "Turdus migratorius") -> BirdRecord:
    return BirdRecord(box, 0.7, "bird", [Prediction(species, 0.8, 0)], Decision("species", species, 0.8, "ok"), look)


def _frame(store: Store, at: datetime, birds: list[BirdRecord], camera: str = "cam"):
    sha = hashlib.sha256(f"{camera}{at.isoformat()}{[b.look for b in birds]}".encode()).hexdigest()
    return store.record(FrameRecord(path=f"/{camera}/{sha[:12]}.jpg", sha256=sha, camera=camera, size=1, mtime=0.0,
                                    captured_at=at, time_source="exif", model_id="m", birds=birds, detector_id="d"))


def _store(path: Path, rules: RepeatRules | None = RULES) -> Store:
    return Store(path, independence_s=60, clock=lambda: T0 + timedelta(days=60), repeat_rules=rules)


def _days(n_days: int, per_day: int) -> list[datetime]:
    """Frames 10 minutes apart (separate visits), `per_day` a day, on `n_days` days."""
    return [T0 + timedelta(days=d, minutes=10 * k) for d in range(n_days) for k in range(per_day)]


def _counted(store: Store) -> int:
    return store.db.execute("SELECT COALESCE(SUM(frames), 0) FROM daily_tallies").fetchone()[0]


def test_the_same_thing_at_the_same_place_is_suppressed_after_repeats_and_days(tmp_path: Path, rock) -> None:
    store = _store(tmp_path / "e.db")
    flags = []
    for index, at in enumerate(_days(3, 3)):
        commit = _frame(store, at, [_bird(rock[index])])
        flags.append(commit.repeats[0].decision.flag)
    # 6 repeats reached on day 2 (the 6th frame), but the third day is needed too: the 7th frame.
    assert flags == [None] * 6 + [REPEAT] * 3
    assert _counted(store) == 6
    rows = store.db.execute("SELECT kind, species, model_species, flag, event_id FROM detections ORDER BY id").fetchall()
    assert rows[-1] == ("none", None, "Turdus migratorius", REPEAT, None)
    assert all(row[4] is not None for row in rows[:6])
    [place] = list_places(store.conn)
    assert (place["state"], place["repeats"], place["days"], place["counted"], place["suppressed"]) == (
        "suppressed", 9, 3, 6, 3)
    assert place["first_seen"] == "2026-05-01T08:00:00.000Z" and place["last_seen"] == "2026-05-03T08:20:00.000Z"
    # The place's picture is its latest detection.
    assert place["detection_id"] == store.db.execute("SELECT MAX(id) FROM detections").fetchone()[0]
    store.close()


def test_one_busy_day_is_never_enough(tmp_path: Path, rock) -> None:
    """A bird sitting still all afternoon: many repeats, one day."""
    store = _store(tmp_path / "e.db")
    for index in range(30):
        commit = _frame(store, T0 + timedelta(minutes=10 * index), [_bird(rock[index])])
        assert commit.repeats[0].decision.flag is None
    assert list_places(store.conn, states=("candidate",))[0]["repeats"] == 30
    assert _counted(store) == 30
    store.close()


def test_birds_perching_at_the_same_place_are_never_suppressed(tmp_path: Path, birds) -> None:
    """A feeder: a bird at exactly the same box every time, for days, but never the same picture."""
    store = _store(tmp_path / "e.db")
    for index, at in enumerate(_days(5, 5)):
        commit = _frame(store, at, [_bird(birds[index % len(birds)])])
        assert commit.repeats[0].decision.flag is None
    assert _counted(store) == 25
    assert list_places(store.conn) == []
    store.close()


def test_a_thing_that_moves_is_never_suppressed(tmp_path: Path, rock) -> None:
    store = _store(tmp_path / "e.db")
    for index, at in enumerate(_days(4, 5)):
        x = 0.05 + 0.04 * index
        commit = _frame(store, at, [_bird(rock[index], box=(0.4, x, 0.5, x + 0.08))])
        assert commit.repeats[0].decision.flag is None
    assert _counted(store) == 20
    store.close()


def test_big_boxes_are_never_suppressed(tmp_path: Path, rock) -> None:
    store = _store(tmp_path / "e.db")
    for index, at in enumerate(_days(3, 5)):
        commit = _frame(store, at, [_bird(rock[index], box=(0.1, 0.1, 0.7, 0.6))])  # 0.3 of the frame
        assert commit.repeats[0].place_id is None
    assert _counted(store) == 15
    assert list_places(store.conn, states=("candidate", "suppressed", "released")) == []
    store.close()


def test_another_bird_at_a_suppressed_place_is_counted(tmp_path: Path, rock, birds) -> None:
    store = _store(tmp_path / "e.db")
    for index, at in enumerate(_days(3, 3)):
        _frame(store, at, [_bird(rock[index])])
    before = _counted(store)
    commit = _frame(store, T0 + timedelta(days=3), [_bird(birds[0])])
    assert commit.repeats[0].decision.flag is None and _counted(store) == before + 1
    # The rock in the same frame as the bird (another rank) is still suppressed.
    commit = _frame(store, T0 + timedelta(days=3, hours=1), [_bird(birds[1], box=(0.1, 0.6, 0.2, 0.7)),
                                                             _bird(rock[20])])
    assert [v.decision.flag for v in commit.repeats] == [None, REPEAT]
    assert store.db.execute("SELECT individuals FROM events ORDER BY id DESC LIMIT 1").fetchone() == (1,)
    store.close()


def test_places_are_per_camera(tmp_path: Path, rock) -> None:
    store = _store(tmp_path / "e.db")
    for index, at in enumerate(_days(3, 3)):
        _frame(store, at, [_bird(rock[index])], camera="north")
    commit = _frame(store, T0 + timedelta(days=4), [_bird(rock[30])], camera="south")
    assert commit.repeats[0].decision.flag is None
    assert {(p["camera"], p["state"]) for p in list_places(store.conn, states=("candidate", "suppressed"))} == {
        ("north", "suppressed"), ("south", "candidate")}
    assert list_places(store.conn, camera="south") == []
    store.close()


def test_memory_survives_a_restart_and_a_released_place_stays_released(tmp_path: Path, rock) -> None:
    path = tmp_path / "e.db"
    store = _store(path)
    for index, at in enumerate(_days(2, 3)):  # 6 repeats on 2 days: not yet
        _frame(store, at, [_bird(rock[index])])
    store.close()

    store = _store(path)  # the daemon restarts: the memory goes on
    commit = _frame(store, T0 + timedelta(days=2), [_bird(rock[6])])
    assert commit.repeats[0].decision.flag == REPEAT and commit.repeats[0].became_suppressed
    place_id = commit.repeats[0].place_id
    store.close()

    # A person releases it, from another connection (the CLI, the web app) while the daemon runs.
    conn = sqlite3.connect(path)
    done = release(conn, place_id, "alice", T0 + timedelta(days=3))
    assert not done.already and done.place["state"] == "released" and done.place["released_by"] == "alice"
    assert release(conn, place_id, "alice", T0 + timedelta(days=3)).already
    with pytest.raises(RepeatError, match="no repeat place 999"):
        release(conn, 999, "alice", T0)
    conn.close()

    store = _store(path)
    counted = _counted(store)
    for index, at in enumerate(_days(4, 5)):
        when = at + timedelta(days=5)
        commit = _frame(store, when, [_bird(rock[index])])
        assert commit.repeats[0].place_id == place_id and commit.repeats[0].decision.flag is None
    assert _counted(store) == counted + 20
    # Released is a place, not a look: another thing there is not suppressed either, nor a new candidate.
    place = get_place(store.conn, place_id)
    assert place["state"] == "released" and place["repeats"] == 7 + 20
    assert list_places(store.conn, states=("candidate",)) == []
    store.close()


def test_a_released_candidate_is_never_suppressed(tmp_path: Path, rock) -> None:
    """A person may release a candidate before it is due (a nest box they know about)."""
    path = tmp_path / "e.db"
    store = _store(path)
    commit = _frame(store, T0, [_bird(rock[0])])
    release(store.conn, commit.repeats[0].place_id, "bob", T0)
    for index, at in enumerate(_days(4, 4)):
        assert _frame(store, at + timedelta(hours=1), [_bird(rock[index + 1])]).repeats[0].decision.flag is None
    store.close()


def test_stale_candidates_are_forgotten(tmp_path: Path, rock, birds) -> None:
    store = _store(tmp_path / "e.db", RepeatRules(min_repeats=6, min_days=3, forget_after_days=10))
    _frame(store, T0, [_bird(rock[0])])
    _frame(store, T0 + timedelta(days=1), [_bird(birds[3], box=(0.1, 0.1, 0.2, 0.2))])
    assert len(list_places(store.conn, states=("candidate",))) == 2
    # Ten days and an hour after the rock was last seen, a new place is made: the rock's candidate
    # goes, the bird of the next day stays; ids are never reused.
    _frame(store, T0 + timedelta(days=10, hours=1), [_bird(birds[4], box=(0.6, 0.6, 0.7, 0.7))])
    left = list_places(store.conn, states=("candidate",))
    assert sorted(p["id"] for p in left) == [2, 3]
    assert store.db.execute("SELECT COUNT(*) FROM repeat_days WHERE place_id = 1").fetchone() == (0,)
    store.close()


def test_off_without_rules(tmp_path: Path, rock) -> None:
    store = _store(tmp_path / "e.db", None)
    for index, at in enumerate(_days(3, 5)):
        assert _frame(store, at, [_bird(rock[index])]).repeats == []
    assert _counted(store) == 15
    assert store.db.execute("SELECT COUNT(*) FROM repeat_places").fetchone() == (0,)
    store.close()


@pytest.mark.parametrize(("toml", "key", "problem"), [
    ("[repeats]\niou_threshold = 0.4\n", "repeats.iou_threshold", "greater than 0.5"),
    ("[repeats]\nmin_repeats = 1\n", "repeats.min_repeats", "greater than or equal to 2"),
    ("[repeats]\nmin_days = 0\n", "repeats.min_days", "greater than or equal to 1"),
    ("[repeats]\nmax_box_area = 1.5\n", "repeats.max_box_area", "less than or equal to 1"),
    ('[repeats]\nenabled = "yes"\n', "repeats.enabled", "valid boolean"),
    ("[repeats]\nmin_similarity = 0.9\nmin_simlarity = 0.8\n", "repeats.min_simlarity", "unknown key"),
])
def test_bad_settings_name_the_dotted_key(tmp_path: Path, toml: str, key: str, problem: str) -> None:
    from edge.config import ConfigError, load_config

    path = tmp_path / "edge.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert f": {key}:" in str(caught.value) and problem in str(caught.value)


def test_the_rules_of_the_configuration(tmp_path: Path) -> None:
    from edge.config import load_config

    path = tmp_path / "edge.toml"
    path.write_text("[repeats]\nmin_repeats = 50\nmin_days = 5\n")
    config = load_config(path, environ={})
    assert RepeatRules.of(config.repeats) == RepeatRules(min_repeats=50, min_days=5)
    path.write_text("[repeats]\nenabled = false\n")
    assert RepeatRules.of(load_config(path, environ={}).repeats) is None
