"""explain.html: the explanations as a page that needs nothing but a browser.

Global importance (mean |attribution|) and one bar chart per detailed row as matplotlib PNGs
embedded as ``data:`` URIs (as report.html does), text features as highlighted tokens (green
pushes towards the explained class or up, red away or down; the colour's strength is the
token's share of the row's largest token), images with their saliency map laid over them.
"""
from __future__ import annotations

import base64
import html
from typing import Any

import numpy as np

MAX_BARS = 12  # features per row chart; the rest are summed into one bar
CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; color: #1f2328; line-height: 1.5; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; border-bottom: 1px solid #d0d7de; } h3 { font-size: 1rem; }
.muted { color: #656d76; } figure { margin: 0.5rem 0; } img { max-width: 100%; }
.tokens { font-size: 1.05rem; line-height: 2; } .tokens span { padding: 0.1rem 0.15rem; border-radius: 0.2rem; }
table { border-collapse: collapse; } td, th { padding: 0.2rem 0.6rem; border-bottom: 1px solid #d0d7de; text-align: left; }
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _img(png: bytes, title: str) -> str:
    return f'<figure><img alt="{_e(title)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}"></figure>'


def bars(labels: list[str], values: list[float], title: str, x_label: str) -> bytes:
    """A horizontal bar chart, largest magnitude on top (green positive, red negative)."""
    from forgeml.evaluate.plots import _figure_context, _new_figure, _png

    with _figure_context():
        fig = _new_figure(7.0, 0.9 + 0.32 * max(len(values), 1))
        ax = fig.add_subplot()
        y = np.arange(len(values))[::-1]
        ax.barh(y, values, color=["#1a7f37" if v >= 0 else "#cf222e" for v in values])
        ax.set_yticks(y, [label if len(label) <= 30 else label[:29] + "…" for label in labels])
        ax.axvline(0, color="#656d76", linewidth=0.8)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(x_label, fontsize=9)
        return _png(fig)


def _row_bars(row: dict[str, Any], unit: str) -> bytes:
    items = list(row["contributions"].items())
    shown = items[:MAX_BARS]
    if len(items) > MAX_BARS:
        shown.append((f"{len(items) - MAX_BARS} other features", sum(v for _, v in items[MAX_BARS:])))
    title = f"row {row['row']}: predicted {row['prediction']} (base {row['base']:.3g} → {row['output']:.3g})"
    return bars([k for k, _ in shown], [v for _, v in shown], title, unit)


def tokens_html(tokens: list[list[Any]]) -> str:
    """Tokens as spans shaded by their score (green positive, red negative)."""
    peak = max((abs(score) for _, score in tokens), default=0.0) or 1.0
    out = []
    for token, score in tokens:
        if not token.strip():
            out.append(_e(token))  # the text's own spaces, between the shaded tokens
            continue
        strength = min(abs(score) / peak, 1.0) * 0.8
        colour = f"rgba(26,127,55,{strength:.2f})" if score >= 0 else f"rgba(207,34,46,{strength:.2f})"
        out.append(f'<span style="background:{colour}" title="{score:+.4f}">{_e(token)}</span>')
    return '<div class="tokens">' + "".join(out) + "</div>"


def overlay(image: np.ndarray, saliency: np.ndarray, title: str) -> bytes:
    """The image (uint8, channels first) with its |saliency| laid over it, side by side with the map alone."""
    from forgeml.evaluate.plots import _figure_context, _new_figure, _png

    with _figure_context():
        fig = _new_figure(6.0, 3.2)
        left, right = fig.subplots(1, 2)
        pixels = np.transpose(image, (1, 2, 0)) if image.shape[0] in (1, 3) else image
        left.imshow(pixels.squeeze(), cmap="gray" if pixels.shape[-1] == 1 else None)
        magnitude = np.abs(saliency)
        left.imshow(magnitude, cmap="inferno", alpha=0.5)
        right.imshow(saliency, cmap="RdYlGn", vmin=-np.abs(saliency).max(), vmax=np.abs(saliency).max())
        for ax in (left, right):
            ax.set_axis_off()
        left.set_title(title, fontsize=9)
        right.set_title("attribution per pixel", fontsize=9)
        return _png(fig)


def render(answer: dict[str, Any], images: dict[str, np.ndarray] | None = None, full_saliency: dict[str, list[np.ndarray]] | None = None,
           title: str = "Explanations") -> str:
    """The page for ``run.explain_frame``'s answer; ``images`` / ``full_saliency``: the detailed
    rows' pixels and maps, in the order of ``answer["rows"]`` (the JSON keeps only a coarse grid)."""
    importance = answer["importance"]
    parts = [f"<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{_e(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
             f"<h1>{_e(title)}</h1>",
             f'<p>Model <b>{_e(answer["model"])}</b> ({_e(answer["task"])}) on {_e(answer["data"])}: {answer["rows_explained"]} row(s) explained.</p>',
             f'<p class="muted">Method: {_e(answer["method"])}.<br>Unit: {_e(answer["output"])}. Baseline: {_e(answer["baseline"])}.<br>'
             f'Largest completeness gap (|Σ attributions − (output − base)| relative to the change): {answer["completeness_gap"]:.2%}.</p>',
             "<h2>Global importance</h2>",
             _img(bars([i["feature"] for i in importance], [i["mean_abs"] for i in importance],
                       "mean |attribution| over the explained rows", answer["output"]), "global importance"),
             "<h2>Rows</h2>"]
    for k, row in enumerate(answer["rows"]):
        parts.append(f"<h3>Row {row['row']}: predicted {_e(row['prediction'])}</h3>")
        parts.append(_img(_row_bars(row, answer["output"]), f"row {row['row']}"))
        for name, tokens in (row.get("tokens") or {}).items():
            parts.append(f"<p><b>{_e(name)}</b></p>{tokens_html(tokens)}")
        for name in (row.get("saliency") or {}):
            pixels = (images or {}).get(f"images.{name}")
            maps = (full_saliency or {}).get(name)
            if pixels is not None and maps is not None:
                parts.append(_img(overlay(pixels[k], maps[k], f"{name}, row {row['row']}"), f"{name} saliency"))
    parts.append("</body>\n</html>\n")
    return "\n".join(parts)
