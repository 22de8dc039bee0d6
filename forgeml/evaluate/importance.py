"""Permutation importance: how much the held-out loss grows when one input column is shuffled.

Model-agnostic (the MLP and LightGBM get the same measure) and computed on raw columns, so a
category with an embedding or a date cut into seven parts each count as one input.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd


def _loss(task: Any, y_true: np.ndarray, scores: np.ndarray) -> float:
    if task.is_classification:
        picked = scores[np.arange(len(y_true)), y_true]
        return float(-np.log(np.clip(picked, 1e-12, 1.0)).mean())
    return float(((scores - y_true) ** 2).mean() / max(float(np.var(y_true)), 1e-12))


FLOOR_ROWS = 50  # below this it is noise: no importance at all (None), rather than overrunning the budget
COST_MARGIN = 1.5  # a smaller batch costs more per row than the first, full one it is timed on


def permutation_importance(predictor: Any, frame: pd.DataFrame, y_true: np.ndarray, *, seed: int = 0, max_rows: int = 5000,
                           seconds: float | None = None) -> dict[str, float] | None:
    """Loss increase per input column (classification: log-loss; regression: MSE / variance).

    ``seconds``: the time it may take. It costs one prediction of the rows per input, which
    for an ensemble of bagged members on a few thousand rows is longer than the budget's margin
    left for it, so the rows are subsampled to fit, as timed on the first prediction; when not
    even ``FLOOR_ROWS`` fit, there is no importance (None) rather than a broken time budget."""
    rng = np.random.default_rng(seed)
    if len(frame) > max_rows:
        keep = np.sort(rng.choice(len(frame), max_rows, replace=False))
        frame, y_true = frame.iloc[keep].reset_index(drop=True), y_true[keep]
    y_true = np.asarray(y_true)
    if y_true.ndim == 1 and not predictor.task.is_classification:
        y_true = y_true[:, None]
    started = time.perf_counter()
    base_scores = predictor.scores(frame)
    per_row = (time.perf_counter() - started) / max(len(frame), 1)
    inputs = max(len(predictor.featureset.input_names), 1)
    affordable = int(seconds / (COST_MARGIN * per_row * inputs)) if seconds is not None and per_row > 0 else len(frame)
    if affordable < min(FLOOR_ROWS, len(frame)):
        return None  # the time budget has no room for it: the report says importance was not computed
    if affordable < len(frame):
        keep = np.sort(rng.choice(len(frame), affordable, replace=False))
        frame, y_true, base_scores = frame.iloc[keep].reset_index(drop=True), y_true[keep], base_scores[keep]
    base = _loss(predictor.task, y_true, base_scores)
    importance = {}
    for name in predictor.featureset.input_names:
        shuffled = frame.copy()
        shuffled[name] = frame[name].to_numpy()[rng.permutation(len(frame))]
        importance[name] = max(0.0, _loss(predictor.task, y_true, predictor.scores(shuffled)) - base)
    return importance


# A leak smell: one input carries nearly all of the model's skill. Legitimate dominant features
# exist (the penguins' culmen length holds 61% of the total, 3.9x the next; among three weak wine
# measurements, alcalinity of ash 78%, 6.5x), so all three must hold.
DOMINANT_SHARE = 0.8  # of the summed importance
DOMINANT_RATIO = 10.0  # times the runner-up's importance
DOMINANT_MIN = 0.05  # loss increase; below this nothing matters much and there is nothing to warn about


def dominance_warning(importance: dict[str, float] | None) -> str | None:
    """A sentence when a single input dominates the permutation importance by a wide margin, else None.

    Why: an id column sorted with the target, a timestamp of when the label was entered or a
    column derived from the target looks to the model like a perfect feature; held-out metrics
    then shine and production predictions do not. forgeml cannot tell a leak from a strong
    feature, so it says what it sees (at least 80% of the summed importance, at least 10× the
    runner-up, among three or more inputs) and leaves the decision to the user.
    """
    if not importance or len(importance) < 3:
        return None
    ranked = sorted(((float(value), str(name)) for name, value in importance.items() if np.isfinite(value)), reverse=True)
    (top, name), (second, runner_up) = ranked[0], ranked[1]
    total = sum(value for value, _ in ranked if value > 0)
    if top < DOMINANT_MIN or top < DOMINANT_SHARE * total or top < DOMINANT_RATIO * second:
        return None
    if second <= 0:
        times = "the other inputs count for nothing"
    else:
        ratio = top / second
        times = f"{'over 100' if ratio > 100 else f'{ratio:.0f}'}× the next input ({runner_up!r})"
    return (f"possible leak: {name!r} holds {top / total:.0%} of the permutation importance ({times}); "
            f"if it numbers the rows, was recorded after the outcome or is derived from the target, "
            f"drop it (data.drop) and train again")


def announce_dominance(importance: dict[str, float] | None, callbacks: list | None) -> str | None:
    """Send ``dominance_warning`` where the ``data:`` lines go (the terminal and train.log), since
    the report is opened later, if at all. Returns the warning (None when there is none)."""
    warning = dominance_warning(importance)
    for callback in callbacks or [] if warning else []:
        if hasattr(callback, "on_data_prepared"):
            callback.on_data_prepared([warning])
    return warning
