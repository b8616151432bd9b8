"""`edge report`: the analyses of edge/ecology/analyses.py as CSV tables and one self-contained
HTML page (plots embedded as base64 PNG, no network, no JavaScript).

The plots need matplotlib (the optional `report` extra). It is imported only inside
`render_plots`, never at module level: the daemon and every other command import nothing of it,
and without it the report still writes every table and says how to get the plots.

The CSVs write missing values as `NA` (what R's read.csv and pandas read as missing) and times
as station-local ISO 8601 with their offset. detection_histories.csv is the long table (one row
per species, deployment and occasion); detection_histories/<species>.csv are the wide matrices
(one row per deployment, columns o1..oK) that `unmarked::unmarkedFrameOccu(y = ...)` takes, and
detection_effort.csv the matching effort matrix (camera-days per occasion) for an observation
covariate. docs/report.md says how to load them.
"""

from __future__ import annotations

import base64
import csv
import io
import os
import re
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from html import escape
from pathlib import Path
from typing import Any

from edge.classify.names import Namer
from edge.ecology.analyses import ALL, Analyses

INSTALL_HINT = "pip install 'trailcam[report]'"
MAX_ACTIVITY_PANELS = 12
NO_DEPLOYMENTS = ("No deployment has effort in the period: no camera of the selection has frames or a configured "
                  "start in it, so every table is empty.")


class ReportOutputError(Exception):
    """The output folder cannot be used (exists and is not empty, is a file): nothing written."""


# -- formatting ------------------------------------------------------------------------------


def num(value: float | int | None, digits: int = 4) -> str:
    """A number as the CSVs write it: fixed decimals, `NA` for none."""
    if value is None:
        return "NA"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


def local(moment: datetime | None, zone: tzinfo) -> str:
    return "NA" if moment is None else moment.astimezone(zone).isoformat(timespec="seconds")


def slug(name: str) -> str:
    """A species label as a file name (letters, digits, '-', '_' and '.'; others become '_')."""
    text = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "species"
    return text[:100]


def unique_slugs(names: Sequence[str]) -> dict[str, str]:
    """Species → file stem, distinct even when two labels make the same slug."""
    found: dict[str, str] = {}
    used: set[str] = set()
    for name in names:
        stem, n = slug(name), 2
        candidate = stem
        while candidate.lower() in used:
            candidate, n = f"{stem}_{n}", n + 1
        used.add(candidate.lower())
        found[name] = candidate
    return found


# -- tables ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    """One CSV file: its name, header and rows of strings."""

    name: str
    header: list[str]
    rows: list[list[str]]


def _scientific(taxa: Mapping[str, Any], species: str) -> str:
    taxon = taxa.get(species)
    return (taxon.scientific_name or "") if taxon is not None else ""


@dataclass(frozen=True)
class Names:
    """A species label's names in the report (docs/taxonomy.md, "Names people read"): the CSVs
    keep the label (what a program joins on) with its scientific and common names beside; the
    page and the plots show the display name in [station] language."""

    taxa: Mapping[str, Any]
    namer: Namer

    def _of(self, label: str) -> tuple[str | None, str | None]:
        taxon = self.taxa.get(label)
        return (taxon.scientific_name, taxon.common_name) if taxon is not None else (None, None)

    def common(self, label: str) -> str:
        """The common name in the station's language, "" when none (a CSV cell)."""
        return self.namer.common(label, *self._of(label)) or ""

    def readable(self, label: str) -> str:
        return self.namer.display(label, *self._of(label))


def _names(taxa: Mapping[str, Any] | None, namer: Namer | None) -> Names:
    return Names(taxa or {}, namer or Namer())


def tables(result: Analyses, taxa: Mapping[str, Any] | None = None, namer: Namer | None = None) -> list[Table]:
    """Every CSV of the report, from the analyses (the tests compare these with the analyses).
    `namer` (the station's language) fills the common_name columns; none: the model's own."""
    names = _names(taxa, namer)
    taxa = names.taxa
    zone = result.zone
    found = []
    found.append(Table("effort.csv", [
        "deployment_id", "camera", "start", "start_source", "end", "end_source", "frames", "camera_days", "gaps",
        "gap_days", "effective_days"], [
        [e.site.deployment_id, e.site.camera, local(e.site.start, zone), e.site.start_source, local(e.site.end, zone),
         e.site.end_source, str(e.frames), num(e.camera_days), str(len(e.gaps)), num(e.gap_days),
         num(e.effective_days)] for e in result.efforts]))
    found.append(Table("gaps.csv", [
        "deployment_id", "camera", "start", "end", "gap_days", "silent_from", "silent_to", "silent_hours"], [
        [g.deployment_id, g.camera, local(g.start, zone), local(g.end, zone), num(g.days()),
         local(g.silent_from, zone), local(g.silent_to, zone), num(g.hours(), 2)]
        for e in result.efforts for g in e.gaps]))
    found.append(Table("rai.csv", [
        "species", "scientific_name", "common_name", "deployment_id", "events", "individuals", "effort_days",
        "rai_per_100_days"], [
        [r.species, _scientific(taxa, r.species), names.common(r.species), r.deployment_id, str(r.events), str(r.individuals),
         num(r.effort_days), num(r.rai)] for r in result.rai]))
    found.append(Table("accumulation.csv", [
        "day", "date", "species", "new_species", "random_mean", "random_sd"], [
        [str(a.day), a.date, str(a.species), ";".join(a.new_species), num(a.random_mean), num(a.random_sd)]
        for a in result.accumulation]))
    found.append(Table("activity.csv", ["species", "scientific_name", "common_name", "hour", "events", "share"], [
        [a.species, _scientific(taxa, a.species), names.common(a.species), str(a.hour), str(a.events), num(a.share)]
        for a in result.activity]))
    found.append(Table("occupancy.csv", [
        "species", "scientific_name", "common_name", "detected_deployments", "deployments_with_effort",
        "naive_occupancy"], [
        [o.species, _scientific(taxa, o.species), names.common(o.species), str(o.detected), str(o.deployments), num(o.naive_occupancy)]
        for o in result.occupancy]))
    found.append(Table("detection_histories.csv", [
        "species", "scientific_name", "common_name", "deployment_id", "occasion", "occasion_start", "occasion_end",
        "effort_days", "detected"], [
        [h.species, _scientific(taxa, h.species), names.common(h.species), h.deployment_id, str(h.occasion), local(h.start, zone),
         local(h.end, zone), num(h.effort_days), num(h.detected)] for h in result.histories]))
    columns = [f"o{occ.index}" for occ in result.occasions]
    effort_matrix: dict[str, dict[int, float]] = defaultdict(dict)
    wide: dict[str, dict[str, dict[int, int | None]]] = defaultdict(lambda: defaultdict(dict))
    for h in result.histories:
        effort_matrix[h.deployment_id][h.occasion] = h.effort_days
        wide[h.species][h.deployment_id][h.occasion] = h.detected
    ids = [e.site.deployment_id for e in result.efforts]
    if not result.histories:  # no species: the effort matrix still says where there was effort
        for e in result.efforts:
            for occ in result.occasions:
                effort_matrix[e.site.deployment_id][occ.index] = e.overlap_days(occ.start, occ.end)
    found.append(Table("detection_effort.csv", ["deployment_id", *columns], [
        [d, *(num(effort_matrix[d].get(occ.index, 0.0)) for occ in result.occasions)] for d in ids]))
    stems = unique_slugs(sorted(wide))
    for species in sorted(wide):
        found.append(Table(f"detection_histories/{stems[species]}.csv", ["deployment_id", *columns], [
            [d, *(num(wide[species][d].get(occ.index)) for occ in result.occasions)] for d in ids]))
    return found


def write_csv(path: Path, table: Table) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(table.header)
        writer.writerows(table.rows)


# -- plots -----------------------------------------------------------------------------------


def render_plots(result: Analyses, readable: Callable[[str], str] = str) -> dict[str, bytes]:
    """The report's plots as PNG bytes by name, species under `readable` names (Names.readable).
    Raises ImportError without matplotlib."""
    import matplotlib

    matplotlib.use("Agg", force=False)  # no display; a figure is drawn straight into a buffer
    from matplotlib.dates import date2num
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    def png(figure) -> bytes:
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
        return buffer.getvalue()

    zone = result.zone
    plots: dict[str, bytes] = {}
    if result.efforts:
        figure = Figure(figsize=(9, max(1.8, 0.9 + 0.45 * len(result.efforts))), layout="constrained")
        ax = figure.subplots()
        for i, item in enumerate(result.efforts):
            spans = [(date2num(a.astimezone(zone)),
                      date2num(b.astimezone(zone)) - date2num(a.astimezone(zone)))
                     for a, b in item.active()]
            gaps = [(date2num(g.start.astimezone(zone)),
                     date2num(g.end.astimezone(zone)) - date2num(g.start.astimezone(zone)))
                    for g in item.gaps]
            ax.broken_barh(spans, (i - 0.35, 0.7), facecolors="#2f7d4f")
            if gaps:
                ax.broken_barh(gaps, (i - 0.35, 0.7), facecolors="#d9534f", hatch="//")
        ax.set_yticks(range(len(result.efforts)), [e.site.deployment_id for e in result.efforts])
        ax.xaxis_date(tz=zone)
        ax.set_title("Effort: deployments (green) and gaps without frames (red)")
        ax.tick_params(axis="x", labelrotation=30)
        plots["effort"] = png(figure)
    overall = [r for r in result.rai if r.deployment_id == ALL and r.rai is not None]
    if overall:
        figure = Figure(figsize=(8, 0.6 + 0.35 * len(overall)), layout="constrained")
        ax = figure.subplots()
        ax.barh(range(len(overall)), [r.rai for r in overall if r.rai is not None],  # all: the check narrows
                color=["#999999" if r.unknown else "#2f7d4f" for r in overall])
        ax.set_yticks(range(len(overall)), [readable(r.species) for r in overall])
        ax.invert_yaxis()
        ax.set_xlabel("independent events per 100 camera-days")
        ax.set_title("Relative abundance index, all deployments")
        plots["rai"] = png(figure)
    if result.accumulation:
        figure = Figure(figsize=(8, 4), layout="constrained")
        ax = figure.subplots()
        days = [a.day for a in result.accumulation]
        mean = [a.random_mean for a in result.accumulation]
        sd = [a.random_sd for a in result.accumulation]
        ax.fill_between(days, [m - s for m, s in zip(mean, sd)], [m + s for m, s in zip(mean, sd)],
                        color="#c58b1b", alpha=0.25, label="random order ± 1 sd")
        ax.plot(days, mean, color="#c58b1b", label="random order, mean")
        ax.step(days, [a.species for a in result.accumulation], where="post", color="#2f7d4f", label="in date order")
        ax.set_xlabel("survey days")
        ax.set_ylabel("distinct species")
        ax.set_title("Species accumulation")
        ax.legend(loc="lower right")
        plots["accumulation"] = png(figure)
    by_species: dict[str, list[int]] = defaultdict(lambda: [0] * 24)
    for row in result.activity:
        by_species[row.species][row.hour] = row.events
    if by_species:
        names = sorted(by_species, key=lambda s: (-sum(by_species[s]), s))[:MAX_ACTIVITY_PANELS]
        columns = min(3, len(names))
        rows = (len(names) + columns - 1) // columns
        figure = Figure(figsize=(3.4 * columns, 2.3 * rows), layout="constrained")
        axes = figure.subplots(rows, columns, squeeze=False)
        for index, ax in enumerate(axes.flat):
            if index >= len(names):
                ax.set_visible(False)
                continue
            name = names[index]
            ax.bar(range(24), by_species[name], width=0.9, color="#3867a8")
            ax.set_xlim(-0.5, 23.5)
            ax.set_xticks([0, 6, 12, 18, 23])
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_title(f"{readable(name)} (n={sum(by_species[name])})", fontsize=9)
        figure.suptitle("Activity: events per hour of the day (station time)")
        plots["activity"] = png(figure)
    if result.occupancy:
        figure = Figure(figsize=(8, 0.6 + 0.35 * len(result.occupancy)), layout="constrained")
        ax = figure.subplots()
        ax.barh(range(len(result.occupancy)), [o.naive_occupancy or 0.0 for o in result.occupancy], color="#2f7d4f")
        ax.set_yticks(range(len(result.occupancy)), [readable(o.species) for o in result.occupancy])
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_xlabel("share of deployments with a detection")
        ax.set_title("Naive occupancy")
        plots["occupancy"] = png(figure)
    return plots


# -- HTML ------------------------------------------------------------------------------------

CSS = """
body{font-family:system-ui,sans-serif;margin:1.5rem auto;max-width:1100px;padding:0 1rem;color:#222}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}td,th{border:1px solid #ddd;padding:.2rem .45rem}
th{background:#f3f3f3;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}
img{max-width:100%;height:auto}.note{background:#fff6dd;border:1px solid #e0c060;padding:.5rem .8rem}
.muted{color:#666}
"""


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[bool] = ()) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = "".join(f'<td class="n">{escape(c)}</td>' if i < len(numeric) and numeric[i] else f"<td>{escape(c)}</td>"
                        for i, c in enumerate(row))
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _image(plots: Mapping[str, bytes] | None, name: str, alt: str) -> str:
    if not plots or name not in plots:
        return ""
    data = base64.b64encode(plots[name]).decode("ascii")
    return f'<p><img alt="{escape(alt)}" src="data:image/png;base64,{data}"></p>'


def render_html(result: Analyses, found: Sequence[Table], plots: Mapping[str, bytes] | None, *,
                title: str, period: str, plot_note: str | None, taxa: Mapping[str, Any] | None = None,
                namer: Namer | None = None) -> str:
    """The report page, species by the names people read (the scientific name beside). Every
    value from the data goes through html.escape (species names and deployment ids are data)."""
    names = _names(taxa, namer)
    taxa, shown = names.taxa, names.readable
    by_name = {t.name: t for t in found}
    parts = [f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{escape(title)}</title>"
             f"<style>{CSS}</style></head><body><h1>{escape(title)}</h1>",
             f"<p>{escape(period)}. Times in {escape(str(result.zone))}. Gaps: silences over "
             f"{escape(num(result.gap_hours, 1))} h without a frame (subtracted from the effort); occasions of "
             f"{result.occasion_days} days; {result.observations} independent events counted after review, per "
             "species (a visit of two species is an event of each).</p>"]
    if plot_note:
        parts.append(f'<p class="note">{escape(plot_note)}</p>')
    if not result.efforts:
        parts.append(f'<p class="note">{escape(NO_DEPLOYMENTS)}</p>')
    parts.append("<h2>Effort</h2><p>Camera-days per deployment within the period, the gaps, and the effective "
                 "camera-days the relative abundance index divides by. Start and end sources: <em>config</em> "
                 "([cameras.deployment]), <em>first frame</em> / <em>last frame</em> (not configured), "
                 "<em>period</em> (clipped by --since / --until).</p>")
    doubtful = [item.site for item in result.efforts if item.site.doubtful_frames or item.site.doubtful_events]
    if doubtful:
        parts.append('<p class="note">Doubtful camera clocks: ' + "; ".join(
            f"{escape(site.deployment_id)}: {site.doubtful_frames} frame(s), {site.doubtful_events} visit(s)"
            for site in doubtful) + ". Their capture times are in the future, before the deployment's start or far "
            "before the camera's other frames (a clock reset): they are left out of the deployment's span, the "
            "effort and the events here (still counted by <code>edge counts</code>), and the time they were really "
            "taken shows as a gap. Correct the camera's clock to bring them back.</p>")
    parts.append(_image(plots, "effort", "Effort per deployment with its gaps"))
    effort = by_name["effort.csv"]
    parts.append(_html_table(effort.header, effort.rows, [False] * 6 + [True] * 5))
    gaps = by_name["gaps.csv"]
    if gaps.rows:
        parts.append("<h3>Gaps</h3>" + _html_table(gaps.header, gaps.rows, [False] * 4 + [True] + [False] * 2 + [True]))
    else:
        parts.append('<p class="muted">No gaps.</p>')
    parts.append("<h2>Relative abundance index</h2><p>Independent events per 100 effective camera-days (RAI = "
                 "100 × events / camera-days). <em>unknown</em> (birds the model could not name) is listed "
                 "separately, last.</p>")
    parts.append(_image(plots, "rai", "Relative abundance index per species"))
    rai_rows = [r for r in result.rai if r.deployment_id == ALL]
    parts.append(_html_table(["species", "scientific name", "events", "individuals", "camera-days", "RAI"], [
        [shown(r.species), _scientific(taxa, r.species), str(r.events), str(r.individuals), num(r.effort_days),
         num(r.rai, 2)] for r in rai_rows], [False, False, True, True, True, True]))
    per_dep = [r for r in result.rai if r.deployment_id != ALL]
    if per_dep:
        parts.append("<h3>Per deployment</h3>" + _html_table(
            ["species", "deployment", "events", "individuals", "camera-days", "RAI"],
            [[shown(r.species), r.deployment_id, str(r.events), str(r.individuals), num(r.effort_days), num(r.rai, 2)]
             for r in per_dep], [False, False, True, True, True, True]))
    parts.append("<h2>Species accumulation</h2><p>Distinct species by survey day (station-local days with "
                 "effort), in date order and as the mean over random orders of the days.</p>")
    parts.append(_image(plots, "accumulation", "Species accumulation curve"))
    acc = by_name["accumulation.csv"]
    parts.append(_html_table(acc.header, [
        [str(a.day), a.date, str(a.species), "; ".join(shown(n) for n in a.new_species), num(a.random_mean),
         num(a.random_sd)] for a in result.accumulation], [True, False, True, False, True, True]))
    parts.append("<h2>Activity pattern</h2><p>Events per hour of the day (the hour each event started, "
                 "station time).</p>")
    parts.append(_image(plots, "activity", "Activity per species over 24 hours"))
    hours: dict[str, list[int]] = defaultdict(lambda: [0] * 24)
    for row in result.activity:
        hours[row.species][row.hour] = row.events
    parts.append(_html_table(["species", *[f"{h:02d}" for h in range(24)], "total"],
                             [[shown(s), *map(str, hours[s]), str(sum(hours[s]))] for s in sorted(hours)],
                             [False] + [True] * 25))
    parts.append("<h2>Naive occupancy</h2><p>Deployments where the species was detected / deployments with "
                 "effort (no correction for imperfect detection: fit an occupancy model to the detection "
                 "histories for that).</p>")
    parts.append(_image(plots, "occupancy", "Naive occupancy per species"))
    parts.append(_html_table(
        ["species", "scientific name", "detected deployments", "deployments with effort", "naive occupancy"],
        [[shown(o.species), _scientific(taxa, o.species), str(o.detected), str(o.deployments), num(o.naive_occupancy)]
         for o in result.occupancy], [False, False, True, True, True]))
    parts.append("<h2>Detection histories</h2><p>1 detected, 0 not detected with effort, NA no effort in the "
                 "occasion. Files: <code>detection_histories.csv</code> (long), "
                 "<code>detection_histories/&lt;species&gt;.csv</code> (one matrix per species), "
                 "<code>detection_effort.csv</code> (camera-days per occasion).</p>")
    if result.occasions:
        parts.append(_html_table(["occasion", "start", "end"], [
            [f"o{o.index}", local(o.start, result.zone), local(o.end, result.zone)] for o in result.occasions]))
    stems = unique_slugs(sorted({h.species for h in result.histories}))
    for species, stem in stems.items():
        table = by_name.get(f"detection_histories/{stem}.csv")
        if table is not None:
            scientific = _scientific(taxa, species)
            beside = f" <small class=\"muted\">{escape(scientific)}</small>" if scientific and scientific != shown(species) else ""
            parts.append(f"<h3>{escape(shown(species))}{beside}</h3>" + _html_table(
                table.header, table.rows, [False] + [True] * (len(table.header) - 1)))
    parts.append("</body></html>")
    return "\n".join(p for p in parts if p)


# -- writing ---------------------------------------------------------------------------------


def check_out(out: Path) -> None:
    """Refuse an output path that exists as anything but an empty folder."""
    if out.exists() or out.is_symlink():
        if not out.is_dir() or out.is_symlink():
            raise ReportOutputError(f"--out {out}: exists and is not a folder")
        if any(out.iterdir()):
            raise ReportOutputError(f"--out {out}: exists and is not empty (nothing written; give a new folder)")


@dataclass(frozen=True)
class Written:
    out: Path
    files: list[str]
    plots: bool
    note: str | None


def write_report(out: Path, result: Analyses, *, title: str, period: str, taxa: Mapping[str, Any] | None = None,
                 plotter: Callable[[Analyses], dict[str, bytes]] | None = None, namer: Namer | None = None) -> Written:
    """Write the CSVs and report.html into `out` (new or empty): into a temporary folder beside
    it first, moved into place at the end, so a failure leaves no half report. `namer`: the
    station's names (edge.classify.names.station_namer); `plotter`: render_plots by default."""
    check_out(out)
    found = tables(result, taxa, namer)
    note = None
    if plotter is None:
        readable = _names(taxa, namer).readable
        plotter = lambda analysed: render_plots(analysed, readable)  # noqa: E731
    try:
        plots: dict[str, bytes] | None = plotter(result)
    except ImportError:
        plots = None
        note = f"The plots need matplotlib, which is not installed: {INSTALL_HINT} (the tables are complete without it)."
    parent = out.parent if str(out.parent) else Path(".")
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=parent))
    try:
        for table in found:
            write_csv(staging / table.name, table)
        html = render_html(result, found, plots, title=title, period=period, plot_note=note, taxa=taxa, namer=namer)
        (staging / "report.html").write_text(html, encoding="utf-8")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(staging, 0o777 & ~umask)  # mkdtemp's 0700, as a folder made by mkdir would be
        if out.is_dir():
            out.rmdir()  # empty (checked above)
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Written(out, ["report.html", *(t.name for t in found)], plots is not None, note)
