"""Numbers stored as text: which cells are missing, a column's decimal mark, and the parse itself.

Number cleaning runs in pyarrow (RE2: no look-arounds), fast on a million rows. Inference
(``forgeml.data.infer``) decides from these whether a column is a number; features
(``forgeml.features.number``) and targets parse with them at fit and predict time, so every
path reads "1.234,56", "￥1,200" or "3.5万" the same way.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

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



def _is_number_dtype(column: pd.Series) -> bool:
    """Stored as numbers (bools are not: two values, a binary feature)."""
    return pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype)


def _is_numeric(column: pd.Series, *, decimal_commas: bool = False) -> bool:
    """Stored as numbers, or text of which at least 95% parses as numbers (NA tokens aside);
    with ``decimal_commas``, in the column's own decimal mark (features keep it in their config,
    regression targets in their fitted state)."""
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



def _sample_positions(rows: int) -> np.ndarray:
    """Seeded, sorted row positions (positions, not labels: the index may repeat)."""
    if rows <= SAMPLE_ROWS:
        return np.arange(rows)
    return np.sort(np.random.default_rng(0).choice(rows, SAMPLE_ROWS, replace=False))
