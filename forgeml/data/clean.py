"""Cleaning: the row-level repairs made before features are fitted, and a report of each one.

Every step returns a new frame (the caller's data is never changed in place) and writes what it
did into a ``CleaningReport``, so the run summary can say "dropped 12 exact duplicate rows"
instead of silently changing the data. Column-level work that needs fitted state (filling
missing values, clipping outliers) happens in the feature stage, which records it here too.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Literal

import numpy as np
import pandas as pd

from forgeml.data.repair import repair_cell, repair_text, repair_text_counts  # noqa: F401  (re-exported)
from forgeml.fileio import to_plain
from forgeml.errors import ConfigError

# Cells a target may hold that mean "no value" (compared stripped and lower-cased). "?" is the
# UCI convention; "-" and "0" are left out on purpose: they are real labels in some data sets.


# How each missing-value strategy reads in a sentence ("filled 3 missing values in 'age' with ...").
_FILL_DESCRIPTIONS: dict[str, str] = {
    "mean": "the mean",
    "median": "the median",
    "mode": "the most frequent value",
    "constant": "a constant",
    "indicator": "the median and a was-missing column",
}


# ----------------------------------------------------------------------------- report
@dataclass
class CleaningReport:
    """What cleaning changed, kept as numbers (for ``to_dict``) and sentences (``messages``).

    ``rows_out`` starts equal to ``rows_in`` and every row-dropping step lowers it, so the two
    always reconcile. ``messages`` is the chronological log that ``summary_lines`` prints.
    """

    rows_in: int = 0
    duplicates_dropped: int = 0
    target_missing_dropped: int = 0
    outlier_rows_dropped: int = 0
    rows_out: int | None = None
    missing: dict[str, dict] = field(default_factory=dict)
    outliers: dict[str, dict] = field(default_factory=dict)
    text_repaired: dict[str, int] = field(default_factory=dict)  # cells with broken characters fixed
    text_normalized: dict[str, int] = field(default_factory=dict)  # cells only normalised: width, punctuation, spacing
    not_numbers: dict[str, int] = field(default_factory=dict)  # present values of number columns that do not parse
    messages: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.rows_out is None:
            self.rows_out = self.rows_in

    def _rows_dropped(self, n: int) -> None:
        self.rows_out = int(self.rows_out or 0) - n

    def record_missing(self, column: str, count: int, strategy: str, value: Any) -> None:
        """Called by the feature stage once it knows the fill value learned on train."""
        self.missing[column] = {"count": int(count), "strategy": strategy, "value": to_plain(value)}
        if strategy == "drop_row":
            self.messages.append(f"dropped {_rows(count)} with a missing '{column}'")
            return
        described = _FILL_DESCRIPTIONS.get(strategy, f"the {strategy} value")
        self.messages.append(f"filled {count} missing values in '{column}' with {described} ({_format_value(value)})")

    def record_outliers(
        self,
        column: str,
        method: str,
        low: float,
        high: float,
        *,
        clipped: int | None = None,
        dropped: int | None = None,
        note: str = "",
    ) -> None:
        """Record the limits of ``column`` and how many values were clipped or rows dropped
        (``note``: added inside the message's brackets, e.g. which models read the clipped values)."""
        entry: dict[str, Any] = {"method": method, "low": float(low), "high": float(high)}
        if clipped is not None:
            entry["clipped"] = int(clipped)
            self.messages.append(
                f"clipped {clipped} outlying values of '{column}' to [{_format_value(low)}, {_format_value(high)}] ({method}{note})"
            )
        if dropped is not None:
            entry["dropped"] = int(dropped)
        self.outliers[column] = entry

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: numpy scalars become Python numbers and infinite limits become None."""
        return to_plain(asdict(self))

    def summary_lines(self) -> list[str]:
        """Human sentences for the run summary; the first line reconciles the row counts."""
        head = f"{self.rows_in} rows in, {self.rows_out} rows out"
        return [head, *self.messages]




def _format_value(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.4g}"
    return repr(value) if isinstance(value, str) else str(value)


def _rows(n: int) -> str:
    return f"{n} row" if n == 1 else f"{n} rows"


# ----------------------------------------------------------------------------- rows
def _duplicated_rows(df: pd.DataFrame) -> np.ndarray:
    """Row hashes first (one cheap pass); the exact comparison only where hashes collide.

    ``df.duplicated()`` factorizes every column: seconds and hundreds of MB on a 1M-row table
    that usually has no duplicates at all.
    """
    hashes = pd.util.hash_pandas_object(df, index=False)
    suspects = hashes.duplicated(keep=False).to_numpy()
    duplicated = np.zeros(len(df), dtype=bool)
    if suspects.any():
        duplicated[suspects] = df.loc[suspects].duplicated(keep="first").to_numpy(dtype=bool)
    return duplicated


def drop_duplicates(df: pd.DataFrame, report: CleaningReport, *, natural_kept: bool = False) -> pd.DataFrame:
    """Drop exact duplicate rows (first kept). Done before splitting so no row lands in two splits.

    ``natural_kept`` (``clean.duplicates: auto``): when the columns allow few distinct rows,
    repeats are the data, not copies (``data.repeats``), and stay, with a note."""
    from forgeml.data.repeats import natural_repeats_note, repeats_are_natural

    if natural_kept and repeats_are_natural(df):
        n = int(_duplicated_rows_any(df).sum())
        if n:
            report.messages.append(natural_repeats_note(df, f"{n} repeated {'row' if n == 1 else 'rows'}", " (clean.duplicates: true drops them anyway)"))
        return df
    duplicated = _duplicated_rows_any(df)
    n = int(duplicated.sum())
    report.duplicates_dropped += n
    if n:
        report._rows_dropped(n)
        report.messages.append(f"dropped {n} exact duplicate {'row' if n == 1 else 'rows'}")
    return df.loc[~duplicated].reset_index(drop=True)


def _duplicated_rows_any(df: pd.DataFrame) -> np.ndarray:
    try:
        duplicated = _duplicated_rows(df)
    except TypeError:
        # Unhashable cells (lists or dicts from JSON lines) cannot be hashed; their text can.
        duplicated = df.astype(str).duplicated(keep="first").to_numpy(dtype=bool)
    return duplicated


def _target_missing(column: pd.Series) -> pd.Series:
    """"NA" or "null" is missing in a numeric target, but may be a real class in a text one."""
    from forgeml.data.numbers import looks_numeric, missing_mask

    if looks_numeric(column):
        return missing_mask(column)
    return column.isna() | column.astype("string").str.strip().eq("").fillna(True)


def drop_missing_target(df: pd.DataFrame, targets: list[str], report: CleaningReport) -> pd.DataFrame:
    """Drop rows with no target value: they cannot be learned from nor scored."""
    dropped = np.zeros(len(df), dtype=bool)
    per_target: dict[str, int] = {}
    for target in targets:
        if target not in df.columns:
            continue  # a missing target column is reported by the caller with the column list
        mask = _target_missing(df[target]).to_numpy(dtype=bool)
        per_target[target] = int(mask.sum())
        dropped |= mask
    n = int(dropped.sum())
    report.target_missing_dropped += n
    if n:
        report._rows_dropped(n)
        counted = {name: count for name, count in per_target.items() if count}
        if len(counted) == 1:
            (name,) = counted
            report.messages.append(f"dropped {_rows(n)} with a missing target '{name}'")
        else:
            detail = ", ".join(f"'{name}': {count}" for name, count in counted.items())
            report.messages.append(f"dropped {_rows(n)} with a missing target ({detail})")
    return df.loc[~dropped].reset_index(drop=True)


# ----------------------------------------------------------------------------- text
def repair_text_columns(df: pd.DataFrame, columns: list[str], report: CleaningReport) -> pd.DataFrame:
    """Repair the text and category ``columns`` of ``df`` (a new frame), recording cells changed."""
    out = df.copy()
    for column in columns:
        if column not in out.columns:
            continue
        repaired, broken, normalized = repair_text_counts(out[column])
        if broken or normalized:
            out[column] = repaired
        if broken:
            report.text_repaired[column] = report.text_repaired.get(column, 0) + broken
            report.messages.append(f"repaired broken characters in {broken} {'cell' if broken == 1 else 'cells'} of '{column}'")
        if normalized:
            report.text_normalized[column] = report.text_normalized.get(column, 0) + normalized
            report.messages.append(
                f"normalised full-width punctuation, letters or spacing in {normalized} "
                f"{'cell' if normalized == 1 else 'cells'} of '{column}' (harmless)"
            )
    return out


# ----------------------------------------------------------------------------- numbers
def blank_unparsable_numbers(df: pd.DataFrame, columns: list[str], report: CleaningReport, *, part: str = "",
                             decimals: dict[str, str] | None = None) -> pd.DataFrame:
    """Blank the values of number ``columns`` that are not numbers ("abc", "—"), counted.

    The train split's features read them as missing anyway; blanking them here, before the
    split, makes the validation and test rows read the same way, where the predictor (strict on
    user data) would otherwise refuse them. ``part`` names a separately given file in the message;
    ``decimals`` maps a column to its decimal mark (the feature's ``decimal``, "." if absent).
    """
    from forgeml.data.numbers import unparsable_mask

    out = df
    for column in columns:
        if column not in df.columns:
            continue
        bad = unparsable_mask(df[column], (decimals or {}).get(column, ".")).to_numpy(dtype=bool)
        n = int(bad.sum())
        if not n:
            continue
        if out is df:
            out = df.copy(deep=False)  # the other columns are shared, never written: no copy of the table
        examples = ", ".join(repr(value) for value in pd.unique(df[column].to_numpy()[bad])[:3])
        out[column] = df[column].where(~bad)
        report.not_numbers[column] = report.not_numbers.get(column, 0) + n
        report.messages.append(f"treated {n} {'value' if n == 1 else 'values'} of '{column}'{part} that are not numbers as missing (e.g. {examples})")
    return out


# ----------------------------------------------------------------------------- outliers
OutlierMethod = Literal["zscore", "iqr"]


def _zscore_limits(values: np.ndarray, threshold: float) -> tuple[float, float]:
    std = float(values.std())  # population std (ddof=0): the limits describe this sample
    mean = float(values.mean())
    return mean - threshold * std, mean + threshold * std


def _iqr_limits(values: np.ndarray, threshold: float) -> tuple[float, float]:
    q1, q3 = (float(q) for q in np.percentile(values, [25, 75]))
    spread = q3 - q1
    return q1 - threshold * spread, q3 + threshold * spread


_OUTLIER_METHODS: dict[str, Callable[[np.ndarray, float], tuple[float, float]]] = {
    "zscore": _zscore_limits,
    "iqr": _iqr_limits,
}


def outlier_limits(values: np.ndarray | pd.Series, method: OutlierMethod, threshold: float) -> tuple[float, float]:
    """``(low, high)`` outside which a value is an outlier; NaN and inf are ignored.

    A degenerate spread (constant data, or more than half the values equal for IQR) gives
    ``(-inf, inf)``: with no spread every other value would count as an outlier.
    """
    limits = _OUTLIER_METHODS.get(method)
    if limits is None:
        raise ConfigError(
            f"unknown outlier method {method!r}",
            where="clean.outliers",
            hint=f"use one of: {', '.join(sorted(_OUTLIER_METHODS))} (or 'none')",
        )
    array = np.asarray(values, dtype=np.float64).ravel()
    array = array[np.isfinite(array)]
    if array.size == 0:
        return -math.inf, math.inf
    low, high = limits(array, float(threshold))
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return -math.inf, math.inf
    return low, high


def drop_outlier_rows(
    train_df: pd.DataFrame,
    columns: list[str],
    numeric_values: dict[str, np.ndarray],
    method: OutlierMethod,
    threshold: float,
    report: CleaningReport,
) -> pd.DataFrame:
    """For ``outlier_action="drop"``: drop train rows with any value outside its column's limits.

    ``numeric_values[column]`` holds the parsed numbers of ``column``, row-aligned with
    ``train_df`` (NaN for missing: a missing value is never an outlier). Train only, because
    validation and test must be scored as they come.
    """
    drop = np.zeros(len(train_df), dtype=bool)
    for column in columns:
        values = np.asarray(numeric_values[column], dtype=np.float64)
        if values.shape != (len(train_df),):
            raise ValueError(f"numeric_values[{column!r}] has {values.size} values for {len(train_df)} rows")
        low, high = outlier_limits(values, method, threshold)
        with np.errstate(invalid="ignore"):
            outside = (values < low) | (values > high)
        report.record_outliers(column, method, low, high, dropped=int(outside.sum()))
        drop |= outside
    n = int(drop.sum())
    report.outlier_rows_dropped += n
    if n:
        report._rows_dropped(n)
        detail = ", ".join(
            f"'{column}': {report.outliers[column]['dropped']}" for column in columns if report.outliers[column]["dropped"]
        )
        report.messages.append(f"dropped {_rows(n)} of train with outlying values ({method}, threshold {threshold:g}; {detail})")
    return train_df.loc[~drop].reset_index(drop=True)
