"""Missing values that say something, decided on the train split only.

In real tables a blank is often an answer: a house-price table's ``Alley`` is empty where there
is no alley, a lab value is empty where the test was not ordered because the patient looked
well. Filling such a blank with the median or the mode erases the answer. The rule here:

- a number or binary feature gets a was-missing indicator (a binary one thereby gets missing as
  a third level) when, **on the train split**, at least ``MIN_MISSING_ROWS`` rows and at least
  ``MIN_MISSING_SHARE`` of them are missing and the target is distributed differently on those
  rows than on the rest: a chi-square test of independence for classes, Welch's t-test for a
  regression target (the first one, when there are several), at p < ``P_VALUE``. Features with
  a strategy chosen in the config (anything but the default) are left as configured;
- category features already keep missing as their own level (``missing: constant``), and a
  two-valued column that is mostly missing is inferred as a category, not a binary
  (``forgeml.data.infer``): two values and a blank are three answers.

The validation and test rows never take part, so the held-out metrics are not flattered by the
choice. scipy is imported only when a feature has enough missing rows to test.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_MISSING_ROWS = 10  # fewer missing rows than this cannot show a difference worth a column
MIN_MISSING_SHARE = 0.02  # of the train rows
P_VALUE = 0.01  # strict: several features are tested, and a needless indicator costs little but noise


@dataclass(frozen=True)
class TrainTarget:
    """The train split's target as the features see it while fitting: class codes or numbers."""

    values: np.ndarray  # (rows,) int64 class codes, or float64 values of the first target
    is_class: bool


def informative_missing(missing: np.ndarray, target: TrainTarget | None) -> float | None:
    """The test's p-value when ``missing`` (a train-split mask) tells something about the target
    (p < ``P_VALUE``), else None. None too without a target or with too few missing (or present) rows."""
    if target is None or len(target.values) != len(missing):
        return None
    missing = np.asarray(missing, dtype=bool)
    count = int(missing.sum())
    if count < max(MIN_MISSING_ROWS, MIN_MISSING_SHARE * len(missing)) or len(missing) - count < MIN_MISSING_ROWS:
        return None
    from scipy import stats

    if target.is_class:
        codes = np.asarray(target.values, dtype=np.int64)
        classes = np.unique(codes)
        if len(classes) < 2:
            return None
        table = np.stack([np.bincount(np.searchsorted(classes, codes[rows]), minlength=len(classes))
                          for rows in (missing, ~missing)])
        table = table[:, table.sum(axis=0) > 0]
        p_value = float(stats.chi2_contingency(table)[1])
    else:
        values = np.asarray(target.values, dtype=np.float64)
        inside, outside = values[missing], values[~missing]
        if np.ptp(values) == 0:
            return None
        p_value = float(stats.ttest_ind(inside, outside, equal_var=False).pvalue)
    return p_value if np.isfinite(p_value) and p_value < P_VALUE else None


def indicator_note(name: str, count: int, p_value: float) -> str:
    """The cleaning line that says why a feature got a was-missing column."""
    return (f"'{name}' is missing in {count} train rows whose target differs from the rest (p={p_value:.1g}): "
            "a was-missing indicator keeps that information")
