"""Rows of a run's metrics.jsonl as the views, plots and report read them: one row per epoch
(resumed epochs replaced, bagged members averaged), and what a row is called per model family.

Nothing heavy is imported (the model-family registry only when a step is named): ``forgeml runs
list`` must start instantly.
"""
from __future__ import annotations

from typing import Any


def step_name(model: str | None) -> str:
    """What one history row counts, as its model family says (``STEP_NAME``): "epoch" for torch
    models, "boosting round" for LightGBM (whose rows keep the key "epoch", which every curve reads)."""
    from forgeml.models.families import step_name as family_step_name

    return family_step_name(model or "")


def epoch_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per epoch from the rows metrics.jsonl accumulated.

    Two things repeat epochs there: a resumed run re-trains the epochs after its last checkpoint
    (the later row wins), and a bagged model appends every member's rows tagged ``"fold": k``
    (numbers are averaged over the members that reached the epoch; ``folds`` says how many did).
    """
    latest: dict[tuple[Any, Any], dict[str, Any]] = {}
    for position, row in enumerate(rows):
        latest[(row.get("fold"), row.get("epoch", f"#{position}"))] = row
    if not any(fold is not None for fold, _ in latest):
        return list(latest.values())
    by_epoch: dict[Any, list[dict[str, Any]]] = {}
    for (_, epoch), row in latest.items():
        by_epoch.setdefault(epoch, []).append(row)
    merged = []
    for epoch, group in by_epoch.items():
        row: dict[str, Any] = {"epoch": epoch, "folds": len(group)}
        for key in dict.fromkeys(k for member in group for k in member if k not in ("epoch", "fold")):
            values = [m[key] for m in group if isinstance(m.get(key), (int, float)) and not isinstance(m.get(key), bool)]
            if values:
                row[key] = sum(values) / len(values)
        merged.append(row)
    return merged


def epochs_all_members_trained(merged: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``epoch_rows`` output cut where the first bagged member stopped early: a mean over fewer
    members after that would draw steps no model took (curves use this)."""
    members = max((row.get("folds", 1) for row in merged), default=1)
    return [row for row in merged if row.get("folds", 1) == members]
