"""The report's HTML pieces, shared by the report and each section module (leaderboard,
warnings, tuning): escaping, a section, a table, an embedded figure, a number as the report
writes it. A module of its own so that a section imports these and the report imports the
sections, never both ways."""
from __future__ import annotations

import base64
import html
import math
from typing import Any, Callable

import numpy as np

MISSING = "—"


def format_value(value: Any) -> str:
    """4 significant digits for floats, thousands separators for counts, a dash for undefined."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else MISSING
    return str(value)


def escape(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{escape(title)}</h2>{body}</section>'


def muted(text: str) -> str:
    return f'<p class="muted">{escape(text)}</p>'


def table(header: list[str], rows: list[list[Any]], numeric_from: int | None = None) -> str:
    """A table of escaped cells; cells from column ``numeric_from`` on are right-aligned."""

    def cell(tag: str, index: int, value: Any) -> str:
        align = ' class="num"' if numeric_from is not None and index >= numeric_from else ""
        return f"<{tag}{align}>{escape(value)}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def figure(title: str, draw: Callable[[], bytes]) -> str:
    """One embedded plot; a plot the data cannot support becomes a note, not a lost report."""
    try:
        png = draw()
    except (ValueError, IndexError) as error:
        return f'<figure><figcaption>{escape(title)}</figcaption>{muted(f"Could not draw: {error}")}</figure>'
    encoded = base64.b64encode(png).decode("ascii")
    return (f'<figure><img alt="{escape(title)}" src="data:image/png;base64,{encoded}">'
            f"<figcaption>{escape(title)}</figcaption></figure>")
