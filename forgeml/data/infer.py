"""Decide what each column is (number, category, binary, date, text, or unusable) and the task.

The rules are written for people reading the resolved config: every feature carries a ``note``
saying why it got its type, and every dropped column a reason. Decisions are made on a seeded
sample (fast on a million rows); counts shown to the user (missing, distinct, unparsable) are
exact.

Numbers and dates stored as text are parsed here, not at load time, because only here is it
known whether "NA" in a column means missing (a number column) or is a real category.
"""
from __future__ import annotations

import difflib
import re
import warnings
from typing import Callable, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from forgeml.config import BinaryFeature, CategoryFeature, DateFeature, ImageFeature, NumberFeature, TextFeature
from forgeml.errors import ConfigError, DataError

Task = Literal["binary", "multiclass", "regression"]
Feature = NumberFeature | CategoryFeature | BinaryFeature | DateFeature | TextFeature | ImageFeature

# Cells that mean "no value" in a number or date column (compared stripped). In category and text
# columns they stay values: "None" may be a real answer and 无 ("none") a real remark.
NA_TOKENS: frozenset[str] = frozenset(
    {"", "NA", "N/A", "n/a", "NaN", "nan", "null", "NULL", "None", "none", "-", "--", "?", "#N/A", "\\N"}
    # "\N" is how MySQL and Hive dumps write NULL; Chinese spreadsheets write "not available",
    # "none", "empty", "missing" and "unknown" as:
    | {"暂无", "无", "空", "缺失", "未知"}
)
SAMPLE_ROWS = 10_000
NUMBER_SHARE = 0.95  # share of a text column's values that must parse for it to be a number
DATE_SHARE = 0.90
MAX_CLASS_VALUES = 20  # an integer target with at most this many values is a class label
MIN_ROWS_FOR_ID = 20  # in tiny tables every value is unique; that says nothing
ID_NAME_TOKENS = {"id", "uuid", "guid", "key", "编号", "序号"}

# Number cleaning runs in pyarrow (RE2: no look-arounds), fast on a million rows.
_PLAIN_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_GROUP_MARKS = ",' \u00a0\u202f"  # 1,234 / 1'234 / 1 234 (also no-break and narrow spaces)
_GROUPED_NUMBER = rf"^[+-]?\d{{1,3}}([{_GROUP_MARKS}]\d{{3}})+(\.\d*)?$"  # strict: "1,5" is not 15
# Decimal commas (German, French, Spanish... "1.234,56", "12,50 €", "3,5"): dots, apostrophes and
# spaces group thousands; a comma is the decimal mark. Used only in columns inferred that way.
_COMMA_GROUP_MARKS = ".' \u00a0\u202f"
_COMMA_DECIMAL_NUMBER = rf"^[+-]?(\d{{1,3}}([{_COMMA_GROUP_MARKS}]\d{{3}})+|\d+)?(,\d*)?$"
# What proves a column's decimal mark (searched in each value). A comma before 1-2 or 4+ digits
# ("3,5", "12,50 €", "3,1416") or after a dot-grouped thousand ("1.234,5") is a decimal comma; a
# dot before 1-2 or 4+ digits ("3.5") or after a comma-grouped thousand ("1,234.5"), or two
# comma groups ("1,234,567"), is a decimal point. "1.200" and "1,200" prove nothing.
_COMMA_DECIMAL_SIGN = r"\d,(\d{1,2}|\d{4,})(\D|$)|\d\.\d{3},\d"
_POINT_DECIMAL_SIGN = r"\d\.(\d{1,2}|\d{4,})(\D|$)|\d,\d{3}\.\d|\d,\d{3},\d"
DECIMAL_COMMA_SHARE = 0.05  # of the values holding a comma, at least this share must prove decimal commas
# Full-width digits and marks from Chinese and Japanese input methods ("１２００", "３．５", "－５"):
# U+FF01-U+FF3F, whose UTF-8 encodings all begin with these two bytes.
_FULL_WIDTH_UTF8 = b"\xef\xbc"
_CURRENCY = "$€£¥₹￥"  # ￥: the full-width yen/yuan sign of Chinese and Japanese input methods
_CLEANUPS = (  # (characters that trigger it, RE2 pattern, replacement), applied in order
    ("(", r"^\((.*)\)$", r"-\1"),  # accounting negatives: (1,234)
    (_CURRENCY, rf"^([+-]?)\s*[{_CURRENCY}]\s*", r"\1"),  # a leading currency sign
    (_CURRENCY + "元円", rf"\s*[{_CURRENCY}元円]$", ""),  # a trailing one: 12 €, 1200元 (yuan), 500円 (yen)
    ("%", r"\s*%$", ""),  # a trailing percent sign
)
# Chinese and Japanese magnitudes after a number: 3.5万 is 35,000, 2亿 is 200,000,000 (also 3.5万元).
# Written as a decimal exponent, so "3.5万" parses as "3.5e4": exact, with no float multiplication.
_MAGNITUDES = {"千": "e3", "万": "e4", "萬": "e4", "亿": "e8", "億": "e8"}
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")
_DATE_FORMATS = (  # tried in this order; on a tie the earlier wins (ISO, then US month-first)
    "%Y-%m-%d", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S.%f",
    "%Y/%m/%d", "%Y/%m/%d %H:%M:%S", "%m/%d/%Y", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M",
    "%d/%m/%Y", "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%m/%d/%y", "%d/%m/%y", "%d.%m.%Y",
    "%d.%m.%Y %H:%M", "%d-%m-%Y", "%d-%b-%Y", "%d %b %Y", "%d %B %Y", "%b %d, %Y", "%B %d, %Y",
    "%Y年%m月%d日", "%Y年%m月%d日 %H:%M", "%Y.%m.%d",
)


# ----------------------------------------------------------------------------- numbers
def _text(series: pd.Series) -> pd.Series:
    """Values as stripped strings (NaN kept), whatever the column's dtype."""
    if not (pd.api.types.is_string_dtype(series.dtype) and series.dtype != object):
        series = series.astype(object).where(series.isna(), series.astype(str))  # NaN stays NaN
    return series.str.strip()


def _arrow(text: pd.Series) -> pa.Array:
    array = text.array
    if hasattr(array, "__arrow_array__"):
        return pa.array(array)
    return pa.array(text.to_numpy(dtype=object, na_value=None), type=pa.large_string())


def missing_mask(series: pd.Series) -> pd.Series:
    """NaN, empty or an NA token ("NA", "null", "-", ...): missing in a number or date column."""
    if pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_datetime64_any_dtype(series.dtype):
        return series.isna()
    return series.isna() | _text(series).isin(NA_TOKENS)


def looks_numeric(series: pd.Series) -> bool:
    """Numbers, possibly stored as text: at least NUMBER_SHARE of the present values parse."""
    present = ~missing_mask(series)
    if not present.any():
        return False
    return bool(to_numeric(series[present]).notna().mean() >= NUMBER_SHARE)


def decimal_mark(series: pd.Series) -> str:
    """"," when the column's numbers are written with decimal commas ("1.234,56", "12,50 €"),
    else "." (also when nothing decides it: "1.200" alone keeps its English reading).

    Decided once, on the training data, and stored in the feature's config (``decimal``) so the
    rows to predict are read the same way whatever they hold. Only columns with a comma in some
    value do any work here; number columns (pyarrow typed them) none at all.
    """
    if pd.api.types.is_numeric_dtype(series.dtype):
        return "."
    text = _arrow(_text(series))
    if not pc.any(pc.match_substring(text, ",")).as_py() and not pc.any(pc.match_substring(text, "，")).as_py():
        return "."
    text = _half_width(text)
    comma = pc.sum(pc.fill_null(pc.match_substring_regex(text, _COMMA_DECIMAL_SIGN), False)).as_py() or 0
    point = pc.sum(pc.fill_null(pc.match_substring_regex(text, _POINT_DECIMAL_SIGN), False)).as_py() or 0
    with_comma = pc.sum(pc.fill_null(pc.match_substring(text, ","), False)).as_py() or 0
    # In a decimal-comma column the values with a comma are mostly decimals; in an English column
    # of "1,200", "15,000" they are thousands, and a stray "2,5" (a typo) must not turn them all into 1.2.
    return "," if comma > point and comma >= DECIMAL_COMMA_SHARE * with_comma else "."


def to_numeric(series: pd.Series, decimal: str = ".") -> pd.Series:
    """Parse numbers stored as text ("1,234", " 12 ", "$5", "7%", "(3)", "￥1,200", "1200元",
    "12 €", "3.5万" = 35,000, "2亿" = 2e8, full-width "１２００") to float64.

    ``decimal`` is the column's decimal mark (see ``decimal_mark``): with ",", "1.234,56" is
    1234.56 and "1.200" is 1200. NA tokens and anything unparsable become NaN (see
    ``unparsable_mask`` to find the latter); so do "inf" and "nan" spelled out. A "%" is
    stripped, not divided by 100: the scale does not matter after scaling and the value stays
    recognisable. Already-numeric columns are returned as float64 at once.
    """
    if pd.api.types.is_numeric_dtype(series.dtype):
        return series.astype("float64")
    text = _arrow(_text(series))
    plain = pc.fill_null(pc.match_substring_regex(text, _PLAIN_NUMBER), False)
    # clean only when something needs it; with decimal commas even "1.200" does (it is 1200)
    if decimal == "," or not pc.all(pc.or_(plain, pc.is_null(text))).as_py():
        cleaned = _half_width(text)
        for triggers, pattern, replacement in _CLEANUPS:
            if any(pc.any(pc.match_substring(cleaned, char)).as_py() for char in triggers):  # memchr, not regex
                cleaned = pc.replace_substring_regex(cleaned, pattern, replacement)
        cleaned, exponent = _split_magnitude(cleaned)
        text = _comma_decimals(cleaned) if decimal == "," else _ungroup(cleaned)
        if exponent is not None:  # "1,200万" → "1200" + "e4"
            text = pc.binary_join_element_wise(text, exponent, pa.scalar("", text.type))
        plain = pc.fill_null(pc.match_substring_regex(text, _PLAIN_NUMBER), False)
    numbers = pc.cast(pc.if_else(plain, text, pa.scalar(None, text.type)), pa.float64())
    return pd.Series(numbers.to_numpy(zero_copy_only=False), index=series.index, dtype="float64", name=series.name)


def _half_width(text: pa.Array) -> pa.Array:
    """Full-width characters as their ASCII forms (NFKC), only when some value has one.

    The checks are byte scans, not a regex: ASCII-only columns stop at the first, and full-width
    digits and marks (U+FF01-U+FF3F) all start with the UTF-8 bytes EF BC."""
    if pc.all(pc.string_is_ascii(text)).as_py() is not False:
        return text
    binary = text.cast(pa.large_binary() if pa.types.is_large_string(text.type) else pa.binary())
    if not pc.any(pc.match_substring(binary, _FULL_WIDTH_UTF8)).as_py():
        return text
    return pc.utf8_normalize(text, form="NFKC")


def _ungroup(text: pa.Array) -> pa.Array:
    """"1,234.5" → "1234.5" where the groups are well formed; other values as they are."""
    grouped = pc.fill_null(pc.match_substring_regex(text, _GROUPED_NUMBER), False)
    ungrouped = text
    for mark in _GROUP_MARKS:  # literal replaces: several times faster than one regex
        if pc.any(pc.match_substring(ungrouped, mark)).as_py():
            ungrouped = pc.replace_substring(ungrouped, mark, "")
    return pc.if_else(grouped, ungrouped, text)


def _comma_decimals(text: pa.Array) -> pa.Array:
    """"1.234,56" → "1234.56", "3,5" → "3.5"; values not written that way ("3.5") as they are."""
    matches = pc.fill_null(pc.match_substring_regex(text, _COMMA_DECIMAL_NUMBER), False)
    converted = text
    for mark in _COMMA_GROUP_MARKS:
        if pc.any(pc.match_substring(converted, mark)).as_py():
            converted = pc.replace_substring(converted, mark, "")
    converted = pc.replace_substring(converted, ",", ".")
    return pc.if_else(matches, converted, text)


def _split_magnitude(text: pa.Array) -> tuple[pa.Array, pa.Array | None]:
    """``text`` without a trailing magnitude character, and the exponent each one stood for
    ("" where there was none); None when no value has one (the usual case: one memchr each)."""
    present = [char for char in _MAGNITUDES if pc.any(pc.match_substring(text, char)).as_py()]
    if not present:
        return text, None
    exponent = pa.array([""] * len(text), type=text.type)
    for char in present:
        ends = pc.fill_null(pc.ends_with(text, char), False)
        exponent = pc.if_else(ends, pa.scalar(_MAGNITUDES[char], text.type), exponent)
    return pc.replace_substring_regex(text, rf"\s*[{''.join(present)}]$", ""), exponent


def unparsable_mask(series: pd.Series, decimal: str = ".") -> pd.Series:
    """True where a value is present (not missing, not an NA token) but is not a number."""
    if pd.api.types.is_numeric_dtype(series.dtype):
        return pd.Series(False, index=series.index)
    return to_numeric(series, decimal).isna() & ~missing_mask(series)


# ----------------------------------------------------------------------------- dates
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


# ----------------------------------------------------------------------------- task
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


def _is_number_dtype(column: pd.Series) -> bool:
    """Stored as numbers (bools are not: two values, a binary feature)."""
    return pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype)


def _is_numeric(column: pd.Series, *, decimal_commas: bool = False) -> bool:
    """Stored as numbers, or text of which at least 95% parses as numbers (NA tokens aside);
    with ``decimal_commas``, in the column's own decimal mark (features: their config keeps it;
    targets are read with decimal points only)."""
    if pd.api.types.is_bool_dtype(column.dtype):
        return False
    if pd.api.types.is_numeric_dtype(column.dtype):
        return True
    sample = column.iloc[_sample_positions(len(column))]
    present = ~missing_mask(sample)
    if not present.any() or _text(sample[present]).str.contains(r"\d", regex=True).mean() < NUMBER_SHARE:
        return False  # a number has a digit: skip parsing category and text columns
    decimal = decimal_mark(sample) if decimal_commas else "."
    return to_numeric(sample, decimal)[present].notna().mean() >= NUMBER_SHARE


# ----------------------------------------------------------------------------- features
class _Profile:
    """What the rules look at for one column: exact counts on all rows, a sample for the rest."""

    def __init__(self, name: str, column: pd.Series, positions: np.ndarray):
        self.name = name
        self.column = column
        self.rows = len(column)
        sample = column.iloc[positions]
        self.nested = column.dtype == object and bool(sample.dropna().map(_is_nested).any())
        self.is_datetime = pd.api.types.is_datetime64_any_dtype(column.dtype)
        self.is_numeric_dtype = _is_number_dtype(column)
        typed = self.is_numeric_dtype or self.is_datetime or self.nested
        present = column.notna() if typed else column.notna() & _text(column).ne("")  # "  " is missing too
        self.present = int(present.sum())
        self.sample = sample[sample.notna()] if self.nested else sample[present.iloc[positions].to_numpy()]
        self.text_numeric = not typed and _is_numeric(self.sample, decimal_commas=True)
        self.decimal = decimal_mark(self.sample) if self.text_numeric else "."
        if self.nested:
            self.distinct_raw = self.distinct = -1
            return
        self.values = values = column[present]
        self.distinct_raw = self.distinct = int(values.nunique())
        if self.text_numeric:  # parsed once here; NA tokens and unparsable text become missing
            self.numbers = to_numeric(values, self.decimal)
            self.distinct = int(self.numbers.nunique())
            self.present = int(self.numbers.notna().sum())

    @property
    def whole_numbers(self) -> bool:
        return self.is_numeric_dtype and bool((self.sample == self.sample.round()).all())

    @property
    def unique_share(self) -> float:
        return self.distinct / self.present if self.present else 0.0

    def strings(self) -> pd.Series:
        return _text(self.sample)


def _is_nested(value: object) -> bool:
    return isinstance(value, (list, dict))


Rule = Callable[[_Profile], "Feature | str | None"]  # a feature, a reason to drop, or None: not mine


def _rule_nested(profile: _Profile) -> str | None:
    return "values are lists or objects (nested JSON), not supported" if profile.nested else None


def _rule_all_missing(profile: _Profile) -> str | None:
    return "all values missing" if profile.distinct == 0 else None


def _rule_constant(profile: _Profile) -> str | None:
    if profile.distinct != 1:
        return None
    values = profile.numbers.dropna() if profile.text_numeric else profile.values
    value = values.iloc[0].item() if hasattr(values.iloc[0], "item") else values.iloc[0]
    return f"constant: every value is {value!r}"


def _rule_binary(profile: _Profile) -> Feature | None:
    if profile.distinct_raw != 2 or profile.distinct != 2:
        return None
    values = sorted(profile.values.unique().tolist(), key=str)
    return BinaryFeature(name=profile.name, note=f"two distinct values: {values[0]!r}, {values[1]!r}")


def _name_tokens(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)  # userId -> user Id
    return [token.lower() for token in re.split(r"[^0-9A-Za-z\u4e00-\u9fff]+", spaced) if token]


def _rule_id_by_name(profile: _Profile) -> Feature | str | None:
    """Named like an id: dropped when nearly unique; whole numbers that repeat are codes (category)."""
    tokens = _name_tokens(profile.name)
    named = bool(tokens) and (tokens[-1] in ID_NAME_TOKENS or profile.name.endswith(("编号", "序号")))
    if not named or (profile.is_numeric_dtype and not profile.whole_numbers):
        return None  # "weight_key" holding 71.3, 68.2: a measurement whatever its name
    if profile.present >= MIN_ROWS_FOR_ID and profile.unique_share >= 0.5:
        return f"looks like an identifier: named {profile.name!r} with {profile.distinct} distinct values"
    if profile.is_numeric_dtype:  # store_id 1..40: codes, so no order or distance between them
        note = f"whole numbers named like an id: codes, not quantities; {profile.distinct} distinct values"
        return CategoryFeature(name=profile.name, note=_with_missing(note, profile))
    return None


def _rule_id_number(profile: _Profile) -> str | None:
    if not profile.is_numeric_dtype or profile.present < MIN_ROWS_FOR_ID or profile.unique_share < 0.99:
        return None
    values = profile.column.dropna()
    if not bool((values == values.round()).all()):
        return None  # unique floats are measurements, not ids
    increasing = (np.diff(values.to_numpy()) > 0).mean() >= 0.99
    consecutive = values.max() - values.min() + 1 <= 1.01 * len(values)
    if not (increasing or consecutive):
        return None
    how = "increasing" if increasing else "a consecutive range"
    return f"looks like a row number or id: unique whole numbers, {how}"


def _rule_number(profile: _Profile) -> Feature | None:
    if profile.is_numeric_dtype:
        return NumberFeature(name=profile.name, note=_with_missing("numeric", profile))
    if not profile.text_numeric:
        return None
    bad = profile.numbers.isna() & ~_text(profile.values).isin(NA_TOKENS)
    note = "text parsed as numbers" + (" with decimal commas (1.234,5 is 1234.5)" if profile.decimal == "," else "")
    if bad.any():
        examples = ", ".join(repr(value) for value in profile.values[bad].unique()[:3])
        note += f"; {int(bad.sum())} value(s) are not numbers and will be missing (e.g. {examples})"
    return NumberFeature(name=profile.name, note=_with_missing(note, profile), decimal=profile.decimal)


def _rule_date(profile: _Profile) -> Feature | None:
    if profile.is_datetime:
        return DateFeature(name=profile.name, note=_with_missing("stored as dates", profile))
    if profile.is_numeric_dtype or profile.text_numeric:
        return None
    fmt = guess_date_format(profile.sample)
    if fmt is None:
        return None
    text = _text(profile.sample)
    text = text[~text.isin(NA_TOKENS)]
    mixed = _parse_as(text, fmt).notna().mean() < DATE_SHARE  # read by parse_dates' other spellings
    how = f"in mixed spellings, {fmt!r} first" if mixed else f"with format {fmt!r}"
    note = _with_missing(f"text parsed as dates {how}", profile)
    return DateFeature(name=profile.name, format=fmt, note=note)


def _looks_like_text(profile: _Profile) -> bool:
    if profile.is_numeric_dtype or profile.present == 0:
        return False
    strings = profile.strings()
    strings = strings[~strings.isin(NA_TOKENS)]  # a column of "\\N" with a few texts is still text
    distinct = strings.nunique()
    if profile.distinct < 1000 and (distinct < 5 or distinct < 0.2 * len(strings)):
        return False  # few distinct values: categories, however long their names
    length = strings.str.len().mean()
    words = strings.str.split().str.len().mean()
    cjk = strings.str.count(_CJK).sum() / max(strings.str.len().sum(), 1)
    return bool(length >= 20 or words >= 3 or (cjk >= 0.3 and length >= 10))


def _rule_image(profile: _Profile) -> Feature | None:
    if profile.is_numeric_dtype or profile.is_datetime or profile.text_numeric:
        return None
    from forgeml.features.image import looks_like_image_paths

    if not looks_like_image_paths(profile.sample):
        return None
    return ImageFeature(name=profile.name, note=_with_missing(f"paths of image files: {profile.distinct} distinct", profile))


def _rule_text(profile: _Profile) -> Feature | None:
    if not _looks_like_text(profile):
        return None
    note = _with_missing(f"free text: {profile.distinct} distinct values", profile)
    return TextFeature(name=profile.name, note=note)


def _rule_id_code(profile: _Profile) -> str | None:
    if profile.present >= MIN_ROWS_FOR_ID and profile.unique_share >= 0.99:
        return f"looks like an identifier: a different short code in every row ({profile.distinct} distinct)"
    return None


def _rule_category(profile: _Profile) -> Feature:
    return CategoryFeature(name=profile.name, note=_with_missing(f"{profile.distinct} distinct values", profile))


def _with_missing(note: str, profile: _Profile) -> str:
    missing = profile.rows - profile.present
    return f"{note}; {missing} missing" if missing else note


# Tried in order; the first that answers decides. Image paths come before the id rules (a path per
# row is unique, yet no identifier). Binary comes before the id rules (two values
# are never an id), the number before the date (20240305 is a number), text before short codes.
_RULES: tuple[Rule, ...] = (
    _rule_nested, _rule_all_missing, _rule_constant, _rule_image, _rule_binary, _rule_id_by_name, _rule_id_number,
    _rule_number, _rule_date, _rule_text, _rule_id_code, _rule_category,
)


def infer_features(df: pd.DataFrame, targets: list[str]) -> tuple[list[Feature], dict[str, str]]:
    """One feature config per usable column (targets excluded), and ``{column: reason}`` for the rest.

    Each feature's ``note`` says why it got its type. Decisions use a seeded sample of at most
    10,000 rows; missing and distinct counts are exact.
    """
    positions = _sample_positions(len(df))
    features: list[Feature] = []
    dropped: dict[str, str] = {}
    for name in df.columns:
        if name in targets:
            continue
        profile = _Profile(str(name), df[name], positions)
        for rule in _RULES:
            decision = rule(profile)
            if isinstance(decision, str):
                dropped[str(name)] = decision
                break
            if decision is not None:
                features.append(decision)
                break
    return features, dropped


def _sample_positions(rows: int) -> np.ndarray:
    """Seeded, sorted row positions (positions, not labels: the index may repeat)."""
    if rows <= SAMPLE_ROWS:
        return np.arange(rows)
    return np.sort(np.random.default_rng(0).choice(rows, SAMPLE_ROWS, replace=False))
