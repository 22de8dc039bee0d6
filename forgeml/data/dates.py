"""Dates stored as text: the format a column is written in, and parsing every spelling it mixes.

Only formats with a year and a month count, so plain numbers ("2007", "12") are never dates;
NA tokens (``forgeml.data.numbers.NA_TOKENS``) are missing here as in number columns.
"""
from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd

from forgeml.data.numbers import NA_TOKENS, _text

DATE_SHARE = 0.90
_DATE_FORMATS = (  # tried in this order; on a tie the earlier wins (ISO, then US month-first)
    "%Y-%m-%d", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S.%f",
    "%Y/%m/%d", "%Y/%m/%d %H:%M:%S", "%m/%d/%Y", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M",
    "%d/%m/%Y", "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%m/%d/%y", "%d/%m/%y", "%d.%m.%Y",
    "%d.%m.%Y %H:%M", "%d-%m-%Y", "%d-%b-%Y", "%d %b %Y", "%d %B %Y", "%b %d, %Y", "%B %d, %Y",
    "%Y年%m月%d日", "%Y年%m月%d日 %H:%M", "%Y.%m.%d",
)


def guess_date_format(series: pd.Series) -> str | None:
    """The strftime format that parses most of a sample of the values (≥ 90%), or None.

    Only formats with a year and a month qualify, so plain numbers ("2007", "12") are not dates.
    """
    if pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_datetime64_any_dtype(series.dtype):
        return None
    text = _text(series)
    values = text[~text.isna() & ~text.isin(NA_TOKENS)].drop_duplicates()
    if values.empty:
        return None
    sample = values.sample(min(len(values), 200), random_state=0)
    if sample.str.contains(r"\d", regex=True).mean() < DATE_SHARE:
        return None  # every date format has digits; saves trying them all on category columns
    candidates = list(_DATE_FORMATS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pandas.tseries.api import guess_datetime_format

        for value in sample.head(5):
            guessed = guess_datetime_format(value)
            if guessed and guessed not in candidates:
                candidates.append(guessed)
    best, best_share = None, 0.0
    head_best, head_share = None, 0.0
    for fmt in candidates:
        if "%Y" not in fmt and "%y" not in fmt or not re.search(r"%[mbB]", fmt):
            continue
        share = _parse_as(sample.head(20), fmt).notna().mean()
        if share > head_share:
            head_best, head_share = fmt, share
        if share < 0.5:
            continue  # cheap rejection before parsing the whole sample
        share = _parse_as(sample, fmt).notna().mean()
        if share > best_share:
            best, best_share = fmt, share
    if best_share >= DATE_SHARE:
        return best
    # Spellings mixed in one column (2021-03-04, 2021/3/4, 2021年3月4日): dates if nearly every value
    # reads in one of them, with the most common spelling parsed first.
    primary = best or head_best
    if primary is not None and parse_dates(sample, primary).notna().mean() >= DATE_SHARE:
        return primary
    return None


def to_datetime(series: pd.Series, fmt: str | None = None) -> pd.Series:
    """Parse dates with ``fmt`` (guessed when None); NA tokens and unparsable values become NaT.

    Time-zone-aware values are converted to UTC and made naive, so every row is comparable.
    """
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return _naive(series)
    if pd.api.types.is_numeric_dtype(series.dtype):  # e.g. 20240305 stored as an integer
        whole = bool((series.dropna() % 1 == 0).all())
        series = (series.astype("Int64") if whole else series).astype("str")
    text = _text(series)
    text = text.where(~text.isin(NA_TOKENS))
    fmt = fmt or guess_date_format(text)
    if fmt is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _naive(pd.to_datetime(text, errors="coerce", format="mixed", utc=True))
    return parse_dates(text, fmt)


def parse_dates(text: pd.Series, fmt: str) -> pd.Series:
    """Dates in ``text`` (stripped strings, None where missing): ``fmt`` first, in one vectorised
    pass, then each value it could not read in any other known spelling (``other_spellings``).

    A column often mixes spellings (2021-03-04, 2021/3/4, 2021年3月4日, 04.03.2021, ISO times);
    pandas' one format would make all but one of them NaT. Training and the predictor's few-rows
    path (``features.date``) both parse through here, so they read every value the same way.
    """
    dates = _parse_as(text, fmt)
    missed = (dates.isna() & text.notna()).to_numpy(dtype=bool)
    if not missed.any() or not isinstance(dates.dtype, np.dtype):
        return dates
    values = text.to_numpy(dtype=object)[missed]
    found = other_spellings(pd.unique(values).tolist(), skip=fmt)
    if found:
        unit = np.datetime_data(dates.dtype)[0]
        stamps = pd.DatetimeIndex([found.get(value, pd.NaT) for value in values]).as_unit(unit)
        dates = dates.copy()
        dates.iloc[np.flatnonzero(missed)] = stamps.to_numpy()
    return dates


_ISO_START = re.compile(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}")


def other_spellings(values: list, skip: str | None = None) -> dict[str, pd.Timestamp]:
    """``{value: date}`` for the values one of the known spellings reads: ISO 8601 for year-first
    values with dashes (times, fractions and offsets included), then ``_DATE_FORMATS`` in order
    (US month-first before day-first, as ``guess_date_format`` breaks ties). Values without a
    digit are never dates and are not tried."""
    todo = [value for value in values if isinstance(value, str) and any(char.isdigit() for char in value)]
    found: dict[str, pd.Timestamp] = {}
    iso = [value for value in todo if _ISO_START.match(value)]
    if iso:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = _naive(pd.to_datetime(pd.Series(iso, dtype=object), format="ISO8601", errors="coerce", utc=True))
        found.update((value, date) for value, date in zip(iso, parsed) if date is not pd.NaT)
    for fmt in _DATE_FORMATS:
        todo = [value for value in todo if value not in found]
        if not todo:
            break
        if fmt != skip:
            found.update((value, date) for value, date in zip(todo, _parse_as(pd.Series(todo, dtype=object), fmt))
                         if date is not pd.NaT)
    return found


def _parse_as(text: pd.Series, fmt: str) -> pd.Series:
    """``text`` parsed with ``fmt`` alone; NaT where it does not fit."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _naive(pd.to_datetime(text, format=fmt, errors="coerce", utc="%z" in fmt))


def _naive(values: pd.Series) -> pd.Series:
    if getattr(values.dt, "tz", None) is not None:
        return values.dt.tz_convert("UTC").dt.tz_localize(None)
    return values

