"""CatBoost: exact tree contributions from ``get_feature_importance(type="ShapValues")``.

Per row (and class, for several classes) CatBoost gives each column's SHAP value and the expected
value; they sum to the raw formula value. Columns are forgeml's dense columns then one per
category (CatBoost reads codes as categorical features), mapped back to the input features.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from forgeml.explain.base import Attribution, Context, add_columns, code_owners, dense_owners

METHOD = "exact tree contributions (CatBoost ShapValues), relative to the trees' expected value"


def explain(estimator: Any, ctx: Context, arrays: dict[str, np.ndarray]) -> Attribution:
    from forgeml.models.catboost_family import import_catboost

    catboost = import_catboost()
    model = estimator.models[0]  # several single-target models (Huber, Poisson): the first target's
    pool = catboost.Pool(estimator._data(arrays), cat_features=estimator.categorical or None)
    shap = np.asarray(model.get_feature_importance(data=pool, type="ShapValues", thread_count=estimator._threads()), dtype=np.float64)
    if shap.ndim == 2:
        shap = shap[:, None, :]  # [rows, outputs, columns + expected value]
    rows, outputs, width = shap.shape
    if ctx.task.name == "regression" and outputs > 1:
        shap, outputs = shap[:, :1], 1  # MultiRMSE: the first target
    w_out, offset = ctx.output_weights(outputs)
    weighted = np.einsum("roc,ro->rc", shap, w_out)
    values = np.zeros((rows, len(ctx.names)))
    spec = estimator.spec
    add_columns(values, np.concatenate([dense_owners(ctx, spec), code_owners(ctx, spec)]), weighted[:, : width - 1])
    base = weighted[:, width - 1] + offset
    return Attribution(values, base, base + values.sum(axis=1), METHOD)
