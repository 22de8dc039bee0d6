"""The run dashboard: plain server-rendered HTML on FastAPI, curves as inline SVG.

Pages read the registry (``forgeml.runs``) on every request, so a training that is running shows
its new epochs on reload. Nothing is fetched from the network; the pages work offline.
- ``/``: runs, sortable by any column or metric (``?sort=metric:val_accuracy&order=desc``),
  with check boxes to pick two runs to compare.
- ``/runs/{id}``: facts, learning curves, final metrics, config, link to the report.
- ``/compare?run=A&run=B``: both runs' curves on shared charts, metrics with b − a (b: the newer
  run), config diff.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Query, Request
from fastapi.responses import FileResponse, HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from forgeml.errors import RunError
from forgeml.runs.registry import RunRecord, RunRegistry, epochs_all_members_trained, step_name
from forgeml.runs.views import best_epoch, epochs_run, flatten, read_flat_config
from forgeml.ui.charts import line_chart

# History keys that are bookkeeping, not curves.
NOT_CURVES = {"epoch", "step", "seconds", "best", "folds"}
BASE_COLUMNS = (("id", "run", False), ("name", "name", False), ("status", "status", False), ("task", "task", False),
                ("model", "model", False), ("headline", "headline", True), ("created", "created", False))
MAX_METRIC_COLUMNS = 6


def _fmt(value: Any, signed: bool = False) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if not math.isfinite(value):
            return "-"
        text = f"{value:+.4f}" if signed else (f"{value:.4f}" if value == 0 or 1e-3 <= abs(value) < 1e5 else f"{value:.4g}")
        return text
    return str(value)


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("forgeml.ui", "templates"), autoescape=select_autoescape(["html"]))
    env.filters["fmt"] = _fmt
    return env


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) else None


def curves(history: list[dict[str, Any]]) -> dict[str, list[tuple[float, float]]]:
    """metric → [(epoch, value)] for every numeric key in the epoch rows (``registry.history``;
    a bagged run's: the members' mean, over the epochs all of them trained)."""
    out: dict[str, list[tuple[float, float]]] = {}
    for position, row in enumerate(epochs_all_members_trained(history)):
        x = _number(row.get("epoch"))
        x = x if x is not None else float(position + 1)
        for key, value in row.items():
            y = _number(value)
            if key not in NOT_CURVES and y is not None:
                out.setdefault(key, []).append((x, y))
    return out


def _verdict(key: str, delta: float | None) -> str:
    """CSS class of a b − a cell: "pos" when b is better, "neg" when worse (lower is better for
    losses and errors), "" for counts and unchanged values."""
    from forgeml.evaluate.directions import better

    direction = better(key)
    if not delta or direction is None:
        return ""
    return "pos" if (delta > 0) == (direction == "max") else "neg"


def chart_groups(keys: list[str]) -> list[tuple[str, list[str]]]:
    """Losses share one chart (train vs validation); every other metric gets its own."""
    losses = [k for k in keys if k.endswith("loss")]
    groups = [("loss", losses)] if losses else []
    groups += [(k, [k]) for k in keys if k not in losses]
    return groups


def run_charts(history: list[dict[str, Any]], x_label: str = "epoch") -> list[str]:
    data = curves(history)
    return [line_chart({k: data[k] for k in members}, title=title, metric=title, x_label=x_label) for title, members in chart_groups(list(data))]


def compare_charts(a: RunRecord, b: RunRecord, history_a: list[dict], history_b: list[dict]) -> list[str]:
    data_a, data_b = curves(history_a), curves(history_b)
    keys = list(dict.fromkeys([*data_a, *data_b]))
    return [line_chart({f"a: {key}": data_a.get(key, []), f"b: {key}": data_b.get(key, [])}, title=key, metric=key) for key in keys]


def _metric_keys(records: list[RunRecord]) -> list[str]:
    keys: dict[str, None] = {}
    for record in records:
        for key, value in (record.metrics or {}).items():
            if _number(value) is not None and key != "n":
                keys.setdefault(key)
    return list(keys)[:MAX_METRIC_COLUMNS]


def _cells(record: RunRecord, metric_keys: list[str]) -> dict[str, Any]:
    cells: dict[str, Any] = {
        "id": record.id, "name": record.name, "status": record.status, "task": record.task, "model": record.model,
        "headline": record.headline_value, "created": (record.created_at or "")[:19].replace("T", " "),
    }
    for key in metric_keys:
        cells[f"metric:{key}"] = (record.metrics or {}).get(key)
    return cells


def _sorted(runs: list[dict[str, Any]], key: str, descending: bool) -> list[dict[str, Any]]:
    """Sorted by one column; runs without a value go last whatever the order."""
    present = [r for r in runs if r["cells"].get(key) not in (None, "")]
    absent = [r for r in runs if r["cells"].get(key) in (None, "")]
    present.sort(key=lambda r: (r["cells"][key] if not isinstance(r["cells"][key], str) else r["cells"][key].lower()), reverse=descending)
    return present + absent


def _leaderboard(record: RunRecord) -> tuple[tuple[str, ...], list[list[Any]]] | None:
    """An ensemble run's leaderboard (columns, rows), read from its bundle without loading a model."""
    from forgeml.errors import ForgeError
    from forgeml.models.ensemble import SPEC_FILE
    from forgeml.models.leaderboard import COLUMNS, leaderboard_rows

    if not (record.bundle_dir / SPEC_FILE).is_file():
        return None
    try:
        rows = leaderboard_rows(record.bundle_dir)
    except ForgeError:
        return None
    return COLUMNS, [[row.get(column) for column in COLUMNS] for row in rows]


def _tuning(record: RunRecord) -> dict[str, Any] | None:
    """A run refitted by ``forgeml tune``: its study's counts, best trials and option importance,
    from the run's trials.json (no Optuna, no model loaded)."""
    from forgeml.tune.results import dashboard_view

    return dashboard_view(record.dir / "trials.json")


def create_ui_app(runs_dir: str | Path | None = None) -> FastAPI:
    registry = RunRegistry(runs_dir)
    env = _environment()
    app = FastAPI(title="forgeml runs", docs_url=None, redoc_url=None, openapi_url=None)

    def page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
        return HTMLResponse(env.get_template(name).render(root=str(registry.root), **context), status_code=status)

    def missing(exc: RunError) -> HTMLResponse:
        return page("error.html", 404, title="Run not found", message=str(exc))

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/", response_class=HTMLResponse)
    def run_list(sort: str = "created", order: str = "desc", limit: int = Query(500, ge=1, le=10_000)) -> HTMLResponse:
        order = order if order in ("asc", "desc") else "desc"  # a hand-edited URL still gets a page
        records = registry.list(limit=limit)
        metric_keys = _metric_keys(records)
        runs = [{"id": r.id, "cells": _cells(r, metric_keys), "headline_metric": r.headline_metric or ""} for r in records]
        keys = [key for key, _, _ in BASE_COLUMNS] + [f"metric:{k}" for k in metric_keys]
        if sort not in keys:
            sort = "created"
        runs = _sorted(runs, sort, order == "desc")
        columns = []
        for key, label, numeric in [*BASE_COLUMNS, *((f"metric:{k}", k, True) for k in metric_keys)]:
            # Clicking the sorted column flips it; a metric column starts best-first for "higher is better".
            next_order = ("asc" if order == "desc" else "desc") if key == sort else ("desc" if numeric or key == "created" else "asc")
            arrow = (" ▼" if order == "desc" else " ▲") if key == sort else ""
            columns.append({"key": key, "label": label, "numeric": numeric, "arrow": arrow,
                            "href": "/?" + urlencode({"sort": key, "order": next_order})})
        return page("list.html", runs=runs, columns=columns)

    @app.get("/runs/{run_id}", response_class=HTMLResponse)
    def run_page(run_id: str) -> HTMLResponse:
        try:
            record = registry.get(run_id)
            history = registry.history(record.id)
        except RunError as exc:
            return missing(exc)
        best = best_epoch(history)
        facts = [("name", record.name), ("status", record.status), ("task", record.task or "-"), ("model", record.model or "-"),
                 ("data", record.data_source or "-"), ("created", record.created_at), ("finished", record.finished_at or "-"),
                 (f"{step_name(record.model)}s run", epochs_run(history) or "-"),
                 (f"best {step_name(record.model).split()[-1]}", f"{best[0]} ({best[1]} = {_fmt(best[2])})" if best else "-"),
                 ("headline", f"{record.headline_metric} = {_fmt(record.headline_value)}" if record.headline_metric else "-"),
                 ("folder", str(record.dir))]
        try:
            config = record.config_path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            config = "(config.yaml is missing)"
        metrics = list(flatten(record.metrics or {}).items())
        return page("run.html", run=record, facts=facts, charts=run_charts(history, step_name(record.model)), metrics=metrics, config=config,
                    has_report=(record.bundle_dir / "report.html").is_file(), leaderboard=_leaderboard(record), tuning=_tuning(record))

    @app.get("/runs/{run_id}/report", response_class=HTMLResponse)
    def report(run_id: str) -> Any:
        try:
            record = registry.get(run_id)
        except RunError as exc:
            return missing(exc)
        path = record.bundle_dir / "report.html"
        if not path.is_file():
            return page("error.html", 404, title="No report", message=f"{record.id} has no report.html (the run did not finish)")
        return FileResponse(path, media_type="text/html")

    @app.get("/compare", response_class=HTMLResponse)
    def compare(request: Request, run: list[str] = Query(default_factory=list)) -> HTMLResponse:
        if len(run) != 2:
            return page("error.html", 400, title="Pick two runs", message=f"select exactly two runs to compare ({len(run)} selected)")
        try:
            a, b = sorted((registry.get(run[0]), registry.get(run[1])), key=lambda r: r.created_at)  # a: the older run
            history_a, history_b = registry.history(a.id), registry.history(b.id)
        except RunError as exc:
            return missing(exc)
        flat_a, flat_b = flatten(a.metrics or {}), flatten(b.metrics or {})
        metrics = []
        for key in dict.fromkeys([*flat_a, *flat_b]):
            left, right = flat_a.get(key), flat_b.get(key)
            delta = (_number(right) - _number(left)) if _number(left) is not None and _number(right) is not None else None
            metrics.append((key, left, right, delta, _verdict(key, delta)))
        config_a, config_b = read_flat_config(a.config_path), read_flat_config(b.config_path)
        config_diff = [(key, config_a.get(key, "-"), config_b.get(key, "-")) for key in dict.fromkeys([*config_a, *config_b])
                       if config_a.get(key, "-") != config_b.get(key, "-")]
        return page("compare.html", a=a, b=b, charts=compare_charts(a, b, history_a, history_b), metrics=metrics, config_diff=config_diff)

    return app
