"""The before/after table of a compression: what was gained (size, parameters, latency) and what
it cost (the primary metric on the held-out split).

- metric: the task's headline metric (``evaluate.metrics.HEADLINE``: macro F1, R²) and, for
  classification, accuracy and ROC-AUC beside it, on the split the bundle's own report used
  (test, else validation), re-scored for both models on the same rows;
- size: bytes of the model files the estimator writes (weights, ONNX graph; not the report or
  the JSON that every bundle carries, which compression does not change);
- parameters: elements of every weight tensor (int8 or float alike);
- latency: median wall time of ``estimator.scores`` on the FeatureSet's arrays for 1 row and for
  256 rows (features already computed: what compression changes, without the pandas front end,
  which is the same for both), on the CPU with the process's thread settings.

Stored as ``compression.json`` in the new bundle and rendered in its report.html
(``report_section``).
"""
from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

BATCH = 256
LATENCY_SECONDS = 1.0  # time spent per latency figure (after a warm-up call); at least 3 calls


def model_bytes(estimator: Any) -> int:
    """Size on disk of what ``estimator.save`` writes, measured by writing it to a scratch folder."""
    with tempfile.TemporaryDirectory(prefix="forgeml-size-") as folder:
        estimator.save(Path(folder))
        return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


def parameter_count(estimator: Any) -> int | None:
    """Weight elements of a network estimator (all members of a bag); None for tree models."""
    if hasattr(estimator, "parameter_count"):
        return int(estimator.parameter_count())
    members = getattr(estimator, "members", None) or [estimator]
    if not all(hasattr(member, "model") for member in members):
        return None
    return int(sum(p.numel() for member in members for p in member.model.parameters()))


def latency_ms(estimator: Any, arrays: dict[str, np.ndarray], rows: int, seconds: float | None = None) -> float:
    """Median milliseconds of ``estimator.scores`` on ``rows`` rows (repeated from ``arrays`` when short)."""
    seconds = LATENCY_SECONDS if seconds is None else seconds
    available = len(next(iter(arrays.values())))
    index = np.arange(rows) % max(available, 1)
    batch = {key: value[index] for key, value in arrays.items()}
    estimator.scores(batch)  # warm-up: lazy stacking, session start
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    while len(times) < 3 or (time.perf_counter() < deadline and len(times) < 200):
        start = time.perf_counter()
        estimator.scores(batch)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def measure(pipeline: Any, arrays: dict[str, np.ndarray], evaluation: Any = None) -> dict[str, Any]:
    """One column of the table for ``pipeline`` (``evaluation``: its held-out evaluation, or None)."""
    from forgeml.evaluate.metrics import HEADLINE

    predictor = pipeline.predictor_
    estimator = predictor.estimator
    metrics = evaluation.metrics if evaluation is not None else {}
    headline = HEADLINE.get(predictor.task.name, "r2")
    column = {
        "model": predictor.config.model.type,
        "metric": metrics.get(headline),
        "size_bytes": model_bytes(estimator),
        "parameters": parameter_count(estimator),
        "latency_1_ms": latency_ms(estimator, arrays, 1),
        f"latency_{BATCH}_ms": latency_ms(estimator, arrays, BATCH),
    }
    for extra in ("accuracy", "roc_auc", "rmse"):
        if extra in metrics and extra != headline:
            column[extra] = metrics[extra]
    return column


def build_table(method: str, options: dict[str, Any], before: dict[str, Any], after: dict[str, Any], *,
                metric_name: str, split: str | None, rows: int | None, source_bundle: str) -> dict[str, Any]:
    """The table as stored in compression.json: both columns, the ratios, and what was measured."""
    ratios = {}
    for key in ("size_bytes", "parameters", "latency_1_ms", f"latency_{BATCH}_ms"):
        if before.get(key) and after.get(key):
            ratios[key] = before[key] / after[key]  # >1: smaller / faster after
    delta = None
    if before.get("metric") is not None and after.get("metric") is not None:
        delta = after["metric"] - before["metric"]
    return {"method": method, "options": options, "source_bundle": source_bundle, "metric_name": metric_name,
            "split": split, "rows": rows, "before": before, "after": after, "ratios": ratios, "metric_change": delta,
            "latency": f"median of estimator.scores on precomputed features, 1 and {BATCH} rows, CPU"}


def table_rows(table: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(what, before, after, change) rows, formatted, for the terminal and the report alike."""
    before, after, ratios = table["before"], table["after"], table["ratios"]

    def number(value: Any, fmt: str) -> str:
        return "—" if value is None else format(value, fmt)

    def size(value: Any) -> str:
        return "—" if value is None else f"{value / 1e6:.2f} MB" if value >= 1e5 else f"{value / 1e3:.1f} kB"

    metric = table["metric_name"] + (f" ({table['split']}, {table['rows']} rows)" if table.get("split") else " (no data)")
    change = "—" if table.get("metric_change") is None else f"{table['metric_change']:+.4f}"
    rows = [(metric, number(before.get("metric"), ".4f"), number(after.get("metric"), ".4f"), change)]
    rows.append(("size on disk", size(before.get("size_bytes")), size(after.get("size_bytes")), _ratio(ratios.get("size_bytes"), "smaller")))
    rows.append(("parameters", number(before.get("parameters"), ","), number(after.get("parameters"), ","), _ratio(ratios.get("parameters"), "fewer")))
    rows.append(("latency, 1 row", number(before.get("latency_1_ms"), ".3f") + " ms", number(after.get("latency_1_ms"), ".3f") + " ms",
                 _ratio(ratios.get("latency_1_ms"), "faster")))
    rows.append((f"latency, {BATCH} rows", number(before.get(f"latency_{BATCH}_ms"), ".3f") + " ms",
                 number(after.get(f"latency_{BATCH}_ms"), ".3f") + " ms", _ratio(ratios.get(f"latency_{BATCH}_ms"), "faster")))
    return rows


def _ratio(value: float | None, word: str) -> str:
    if value is None:
        return "—"
    if abs(value - 1) < 0.005:
        return "same"
    return f"{value:.2f}× {word}" if value >= 1 else f"{1 / value:.2f}× {'larger' if word in ('smaller', 'fewer') else 'slower'}"


def print_table(table: dict[str, Any], title: str) -> None:
    from rich.table import Table

    from forgeml.console import console

    view = Table(title=title, show_header=True)
    for name, justify in (("", "left"), ("before", "right"), ("after", "right"), ("change", "right")):
        view.add_column(name, justify=justify)  # type: ignore[arg-type]
    for row in table_rows(table):
        view.add_row(*row)
    console().print(view)
