"""Rich renderings of runs for ``forgeml runs list | show | compare``.

Only rich and the standard library are imported (yaml lazily, for config diffs): listing runs
must not pay for torch, pandas or matplotlib. History rows are the metrics.jsonl lines the
trainer appends, e.g. ``{"epoch": 3, "train_loss": 0.41, "val_loss": 0.45, "val_accuracy": 0.9}``.
"""
from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from forgeml.evaluate.directions import better
from forgeml.runs.registry import RunRecord, step_name

_STATUS_STYLES: dict[str, str] = {
    "running": "cyan",
    "completed": "green",
    "failed": "red",
    "interrupted": "yellow",
}
# The validation loss picks the best epoch; the others are fallbacks for older or odd histories.
_BEST_EPOCH_KEYS: tuple[str, ...] = ("val_loss", "validation_loss", "valid_loss", "loss", "train_loss")


# ----------------------------------------------------------------------------- list
def render_list(records: Iterable[RunRecord]) -> Table:
    """One row per run: id, name, status, task, model, headline metric, created."""
    rows = [
        (record.id, record.name, _status(record.status), record.task or "-", record.model or "-",
         _headline(record), _when(record.created_at))
        for record in records
    ]
    table = Table(title="runs", title_justify="left", header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
    # Ids are copied into other commands and metrics compared, so those columns keep their full
    # width (rich would otherwise shrink every column); name, task and model give way instead.
    headers = ("id", "name", "status", "task", "model", "metric", "created")
    for position, header in enumerate(headers):
        if header in ("id", "status", "metric", "created"):
            width = max([len(header), *(len(str(row[position])) for row in rows)])
            table.add_column(header, no_wrap=True, min_width=width)
        else:
            table.add_column(header, overflow="ellipsis")
    for row in rows:
        table.add_row(*row)
    if not rows:
        table.caption = "no runs yet: `forgeml train` creates one"
    return table


# ----------------------------------------------------------------------------- show
def render_show(record: RunRecord, history: list[dict[str, Any]]) -> Group:
    """Everything about one run: status, timing, paths, epochs, then every final metric."""
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    epochs = epochs_run(history)
    best = best_epoch(history)
    rows: list[tuple[str, Any]] = [
        ("run", record.id),
        ("name", record.name),
        ("status", _status(record.status)),
        ("task", record.task or "-"),
        ("model", record.model or "-"),
        ("data", record.data_source or "-"),
        ("created", _when(record.created_at)),
        ("finished", _when(record.finished_at)),
        ("duration", _duration(record.created_at, record.finished_at)),
        ("headline", _headline(record)),
        (f"{step_name(record.model)}s run", str(epochs) if epochs else "-"),
        (f"best {step_name(record.model).split()[-1]}", f"{best[0]} ({best[1]} = {_number(best[2])})" if best else "-"),
        ("folder", str(record.dir)),
        ("config", _path(record.config_path)),
        ("bundle", _path(record.bundle_dir)),
        ("log", _path(record.log_path)),
    ]
    for key, value in rows:
        facts.add_row(key, value)

    metrics = Table(title="metrics", title_justify="left", header_style="bold")
    metrics.add_column("metric")
    metrics.add_column("value", justify="right")
    flat = flatten(record.metrics)
    for key, value in flat.items():
        metrics.add_row(key, _number(value))
    if not flat:
        metrics.caption = "no final metrics (the run did not finish)" if record.status != "completed" else "no metrics"
    return Group(facts, Text(""), metrics)


# ----------------------------------------------------------------------------- compare
def render_compare(
    a: RunRecord,
    b: RunRecord,
    history_a: list[dict[str, Any]],
    history_b: list[dict[str, Any]],
) -> Table:
    """Metrics of two runs side by side with the difference (b − a), then the config keys
    whose values differ (read from each run's config.yaml, as flat dotted keys)."""
    table = Table(title=f"{a.id}  vs  {b.id}", title_justify="left", header_style="bold")
    table.add_column("")
    table.add_column(f"a: {a.id}", justify="right")
    table.add_column(f"b: {b.id}", justify="right")
    table.add_column("b − a", justify="right")

    flat_a, flat_b = flatten(a.metrics), flatten(b.metrics)
    for key in _union(flat_a, flat_b):
        left, right = flat_a.get(key), flat_b.get(key)
        table.add_row(key, _number(left), _number(right), _difference(left, right, better(key)))
    best_a, best_b = best_epoch(history_a), best_epoch(history_b)
    steps = list(dict.fromkeys([step_name(a.model), step_name(b.model)]))
    table.add_row(f"{' / '.join(s + 's' for s in steps)} run", str(epochs_run(history_a)), str(epochs_run(history_b)), "")
    table.add_row(
        f"best {' / '.join(s.split()[-1] for s in steps)}",
        str(best_a[0]) if best_a else "-",
        str(best_b[0]) if best_b else "-",
        "",
    )

    config_a, config_b = read_flat_config(a.config_path), read_flat_config(b.config_path)
    changed = [key for key in _union(config_a, config_b) if config_a.get(key, _ABSENT) != config_b.get(key, _ABSENT)]
    if changed:
        table.add_section()
        for key in changed:
            table.add_row(f"config: {key}", _cell(config_a.get(key, _ABSENT)), _cell(config_b.get(key, _ABSENT)), "")
    elif config_a and config_b:
        table.caption = "configs are identical"
    return table


# ----------------------------------------------------------------------------- helpers
class _Absent:
    """A key one side lacks, shown as "-" and never equal to a real value (even None)."""

    def __repr__(self) -> str:
        return "-"


_ABSENT = _Absent()


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts become dotted keys; lists of named dicts (features) are keyed by name,
    so a reordered feature list does not show up as a difference."""
    out: dict[str, Any] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(value, list) and value and all(isinstance(v, dict) and "name" in v for v in value):
        for item in value:
            rest = {k: v for k, v in item.items() if k != "name"}
            out.update(flatten(rest, f"{prefix}[{item['name']}]"))
    elif prefix:
        out[prefix] = value
    return out


def read_flat_config(path: Path) -> dict[str, Any]:
    """A run's config.yaml as dotted keys; {} when it is missing or unreadable."""
    import yaml  # only compare needs it

    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    return flatten(raw) if isinstance(raw, dict) else {}


def epochs_run(history: list[dict[str, Any]]) -> int:
    """Epochs (or boosting rounds) in the history: the distinct epochs, or the last one when
    rows were sampled — LightGBM reports every Nth round, so counting its rows would undercount
    (rows without an epoch, e.g. step rows, do not count)."""
    epochs = {row["epoch"] for row in history if _is_number(row.get("epoch"))}
    return int(max(len(epochs), max(epochs, default=0)))


def best_epoch(history: list[dict[str, Any]]) -> tuple[Any, str, float] | None:
    """``(epoch, metric, value)`` of the lowest validation loss; a row flagged ``"best": true``
    by the trainer wins, because it knows which metric early stopping watched."""
    flagged = [row for row in history if row.get("best") is True and "epoch" in row]
    if flagged:
        row = flagged[-1]
        key = next((k for k in _BEST_EPOCH_KEYS if _is_number(row.get(k))), None)
        return row["epoch"], key or "best", float(row[key]) if key else math.nan
    for key in _BEST_EPOCH_KEYS:
        scored = [row for row in history if "epoch" in row and _is_number(row.get(key))]
        if scored:
            row = min(scored, key=lambda r: r[key])
            return row["epoch"], key, float(row[key])
    return None


def _union(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    return list(dict.fromkeys([*a, *b]))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _number(value: Any) -> str:
    if value is None or value is _ABSENT:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4f}" if value == 0 or 1e-3 <= abs(value) < 1e5 else f"{value:.4g}"
    return _cell(value)


def _difference(left: Any, right: Any, direction: str | None) -> Text | str:
    """b − a, green when b is better, red when worse (lower is better for losses and errors);
    no colour for counts such as ``n``, where neither is."""
    if not (_is_number(left) and _is_number(right)):
        return ""
    delta = float(right) - float(left)
    gain = delta if direction == "max" else -delta if direction == "min" else 0.0
    return Text(f"{delta:+.4f}", style="green" if gain > 0 else "red" if gain < 0 else "")


def _cell(value: Any) -> str:
    text = "-" if value is _ABSENT else "null" if value is None else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _status(status: str) -> Text:
    return Text(status, style=_STATUS_STYLES.get(status, ""))


def _headline(record: RunRecord) -> str:
    if not record.headline_metric or record.headline_value is None:
        return "-"
    return f"{record.headline_metric}={_number(record.headline_value)}"


def _parse(stamp: str | None) -> datetime | None:
    if not stamp:
        return None
    try:
        return datetime.fromisoformat(stamp)
    except ValueError:
        return None


def _when(stamp: str | None) -> str:
    moment = _parse(stamp)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M") if moment else "-"


def _duration(start: str | None, end: str | None) -> str:
    begin, finish = _parse(start), _parse(end)
    if begin is None or finish is None:
        return "-"
    seconds = int((finish - begin).total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h {minutes:02d}m {seconds:02d}s" if hours else f"{minutes}m {seconds:02d}s"


def _path(path: Path) -> str:
    return str(path) if path.exists() else f"{path} (missing)"
