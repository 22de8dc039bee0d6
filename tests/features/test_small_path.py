"""The small-input fast path (``Feature.transform_small``) gives exactly the pandas path's arrays."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forgeml.config import Config
from forgeml.datasets import DEMO
from forgeml.features.featureset import SMALL_ROWS
from forgeml.workflow import prepare


@pytest.fixture(scope="module")
def penguins():
    frame = pd.read_csv(DEMO.path)
    prepared = prepare(Config(target=DEMO.target), frame)
    return prepared.featureset, frame


@pytest.fixture(scope="module")
def mixed(fitted_pipeline, mixed_frame):
    return fitted_pipeline.predictor_.featureset, mixed_frame


def check(featureset, frame: pd.DataFrame, *, expect_fast: bool = True) -> None:
    assert len(frame) <= SMALL_ROWS
    for feature in featureset.features:
        column = frame[feature.name]
        fast = feature.transform_small(column)
        slow = feature.transform(column, strict=False)
        if fast is None:
            assert not expect_fast or feature.type_name == "text", f"{feature.name}: fast path refused {column.tolist()!r}"
            continue
        assert fast.dtype == slow.dtype and fast.shape == slow.shape, feature.name
        np.testing.assert_array_equal(fast, slow, err_msg=f"{feature.name} {column.tolist()!r}")


def records(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame as JSON rows arrive: Python values, None for missing, object columns."""
    rows = [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()} for r in frame.to_dict(orient="records")]
    return pd.DataFrame.from_records(rows, columns=list(frame.columns))


@pytest.mark.parametrize("start", [0, 64, 128, 192, 256, 320])
def test_penguins_chunks_and_single_rows(penguins, start):
    featureset, frame = penguins
    chunk = frame.iloc[start : start + 24]
    check(featureset, chunk)
    check(featureset, records(chunk))
    for i in range(0, len(chunk), 6):
        check(featureset, chunk.iloc[i : i + 1])
        check(featureset, records(chunk.iloc[i : i + 1]))


def test_mixed_frame(mixed):
    featureset, frame = mixed
    check(featureset, frame.head(64))
    check(featureset, records(frame.head(64)))
    check(featureset, records(frame.iloc[[7]]))


def test_edge_values_match_or_fall_back(mixed):
    featureset, frame = mixed
    base = records(frame.head(6))
    cases = {
        "age": [None, 1e308, -0.0, float("inf"), 42, 3.5],
        "city": ["  paris ", "atlantis", None, 7, "", "NICE"],
        "signup": ["2021-02-30", "NA", None, " 2020-01-05 ", "garbage", "2022-12-31"],
        "review": ["", None, "good good good", "🙂", "x" * 500, "bad"],
    }
    for name, values in cases.items():
        edited = base.copy()
        edited[name] = pd.Series(values, dtype=object)
        check(featureset, edited, expect_fast=False)
    # Values whose pandas handling differs by dtype: the fast path must decline, not guess.
    city = next(f for f in featureset.features if f.name == "city")
    assert city.transform_small(pd.Series([1.0, "paris"], dtype=object)) is None
    assert city.transform_small(pd.Series([True, None], dtype=object)) is None
    assert city.transform_small(pd.Series([2.5, 3.0])) is None
    check(featureset.__class__([city], featureset.target), pd.DataFrame({"city": [3.0, np.nan]}))  # float column: "3"
    age = next(f for f in featureset.features if f.name == "age")
    assert age.transform_small(pd.Series(["1,234", 5], dtype=object)) is None


def test_featureset_takes_the_fast_path_only_for_small_frames(mixed, monkeypatch):
    featureset, frame = mixed
    calls = []
    feature = featureset.features[0]
    real = feature.transform_small
    monkeypatch.setattr(feature, "transform_small", lambda column: calls.append(len(column)) or real(column))
    small = featureset.transform(frame.head(SMALL_ROWS))
    featureset.transform(frame.head(SMALL_ROWS + 1))
    assert calls == [SMALL_ROWS]
    monkeypatch.undo()
    big = featureset.transform(frame.head(SMALL_ROWS + 1))
    for key in small:
        np.testing.assert_array_equal(small[key], big[key][:SMALL_ROWS])


def test_mixed_date_spellings_read_the_same_on_both_paths() -> None:
    """The few-rows path parses through ``infer.parse_dates`` too: every spelling, each row."""
    from forgeml.config import CleanConfig, DateFeature as DateConfig
    from forgeml.data.clean import CleaningReport
    from forgeml.features.base import FitContext
    from forgeml.features.date import DateFeature

    values = ["2021-03-04", "2021/3/4", "2021年3月4日", "04.03.2021", "2021-03-04T10:20:30Z", "2021-03-04 10:20",
              "junk", "NA", None, "2022-12-31"]
    for fmt in ("%Y-%m-%d", "%d.%m.%Y"):  # an ISO format (its own fast path first) and another
        feature = DateFeature(DateConfig(name="d", format=fmt, parts=["year", "month", "day", "hour"]))
        feature.fit(pd.Series(values * 3, dtype=object), FitContext(clean=CleanConfig(), report=CleaningReport(rows_in=30)))
        column = pd.Series(values, dtype=object)
        whole = feature.transform(column)
        np.testing.assert_array_equal(feature.transform_small(column), whole)
        for i, value in enumerate(values):
            np.testing.assert_array_equal(feature.transform_small(pd.Series([value], dtype=object)), whole[[i]], err_msg=repr(value))
        days = feature.parse(column).dt.day.tolist()
        assert days[:6] == [4] * 6 and days[-1] == 31, (fmt, days)
