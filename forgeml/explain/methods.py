"""The explanation method of each model family: family → "module:function", imported when used.

A family without a line here has no method, and ``explain_estimator`` says so in one line. A
bagged model (k copies of one family, ``models/bagging.py``) is explained fold by fold and the
attributions averaged, as its predictions are.
"""
from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from forgeml.errors import ConfigError
from forgeml.explain.base import Attribution, Context, average

_NETWORK = "forgeml.explain.network:explain"
METHODS: dict[str, str] = {
    "mlp": _NETWORK,
    "cnn": _NETWORK,
    "rnn": _NETWORK,
    "transformer": _NETWORK,
    "pretrained": _NETWORK,
    "gbm": "forgeml.explain.gbm:explain",
    "catboost": "forgeml.explain.catboost:explain",
    "linear": "forgeml.explain.linear:explain",
    "ngram": "forgeml.explain.linear:explain",
    "embed": "forgeml.explain.linear:explain",
    "ensemble": "forgeml.explain.ensemble:explain",
}


def method_for(family: str) -> Any:
    """The function explaining ``family``'s estimators; a one-line error for a family with none."""
    target = METHODS.get(family)
    if target is None:
        raise ConfigError(f"no explanation method for model family {family!r}", where="model.type",
                          hint=f"explanations exist for {', '.join(sorted(METHODS))}; retrain with one of them (--model)")
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def explain_estimator(estimator: Any, family: str, ctx: Context, arrays: dict[str, np.ndarray]) -> Attribution:
    """``family``'s attributions for these rows; a bagged estimator's are its folds' average."""
    from forgeml.models.bagging import BaggedEstimator

    method = method_for(family)
    if isinstance(estimator, BaggedEstimator):
        parts = [(1.0, method(member, ctx, arrays)) for member in estimator.members]
        first = parts[0][1].method
        return average(parts, f"{first}, averaged over {len(parts)} bagged fold models" if len(parts) > 1 else first)
    return method(estimator, ctx, arrays)
