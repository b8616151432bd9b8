"""Charts as inline SVG, drawn on the server: no JavaScript chart library, nothing from a CDN,
and a phone shows them as it shows text (viewBox + width 100 %).

Each function returns markup (escaped labels) with `role="img"` and a <title>, and labelled
axes and values, so the numbers can be read without hovering.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

from markupsafe import Markup

BAR = "#2f7d4f"
BAR_2 = "#c58b1b"
MAX_LABELLED_DAYS = 62  # day bars carry their figure above them up to two months


def _svg(width: int, height: int, title: str, body: list[str], css_class: str) -> Markup:
    return Markup(
        f'<svg class="chart {css_class}" viewBox="0 0 {width} {height}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg" preserveAspectRatio="xMinYMin meet">'
        f"<title>{escape(title)}</title>{''.join(body)}</svg>")


def day_bars(days: Sequence[str], series: Mapping[str, Sequence[int]], title: str) -> Markup:
    """Grouped bars per day (e.g. visits and individuals), a value above each non-zero bar, the
    date under every few bars, a legend."""
    names = list(series)
    colours = [BAR, BAR_2, "#3867a8"]
    width, height, left, bottom, top = 760, 240, 34, 40, 24
    plot_w, plot_h = width - left - 8, height - bottom - top
    peak = max([1, *(v for values in series.values() for v in values)])
    slot = plot_w / max(1, len(days))
    bar_w = max(1.0, slot * 0.8 / max(1, len(names)))
    body = [f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 8}" y2="{top + plot_h}" stroke="#888"/>',
            f'<text x="{left - 4}" y="{top + 4}" text-anchor="end" class="tick">{peak}</text>',
            f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end" class="tick">0</text>']
    step = max(1, len(days) // 8)
    for i, day in enumerate(days):
        x0 = left + i * slot + slot * 0.1
        for j, name in enumerate(names):
            value = series[name][i]
            h = plot_h * value / peak
            x = x0 + j * bar_w
            body.append(f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                        f'fill="{colours[j % 3]}"><title>{escape(day)} {escape(name)}: {value}</title></rect>')
            if value and len(days) <= MAX_LABELLED_DAYS:  # beyond, the figures would overlap: each bar's <title> says it
                body.append(f'<text x="{x + bar_w / 2:.1f}" y="{top + plot_h - h - 2:.1f}" text-anchor="middle" '
                            f'class="value">{value}</text>')
        if i % step == 0:
            body.append(f'<text x="{left + i * slot + slot / 2:.1f}" y="{top + plot_h + 14}" text-anchor="middle" '
                        f'class="tick">{escape(day[5:])}</text>')
    for j, name in enumerate(names):
        body.append(f'<rect x="{left + j * 130}" y="{height - 14}" width="10" height="10" fill="{colours[j % 3]}"/>'
                    f'<text x="{left + j * 130 + 14}" y="{height - 5}" class="tick">{escape(name)}</text>')
    body.append(f'<text x="{left}" y="14" class="axis">per day (station time)</text>')
    return _svg(width, height, title, body, "bars")


def hour_bars(hours: Sequence[int], title: str, unit: str = "visits") -> Markup:
    """24 bars, local hour 0..23 on the x axis, the count above each non-zero bar."""
    width, height, left, bottom, top = 760, 200, 34, 30, 24
    plot_w, plot_h = width - left - 8, height - bottom - top
    peak = max([1, *hours])
    slot = plot_w / 24
    body = [f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 8}" y2="{top + plot_h}" stroke="#888"/>',
            f'<text x="{left}" y="14" class="axis">{escape(unit)} by hour of day (station time)</text>']
    for hour, value in enumerate(hours):
        h = plot_h * value / peak
        x = left + hour * slot + slot * 0.1
        body.append(f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{slot * 0.8:.1f}" height="{h:.1f}" '
                    f'fill="{BAR}"><title>{hour:02d}:00 {value}</title></rect>')
        if value:
            body.append(f'<text x="{x + slot * 0.4:.1f}" y="{top + plot_h - h - 2:.1f}" text-anchor="middle" '
                        f'class="value">{value}</text>')
        body.append(f'<text x="{x + slot * 0.4:.1f}" y="{top + plot_h + 14}" text-anchor="middle" '
                    f'class="tick">{hour}</text>')
    return _svg(width, height, title, body, "hours")


def _heat(value: int, peak: int) -> str:
    """White → dark green, by the square root (a few visits still show)."""
    if not value:
        return "#f4f4f4"
    t = (value / peak) ** 0.5
    low, high = (222, 240, 214), (20, 90, 50)
    return "#" + "".join(f"{round(a + (b - a) * t):02x}" for a, b in zip(low, high))


MAX_NAME = 200  # characters of a name in a cell's tooltip: 24 copies per row (the collector's label bound)

def heatmap(rows: Mapping[str, Sequence[int]], title: str) -> Markup:
    """Species (rows) x local hour (columns): each cell coloured on one scale with its count in
    it, the species names on the left, the hours on top, the colour scale below."""
    species = list(rows)
    cell, left, top = 28, 190, 34
    width = left + 24 * cell + 10
    height = top + cell * max(1, len(species)) + 50
    peak = max([1, *(v for values in rows.values() for v in values)])
    body = [f'<text x="{left}" y="12" class="axis">hour of day (station time)</text>']
    for hour in range(24):
        body.append(f'<text x="{left + hour * cell + cell / 2}" y="{top - 6}" text-anchor="middle" '
                    f'class="tick">{hour}</text>')
    for r, name in enumerate(species):
        y = top + r * cell
        body.append(f'<text x="{left - 6}" y="{y + cell * 0.65}" text-anchor="end" class="label">'
                    f'{escape(name[:28])}</text>')
        for hour, value in enumerate(rows[name]):
            x = left + hour * cell
            fill = _heat(value, peak)
            body.append(f'<rect x="{x}" y="{y}" width="{cell - 1}" height="{cell - 1}" fill="{fill}">'
                        f'<title>{escape(name[:MAX_NAME])} {hour:02d}:00: {value}</title></rect>')
            if value:
                ink = "#fff" if value / peak > 0.45 else "#123"
                body.append(f'<text x="{x + cell / 2 - 0.5}" y="{y + cell * 0.65}" text-anchor="middle" '
                            f'class="value" fill="{ink}">{value}</text>')
    if not species:
        body.append(f'<text x="{left}" y="{top + 18}" class="label">no visits in this period</text>')
    scale_y = top + cell * max(1, len(species)) + 16
    body.append(f'<text x="{left - 6}" y="{scale_y + 11}" text-anchor="end" class="tick">scale</text>')
    for i in range(11):
        value = round(peak * i / 10)
        body.append(f'<rect x="{left + i * 24}" y="{scale_y}" width="24" height="14" fill="{_heat(value, peak)}"/>')
    body.append(f'<text x="{left}" y="{scale_y + 28}" class="tick">0</text>'
                f'<text x="{left + 264}" y="{scale_y + 28}" text-anchor="end" class="tick">{peak}</text>')
    return _svg(width, height, title, body, "heatmap")
