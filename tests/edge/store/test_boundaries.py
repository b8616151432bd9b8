"""The edges of the edge's rules, exactly at their limits (issue 22).

Each case sits on a boundary a one-character mistake moves (`<` for `<=`, an exclusive window):
a bird scored exactly at its threshold is counted, a frame exactly `independence_s` after a
visit's last frame (or before its first) joins it. Values are exact in binary floating point
and in the stored millisecond times, so "exactly" really is exact.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge.classify.decision import UNKNOWN, Decision, decide
from edge.classify.model import Prediction
from edge.config.classify import ClassifyConfig
from edge.store.writer import FrameRecord, Store

T0 = datetime(2026, 6, 1, 8, 0, 0, tzinfo=UTC)
ONE_STEP = 1 / 256  # the uint8 quantisation step of an int8 model's softmax output


@pytest.mark.parametrize(("score", "kind"), [
    (0.5 - ONE_STEP, "unknown"),  # one quantisation step below: not sure enough
    (0.5, "species"),             # exactly at the threshold: counted ("below" means strictly below)
    (0.5 + ONE_STEP, "species"),
])
def test_global_threshold_counts_a_score_exactly_at_it(score: float, kind: str) -> None:
    decision = decide([Prediction("Cardinalis cardinalis", score, 0), Prediction("Turdus merula", 0.1, 1)],
                      ClassifyConfig(threshold=0.5))
    assert decision.kind == kind
    assert decision.species == ("Cardinalis cardinalis" if kind == "species" else UNKNOWN)
    assert decision.confidence == score


@pytest.mark.parametrize(("score", "kind"), [
    (0.75 - ONE_STEP, "unknown"),
    (0.75, "species"),
    (0.75 + ONE_STEP, "species"),
])
def test_per_species_threshold_counts_a_score_exactly_at_it(score: float, kind: str) -> None:
    config = ClassifyConfig(threshold=0.25, thresholds={"Cardinalis cardinalis": 0.75})
    decision = decide([Prediction("Cardinalis cardinalis", score, 0)], config)
    assert decision.kind == kind, decision.reason
    if kind == "unknown":
        assert decision.reason == f"score {score:.3f} below threshold 0.75"


def _record(store: Store, seconds: float, species: str = "Cardinalis cardinalis") -> int:
    sha = hashlib.sha256(f"{seconds}".encode()).hexdigest()
    commit = store.record(FrameRecord(
        path=f"/cam/{sha[:8]}.jpg", sha256=sha, camera="cam", size=1, mtime=0.0,
        captured_at=T0 + timedelta(seconds=seconds), time_source="exif", model_id="m",
        decision=Decision("species", species, 0.9, "ok")))
    return int(store.db.execute("SELECT event_id FROM frames WHERE id = ?", (commit.frame_id,)).fetchone()[0])


@pytest.mark.parametrize("group_by", ["camera", "species"])
@pytest.mark.parametrize(("gap", "same_visit"), [
    (59.999, True),   # the stored times keep milliseconds: one below the window
    (60.0, True),     # exactly independence_s: still the same visit (the window is inclusive)
    (60.001, False),  # one millisecond more: a new visit
])
def test_independence_window_includes_a_gap_of_exactly_independence_s(tmp_path: Path, group_by: str, gap: float,
                                                                       same_visit: bool) -> None:
    store = Store(tmp_path / "t.db", station_tz="UTC", independence_s=60, group_by=group_by,
                  clock=lambda: T0 + timedelta(hours=1))
    try:
        first = _record(store, 0)
        second = _record(store, 10)  # the visit now spans [0 s, 10 s]
        assert second == first
        after = _record(store, 10 + gap)     # after the visit's last frame
        before = _record(store, -gap)        # before its first (a backlog frame arriving late)
        assert (after == first) is same_visit
        assert (before == first) is same_visit
        visits = store.db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        assert visits == (1 if same_visit else 3)
    finally:
        store.close()
