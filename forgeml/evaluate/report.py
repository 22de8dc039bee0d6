"""The run report: one self-contained HTML page a user can open offline or e-mail as is.

Everything is inline (stylesheet, plots as base64 PNG ``data:`` URIs), nothing is fetched, so
the page looks the same on a laptop without network years later. Every string that came from
the user's data or config (column names, class names, notes, YAML) is HTML-escaped: a column
called ``<script>`` is text, not code.

The page is a fixed sequence of section builders (``SECTIONS``) and the plots come from a
per-task registry (``_TASK_PLOTS``); adding either is one function plus one entry. A section that
a package above evaluate contributes (explain, compress: they know their own data) is an entry
``"module:function"``, imported when a report is rendered, so this module never imports them.
Section modules build their HTML with ``report_html``, never with this module.
"""
from __future__ import annotations

import importlib
import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np

from forgeml.evaluate.metrics import HEADLINE
from forgeml.evaluate.report_html import MISSING, escape, figure, format_value, muted, section, table
from forgeml.evaluate.report_leaderboard import leaderboard_section
from forgeml.evaluate.report_tuning import tuning_section
from forgeml.evaluate.report_warnings import warnings_section
from forgeml.fileio import atomic_write_text

# Headline rows per task, in reading order; the task's headline metric is moved to the top.
_TABLE_METRICS: dict[str, tuple[str, ...]] = {
    "binary": ("accuracy", "balanced_accuracy", "precision_macro", "recall_macro", "f1_macro",
               "f1_weighted", "log_loss", "roc_auc", "pr_auc", "n"),
    "regression": ("r2", "mae", "rmse", "mape", "n"),
}
_TABLE_METRICS["multiclass"] = _TABLE_METRICS["binary"]
_PER_CLASS_COLUMNS = ("precision", "recall", "f1", "support")
_PER_TARGET_COLUMNS = ("mae", "rmse", "r2", "mape")
# Nested cleaning reports are rendered as nested tables down to this depth, then as JSON text.
_MAX_NESTING = 4


@dataclass
class ReportInputs:
    """Everything the report shows; all but the first five fields are optional."""

    title: str
    task: str
    targets: list[str]
    model_description: str
    metrics: dict  # test-split metrics from compute_metrics
    validation_metrics: dict | None = None
    history: list[dict] = field(default_factory=list)  # one row per epoch
    step_name: str = "epoch"  # what a history row counts: "boosting round" for LightGBM
    y_true: np.ndarray | None = None  # test split, for the curves
    y_proba: np.ndarray | None = None
    y_pred: np.ndarray | None = None
    class_names: list[str] | None = None
    data_summary: dict | None = None  # from summarize_data
    cleaning: dict | None = None  # a CleaningReport as a dict, rendered generically
    feature_importance: dict[str, float] | None = None
    config_yaml: str | None = None
    error_examples: dict | None = None  # from evaluate.examples.error_examples (image and text inputs)
    created_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    extra_notes: list[str] = field(default_factory=list)
    leaderboard: list[dict] | None = None  # an ensemble's members (models.ensemble)
    tuning: dict | None = None  # the study a tuned run came from (tune.results.summarise)
    compression: dict | None = None  # a compressed bundle's before/after table (compress.tradeoff)
    explanations: dict | None = None  # a few test rows explained (forgeml.explain.report_section)


def metrics_table_rows(metrics: dict, task: str) -> list[tuple[str, str]]:
    """``(metric name, formatted value)`` rows, headline metric first, for HTML and CLI alike.

    Metrics absent from ``metrics`` are skipped; undefined ones (None) show as a dash.
    """
    names = _TABLE_METRICS.get(task, tuple(k for k, v in metrics.items() if _is_scalar(v)))
    headline = HEADLINE.get(task)
    ordered = ([headline] if headline in names else []) + [n for n in names if n != headline]
    return [(name, format_value(metrics[name])) for name in ordered if name in metrics]


def print_metrics(metrics: dict, task: str, title: str) -> None:
    """The metrics table on the terminal, rows as in the report (``forgeml train``, ``evaluate``, ``tune``)."""
    from rich.table import Table

    from forgeml.console import console

    grid = Table(title=title, show_header=True)
    grid.add_column("metric")
    grid.add_column("value", justify="right")
    for name, value in metrics_table_rows(metrics, task):
        grid.add_row(name, value)
    console().print(grid)


def render_report(inputs: ReportInputs) -> str:
    """The complete HTML page for ``inputs``."""
    body = "\n".join(part for part in (_builder(entry)(inputs) for entry in SECTIONS) if part)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{escape(inputs.title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n"
        f"{body}\n</main>\n<footer>Generated by forgeml</footer>\n</body>\n</html>\n"
    )


def write_report(path: str | os.PathLike, inputs: ReportInputs) -> Path:
    """Render and write atomically: a reader never opens a half-written report."""
    path = Path(path)
    atomic_write_text(path, render_report(inputs))
    return path


# ----------------------------------------------------------------------------- sections
def _header(inputs: ReportInputs) -> str:
    facts = [
        ("Task", inputs.task),
        ("Target" if len(inputs.targets) == 1 else "Targets", ", ".join(map(str, inputs.targets))),
        ("Model", inputs.model_description),
        ("Created", inputs.created_at),
    ]
    headline = HEADLINE.get(inputs.task)
    card = ""
    if headline in inputs.metrics:
        card = (f'<div class="headline"><span class="value">{escape(format_value(inputs.metrics[headline]))}</span>'
                f'<span class="label">test {escape(headline)}</span></div>')
    return (f'<header id="summary"><h1>{escape(inputs.title)}</h1>{card}'
            f"<dl>{''.join(f'<dt>{escape(k)}</dt><dd>{escape(v)}</dd>' for k, v in facts)}</dl></header>")


def _metrics_section(inputs: ReportInputs) -> str:
    test = metrics_table_rows(inputs.metrics, inputs.task)
    header = ["Metric", "Test"]
    validation: dict[str, str] = {}
    if inputs.validation_metrics:
        header.append("Validation")
        validation = dict(metrics_table_rows(inputs.validation_metrics, inputs.task))
    rows = [[name, value] + ([validation.get(name, MISSING)] if inputs.validation_metrics else [])
            for name, value in test]
    return section("metrics", "Metrics", table(header, rows, numeric_from=1) if rows else muted("No metrics recorded."))


def _breakdown_section(inputs: ReportInputs) -> str:
    """Per-class scores (classification) or per-target scores (multi-target regression)."""
    if "per_class" in inputs.metrics:
        key, title, first, columns = "per_class", "Per class", "Class", _PER_CLASS_COLUMNS
    elif "per_target" in inputs.metrics:
        key, title, first, columns = "per_target", "Per target", "Target", _PER_TARGET_COLUMNS
    else:
        return ""
    rows = [[name] + [format_value(scores.get(c)) for c in columns] for name, scores in inputs.metrics[key].items()]
    return section(key.replace("_", "-"), title, table([first, *columns], rows, numeric_from=1))


def _plots_section(inputs: ReportInputs) -> str:
    from forgeml.evaluate import plots

    figures: list[tuple[str, Callable[[], bytes]]] = []
    if inputs.history:
        figures.append(("Learning curves", lambda: plots.learning_curves(inputs.history, x_label=inputs.step_name)))
    figures += _TASK_PLOTS.get(inputs.task, lambda _: [])(inputs)
    if inputs.feature_importance:
        figures.append(("Feature importance", lambda: plots.feature_importance(inputs.feature_importance)))
    if not figures:
        return section("plots", "Plots", muted("Nothing to plot for this run."))
    return section("plots", "Plots", '<div class="plots">' + "".join(figure(t, draw) for t, draw in figures) + "</div>")


def _errors_section(inputs: ReportInputs) -> str:
    """The rows the model got most wrong (test split, or the data given to `forgeml evaluate`):
    thumbnails for images, snippets for text."""
    examples = inputs.error_examples
    if not examples:
        return ""
    where = examples.get("where", "test split")  # "evaluated data" for `forgeml evaluate`
    if not examples.get("count"):
        return section("worst-errors", "Worst errors", muted(f"No errors on the {escape(where)}."))
    what = "most confident wrong predictions" if inputs.task != "regression" else "largest errors"
    body = [f"<p>The rows of the {escape(where)} with the {what}, worst first.</p>"]
    for name, entries in examples.get("images", {}).items():
        cards = "".join(
            f'<figure class="thumb">' + (f'<img alt="{escape(e["path"])}" src="{e["src"]}">' if e.get("src") else muted("unreadable"))
            + f'<figcaption>{escape(e["path"])}<br>true <b>{escape(e["true"])}</b>, predicted <b>{escape(e["predicted"])}</b><br>{escape(e["score"])}</figcaption></figure>'
            for e in entries)
        body.append(f"<h3>{escape(name)}</h3><div class=\"thumbs\">{cards}</div>")
    for name, entries in examples.get("texts", {}).items():
        rows = [[e["text"], e["true"], e["predicted"], e["score"]] for e in entries]
        body.append(f"<h3>{escape(name)}</h3>" + table(["Text", "True", "Predicted", "Score"], rows))
    return section("worst-errors", "Worst errors", "".join(body))


def _data_section(inputs: ReportInputs) -> str:
    summary = inputs.data_summary
    if not summary:
        return section("data", "Data", muted("No data summary recorded."))
    facts = f"<p>{escape(format_value(summary.get('rows')))} rows, {escape(format_value(summary.get('columns')))} columns.</p>"
    columns = summary.get("per_column")
    if not isinstance(columns, list):
        return section("data", "Data", facts + _render(summary))
    rows = [
        [c.get("name"), c.get("type"), _missing_text(c), format_value(c.get("distinct")),
         c.get("example") if c.get("example") is not None else MISSING, c.get("note") or ""]
        for c in columns
    ]
    return section("data", "Data", facts + table(["Column", "Type", "Missing", "Distinct", "Example", "Note"], rows))


def _cleaning_section(inputs: ReportInputs) -> str:
    body = _render(inputs.cleaning) if inputs.cleaning else muted("No cleaning report recorded.")
    return section("cleaning", "Cleaning", body)


def _config_section(inputs: ReportInputs) -> str:
    body = f"<pre>{escape(inputs.config_yaml)}</pre>" if inputs.config_yaml else muted("No configuration recorded.")
    return section("config", "Configuration", body)


def _notes_section(inputs: ReportInputs) -> str:
    if not inputs.extra_notes:
        return ""
    return section("notes", "Notes", "<ul>" + "".join(f"<li>{escape(n)}</li>" for n in inputs.extra_notes) + "</ul>")


Section = Callable[[ReportInputs], str]
SECTIONS: tuple[Section | str, ...] = (  # in page order; a str is "module:function"
    _header, _metrics_section, warnings_section, leaderboard_section, tuning_section,
    "forgeml.compress.report_section:compression_section", _breakdown_section, _plots_section,
    "forgeml.explain.report_section:explanations_section", _errors_section, _data_section, _cleaning_section, _config_section,
    _notes_section,
)


def _builder(entry: Section | str) -> Section:
    if callable(entry):
        return entry
    module, _, name = entry.partition(":")
    return getattr(importlib.import_module(module), name)


# ----------------------------------------------------------------------------- plots per task
def _classification_plots(inputs: ReportInputs) -> list[tuple[str, Callable[[], bytes]]]:
    from forgeml.evaluate import plots

    names = _class_names(inputs)
    figures: list[tuple[str, Callable[[], bytes]]] = []
    if inputs.y_true is not None and inputs.y_proba is not None:
        figures.append(("ROC curve", lambda: plots.roc_curves(inputs.y_true, inputs.y_proba, names)))
        figures.append(("Precision-recall curve", lambda: plots.pr_curves(inputs.y_true, inputs.y_proba, names)))
    if inputs.metrics.get("confusion_matrix"):
        figures.append(("Confusion matrix", lambda: plots.confusion_matrix_plot(inputs.metrics["confusion_matrix"], names)))
    return figures


def _regression_plots(inputs: ReportInputs) -> list[tuple[str, Callable[[], bytes]]]:
    from forgeml.evaluate import plots

    if inputs.y_true is None or inputs.y_pred is None:
        return []
    targets = [str(t) for t in inputs.targets]
    return [
        ("Predicted vs actual", lambda: plots.predicted_vs_actual(inputs.y_true, inputs.y_pred, targets)),
        ("Residuals", lambda: plots.residuals(inputs.y_true, inputs.y_pred, targets)),
    ]


_TASK_PLOTS: dict[str, Callable[[ReportInputs], list[tuple[str, Callable[[], bytes]]]]] = {
    "binary": _classification_plots,
    "multiclass": _classification_plots,
    "regression": _regression_plots,
}


def _class_names(inputs: ReportInputs) -> list[str]:
    if inputs.class_names:
        return [str(c) for c in inputs.class_names]
    if inputs.metrics.get("per_class"):
        return list(inputs.metrics["per_class"])
    n = len(inputs.metrics.get("confusion_matrix") or []) or (inputs.y_proba.shape[1] if inputs.y_proba is not None else 0)
    return [str(c) for c in range(n)]


def _missing_text(column: dict) -> str:
    if column.get("missing") is None:
        return MISSING
    pct = column.get("missing_pct")
    return format_value(column["missing"]) + (f" ({pct:.1f}%)" if isinstance(pct, (int, float)) else "")


def _render(value: Any, depth: int = 0) -> str:
    """Any nested dict/list of counts as HTML: dicts become key/value tables, lists of records
    become tables, short scalar lists become text. The cleaning report's shape is not fixed."""
    if depth > _MAX_NESTING:
        return f"<code>{escape(json.dumps(value, ensure_ascii=False, default=str))}</code>"
    if isinstance(value, dict):
        if not value:
            return escape(MISSING)
        rows = "".join(f'<tr><th scope="row">{escape(k)}</th><td>{_render(v, depth + 1)}</td></tr>' for k, v in value.items())
        return f'<table class="kv"><tbody>{rows}</tbody></table>'
    if isinstance(value, (list, tuple)):
        if not value:
            return escape(MISSING)
        if all(isinstance(item, dict) for item in value):
            keys = list(dict.fromkeys(k for item in value for k in item))
            head = "".join(f"<th>{escape(k)}</th>" for k in keys)
            body = "".join(
                "<tr>" + "".join(f"<td>{_render(item.get(k), depth + 1)}</td>" for k in keys) + "</tr>" for item in value
            )
            return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        if all(_is_scalar(item) for item in value):
            return escape(", ".join(format_value(item) for item in value))
        return "<ul>" + "".join(f"<li>{_render(item, depth + 1)}</li>" for item in value) + "</ul>"
    return escape(format_value(value))


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool, np.generic))


# Plain, readable, offline: system fonts (with CJK fallbacks), no url(), no @import.
_CSS = """
:root { --fg: #1f2328; --muted: #656d76; --line: #d0d7de; --bg-alt: #f6f8fa; --accent: #0969da; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: #fff; line-height: 1.5;
  font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Noto Sans",
    "PingFang SC", "Hiragino Sans GB", "Microsoft YaHei", "Noto Sans CJK SC", sans-serif; }
main { max-width: 1080px; margin: 0 auto; padding: 2rem 1.5rem; }
header h1 { margin: 0 0 1rem; font-size: 1.8rem; }
header dl { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; margin: 0; }
header dt { color: var(--muted); } header dd { margin: 0; }
.headline { float: right; text-align: right; padding: .5rem 1rem; border: 1px solid var(--line);
  border-radius: 8px; background: var(--bg-alt); }
.headline .value { display: block; font-size: 2rem; font-weight: 600; color: var(--accent); }
.headline .label { color: var(--muted); font-size: .9rem; }
section { margin-top: 2.5rem; clear: both; }
.thumbs { display: flex; flex-wrap: wrap; gap: 0.75rem; } figure.thumb { width: 11rem; margin: 0; font-size: 0.8rem; } figure.thumb img { width: 96px; image-rendering: pixelated; }
h2 { font-size: 1.3rem; border-bottom: 1px solid var(--line); padding-bottom: .3rem; }
table { border-collapse: collapse; margin: .5rem 0; font-size: .92rem; }
th, td { border: 1px solid var(--line); padding: .3rem .6rem; text-align: left; vertical-align: top; }
thead th { background: var(--bg-alt); }
tbody tr:nth-child(even) { background: #fbfcfd; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
table.kv th { background: var(--bg-alt); font-weight: 500; }
table.kv table { margin: 0; }
.plots { display: flex; flex-wrap: wrap; gap: 1.5rem; }
figure { margin: 0; max-width: 100%; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 6px; }
figcaption { color: var(--muted); font-size: .9rem; text-align: center; }
pre { background: var(--bg-alt); border: 1px solid var(--line); border-radius: 6px; padding: 1rem;
  overflow-x: auto; font-size: .85rem; }
.muted { color: var(--muted); font-style: italic; }
.warn { color: #9a3412; }
footer { text-align: center; color: var(--muted); font-size: .8rem; padding: 2rem 0; }
"""
