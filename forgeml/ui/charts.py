"""Learning curves as inline SVG: no JavaScript, no CDN, works offline and in any browser.

A chart is a few polylines over "nice" axis ticks; each point carries a ``<title>`` so hovering
shows its value. Series are told apart by colour and listed in a legend.
"""
from __future__ import annotations

import math
from html import escape
from typing import Sequence

# Colour-blind-safe palette (Okabe–Ito).
COLOURS = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")

Point = tuple[float, float]
LEGEND_ITEM = 150  # px per legend entry: a swatch and up to 22 characters


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (Heckbert's "nice numbers")."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return [0.0, 1.0]
    if high <= low:
        low, high = low - (abs(low) * 0.1 or 1), high + (abs(high) * 0.1 or 1)
    raw = (high - low) / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step) * step
    ticks = [round(start, 12)]
    while ticks[-1] < high:  # the last tick at or above the highest value, so no point leaves the plot
        ticks.append(round(start + len(ticks) * step, 12))
    return ticks


def _label(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1e4 or abs(value) < 1e-3:
        return f"{value:.2g}"
    return f"{value:.4g}"


def line_chart(series: dict[str, Sequence[Point]], *, title: str, metric: str, x_label: str = "epoch",
               width: int = 520, height: int = 260) -> str:
    """One SVG with a polyline per named series; empty series are skipped."""
    series = {name: [(float(x), float(y)) for x, y in points if _finite(x) and _finite(y)] for name, points in series.items()}
    series = {name: points for name, points in series.items() if points}
    left, right, bottom = 56, 12, 40
    per_row = max(1, (width - left - right) // LEGEND_ITEM)
    legend_rows = max(1, math.ceil(len(series) / per_row))
    top = 24 + 16 * legend_rows + 4  # the legend has its own rows under the title, clear of the curves
    plot_w, plot_h = width - left - right, height - top - bottom
    head = (f'<svg class="chart" data-metric="{escape(metric)}" role="img" aria-label="{escape(title)}" '
            f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">'
            f'<text x="{left}" y="16" class="chart-title">{escape(title)}</text>')
    if not series:
        return head + f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" class="muted">no data</text></svg>'
    xs = [x for points in series.values() for x, _ in points]
    ys = [y for points in series.values() for _, y in points]
    x_ticks, y_ticks = nice_ticks(min(xs), max(xs)), nice_ticks(min(ys), max(ys))
    x0, x1, y0, y1 = x_ticks[0], x_ticks[-1], y_ticks[0], y_ticks[-1]

    def sx(x: float) -> float:
        return left + (x - x0) / ((x1 - x0) or 1) * plot_w

    def sy(y: float) -> float:
        return top + plot_h - (y - y0) / ((y1 - y0) or 1) * plot_h

    parts = [head]
    for tick in y_ticks:
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{sy(tick):.1f}" y2="{sy(tick):.1f}" class="grid"/>'
                     f'<text x="{left - 6}" y="{sy(tick) + 4:.1f}" text-anchor="end" class="tick">{_label(tick)}</text>')
    for tick in x_ticks:
        parts.append(f'<text x="{sx(tick):.1f}" y="{top + plot_h + 16}" text-anchor="middle" class="tick">{_label(tick)}</text>')
    parts.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + plot_h}" class="axis"/>'
                 f'<line x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" y2="{top + plot_h}" class="axis"/>'
                 f'<text x="{left + plot_w / 2}" y="{height - 6}" text-anchor="middle" class="tick">{escape(x_label)}</text>')
    for index, (name, points) in enumerate(series.items()):
        colour = COLOURS[index % len(COLOURS)]
        coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in points)
        parts.append(f'<polyline class="series" data-series="{escape(name)}" data-points="{len(points)}" points="{coords}" '
                     f'fill="none" stroke="{colour}" stroke-width="2"/>')
        for x, y in points:
            parts.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{colour}">'
                         f'<title>{escape(name)} @ {x_label} {_label(x)}: {_label(y)}</title></circle>')
        legend_x, legend_y = left + LEGEND_ITEM * (index % per_row), 24 + 16 * (index // per_row)
        parts.append(f'<rect x="{legend_x}" y="{legend_y}" width="10" height="10" fill="{colour}"/>'
                     f'<text x="{legend_x + 14}" y="{legend_y + 9}" class="legend">{escape(name[:22])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
