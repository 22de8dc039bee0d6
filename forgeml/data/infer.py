"""Decide what each column is (number, category, binary, date, text, or unusable).

The rules are written for people reading the resolved config: every feature carries a ``note``
saying why it got its type, and every dropped column a reason. Decisions are made on a seeded
sample (fast on a million rows); counts shown to the user (missing, distinct, unparsable) are
exact.

Numbers and dates stored as text are parsed here, not at load time, because only here is it
known whether "NA" in a column means missing (a number column) or is a real category. The
parsing itself lives in ``forgeml.data.numbers`` and ``forgeml.data.dates``, the task in
``forgeml.data.task``; their public names are re-exported here, where callers have long found them.
"""
from __future__ import annotations

import re
from typing import Callable

import numpy as np
import pandas as pd

from forgeml.config import BinaryFeature, CategoryFeature, DateFeature, ImageFeature, NumberFeature, TextFeature
from forgeml.data.dates import (  # noqa: F401  (re-exported)
    DATE_SHARE, guess_date_format, other_spellings, parse_dates, to_datetime, _parse_as,
)
from forgeml.data.numbers import (  # noqa: F401  (re-exported)
    NA_TOKENS, NUMBER_SHARE, SAMPLE_ROWS, decimal_mark, looks_numeric, missing_mask, to_numeric, unparsable_mask,
    _is_number_dtype, _is_numeric, _sample_positions, _text,
)
from forgeml.data.task import MAX_CLASS_VALUES, Task, infer_task  # noqa: F401  (re-exported)

Feature = NumberFeature | CategoryFeature | BinaryFeature | DateFeature | TextFeature | ImageFeature

MIN_ROWS_FOR_ID = 20  # in tiny tables every value is unique; that says nothing
ID_NAME_TOKENS = {"id", "uuid", "guid", "key", "pid", "rownames", "编号", "序号"}
MOSTLY_MISSING = 0.5  # a two-valued column missing this often is a category with missing as a level
UNIQUE_ID_SHARE = 0.99  # distinct values per present value for a column to be unique per row
COUNTER_SHARE = 0.90  # rows whose value is the previous row's plus (or minus) one, in a counter
DENSE_ID_SHARE = 0.5  # unique whole numbers filling at least this share of min..max: a shuffled id
# Counting up by one is what time does: a "year" or "day" column of a time series is no row number.
TIME_NAME_TOKENS = {"year", "yr", "month", "week", "day", "date", "hour", "minute", "second", "time", "period",
                    "step", "epoch", "age", "t", "年", "月", "日"}
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")


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
    """Two values: a binary flag, unless the column is mostly missing (a house table's ``Alley``,
    93% empty where there is no alley): then the blank is a third answer, not a gap to fill with
    the commoner value, and the column is a category with missing as its own level."""
    if profile.distinct_raw != 2 or profile.distinct != 2:
        return None
    values = sorted(profile.values.unique().tolist(), key=str)
    missing = 1 - profile.present / profile.rows if profile.rows else 0.0
    if missing >= MOSTLY_MISSING:
        note = f"two values, {values[0]!r} and {values[1]!r}, and {missing:.0%} missing: missing is its own level"
        return CategoryFeature(name=profile.name, note=note)
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
    """Whole numbers that only number the rows, whatever the column's name: dropped.

    Three shapes, each found by values alone (R's ``rownames``, pandas' ``Unnamed: 0``, the
    penguins' "Sample Number", a shuffled ``id``):

    - a counter: from one row to the next the value goes up (or down) by exactly 1 in at least
      90% of rows, possibly restarting (a sample number per species file, pasted together);
    - unique and dense: a different whole number in (nearly) every row, filling at least half of
      the range min..max — a shuffled row id. A measurement cannot look like this: n values
      drawn from a range of 2n collide with probability 1 - exp(-n/4), over 99% from 20 rows.

    Such a column carries no signal beyond the row order; when the file is sorted by the target
    (a glass data set sorted by class) it leaks that order into the model. Unique whole numbers
    spread sparsely stay numbers, sorted or not (prices in whole euros in a file sorted by price,
    populations): their size means something, and values cannot tell them from an id with wide
    gaps — such an id, if it leaks, shows up as the report's dominant-feature warning instead.
    Floats never qualify, nor columns named like a time (year, day, step...),
    where counting up by one is what time does. A column dropped wrongly is kept by listing it
    under ``features:`` in the config (``forgeml init`` writes them all).
    """
    if profile.is_numeric_dtype:
        values = profile.column.dropna().to_numpy(dtype="float64")
    elif profile.text_numeric:
        values = profile.numbers.dropna().to_numpy(dtype="float64")
    else:
        return None
    if len(values) < MIN_ROWS_FOR_ID or not bool((values == np.round(values)).all()):
        return None  # floats are measurements, not ids
    if TIME_NAME_TOKENS & set(_name_tokens(profile.name)):
        return None
    steps = np.diff(values)
    by_one = max(float((steps == 1).mean()), float((steps == -1).mean()))
    if by_one >= COUNTER_SHARE:
        restarts = int((steps < 0).sum()) if (steps == 1).mean() >= COUNTER_SHARE else int((steps > 0).sum())
        again = f", starting again {restarts} time(s)" if restarts else ""
        return f"looks like a row number: whole numbers counting by 1 from row to row{again}"
    if profile.unique_share < UNIQUE_ID_SHARE:
        return None
    if values.max() - values.min() + 1 <= len(values) / DENSE_ID_SHARE:
        return "looks like a row number or id: a different whole number in every row, filling the range " \
               f"{values.min():.0f}..{values.max():.0f} (no signal beyond the row order)"
    return None


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
    from forgeml.data.images import looks_like_image_paths

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


def drop_notes(reasons: dict[str, str]) -> list[str]:
    """One ``data:`` line per dropped column, so a dropped id (or a column dropped by mistake)
    is seen before training starts, not only in the config and the report."""
    return [f"dropped column {name!r}: {reason}" for name, reason in reasons.items()]
