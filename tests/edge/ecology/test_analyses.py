"""The analyses of `edge report` on the crafted rows of report_data.py, each against its answer
worked out by hand (see that module's docstring for the data set), and their edge cases."""

from __future__ import annotations

from datetime import timedelta
from math import comb

import pytest

from edge.ecology import analyses as an
from edge.ecology.analyses import ALL, Observation, Site
from tests.edge.ecology.report_data import SITES, ZONE, at, frame_times, observations


@pytest.fixture
def efforts() -> list[an.Effort]:
    return an.effort(SITES, frame_times(), gap_hours=72)


def test_effort_subtracts_the_silence_over_the_threshold(efforts) -> None:
    north, south = efforts
    assert (north.camera_days, north.gap_days, north.effective_days, north.frames) == (10.0, 4.0, 6.0, 8)
    assert [(g.start, g.end, g.hours()) for g in north.gaps] == [(at(4), at(8), 96.0)]
    assert north.active() == [(at(1), at(4)), (at(8), at(11))]
    assert (south.camera_days, south.gap_days, south.effective_days, south.gaps) == (5.0, 0.0, 5.0, ())


def test_the_gap_threshold_decides_what_a_gap_is() -> None:
    # 96 h is not over 96 h; 0 disables gaps; at 50 h the south camera's 58 h 20 min silence
    # (05-05 09:40 .. 05-07 20:00) is a gap too.
    assert an.effort(SITES, frame_times(), gap_hours=96)[0].gaps == ()
    assert all(e.gaps == () for e in an.effort(SITES, frame_times(), gap_hours=0))
    south = an.effort(SITES, frame_times(), gap_hours=50)[1]
    assert [(g.start, g.end) for g in south.gaps] == [(at(5, 9, 40), at(7, 20))]
    assert south.effective_days == pytest.approx(5 - (58 + 20 / 60) / 24)


def test_a_camera_silent_from_its_start_or_until_its_end_has_gaps_there() -> None:
    site = Site("d", "c", at(1), at(11))
    gaps = an.find_gaps(site, [at(5), at(6)], 72)
    assert [(g.start, g.end) for g in gaps] == [(at(1), at(5)), (at(6), at(11))]
    assert an.find_gaps(site, [], 72)[0].days() == 10.0  # never a frame: no effort at all


def test_a_silence_across_the_period_edge_is_measured_whole() -> None:
    # The period starts 05-06; the camera's last frame before it was 05-04 and its next 05-08:
    # 96 h silent, so 05-06..05-08 is a gap although only 48 h of it lie in the period.
    clipped = Site("d", "c", at(6), at(11), "period", "config", alive_before=at(4))
    [gap] = an.find_gaps(clipped, [at(8), at(10)], 72)
    assert (gap.start, gap.end, gap.silent_from, gap.hours()) == (at(6), at(8), at(4), 96.0)
    assert an.find_gaps(Site("d", "c", at(6), at(11)), [at(8), at(10)], 72) == ()


def test_rai_per_species_and_deployment_counts_reviews(efforts) -> None:
    rows = {(r.species, r.deployment_id): (r.events, r.individuals, r.effort_days, r.rai)
            for r in an.rai(efforts, observations())}
    assert rows == {
        ("jay", "st1-north"): (1, 1, 6.0, pytest.approx(100 / 6)),  # the rejected jay counts for nothing
        ("jay", "st1-south"): (0, 0, 5.0, 0.0),
        ("jay", ALL): (1, 1, 11.0, pytest.approx(100 / 11)),
        ("robin", "st1-north"): (3, 3, 6.0, 50.0),
        ("robin", "st1-south"): (0, 0, 5.0, 0.0),  # the corrected robin is a wren
        ("robin", ALL): (3, 3, 11.0, pytest.approx(300 / 11)),
        ("wren", "st1-north"): (0, 0, 6.0, 0.0),
        ("wren", "st1-south"): (2, 3, 5.0, 40.0),
        ("wren", ALL): (2, 3, 11.0, pytest.approx(200 / 11)),
        ("unknown", "st1-north"): (0, 0, 6.0, 0.0),
        ("unknown", "st1-south"): (1, 1, 5.0, 20.0),
        ("unknown", ALL): (1, 1, 11.0, pytest.approx(100 / 11)),
    }
    order = [r.species for r in an.rai(efforts, observations()) if r.deployment_id == ALL]
    assert order == ["jay", "robin", "wren", "unknown"]  # unknown listed separately, last


def test_rai_without_effort_is_not_a_number() -> None:
    dead = an.effort([Site("d", "c", at(1), at(11))], {"c": []}, 72)
    assert dead[0].effective_days == 0.0
    assert an.rai(dead, [Observation("c", "robin", at(2))])[0].rai is None


def test_events_outside_every_deployment_are_not_counted(efforts) -> None:
    stray = [Observation("south", "robin", at(2)), Observation("west", "robin", at(5)),
             Observation("north", "robin", at(11))]  # before south's start, no such camera, at north's end
    assert an.rai(efforts, stray) == []


def test_species_accumulation_in_date_order(efforts) -> None:
    rows = an.accumulation(efforts, observations(), ZONE)
    assert [r.date for r in rows] == [f"2026-05-{d:02d}" for d in range(1, 11)]  # 04..07 from south alone
    assert [r.species for r in rows] == [1, 1, 3, 3, 3, 3, 3, 3, 3, 3]
    assert [r.new_species for r in rows][:3] == [("robin",), (), ("jay", "wren")]
    assert rows[-1].random_mean == 3.0 and rows[-1].random_sd == 0.0


def test_random_accumulation_is_seeded_and_converges_to_the_exact_expectation(efforts) -> None:
    once = an.accumulation(efforts, observations(), ZONE, permutations=50, seed=7)
    assert once == an.accumulation(efforts, observations(), ZONE, permutations=50, seed=7)
    assert once != an.accumulation(efforts, observations(), ZONE, permutations=50, seed=8)
    # Days with each species out of 10: robin 3, wren 2, jay 1. Over random orders the expected
    # species after k days is sum_s 1 - C(10 - n_s, k) / C(10, k) (vegan's "exact" method).
    exact = [sum(1 - comb(10 - n, k) / comb(10, k) for n in (3, 2, 1)) for k in range(1, 11)]
    assert exact[0] == pytest.approx(0.6)
    many = an.accumulation(efforts, observations(), ZONE, permutations=4000, seed=1)
    assert [r.random_mean for r in many] == pytest.approx(exact, abs=0.03)


def test_activity_histogram_in_station_hours(efforts) -> None:
    rows = an.activity(efforts, observations(), ZONE)
    hist = {s: [r.events for r in rows if r.species == s] for s in {r.species for r in rows}}
    assert set(hist) == {"jay", "robin", "wren"}  # unknown is no species
    assert all(len(h) == 24 for h in hist.values())
    assert {h: n for h, n in enumerate(hist["robin"]) if n} == {6: 2, 7: 1}  # 04:00 and 05:30 UTC
    assert {h: n for h, n in enumerate(hist["jay"]) if n} == {18: 1}
    assert {h: n for h, n in enumerate(hist["wren"]) if n} == {9: 1, 13: 1}
    share = {(r.species, r.hour): r.share for r in rows}
    assert share[("robin", 6)] == pytest.approx(2 / 3) and share[("wren", 13)] == 0.5
    assert sum(r.share for r in rows if r.species == "robin") == pytest.approx(1.0)


def test_naive_occupancy(efforts) -> None:
    assert [(o.species, o.detected, o.deployments, o.naive_occupancy) for o in an.occupancy(efforts, observations())] == [
        ("jay", 1, 2, 0.5), ("robin", 1, 2, 0.5), ("wren", 1, 2, 0.5)]
    # A third deployment that never had effort is not in the denominator.
    dead = an.effort([*SITES, Site("st1-west", "west", at(1), at(11))], frame_times(), 72)
    assert {o.deployments for o in an.occupancy(dead, observations())} == {2}


def test_occasions_are_common_local_days(efforts) -> None:
    occ = an.occasions(efforts, ZONE, 2)
    assert [(o.index, o.start, o.end) for o in occ] == [
        (1, at(1), at(3)), (2, at(3), at(5)), (3, at(5), at(7)), (4, at(7), at(9)), (5, at(9), at(11))]
    assert [(o.start, o.end) for o in an.occasions(efforts, ZONE, 7)] == [(at(1), at(8)), (at(8), at(15))]
    with pytest.raises(ValueError):
        an.occasions(efforts, ZONE, 0)


# species -> deployment -> occasions 1..5 (None = NA): south o1 is before its start, o5 after its
# end; north o3 (05-05..05-07) lies entirely in its gap.
HISTORIES = {
    "jay": {"st1-north": [0, 1, None, 0, 0], "st1-south": [None, 0, 0, 0, None]},  # 05-09: rejected
    "robin": {"st1-north": [1, 0, None, 1, 0], "st1-south": [None, 0, 0, 0, None]},
    "wren": {"st1-north": [0, 0, None, 0, 0], "st1-south": [None, 1, 1, 0, None]},
}
EFFORT = {"st1-north": [2.0, 1.0, 0.0, 1.0, 2.0], "st1-south": [0.0, 1.5, 2.0, 1.5, 0.0]}


def test_detection_histories_with_na(efforts) -> None:
    rows = an.detection_histories(efforts, observations(), an.occasions(efforts, ZONE, 2))
    got: dict[str, dict[str, list]] = {}
    for r in rows:
        got.setdefault(r.species, {}).setdefault(r.deployment_id, []).append(r.detected)
    assert got == HISTORIES
    effort_of = {(r.deployment_id, r.occasion): r.effort_days for r in rows if r.species == "jay"}
    assert {d: [effort_of[(d, k)] for k in range(1, 6)] for d in EFFORT} == EFFORT


def test_a_lone_frame_in_a_silence_still_counts_its_detection() -> None:
    # One frame in ten days: both silences are gaps, no effective camera-days, but the robin on
    # it was seen: a detection in its occasion, a deployment in occupancy, a survey day.
    sites = [Site("lone", "c", at(1), at(11)), Site("busy", "b", at(1), at(11))]
    frames = {"c": [at(5)], "b": [at(d) for d in range(1, 11)]}
    efforts = an.effort(sites, frames, 72)
    assert efforts[0].effective_days == 0.0
    robin = [Observation("c", "robin", at(5))]
    assert [r.rai for r in an.rai(efforts, robin) if r.deployment_id == "lone"] == [None]
    assert [(o.detected, o.deployments) for o in an.occupancy(efforts, robin)] == [(1, 2)]
    rows = an.detection_histories(efforts, robin, an.occasions(efforts, ZONE, 5))
    assert [(r.deployment_id, r.occasion, r.detected) for r in rows] == [
        ("lone", 1, 1), ("lone", 2, None), ("busy", 1, 0), ("busy", 2, 0)]
    assert [r.species for r in an.accumulation(efforts, robin, ZONE)][4] == 1


def test_an_event_at_an_occasion_boundary_belongs_to_the_later_one() -> None:
    sites = [Site("d", "c", at(1), at(5))]
    efforts = an.effort(sites, {"c": [at(1, 1), at(3), at(4, 23)]}, 72)
    rows = an.detection_histories(efforts, [Observation("c", "robin", at(3))], an.occasions(efforts, ZONE, 2))
    assert [r.detected for r in rows] == [0, 1]


def test_analyse_bundles_everything(efforts) -> None:
    result = an.analyse(SITES, frame_times(), observations(), ZONE, gap_hours=72, occasion_days=2)
    assert result.observations == 7
    assert [e.effective_days for e in result.efforts] == [6.0, 5.0]
    assert len(result.histories) == 3 * 2 * 5
    assert result.rai == an.rai(efforts, observations())


def test_daylight_saving_days_are_calendar_days() -> None:
    # Europe/Berlin springs forward on 2026-03-29: that local day is 23 h long, still one
    # survey day and one day of an occasion's calendar.
    from datetime import datetime

    start = datetime(2026, 3, 28, tzinfo=ZONE)
    sites = [Site("d", "c", start, start + timedelta(days=3))]
    efforts = an.effort(sites, {"c": [start + timedelta(hours=h) for h in range(0, 72, 12)]}, 72)
    assert [d.isoformat() for d in an.survey_days(efforts, ZONE)] == ["2026-03-28", "2026-03-29", "2026-03-30"]
    assert efforts[0].camera_days == pytest.approx(71 / 24)  # elapsed time, not the wall clock's 3 days
    [occ] = an.occasions(efforts, ZONE, 3)
    assert (occ.start, occ.end) == (start, datetime(2026, 3, 31, tzinfo=ZONE))
    assert efforts[0].overlap_days(occ.start, occ.end) == pytest.approx(71 / 24)
