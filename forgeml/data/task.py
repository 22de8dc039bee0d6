"""The task (binary, multiclass or regression) from the target column(s), and the checks that a
target can be learned at all (present, not all missing, not a single value)."""
from __future__ import annotations

import difflib
from typing import Literal

import pandas as pd

from forgeml.data.numbers import _is_numeric, to_numeric
from forgeml.errors import ConfigError, DataError

Task = Literal["binary", "multiclass", "regression"]
MAX_CLASS_VALUES = 20  # an integer target with at most this many values is a class label


def infer_task(df: pd.DataFrame, targets: list[str]) -> Task:
    """Binary, multiclass or regression, from the target column(s).

    Text targets are classes. A numeric target is a class label when it holds whole numbers
    with at most 20 distinct values (digits 0–9, wine 0–2), otherwise regression. Several
    targets must all be numeric (multi-target regression).
    """
    if not targets:
        raise ConfigError("no target column given", hint="set `target:` in the config")
    for target in targets:
        _check_target(df, target)
    if len(targets) > 1:
        text_targets = [target for target in targets if not _is_numeric(df[target])]
        if text_targets:
            raise ConfigError(
                f"several targets are only supported for regression, but {text_targets} are not numeric",
                hint="train one model per class target, or convert the targets to numbers",
            )
        return "regression"
    column = df[targets[0]]
    if not _is_numeric(column):
        return "binary" if column.dropna().nunique() == 2 else "multiclass"
    values = to_numeric(column).dropna()
    distinct = values.nunique()
    if distinct <= MAX_CLASS_VALUES and bool((values == values.round()).all()):
        return "binary" if distinct == 2 else "multiclass"
    return "regression"


def _check_target(df: pd.DataFrame, target: str) -> None:
    where = f"column {target!r}"
    if target not in df.columns:
        close = difflib.get_close_matches(target, [str(name) for name in df.columns], n=3, cutoff=0.5)
        hint = ("did you mean " + " or ".join(repr(name) for name in close) + "?") if close else \
            "columns are: " + ", ".join(repr(str(name)) for name in df.columns[:20])
        raise DataError("target column not found in the data", where=where, hint=hint)
    column = df[target]
    values = to_numeric(column).dropna() if _is_numeric(column) else column.dropna()
    if values.empty:
        raise DataError(f"target {target!r} has no values (all missing)", where=where,
                        hint="choose another target column or fill it in")
    distinct = values.unique()
    if len(distinct) == 1:
        value = distinct[0].item() if hasattr(distinct[0], "item") else distinct[0]  # no np.float64(...) in messages
        raise DataError(f"target {target!r} has a single value {value!r}: nothing to learn", where=where,
                        hint="the target needs at least two different values")

