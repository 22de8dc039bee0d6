"""Permutation importance: how much the held-out loss grows when one input column is shuffled.

Model-agnostic (the MLP and LightGBM get the same measure) and computed on raw columns, so a
category with an embedding or a date cut into seven parts each count as one input.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def _loss(task: Any, y_true: np.ndarray, scores: np.ndarray) -> float:
    if task.is_classification:
        picked = scores[np.arange(len(y_true)), y_true]
        return float(-np.log(np.clip(picked, 1e-12, 1.0)).mean())
    return float(((scores - y_true) ** 2).mean() / max(float(np.var(y_true)), 1e-12))


def permutation_importance(predictor: Any, frame: pd.DataFrame, y_true: np.ndarray, *, seed: int = 0, max_rows: int = 5000) -> dict[str, float]:
    """Loss increase per input column (classification: log-loss; regression: MSE / variance)."""
    rng = np.random.default_rng(seed)
    if len(frame) > max_rows:
        keep = np.sort(rng.choice(len(frame), max_rows, replace=False))
        frame, y_true = frame.iloc[keep].reset_index(drop=True), y_true[keep]
    y_true = np.asarray(y_true)
    if y_true.ndim == 1 and not predictor.task.is_classification:
        y_true = y_true[:, None]
    base = _loss(predictor.task, y_true, predictor.scores(frame))
    importance = {}
    for name in predictor.featureset.input_names:
        shuffled = frame.copy()
        shuffled[name] = frame[name].to_numpy()[rng.permutation(len(frame))]
        importance[name] = max(0.0, _loss(predictor.task, y_true, predictor.scores(shuffled)) - base)
    return importance
