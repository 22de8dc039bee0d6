"""A per-column profile of the input table, for the report's data section and ``runs show``.

Answers the first questions anyone asks of a model: how much data, which columns were used as
what, which were thrown away and why, how much was missing. Plain python types only, so the
summary can be saved as JSON next to the metrics and rendered without pandas.
"""
from __future__ import annotations

from typing import Any

import pandas as pd

# Long free-text cells would swamp the column table; the example only has to be recognisable.
MAX_EXAMPLE_CHARS = 60


def summarize_data(
    df: pd.DataFrame,
    feature_types: dict[str, str],
    dropped: dict[str, str],
    targets: list[str],
) -> dict[str, Any]:
    """Profile ``df``: ``{"rows", "columns", "per_column": [...]}``.

    Each ``per_column`` entry has ``name, type, missing, missing_pct, distinct, example, note``.
    ``type`` is ``"target"`` for targets, ``"dropped"`` for columns in ``dropped`` (``note``
    holds the reason), the feature type from ``feature_types`` otherwise, and ``"unused"`` for
    a column none of them mention. Dropped columns already removed from ``df`` are still listed,
    with their statistics as None, so the reader learns they existed.
    """
    rows = int(len(df))
    per_column = [
        _profile(str(name), df.iloc[:, position], rows, feature_types, dropped, targets)
        for position, name in enumerate(df.columns)
    ]
    present = {entry["name"] for entry in per_column}
    per_column += [
        {"name": str(name), "type": "dropped", "missing": None, "missing_pct": None,
         "distinct": None, "example": None, "note": str(reason)}
        for name, reason in dropped.items()
        if str(name) not in present
    ]
    return {"rows": rows, "columns": int(df.shape[1]), "per_column": per_column}


def _profile(
    name: str,
    column: pd.Series,
    rows: int,
    feature_types: dict[str, str],
    dropped: dict[str, str],
    targets: list[str],
) -> dict[str, Any]:
    kind = _column_type(name, feature_types, dropped, targets)
    missing = int(_missing_mask(column, kind).sum())
    return {
        "name": name,
        "type": kind,
        "missing": missing,
        "missing_pct": round(100.0 * missing / rows, 2) if rows else 0.0,
        "distinct": _distinct(column),
        "example": _example(column),
        "note": str(dropped.get(name, "")),
    }


def _missing_mask(column: pd.Series, kind: str) -> pd.Series:
    """Where "NA"/"null" text means missing (numbers, dates) count it; in categories it is a value."""
    if kind in ("number", "date", "target"):
        from forgeml.data.infer import missing_mask

        return missing_mask(column)
    return column.isna()


def _column_type(name: str, feature_types: dict[str, str], dropped: dict[str, str], targets: list[str]) -> str:
    if name in targets:
        return "target"
    if name in dropped:
        return "dropped"
    return str(feature_types.get(name, "unused"))


def _distinct(column: pd.Series) -> int:
    try:
        return int(column.nunique(dropna=True))
    except TypeError:  # unhashable cells (lists, dicts from JSON input): compare as text
        return int(column.dropna().astype(str).nunique())


def _example(column: pd.Series) -> str | None:
    """The first non-missing value as text: JSON-safe whatever the dtype (dates, decimals)."""
    values = column.dropna()
    if values.empty:
        return None
    text = str(values.iloc[0])
    return text if len(text) <= MAX_EXAMPLE_CHARS else text[: MAX_EXAMPLE_CHARS - 1] + "…"
