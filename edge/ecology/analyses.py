"""The standard camera-trap analyses, as pure functions over plain rows (no plots, no database).

`edge report` (edge/ecology/report.py) loads the rows with `load` and draws the plots; every
number it shows is computed here, so the tests check the numbers on crafted rows with answers
worked out by hand. docs/report.md gives each formula and why it is what it is.

- effort: camera-days per deployment (its span clipped to the period) minus the gaps: silences
  longer than `gap_hours` without any frame of the camera (an empty frame proves the camera
  was alive). A silent camera contributes no effort, so the relative abundance index divides by
  the effort without the gaps.
- RAI: independent events per 100 camera-days. The events table already applies `[events]
  independence_s` (frames of one camera closer than it are one visit), so an event is an
  independent detection. A visit counts per species (`event_species`, edge/store/events.py
  "Per-species counts in a visit"): a Mourning Dove and a Downy Woodpecker at the feeder together
  are an event of each, with each one's MaxN, as `edge counts` says; after its reviews: rejected
  ones count for nothing, corrected ones for the corrected species. A database older than
  schema 6 has no per-species counts: its visits count as their headline species
  (edge/store/reviews.py's COUNTED_SPECIES_SQL), as that release counted them.
- species accumulation: distinct species by survey day, in order and the mean over random
  orders of the days (vegan's specaccum "random", with days as the sampling units).
- activity: events per hour of the station's day, per species.
- naive occupancy: the share of deployments with effort where the species was detected.
- detection histories: species × deployment × occasion: 1, 0, or None (NA: no effort).

`unknown` (a bird the model could not name) is not a species: it is listed separately in the
RAI and left out of accumulation, occupancy, activity and the detection histories.

Frames and visits with a doubtful capture time (`future`, `before-deployment`, `out-of-order`:
edge/store/clock_checks.py) are left out by `load`: out of the deployment's span, of the frames
that prove the camera alive (so the time a reset camera's frames were really taken is a gap:
nobody knows when it was) and of the events. `edge counts` still counts them; a correction of
the camera's clock brings them back. `Site.doubtful_frames` says how many a deployment has.
"""

from __future__ import annotations

import random
import statistics
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from edge.classify.decision import UNKNOWN

DEFAULT_GAP_HOURS = 72.0
DEFAULT_OCCASION_DAYS = 7
DEFAULT_PERMUTATIONS = 100
DEFAULT_SEED = 1
DAY_S = 86400.0


def seconds(start: datetime, end: datetime) -> float:
    """Elapsed seconds from start to end. In UTC: Python subtracts two times of one zone on the
    wall clock, so a daylight-saving day would count 24 h instead of 23 or 25."""
    return (end.astimezone(UTC) - start.astimezone(UTC)).total_seconds()


# -- inputs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Site:
    """A deployment as the analyses see it: one camera, one span [start, end) (aware, clipped to
    the period). `alive_before` / `alive_after`: the last sign of life before `start` (a frame, or
    the deployment's real start when the period clips it) and the first after `end`; a silence
    that runs across the period's edge is measured whole (None: the span's own edge)."""

    deployment_id: str
    camera: str
    start: datetime
    end: datetime
    start_source: str = "config"
    end_source: str = "config"
    alive_before: datetime | None = None
    alive_after: datetime | None = None
    doubtful_frames: int = 0  # the camera's frames with a doubtful capture time, left out
    doubtful_events: int = 0  # and its visits

    def days(self) -> float:
        return max(0.0, seconds(self.start, self.end) / DAY_S)


@dataclass(frozen=True)
class Observation:
    """An independent event of one species as it counts after review: its camera, species, start
    and that species' MaxN (a visit of two species is two observations)."""

    camera: str
    species: str
    started_at: datetime
    individuals: int = 1


# -- effort ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Gap:
    """A silence longer than the threshold: `start`..`end` is the part inside the deployment's
    span (what is subtracted), `silent_from`..`silent_to` the whole silence."""

    deployment_id: str
    camera: str
    start: datetime
    end: datetime
    silent_from: datetime
    silent_to: datetime

    def days(self) -> float:
        return seconds(self.start, self.end) / DAY_S

    def hours(self) -> float:
        return seconds(self.silent_from, self.silent_to) / 3600.0


@dataclass(frozen=True)
class Effort:
    """A deployment's effort: its camera-days, its gaps, and what is left (what the RAI uses)."""

    site: Site
    gaps: tuple[Gap, ...]
    frames: int

    @property
    def camera_days(self) -> float:
        return self.site.days()

    @property
    def gap_days(self) -> float:
        return sum((gap.days() for gap in self.gaps), 0.0)

    @property
    def effective_days(self) -> float:
        return max(0.0, self.camera_days - self.gap_days)

    def active(self) -> list[tuple[datetime, datetime]]:
        """The intervals with effort: the span minus the gaps, in order."""
        intervals, cursor = [], self.site.start
        for gap in self.gaps:
            if gap.start > cursor:
                intervals.append((cursor, gap.start))
            cursor = max(cursor, gap.end)
        if self.site.end > cursor:
            intervals.append((cursor, self.site.end))
        return intervals

    def overlap_days(self, start: datetime, end: datetime) -> float:
        """Days of effort within [start, end)."""
        total = 0.0
        for a, b in self.active():
            lo, hi = max(a, start), min(b, end)
            if hi > lo:
                total += seconds(lo, hi)
        return total / DAY_S


def find_gaps(site: Site, frame_times: Sequence[datetime], gap_hours: float) -> tuple[Gap, ...]:
    """Silences longer than `gap_hours` between the site's signs of life, clipped to its span.

    The signs of life, in order: `alive_before` (else the span's start), every frame in the span,
    `alive_after` (else the span's end). `gap_hours` <= 0: no gaps."""
    if gap_hours <= 0:
        return ()
    return _gaps(site, _stamped(frame_times), gap_hours)


def _stamped(frame_times: Sequence[datetime]) -> tuple[list[float], list[datetime]]:
    """The times sorted, with their POSIX timestamps (compared as floats: a year of frames is a
    million aware-datetime comparisons otherwise)."""
    pairs = sorted((t.timestamp(), t) for t in frame_times)
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _gaps(site: Site, stamped: tuple[list[float], list[datetime]], gap_hours: float) -> tuple[Gap, ...]:
    stamps, times = stamped
    lo_i, hi_i = bisect_left(stamps, site.start.timestamp()), bisect_left(stamps, site.end.timestamp())
    before = site.alive_before if site.alive_before is not None else site.start
    after = site.alive_after if site.alive_after is not None else site.end
    marks = [(before.timestamp(), before), *zip(stamps[lo_i:hi_i], times[lo_i:hi_i]), (after.timestamp(), after)]
    threshold = gap_hours * 3600.0
    gaps = []
    for (sa, a), (sb, b) in zip(marks, marks[1:]):
        if sb - sa > threshold:
            lo, hi = max(a, site.start), min(b, site.end)
            if hi > lo:
                gaps.append(Gap(site.deployment_id, site.camera, lo, hi, a, b))
    return tuple(gaps)


def effort(sites: Sequence[Site], frames: Mapping[str, Sequence[datetime]], gap_hours: float = DEFAULT_GAP_HOURS
           ) -> list[Effort]:
    """Each site's effort; `frames` = camera → capture times of its frames (empty ones included)."""
    found = []
    stamped: dict[str, tuple[list[float], list[datetime]]] = {}
    for site in sites:
        if site.camera not in stamped:
            stamped[site.camera] = _stamped(frames.get(site.camera, ()))
        stamps = stamped[site.camera][0]
        count = bisect_left(stamps, site.end.timestamp()) - bisect_left(stamps, site.start.timestamp())
        gaps = _gaps(site, stamped[site.camera], gap_hours) if gap_hours > 0 else ()
        found.append(Effort(site, gaps, count))
    return found


class Assigned(list):
    """Observations already matched to their deployments: (Effort, Observation) pairs, what
    `assign` returns. Every analysis takes it in place of the observations; `analyse` matches
    once for all of them."""


Observations = Iterable[Observation] | Assigned


def assign(efforts: Sequence[Effort], observations: Iterable[Observation]) -> Assigned:
    """Each observation with the deployment it falls in (camera and span); others are dropped."""
    return Assigned(_assign(efforts, observations))


def _assign(efforts: Sequence[Effort], observations: Observations) -> list[tuple[Effort, Observation]]:
    """Each observation with the deployment it falls in (camera and span); others are dropped."""
    if isinstance(observations, Assigned):
        return list(observations)
    by_camera: dict[str, list[tuple[float, float, Effort]]] = defaultdict(list)
    for item in efforts:
        by_camera[item.site.camera].append((item.site.start.timestamp(), item.site.end.timestamp(), item))
    pairs = []
    for obs in observations:
        spans = by_camera.get(obs.camera)
        if not spans:
            continue
        stamp = obs.started_at.timestamp()
        for start, end, item in spans:
            if start <= stamp < end:
                pairs.append((item, obs))
                break
    return pairs


# -- relative abundance ----------------------------------------------------------------------

ALL = "all"


@dataclass(frozen=True)
class RaiRow:
    species: str
    deployment_id: str  # ALL: every deployment together
    events: int
    individuals: int
    effort_days: float
    rai: float | None  # events per 100 camera-days; None: no effort

    @property
    def unknown(self) -> bool:
        return self.species == UNKNOWN


def _rai(events: int, days: float) -> float | None:
    return 100.0 * events / days if days > 0 else None


def rai(efforts: Sequence[Effort], observations: Observations) -> list[RaiRow]:
    """Per species: one row per deployment (zeros included) and one over all of them; named
    species alphabetically, `unknown` last."""
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for item, obs in _assign(efforts, observations):
        entry = counts[(obs.species, item.site.deployment_id)]
        entry[0] += 1
        entry[1] += obs.individuals
    species = sorted({s for s, _ in counts}, key=lambda s: (s == UNKNOWN, s))
    total_days = sum(item.effective_days for item in efforts)
    rows = []
    for name in species:
        events_all = individuals_all = 0
        for item in efforts:
            n, ind = counts.get((name, item.site.deployment_id), (0, 0))
            events_all += n
            individuals_all += ind
            rows.append(RaiRow(name, item.site.deployment_id, n, ind, item.effective_days,
                               _rai(n, item.effective_days)))
        rows.append(RaiRow(name, ALL, events_all, individuals_all, total_days, _rai(events_all, total_days)))
    return rows


# -- species accumulation --------------------------------------------------------------------


@dataclass(frozen=True)
class AccumulationRow:
    day: int  # 1-based survey day
    date: str  # the station-local date
    new_species: tuple[str, ...]
    species: int  # distinct species on days 1..day, in date order
    random_mean: float  # mean over random orders of the days
    random_sd: float


def survey_days(efforts: Sequence[Effort], zone: tzinfo) -> list[date]:
    """Station-local dates on which any deployment had effort, in order."""
    days: set[date] = set()
    for item in efforts:
        for a, b in item.active():
            day = a.astimezone(zone).date()
            while True:
                lo = datetime.combine(day, time(), tzinfo=zone)
                hi = datetime.combine(day + timedelta(days=1), time(), tzinfo=zone)
                if lo >= b:
                    break
                if min(hi, b) > max(lo, a):
                    days.add(day)
                day += timedelta(days=1)
    return sorted(days)


def accumulation(efforts: Sequence[Effort], observations: Observations, zone: tzinfo, *,
                 permutations: int = DEFAULT_PERMUTATIONS, seed: int = DEFAULT_SEED) -> list[AccumulationRow]:
    """Cumulative distinct species by survey day (named species only), and the mean and standard
    deviation over `permutations` random orders of the days, drawn by `random.Random(seed)`: the
    same data give the same curve."""
    seen: dict[date, set[str]] = defaultdict(set)
    for _item, obs in _assign(efforts, observations):
        if obs.species != UNKNOWN:
            seen[obs.started_at.astimezone(zone).date()].add(obs.species)
    # A detection proves the camera worked that day, even at the first instant of a gap.
    days = sorted(set(survey_days(efforts, zone)) | set(seen))
    per_day = [seen.get(day, set()) for day in days]
    rng = random.Random(seed)
    curves: list[list[int]] = []
    for _ in range(max(0, permutations)):
        order = list(range(len(days)))
        rng.shuffle(order)
        union: set[str] = set()
        curve = []
        for index in order:
            union |= per_day[index]
            curve.append(len(union))
        curves.append(curve)
    rows, union = [], set()
    for i, day in enumerate(days):
        new = tuple(sorted(per_day[i] - union))
        union |= per_day[i]
        column = [curve[i] for curve in curves] or [len(union)]
        rows.append(AccumulationRow(i + 1, day.isoformat(), new, len(union), statistics.fmean(column),
                                    statistics.pstdev(column) if len(column) > 1 else 0.0))
    return rows


# -- activity --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActivityRow:
    species: str
    hour: int  # 0..23, station-local hour the event started in
    events: int
    share: float  # of the species' events


def activity(efforts: Sequence[Effort], observations: Observations, zone: tzinfo) -> list[ActivityRow]:
    """24 rows per named species: its events by the local hour of their start, and the share."""
    hours: dict[str, list[int]] = defaultdict(lambda: [0] * 24)
    for _item, obs in _assign(efforts, observations):
        if obs.species != UNKNOWN:
            hours[obs.species][obs.started_at.astimezone(zone).hour] += 1
    rows = []
    for name in sorted(hours):
        total = sum(hours[name])
        rows += [ActivityRow(name, h, n, n / total) for h, n in enumerate(hours[name])]
    return rows


# -- naive occupancy -------------------------------------------------------------------------


@dataclass(frozen=True)
class OccupancyRow:
    species: str
    detected: int  # deployments with at least one event of the species
    deployments: int  # deployments with effort
    naive_occupancy: float | None


def occupancy(efforts: Sequence[Effort], observations: Observations) -> list[OccupancyRow]:
    """Per named species: deployments with a detection / deployments with effort (> 0 days, or a
    detection: a camera whose only frame stands alone in its silence was working then)."""
    with_effort = {item.site.deployment_id for item in efforts if item.effective_days > 0}
    detected: dict[str, set[str]] = defaultdict(set)
    for item, obs in _assign(efforts, observations):
        if obs.species != UNKNOWN:
            detected[obs.species].add(item.site.deployment_id)
            with_effort.add(item.site.deployment_id)
    n = len(with_effort)
    return [OccupancyRow(name, len(detected[name]), n, len(detected[name]) / n if n else None)
            for name in sorted(detected)]


# -- detection histories ---------------------------------------------------------------------


@dataclass(frozen=True)
class Occasion:
    index: int  # 1-based
    start: datetime  # local midnight, aware
    end: datetime


def occasions(efforts: Sequence[Effort], zone: tzinfo, occasion_days: int = DEFAULT_OCCASION_DAYS) -> list[Occasion]:
    """Occasions of `occasion_days` station-local days, common to all deployments: the first
    starts at the local midnight of the earliest deployment start, the last ends at or after the
    latest deployment end (camtrapR's `day1 = "survey"`)."""
    if occasion_days < 1:
        raise ValueError("occasion_days must be at least 1")
    spans = [item.site for item in efforts if item.site.end > item.site.start]
    if not spans:
        return []
    first = min(site.start for site in spans).astimezone(zone).date()
    last = max(site.end for site in spans)
    found: list[Occasion] = []
    while True:
        start = datetime.combine(first + timedelta(days=occasion_days * len(found)), time(), tzinfo=zone)
        if start >= last:
            break
        end = datetime.combine(first + timedelta(days=occasion_days * (len(found) + 1)), time(), tzinfo=zone)
        found.append(Occasion(len(found) + 1, start, end))
    return found


@dataclass(frozen=True)
class HistoryRow:
    species: str
    deployment_id: str
    occasion: int
    start: datetime
    end: datetime
    effort_days: float
    detected: int | None  # 1, 0, or None (NA: no effort in the occasion)


def detection_histories(efforts: Sequence[Effort], observations: Observations,
                        occasion_list: Sequence[Occasion], species: Sequence[str] | None = None) -> list[HistoryRow]:
    """Species × deployment × occasion: 1 when the species was detected in the occasion, 0 when it
    was not and the camera had effort in it, None (NA) when it had none (before the start, after
    the end, or all of it in a gap). `species`: which species (default: every named one observed)."""
    hits: set[tuple[str, str, int]] = set()
    pairs = _assign(efforts, observations)
    starts = [occ.start.timestamp() for occ in occasion_list]
    for item, obs in pairs:
        stamp = obs.started_at.timestamp()
        k = bisect_right(starts, stamp) - 1
        if k >= 0 and stamp < occasion_list[k].end.timestamp():
            hits.add((obs.species, item.site.deployment_id, occasion_list[k].index))
    names = sorted(species if species is not None else {o.species for _, o in pairs if o.species != UNKNOWN})
    grid = [(item, occ, item.overlap_days(occ.start, occ.end)) for item in efforts for occ in occasion_list]
    rows = []
    for name in names:
        for item, occ, days in grid:
            if (name, item.site.deployment_id, occ.index) in hits:
                value: int | None = 1  # a detection proves effort, even at the instant a gap began
            else:
                value = 0 if days > 0 else None
            rows.append(HistoryRow(name, item.site.deployment_id, occ.index, occ.start, occ.end, days, value))
    return rows


# -- everything at once ----------------------------------------------------------------------


@dataclass
class Analyses:
    """Every analysis of one period and set of cameras (what `edge report` writes)."""

    zone: tzinfo
    gap_hours: float
    occasion_days: int
    efforts: list[Effort]
    rai: list[RaiRow]
    accumulation: list[AccumulationRow]
    activity: list[ActivityRow]
    occupancy: list[OccupancyRow]
    occasions: list[Occasion]
    histories: list[HistoryRow]
    observations: int  # events counted (after review, per species: a mixed visit once per species) in the deployments


def analyse(sites: Sequence[Site], frames: Mapping[str, Sequence[datetime]], observations: Sequence[Observation],
            zone: tzinfo, *, gap_hours: float = DEFAULT_GAP_HOURS, occasion_days: int = DEFAULT_OCCASION_DAYS,
            permutations: int = DEFAULT_PERMUTATIONS, seed: int = DEFAULT_SEED) -> Analyses:
    efforts = effort(sites, frames, gap_hours)
    occ = occasions(efforts, zone, occasion_days)
    matched = assign(efforts, observations)
    observations = matched
    return Analyses(
        zone=zone, gap_hours=gap_hours, occasion_days=occasion_days, efforts=efforts,
        rai=rai(efforts, observations),
        accumulation=accumulation(efforts, observations, zone, permutations=permutations, seed=seed),
        activity=activity(efforts, observations, zone), occupancy=occupancy(efforts, observations),
        occasions=occ, histories=detection_histories(efforts, observations, occ),
        observations=len(matched))


# -- loading from the database ---------------------------------------------------------------


@dataclass(frozen=True)
class Loaded:
    """What `load` read: the sites, frame times per camera, the counted events, the zone."""

    sites: list[Site]
    frames: dict[str, list[datetime]]
    observations: list[Observation]
    zone: tzinfo
    taxa: dict[str, Any]


def _parse(text: str) -> datetime:
    """A stored time (edge/store/times.py's format, `...Z`): Python 3.11's fromisoformat reads the
    `Z` as UTC, a third of parse_utc's cost, which a million frames feel."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def load(config, db, *, cameras: Sequence[str] | None = None, since: datetime | None = None,
         until: datetime | None = None) -> Loaded:
    """Read one period's deployments (edge.ecology.deployments.resolve_deployments), the capture
    times of their cameras' frames (status ok, empty frames included) and their events as they
    count after review, one observation per species a visit counts, in one read transaction."""
    from edge.config.deployment import as_aware
    from edge.ecology.deployments import resolve_deployments, trusted
    from edge.ecology.media import per_species
    from edge.store.reviews import COUNTED_INDIVIDUALS_SQL, COUNTED_SPECIES_SQL
    from edge.store.taxa import taxa
    from edge.store.times import format_utc

    zone = config.station.zone
    conn = db.conn
    began = not conn.in_transaction
    if began:
        conn.execute("BEGIN")
    try:
        deployments = resolve_deployments(config, db, cameras=list(cameras) if cameras else None,
                                          since=since, until=until)
        frames_ok = trusted(conn, "frames")  # doubtful capture times are no effort, no detection
        if per_species(conn):  # what each visit counts per species (schema 6)
            counted = ("SELECT s.species, e.started_at, s.individuals FROM event_species AS s "
                       "JOIN events AS e ON e.id = s.event_id WHERE e.camera = ? AND e.started_at >= ? "
                       f"AND e.started_at < ? AND {trusted(conn, 'events', 'e')} ORDER BY e.started_at, e.id, s.species")
        else:  # older: the visit as its headline species
            counted = (f"SELECT ({COUNTED_SPECIES_SQL}) AS counted, started_at, {COUNTED_INDIVIDUALS_SQL} FROM events "
                       "WHERE camera = ? AND started_at >= ? AND started_at < ? AND counted IS NOT NULL "
                       "ORDER BY started_at")
        sites, frames, observations = [], {}, []
        for dep in deployments:
            real_start = (as_aware(dep.config.start, zone).astimezone(UTC) if dep.config.start is not None
                          else dep.first_frame)
            real_end = (as_aware(dep.config.end, zone, end=True).astimezone(UTC)
                        if dep.config.end is not None else None)
            before = after = None
            if dep.start_source == "period":  # clipped: the silence may have begun before the period
                row = conn.execute("SELECT MAX(captured_at) FROM frames WHERE camera = ? AND status = 'ok' "
                                   f"AND captured_at < ? AND {frames_ok}", (dep.camera, format_utc(dep.start))).fetchone()
                marks = [t for t in (_parse(row[0]) if row and row[0] else None, real_start) if t is not None]
                before = max(marks) if marks else None
                if before is not None and before > dep.start:
                    before = None
            if dep.end_source == "period":
                row = conn.execute("SELECT MIN(captured_at) FROM frames WHERE camera = ? AND status = 'ok' "
                                   f"AND captured_at >= ? AND {frames_ok}", (dep.camera, format_utc(dep.end))).fetchone()
                marks = [t for t in (_parse(row[0]) if row and row[0] else None, real_end) if t is not None]
                after = min(marks) if marks else None
            sites.append(Site(dep.deployment_id, dep.camera, dep.start, dep.end, dep.start_source, dep.end_source,
                              before, after, dep.doubtful_frames, dep.doubtful_events))
            frames[dep.camera] = [_parse(r[0]) for r in conn.execute(
                "SELECT captured_at FROM frames WHERE camera = ? AND status = 'ok' AND captured_at IS NOT NULL "
                f"AND captured_at >= ? AND captured_at < ? AND {frames_ok} ORDER BY captured_at",
                (dep.camera, format_utc(dep.start), format_utc(dep.end)))]
            observations += [Observation(dep.camera, r[0], _parse(r[1]), int(r[2] or 1)) for r in conn.execute(
                counted, (dep.camera, format_utc(dep.start), format_utc(dep.end)))]
        names = taxa(db)
    finally:
        if began and conn.in_transaction:
            conn.execute("COMMIT")
    return Loaded(sites, frames, observations, zone, names)

