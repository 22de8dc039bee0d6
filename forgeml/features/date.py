"""Date features: parsed once, cut into calendar parts (and cyclic sin/cos), standardised."""
from __future__ import annotations

import datetime
import functools
import logging
import re
from typing import Any

import numpy as np
import pandas as pd

from forgeml.features.base import Feature, FitContext, OutputSpec, register


log = logging.getLogger("forgeml.features")

# periodic parts: (name, period, the ``.dt`` field, its offset so the cycle starts at 0)
_CYCLES = (("month", 12, "month", 1), ("weekday", 7, "day_of_week", 0), ("dayofyear", 366, "day_of_year", 1))


def _cyclic(dates: pd.Series) -> dict[str, np.ndarray]:
    """sin/cos of periodic parts, so December sits next to January (one sin and one cos call for
    all three: on a few rows the per-call cost is the whole cost)."""
    values = np.array([getattr(dates.dt, field).to_numpy(dtype=np.float64) - offset for _, _, field, offset in _CYCLES])
    angles = 2 * np.pi * values / np.array([[period] for _, period, _, _ in _CYCLES], dtype=np.float64)
    sines, cosines = np.sin(angles), np.cos(angles)
    out = {}
    for i, (part, _, _, _) in enumerate(_CYCLES):
        out[f"{part}_sin"], out[f"{part}_cos"] = sines[i], cosines[i]
    return out


PART_EXTRACTORS = {
    "year": lambda d: {"year": d.dt.year.to_numpy(dtype=np.float64)},
    "month": lambda d: {"month": d.dt.month.to_numpy(dtype=np.float64)},
    "day": lambda d: {"day": d.dt.day.to_numpy(dtype=np.float64)},
    "weekday": lambda d: {"weekday": d.dt.day_of_week.to_numpy(dtype=np.float64)},
    "dayofyear": lambda d: {"dayofyear": d.dt.day_of_year.to_numpy(dtype=np.float64)},
    "hour": lambda d: {"hour": d.dt.hour.to_numpy(dtype=np.float64)},
    "cyclic": _cyclic,
}


@register
class DateFeature(Feature):
    type_name = "date"

    def parse(self, column: pd.Series) -> pd.Series:
        from forgeml.data.dates import to_datetime

        fmt = self.state.get("format", self.config.format) if self.state else self.config.format
        return to_datetime(column, fmt)

    def missing_mask(self, column: pd.Series) -> np.ndarray:
        return self.parse(column).isna().to_numpy()

    def _parts(self, dates: pd.Series) -> dict[str, np.ndarray]:
        parts: dict[str, np.ndarray] = {}
        for name in self.config.parts:
            parts.update(PART_EXTRACTORS[name](dates))
        return parts

    def fit(self, column: pd.Series, context: FitContext) -> None:
        from forgeml.data.dates import guess_date_format

        fmt = self.config.format or guess_date_format(column)
        self.state = {"format": fmt}
        dates = self.parse(column)
        valid = dates.dropna()
        fill = valid.median() if len(valid) else pd.Timestamp("2000-01-01")
        if self.config.missing == "constant" and self.config.fill_value:
            fill = pd.Timestamp(self.config.fill_value)
        n_missing = int(dates.isna().sum())
        if n_missing:
            context.report.record_missing(self.name, n_missing, self.config.missing, str(fill))
        parts = self._parts(_filled(dates, fill))
        self.state.update(
            fill=fill.isoformat(),
            parts=list(parts),
            mean=[float(v.mean()) for v in parts.values()],
            std=[float(v.std()) if v.std() > 1e-12 else 1.0 for v in parts.values()],
        )

    def transform(self, column: pd.Series, *, strict: bool = False) -> np.ndarray:
        parsed = self.parse(column)
        if strict:
            from forgeml.data.numbers import missing_mask

            junk = parsed.isna().to_numpy() & ~missing_mask(column).to_numpy(dtype=bool)
            if junk.any():
                self._warn_junk(column[junk].tolist())
        dates = _filled(parsed, pd.Timestamp(self.state["fill"]))
        return self._standardize(self._parts(dates))

    def _warn_junk(self, values: list[Any]) -> None:
        """Values that are not dates are filled like missing ones (a prediction for every row), and
        said so: a wrong column or format would otherwise go unnoticed."""
        examples = ", ".join(repr(value) for value in list(dict.fromkeys(values))[:3])
        log.warning("%d value(s) of %r are not dates (e.g. %s): filled with %s, as missing dates are",
                    len(values), self.name, examples, self.state["fill"])

    def transform_small(self, column: pd.Series) -> np.ndarray | None:
        """Same parsing; calendar fields read from each Timestamp instead of ~10 ``.dt`` accessor
        calls, which dominate the cost for a handful of rows. ISO dates skip pandas altogether."""
        values = column.tolist()
        fast = self.transform_values(values)
        if fast is not None:
            return fast
        parsed = _small_parse(values, self.state.get("format", self.config.format))
        stamps = (self.parse(column) if parsed is None else parsed).tolist()
        if parsed is not None and pd.NaT in stamps:
            from forgeml.data.numbers import NA_TOKENS

            junk = [value for value, date in zip(values, stamps)
                    if date is pd.NaT and isinstance(value, str) and value.strip() not in NA_TOKENS]
            if junk:
                self._warn_junk(junk)
        return self._rows_of([self._fill_fields() if date is pd.NaT else tuple(getattr(date, attribute) for attribute in _FIELDS.values())
                              for date in stamps])

    def transform_values(self, values: list[Any]) -> np.ndarray | None:
        """Text (or missing) values: calendar fields cached per text — read with ``datetime`` for
        the ISO formats, else from pandas' own parse of that one text (``parsed_fields``), since
        a server sees the same dates again and again; None for non-text values or an ISO text
        that pandas must decide (``iso_fields``)."""
        from forgeml.data.numbers import NA_TOKENS

        fmt = self.state.get("format", self.config.format)
        if fmt is None:
            return None  # pandas guesses a format from the whole column: not a per-value parse
        read_fields = functools.partial(iso_fields, fmt) if fmt in ISO_PATTERNS else functools.partial(parsed_fields, fmt)
        rows, junk = [], []
        for value in values:
            if value is None or (isinstance(value, float) and value != value):
                rows.append(self._fill_fields())
            elif isinstance(value, str):
                text = value.strip()
                fields = self._fill_fields() if text in NA_TOKENS else read_fields(text)
                if fields is None:
                    return None
                if fields is NOT_A_DATE:
                    junk.append(value)
                    fields = self._fill_fields()
                rows.append(fields)
            else:
                return None
        if junk:
            self._warn_junk(junk)
        return self._rows_of(rows)

    def _rows_of(self, rows: list[tuple[int, ...]]) -> np.ndarray:
        """The standardised parts of each row's calendar fields. Each distinct fields tuple is
        computed once per fit and kept (up to ``_ROW_CACHE`` of them): a server sees the same dates
        again and again, and the parts' dozen numpy calls cost more than the rest of the row."""
        cache = self.__dict__.get("_row_cache")
        if cache is None or cache[0] is not self.state["mean"] or len(cache[1]) > _ROW_CACHE:
            cache = self._row_cache = (self.state["mean"], {})
        vectors = cache[1]
        new = [fields for fields in dict.fromkeys(rows) if fields not in vectors]
        if new:
            columns = np.array(new, dtype=np.float64).reshape(len(new), len(_FIELDS))
            computed = self._standardize(self._parts(_FieldView({name: columns[:, i] for i, name in enumerate(_FIELDS)})))
            vectors.update(zip(new, computed))
        return np.array([vectors[fields] for fields in rows], dtype=np.float32).reshape(len(rows), len(self.state["parts"]))

    def _fill_fields(self) -> tuple[int, ...]:
        cached = self.__dict__.get("_fill_cache")
        if cached is None or cached[0] != self.state["fill"]:
            stamp = pd.Timestamp(self.state["fill"])
            cached = self._fill_cache = (self.state["fill"], tuple(getattr(stamp, attribute) for attribute in _FIELDS.values()))
        return cached[1]

    def _standardize(self, parts: dict[str, np.ndarray]) -> np.ndarray:
        cached = self.__dict__.get("_moments")
        if cached is None or cached[0] is not self.state["mean"]:  # the fitted mean and std as arrays, once per fit
            cached = self._moments = (self.state["mean"], np.asarray(self.state["mean"]), np.asarray(self.state["std"]))
        matrix = np.array([parts[name] for name in self.state["parts"]], dtype=np.float64).T  # np.stack's checks cost more, on a few rows
        return ((matrix - cached[1]) / cached[2]).astype(np.float32)

    def output_spec(self) -> OutputSpec:
        columns = tuple(f"{self.name}.{p}" for p in self.state["parts"])
        return OutputSpec("dense", width=len(columns), columns=columns)


def _small_parse(values: list[Any], fmt: str | None) -> pd.Series | None:
    """``infer.to_datetime`` for a few text values: strip and NA tokens in plain Python, then the
    same ``parse_dates`` call; None (use ``parse``) for non-text values or no known format."""
    from forgeml.data.dates import parse_dates
    from forgeml.data.numbers import NA_TOKENS

    if fmt is None:
        return None
    texts: list[str | None] = []
    for value in values:
        if value is None or (isinstance(value, float) and value != value):
            texts.append(None)
        elif isinstance(value, str):
            value = value.strip()
            texts.append(None if value in NA_TOKENS else value)
        else:
            return None
    return parse_dates(pd.Series(texts, dtype=object), fmt)


# ISO formats the fast path reads with ``datetime`` instead of pandas: the format's own fields,
# ASCII digits only ("\\d" would take other scripts' digits), the whole text matched.
_DATE = r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
ISO_PATTERNS = {
    "%Y-%m-%d": re.compile(_DATE),
    "%Y-%m-%d %H:%M:%S": re.compile(_DATE + r" ([0-9]{2}):([0-9]{2}):([0-9]{2})"),
    "%Y-%m-%dT%H:%M:%S": re.compile(_DATE + r"T([0-9]{2}):([0-9]{2}):([0-9]{2})"),
    "%Y-%m-%d %H:%M": re.compile(_DATE + r" ([0-9]{2}):([0-9]{2})"),
}
# pandas' Timestamp range at nanosecond resolution is 1677-09-21 … 2262-04-11; years at its
# edges (and beyond, where the two libraries could differ) are left to pandas.
_YEARS = range(1678, 2262)


@functools.lru_cache(maxsize=4096)
def iso_fields(fmt: str, text: str) -> tuple[int, ...] | None:
    """(year, month, day, weekday, day of year, hour) of ``text`` in ISO ``fmt``; None if it does
    not match, is outside ``_YEARS`` or is not a real date (2021-02-30): pandas decides those."""
    match = ISO_PATTERNS[fmt].fullmatch(text)
    if match is None:
        return None
    parts = [int(group) for group in match.groups()]
    if parts[0] not in _YEARS:
        return None
    try:
        moment = datetime.datetime(*parts)
    except ValueError:
        return None
    return (moment.year, moment.month, moment.day, moment.weekday(), moment.timetuple().tm_yday, moment.hour)


_ROW_CACHE = 4096  # distinct dates whose standardised parts a fitted date feature keeps
NOT_A_DATE = ()  # ``parsed_fields`` of a text pandas reads as NaT: the row takes the fitted fill


@functools.lru_cache(maxsize=4096)
def parsed_fields(fmt: str | None, text: str) -> tuple[int, ...]:
    """The calendar fields of one text as the pandas path parses it (``infer.to_datetime`` with
    the fitted format), or ``NOT_A_DATE``. Parsing is per value, so one text alone gives what
    it gives inside a column; the cache makes a repeated date cost a dictionary look-up."""
    from forgeml.data.dates import to_datetime

    moment = to_datetime(pd.Series([text], dtype=object), fmt).iloc[0]
    if moment is pd.NaT:
        return NOT_A_DATE
    return tuple(getattr(moment, attribute) for attribute in _FIELDS.values())


# Calendar fields by their pandas ``.dt`` names → Timestamp attribute, for ``transform_small``.
_FIELDS = {"year": "year", "month": "month", "day": "day", "day_of_week": "day_of_week", "day_of_year": "day_of_year", "hour": "hour"}


class _FieldView:
    """Quacks like ``series.dt`` over precomputed arrays, so PART_EXTRACTORS serve both paths."""

    def __init__(self, fields: dict[str, np.ndarray]):
        self.dt = self
        self._fields = fields

    def __getattr__(self, name: str) -> "_Values":
        if name.startswith("_"):
            raise AttributeError(name)
        return _Values(self._fields[name])


class _Values(np.ndarray):
    """An array with pandas' ``to_numpy(dtype=...)`` spelling."""

    def __new__(cls, values: np.ndarray) -> "_Values":
        return np.asarray(values).view(cls)

    def to_numpy(self, dtype: Any = None) -> np.ndarray:
        return np.asarray(self, dtype=dtype)


def _filled(dates: pd.Series, fill: pd.Timestamp) -> pd.Series:
    """``dates.fillna(fill)`` without pandas' lossy-fill path: a column parsed at second or
    millisecond resolution (pandas does that for "%H:%M:%S" formats) is widened to microseconds
    first, so a fill with a fractional second is kept exactly, as pandas' own upcast kept it."""
    if isinstance(dates.dtype, np.dtype) and dates.dtype.kind == "M" and np.datetime_data(dates.dtype)[0] in ("s", "ms"):
        dates = dates.astype("datetime64[us]")
        fill = fill.as_unit("us") if fill.unit in ("s", "ms") else fill
    return dates.fillna(fill)
