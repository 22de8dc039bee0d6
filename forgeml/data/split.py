"""Train / validation / test splits: seeded, stratified where it matters, and never crashing on
the awkward cases real data has (a class with one row, a split column, separate test files).

``split_frame`` returns a ``SplitResult``: a read-only mapping ``{"train", "validation",
"test"} -> DataFrame`` (so ``result["train"]`` works) that also carries ``messages`` — the
sentences the caller should show, such as which rare classes were kept in train.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from forgeml.config import SplitConfig
from forgeml.errors import ConfigError, DataError

SPLITS: tuple[str, ...] = ("train", "validation", "test")
# Fewer rows than this cannot give a model to train and numbers to trust.
MIN_ROWS = 10
# Tasks whose target is a class label, so the class proportions are worth keeping per split.
_STRATIFIED_TASKS = frozenset({"binary", "multiclass"})
# Values a split column may hold, compared stripped and lower-cased.
_SPLIT_NAMES: dict[str, str] = {
    "train": "train", "training": "train",
    "validation": "validation", "val": "validation", "valid": "validation",
    "test": "test", "testing": "test",
}


@dataclass(eq=False)  # frames do not compare to a single bool
class SplitResult(Mapping[str, pd.DataFrame]):
    """The three frames (index reset) and the messages explaining anything unusual."""

    frames: dict[str, pd.DataFrame]
    messages: list[str] = field(default_factory=list)

    def __getitem__(self, key: str) -> pd.DataFrame:
        return self.frames[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.frames)

    def __len__(self) -> int:
        return len(self.frames)

    def sizes(self) -> dict[str, int]:
        return {name: len(frame) for name, frame in self.frames.items()}


def split_frame(
    df: pd.DataFrame,
    targets: list[str],
    task: str,
    config: SplitConfig,
    *,
    validation_df: pd.DataFrame | None = None,
    test_df: pd.DataFrame | None = None,
    consume: bool = False,
) -> SplitResult:
    """Split ``df`` into train, validation and test.

    ``consume=True`` lets a random split empty ``df`` column by column as it copies the rows
    out, so the whole frame and its three parts are never all in memory (``workflow.prepare``
    owns its frame and passes it; at 1M rows this kept the peak under 3× the frame).

    Precedence: a split column (``config.column``) assigns every row; otherwise the separate
    ``validation_df``/``test_df`` are used as given and only the missing parts are cut from
    ``df`` (fractions renormalised, e.g. 70/15 of the rest when only a test file is given).
    Random parts are seeded by ``config.seed`` and stratified by the first target for
    binary/multiclass tasks when ``config.stratify``.

    Raises ``DataError`` for too few rows, an empty train split, unknown split column values
    or separate files lacking columns; ``ConfigError`` for a split column combined with files.
    """
    if config.column is not None:
        if validation_df is not None or test_df is not None:
            raise ConfigError(
                "a split column and separate validation/test files cannot be combined",
                where="data.split",
                hint="set either data.split.column or data.split.validation_path/test_path",
            )
        result = _split_by_column(df, config.column)
    else:
        given = {"validation": validation_df, "test": test_df}
        for name, frame in given.items():
            if frame is not None:
                given[name] = _align_columns(frame, df, name)
        df, overlap_messages = drop_overlap(df, given)
        total = len(df) + sum(len(f) for f in given.values() if f is not None)
        if total < MIN_ROWS:
            raise DataError(
                f"only {total} rows to train and evaluate on; at least {MIN_ROWS} are needed",
                where="data",
                hint="add more rows (a few hundred give meaningful numbers)",
            )
        result = _split_random(df, targets, task, config, given, consume=consume)
        result.messages[:0] = overlap_messages
    for name, frame in result.frames.items():
        result.frames[name] = frame.reset_index(drop=True)
    if result.frames["train"].empty:
        raise DataError(
            "the train split is empty",
            where="data.split",
            hint="give more rows, or a split column with some rows marked 'train'",
        )
    _check_held_out(result, targets, task)
    return result


def _check_held_out(result: SplitResult, targets: list[str], task: str) -> None:
    """No validation and no test rows means no metrics, and a run without metrics is no success.

    It happens when every class is too rare to split (a class per row: often a number the task
    inference read as labels), or a split column marks nothing but train."""
    if not (result.frames["validation"].empty and result.frames["test"].empty):
        return
    if task in _STRATIFIED_TASKS and targets and result.messages:
        classes = result.frames["train"][targets[0]].nunique()
        raise DataError(
            f"nothing left to evaluate on: each of the {classes} classes of {targets[0]!r} has too few rows to "
            "appear in the validation and test splits", where=f"column {targets[0]!r}",
            hint="if the target is a quantity, set task: regression (--set task=regression); otherwise give "
                 "at least 3 rows per class")
    raise DataError("nothing left to evaluate on: the validation and test splits are both empty", where="data.split",
                    hint="give a test file (data.split.test_path), mark some rows 'test' in the split column, "
                         "or set data.split.test above 0")


# ----------------------------------------------------------------------------- split column
def _split_by_column(df: pd.DataFrame, column: str) -> SplitResult:
    if column not in df.columns:
        raise DataError(
            f"split column {column!r} not found",
            where="data.split.column",
            hint=f"columns are: {', '.join(map(str, df.columns[:20]))}",
        )
    labels = df[column].astype(str).str.strip().str.lower().map(_SPLIT_NAMES)
    unknown = df.loc[labels.isna(), column]
    if len(unknown):
        counts = unknown.astype(str).value_counts()
        shown = ", ".join(f"{value!r} ({count})" for value, count in counts.head(5).items())
        raise DataError(
            f"split column {column!r} has values that name no split: {shown}",
            where="data.split.column",
            hint="use train, validation (or val, valid) and test",
        )
    data = df.drop(columns=[column])
    frames = {name: data.loc[(labels == name).to_numpy()] for name in SPLITS}
    messages = [f"no rows marked '{name}' in split column {column!r}" for name in SPLITS[1:] if frames[name].empty]
    return SplitResult(frames, messages)


# ----------------------------------------------------------------------------- separate files
def _align_columns(frame: pd.DataFrame, df: pd.DataFrame, name: str) -> pd.DataFrame:
    """Separate files must hold every training column; extra columns are ignored."""
    missing = [c for c in df.columns if c not in frame.columns]
    if missing:
        raise DataError(
            f"the {name} data lacks columns: {', '.join(map(repr, missing[:10]))}",
            where=f"data.split.{name}_path",
            hint="the validation and test files need the same columns as the training data",
        )
    if frame.empty:
        raise DataError(f"the {name} data has no rows", where=f"data.split.{name}_path", hint="check the file")
    return frame.loc[:, list(df.columns)]


def drop_overlap(df: pd.DataFrame, given: dict[str, pd.DataFrame | None], keep_natural: bool = True) -> tuple[pd.DataFrame, list[str]]:
    """``df`` without the rows that also appear in a separate validation or test file, and what
    was dropped, in words.

    A row the model trained on scores well in the test file whatever the model is worth, so such
    rows inflate the held-out metrics without a word. They are dropped from *training*, not from
    the test file: the test file is the user's fixed benchmark, compared across runs and models,
    and stays exactly as given. Rows match when every column (features and target) holds the same
    value; numbers compare as numbers (a 3 in one file is the 3.0 of the other). ``keep_natural``:
    when the columns allow few distinct rows, equal rows are observations, not leaks (``data.repeats``).
    """
    present = {name: frame for name, frame in given.items() if frame is not None and len(frame)}
    if not present or df.empty:
        return df, []
    from forgeml.data.repeats import natural_repeats_note, repeats_are_natural

    natural = repeats_are_natural(df) if keep_natural else False
    keys = _row_keys(df, [df, *present.values()])
    overlap = np.zeros(len(df), dtype=bool)
    messages = []
    for name, frame in present.items():
        inside = np.isin(keys, _row_keys(frame, [df, *present.values()]))
        if inside.any():
            where = f" ({frame.attrs['source']})" if frame.attrs.get("source") else ""  # the file's name, if read from one
            if natural:
                messages.append(natural_repeats_note(df, f"{int(inside.sum())} training row(s) equal to rows of the {name} data{where}"))
                continue
            messages.append(f"dropped {int(inside.sum())} training row(s) that are also in the {name} data{where}: "
                            "the model would have been scored on rows it learned")
        overlap |= inside
    return (df.loc[~overlap] if overlap.any() else df), messages


def _row_keys(frame: pd.DataFrame, frames: list[pd.DataFrame]) -> np.ndarray:
    """A 64-bit hash per row; a column numeric in every frame is hashed as float64, others as text."""
    columns = {}
    for name in frame.columns:
        numeric = all(pd.api.types.is_numeric_dtype(other[name].dtype) and not pd.api.types.is_bool_dtype(other[name].dtype)
                      for other in frames)
        columns[name] = frame[name].astype("float64") if numeric else frame[name].astype(object).where(frame[name].notna(), None).astype(str)
    return pd.util.hash_pandas_object(pd.DataFrame(columns, index=frame.index), index=False).to_numpy()


# ----------------------------------------------------------------------------- random
def _split_random(
    df: pd.DataFrame,
    targets: list[str],
    task: str,
    config: SplitConfig,
    given: dict[str, pd.DataFrame | None],
    *,
    consume: bool = False,
) -> SplitResult:
    fractions = {"train": config.train}
    fractions.update({name: getattr(config, name) for name in ("validation", "test") if given[name] is None})
    total = sum(fractions.values())
    fractions = {name: value / total for name, value in fractions.items()}
    active = [name for name, value in fractions.items() if value > 0]

    stratify_on = targets[0] if task in _STRATIFIED_TASKS and config.stratify and targets else None
    if stratify_on is not None and stratify_on not in df.columns:
        raise DataError(f"target column {stratify_on!r} not found", where="data", hint="check config.target")
    groups, messages = _groups(df, stratify_on, len(active))

    rng = np.random.default_rng(config.seed)
    order = _interleaved_order(groups, rng)
    n_free = len(order)
    counts = _counts(n_free, fractions, active)

    positions: dict[str, np.ndarray] = {}
    start = 0
    for name in ("test", "validation"):  # the rest, and the too-rare classes, go to train
        take = counts.get(name, 0)
        positions[name] = np.sort(order[start:start + take])
        start += take
    rest = order[start:]
    positions["train"] = np.sort(np.concatenate([rest, np.flatnonzero(groups < 0)]))

    cut = [name for name in SPLITS if given.get(name) is None]
    frames: dict[str, pd.DataFrame] = {name: given[name] for name in SPLITS if given.get(name) is not None}
    if consume:
        parts: dict[str, dict[str, pd.Series]] = {name: {} for name in cut}
        attrs = dict(df.attrs)  # e.g. the folder that relative image paths start from
        for column in list(df.columns):
            values = df[column]
            for name in cut:
                parts[name][column] = values.iloc[positions[name]].reset_index(drop=True)
            del values, df[column]  # this column's full copy is freed before the next is taken
        for name in cut:
            frames[name] = pd.DataFrame(parts.pop(name), copy=False)
            frames[name].attrs.update(attrs)
    else:
        frames.update({name: df.iloc[positions[name]] for name in cut})
    return SplitResult({name: frames[name] for name in SPLITS}, messages)


def _groups(df: pd.DataFrame, column: str | None, n_splits: int) -> tuple[np.ndarray, list[str]]:
    """A group code per row (-1: too rare to stratify, kept in train) and what to tell the user."""
    if column is None:
        return np.zeros(len(df), dtype=np.int64), []
    codes, classes = pd.factorize(df[column], use_na_sentinel=False)
    sizes = np.bincount(codes, minlength=len(classes))
    rare = np.flatnonzero(sizes < n_splits)
    if rare.size == 0:
        return codes.astype(np.int64), []
    codes = np.where(np.isin(codes, rare), -1, codes).astype(np.int64)
    listed = ", ".join(f"{classes[i]!r} ({sizes[i]} {'row' if sizes[i] == 1 else 'rows'})" for i in rare[:10])
    more = f" and {rare.size - 10} more" if rare.size > 10 else ""
    message = (
        f"{rare.size} {'class has' if rare.size == 1 else 'classes have'} too few rows of '{column}' to appear "
        f"in every split and {'was' if rare.size == 1 else 'were'} kept in train: {listed}{more}"
    )
    return codes, [message]


def _interleaved_order(groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Row positions (rare rows, group -1, excluded) in an order where every prefix holds each
    group in proportion to its size.

    Each group's rows are shuffled and placed at evenly spaced keys ``(rank + offset) / size``
    with a random offset per group; sorting by key interleaves the groups, so cutting the first
    n rows for test and the next m for validation stratifies with exact split sizes. With a
    single group this is simply a seeded shuffle.
    """
    keys = np.empty(len(groups), dtype=np.float64)
    rows = np.flatnonzero(groups >= 0)
    for group in np.unique(groups[rows]):
        members = rng.permutation(rows[groups[rows] == group])
        keys[members] = (np.arange(members.size) + rng.random()) / members.size
    return rows[np.argsort(keys[rows], kind="stable")]


def _counts(n: int, fractions: dict[str, float], active: list[str]) -> dict[str, int]:
    """Rows per split: rounded, with at least one row in every split whose fraction is > 0."""
    counts = {name: int(round(n * fractions[name])) for name in fractions if name != "train"}
    for name in counts:
        if name in active and counts[name] == 0 and n > len(active):
            counts[name] = 1
    return counts
