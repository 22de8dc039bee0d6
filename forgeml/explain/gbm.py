"""LightGBM: exact tree contributions (TreeSHAP, Lundberg et al., 2020) from ``pred_contrib``.

Per row and output, LightGBM gives each of its columns' contribution and the expected value;
together they sum to the raw score (log-odds, per-class score, or regression value in training
units). Columns map back to input features: numbers and date parts through their dense block,
categories one column each, a text column's SVD components summed into it. The baseline here is
the trees' expected value over the training rows, not the neutral row the other methods use:
that is what exact tree contributions are relative to (the JSON's ``method`` says so).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from forgeml.explain.base import Attribution, Context, add_columns

METHOD = "exact tree contributions (LightGBM pred_contrib, TreeSHAP), relative to the trees' expected value"


def column_owners(ctx: Context, estimator: Any) -> np.ndarray:
    """The input feature (index) of each column LightGBM reads."""
    spec = estimator.spec
    names = [name for name, width in spec.dense_groups for _ in range(width)] + [name for name, *_ in spec.codes]
    if estimator.text is not None:
        names += estimator.text.importance_owner()
    return np.asarray([ctx.index(name) for name in names], dtype=np.int64)


def explain(estimator: Any, ctx: Context, arrays: dict[str, np.ndarray]) -> Attribution:
    x = estimator._matrix(arrays)
    rows, columns = x.shape
    booster = estimator.boosters[0]  # regression: the first target's booster
    contrib = np.asarray(booster.predict(x, pred_contrib=True, num_iteration=booster.best_iteration or None), dtype=np.float64)
    outputs = contrib.shape[1] // (columns + 1)
    contrib = contrib.reshape(rows, outputs, columns + 1)  # [rows, outputs, columns + expected value]
    w_out, offset = ctx.output_weights(outputs)
    weighted = np.einsum("roc,ro->rc", contrib, w_out)  # [rows, columns + 1]
    values = np.zeros((rows, len(ctx.names)))
    add_columns(values, column_owners(ctx, estimator), weighted[:, :columns])
    base = weighted[:, columns] + offset
    return Attribution(values, base, base + values.sum(axis=1), METHOD)
