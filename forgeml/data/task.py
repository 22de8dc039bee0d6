"""The task (binary, multiclass or regression) from the target column(s), and the checks that a
target can be learned at all (present, not all missing, not a single value)."""
from __future__ import annotations

import difflib
from typing import Literal

import pandas as pd

from forgeml.data.numbers import _is_numeric, decimal_mark, missing_mask, to_numeric
from forgeml.errors import ConfigError, DataError

Task = Literal["binary", "multiclass", "regression"]
MAX_CLASS_VALUES = 20  # an integer target with at most this many values is a class label
# A text target with at least this many distinct values per present value has nearly one row per
# class: no classifier learns from that. When most of it reads as numbers, it is a quantity.
ONE_ROW_PER_CLASS = 0.5
MIN_ROWS_FOR_CLASS_CHECK = 20  # in tiny tables every class has one row; that says nothing
NUMBERS_SHARE_FOR_REGRESSION = 0.8


def infer_task(df: pd.DataFrame, targets: list[str]) -> Task:
    """Binary, multiclass or regression, from the target column(s).

    Numbers stored as text are read by the features' rules (currency signs, units, thousands
    separators, and decimal commas when the column's values show them: "3101,66" is 3101.66).
    Text targets are classes, unless they have nearly one row per class (at least half as many
    distinct values as rows, from 20 rows) and at least 80% of them read as numbers: that is a
    quantity with a few typos, and a classifier with a class per row would learn nothing. A
    numeric target is a class label when it holds whole numbers with at most 20 distinct values
    (digits 0–9, wine 0–2), otherwise regression. Several targets must all be numeric
    (multi-target regression).
    """
    if not targets:
        raise ConfigError("no target column given", hint="set `target:` in the config")
    for target in targets:
        _check_target(df, target)
    if len(targets) > 1:
        text_targets = [target for target in targets if not _is_numeric(df[target], decimal_commas=True)]
        if text_targets:
            raise ConfigError(
                f"several targets are only supported for regression, but {text_targets} are not numeric",
                hint="train one model per class target, or convert the targets to numbers",
            )
        return "regression"
    column = df[targets[0]]
    if not _is_numeric(column, decimal_commas=True):
        if _quantity_with_typos(column):
            return "regression"
        return "binary" if column.dropna().nunique() == 2 else "multiclass"
    values = target_numbers(column).dropna()
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
    values = target_numbers(column).dropna() if _is_numeric(column, decimal_commas=True) else column.dropna()
    if values.empty:
        raise DataError(f"target {target!r} has no values (all missing)", where=where,
                        hint="choose another target column or fill it in")
    distinct = values.unique()
    if len(distinct) == 1:
        value = distinct[0].item() if hasattr(distinct[0], "item") else distinct[0]  # no np.float64(...) in messages
        raise DataError(f"target {target!r} has a single value {value!r}: nothing to learn", where=where,
                        hint="the target needs at least two different values")


def target_numbers(column: pd.Series) -> pd.Series:
    """A target's values as numbers, read in its own decimal mark (NaN where not a number)."""
    return to_numeric(column, decimal_mark(column))


def _quantity_with_typos(column: pd.Series) -> bool:
    """Nearly one row per class, and mostly numbers (see ``infer_task``)."""
    present = column[~missing_mask(column)]
    if len(present) < MIN_ROWS_FOR_CLASS_CHECK or present.nunique() < ONE_ROW_PER_CLASS * len(present):
        return False
    return bool(target_numbers(present).notna().mean() >= NUMBERS_SHARE_FOR_REGRESSION)
