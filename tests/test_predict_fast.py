"""The small-input fast paths of the Predictor (records and small DataFrames read as Python values,
ISO dates without pandas) give exactly the pandas path's predictions, or step aside."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from forgeml import Pipeline
from forgeml.errors import SchemaError
from forgeml.features import featureset as featureset_module
from forgeml.config import CleanConfig
from forgeml.config import DateFeature as DateConfig
from forgeml.data.clean import CleaningReport
from forgeml.features.base import FitContext
from forgeml.features.date import ISO_PATTERNS, DateFeature

FAST = {"train.epochs": 2, "train.progress": False, "train.threads": 1}


@pytest.fixture(scope="module")
def penguins(fitted_penguins):
    return fitted_penguins


@pytest.fixture(scope="module")
def table(make_mixed):
    """Numbers with gaps, a category with gaps, an ISO date, a yes/no input; target ``label``."""
    frame = make_mixed(rows=160).drop(columns=["review", "price", "size"])
    frame["member"] = np.where(np.arange(len(frame)) % 3 == 0, "yes", "no")
    return Pipeline(target="label", overrides=FAST).fit(frame).predictor_, frame


def pandas_path(predictor, data, monkeypatch, records: bool = False):
    """The reference: every fast path off (``SMALL_ROWS = 0``), so pandas transforms each column."""
    with monkeypatch.context() as patch:
        patch.setattr(featureset_module, "SMALL_ROWS", 0)
        return predictor.predict_records(data) if records else predictor.predict(data)


def as_records(frame: pd.DataFrame) -> list[dict]:
    """Rows as JSON gives them: Python values, None for missing."""
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()} for row in frame.to_dict("records")]


def same_records(got: list[dict], want: list[dict]) -> None:
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert a.keys() == b.keys()
        for key in a:
            assert type(a[key]) is type(b[key]), key
            assert a[key] == b[key] or (a[key] != a[key] and b[key] != b[key]), (key, a[key], b[key])  # NaN == NaN here


def check(predictor, frame: pd.DataFrame, monkeypatch, *, expect_fast: bool = True) -> None:
    inputs = frame[predictor.featureset.input_names]
    if expect_fast:  # the fast paths really ran
        assert predictor.featureset.transform_small_frame(frame) is not None
        assert predictor.featureset.transform_records(as_records(inputs)) is not None
    pd.testing.assert_frame_equal(predictor.predict(frame), pandas_path(predictor, frame, monkeypatch), check_exact=True)
    records = as_records(inputs)
    same_records(predictor.predict_records(records), pandas_path(predictor, records, monkeypatch, records=True))
    pd.testing.assert_frame_equal(predictor.predict(records), pandas_path(predictor, records, monkeypatch), check_exact=True)


def test_penguins_single_rows_and_chunks(penguins, monkeypatch):
    predictor, frame = penguins
    for start in range(0, len(frame), 23):
        check(predictor, frame.iloc[start : start + 1], monkeypatch)
    for start in (0, 100, 200, 300):
        check(predictor, frame.iloc[start : start + 64], monkeypatch)


def test_generated_table_rows_chunks_and_bad_values(table, monkeypatch):
    predictor, frame = table
    for start in range(0, len(frame), 17):
        check(predictor, frame.iloc[start : start + 1], monkeypatch)
    check(predictor, frame.head(64), monkeypatch)
    edits = {
        "city": ["atlantis", None, "  paris ", "", 7, float("nan")],  # unknown, null, padded, empty, int, NaN
        "age": [None, float("nan"), 1e308, -0.0, 42, 3.5],
        "signup": ["2021-02-30", "NA", None, " 2020-01-05 ", "garbage", "2262-01-01"],
        "member": [None, "maybe", "YES", " yes", 1, float("nan")],
        "income": ["12.5", None, 1, "n/a", -3, 2**70],  # text numbers and a huge int: the pandas path's job
    }
    base = frame.head(6).reset_index(drop=True)
    for name, values in edits.items():
        edited = base.copy()
        edited[name] = pd.Series(values, dtype=object)
        check(predictor, edited, monkeypatch, expect_fast=False)
        for i in range(len(values)):
            check(predictor, edited.iloc[[i]], monkeypatch, expect_fast=False)


def test_fast_paths_decline_rather_than_guess(table):
    predictor, frame = table
    features = predictor.featureset
    row = as_records(frame.head(1)[features.input_names])[0]
    assert features.transform_records([dict(row, age="12")]) is None  # text in a number column
    assert features.transform_records([dict(row, city=2.0)]) is None  # a float category: pandas' Int64 rule
    assert features.transform_records([dict(row, member=True)]) is None
    assert features.transform_records([dict(row, signup="2020-1-5")]) is None  # not ISO: pandas parses it
    assert features.transform_records([{k: v for k, v in row.items() if k != "age"}]) is None  # column absent
    assert features.transform_records([row] * (featureset_module.SMALL_ROWS + 1)) is None
    category = frame.head(2).astype({"city": "category"})
    assert predictor.predict(category).equals(predictor.predict(category.astype({"city": object})))


def test_records_missing_everywhere_is_the_usual_error_and_inputs_are_untouched(table):
    predictor, frame = table
    row = as_records(frame.head(1)[predictor.featureset.input_names])[0]
    with pytest.raises(SchemaError, match="age"):
        predictor.predict_records([{k: v for k, v in row.items() if k != "age"}])
    before = frame.head(3).copy()
    given = frame.head(3)
    predictor.predict(given)
    pd.testing.assert_frame_equal(given, before)
    out = predictor.predict(frame.head(3).set_index(pd.Index([10, 20, 30])))
    assert list(out.index) == [10, 20, 30]


ALL_PARTS = ["year", "month", "day", "weekday", "dayofyear", "hour", "cyclic"]


@pytest.mark.parametrize("fmt", list(ISO_PATTERNS))
def test_iso_dates_parse_exactly_as_pandas(fmt):
    rng = np.random.default_rng(0)
    stamps = (pd.Timestamp("1678-01-01") + pd.to_timedelta(rng.integers(0, 584 * 365, 400), unit="D")
              + pd.to_timedelta(rng.integers(0, 86400, 400), unit="s"))
    edge = ["2000-02-29", "1900-02-29", "2021-02-30", "2020-13-01", "2020-00-10", "1678-01-01", "2261-12-31", "1677-12-31",
            "2262-06-01", "0099-01-01", "2020-1-5", "20200105", "2020-01-05T", "２０２０-01-05", " 2020-01-05", "2020-06-15 24:00:00",
            "2020-06-15 23:59:59", "2020-06-15T07:08:09", "2020-06-15 07:08", "NA", "", None]
    texts = [s.strftime(fmt) for s in stamps]
    feature = DateFeature(DateConfig(name="d", format=fmt, parts=ALL_PARTS))
    feature.fit(pd.Series(texts[:200]), FitContext(clean=CleanConfig(), report=CleaningReport(rows_in=200)))
    accepted = 0
    for text in texts + edge:
        fast = feature.transform_values([text])
        if fast is None:
            continue
        accepted += 1
        np.testing.assert_array_equal(fast, feature.transform(pd.Series([text], dtype=object)), err_msg=f"{fmt} {text!r}")
    assert accepted >= len(texts)  # every well-formed date took the fast path
    assert feature.transform_values(["2021-02-30"]) is None and feature.transform_values([20200105]) is None
    many = texts[:40] + [None, "NA"]
    np.testing.assert_array_equal(feature.transform_values(many), feature.transform(pd.Series(many, dtype=object)))


@pytest.mark.parametrize("fmt", ["%m/%d/%y", "%d.%m.%Y", "%Y年%m月%d日", "%d/%m/%Y %H:%M"])
def test_other_formats_take_the_cached_pandas_parse_and_equal_the_column_path(fmt):
    """Non-ISO formats (penguins' "11/11/07"): each text parsed alone by pandas and cached, which
    must equal the column path row by row, junk and missing values included."""
    rng = np.random.default_rng(1)
    stamps = pd.Timestamp("1990-01-01") + pd.to_timedelta(rng.integers(0, 40 * 365, 300), unit="D") \
        + pd.to_timedelta(rng.integers(0, 86400, 300), unit="s")
    texts = [s.strftime(fmt) for s in stamps]
    feature = DateFeature(DateConfig(name="d", format=fmt, parts=ALL_PARTS))
    feature.fit(pd.Series(texts[:200]), FitContext(clean=CleanConfig(), report=CleaningReport(rows_in=200)))
    mixed = texts[:60] + ["junk", "13/45/99", "NA", "", None, " " + texts[0] + " "] + texts[:5]
    fast = feature.transform_values(mixed)
    assert fast is not None
    np.testing.assert_array_equal(fast, feature.transform(pd.Series(mixed, dtype=object)))
    junk = feature.transform_values(["junk"])
    np.testing.assert_array_equal(junk, feature.transform_values([None]))  # unparsable → the fitted fill
    assert feature.transform_values([20200105]) is None  # non-text: pandas decides
    unguessed = DateFeature(DateConfig(name="d", parts=ALL_PARTS))
    unguessed.state = dict(feature.state, format=None)
    assert unguessed.transform_values(texts[:3]) is None  # no fitted format: pandas guesses per column


def constructor_frame(predictor, data) -> pd.DataFrame:
    """What ``predict`` answered before its output fast path: pandas' own constructor."""
    columns, index = predictor._predict_columns(data)
    return pd.DataFrame(columns, index=index)


def test_output_frame_is_what_the_pandas_constructor_builds(penguins, table, make_mixed):
    """Text labels (pandas' str dtype), numeric labels, regression, a custom index. (Error rows, from
    unreadable images, keep the constructor: tests/features/test_image.py.)"""
    frame = make_mixed(rows=120)
    numeric = frame.assign(level=np.where(frame["label"] == "yes", 3, 7)).drop(columns=["label"])
    regression = frame.drop(columns=["label"])
    models = [penguins[0], table[0],
              Pipeline(target="level", overrides=FAST).fit(numeric).predictor_,
              Pipeline(target="price", overrides=FAST).fit(regression).predictor_]
    for predictor, data in zip(models, [penguins[1], table[1], numeric, regression]):
        for rows in (data.head(1), data.iloc[5:9].set_index(pd.Index(list("abcd"))), data.head(64)):
            got = predictor.predict(rows)
            pd.testing.assert_frame_equal(got, constructor_frame(predictor, rows), check_exact=True)
            assert list(got.index) == list(rows.index)
    assert models[2].predict(numeric.head(2))["level_prediction"].dtype == np.int64
    assert str(models[0].predict(penguins[1].head(1))["Species_prediction"].dtype) == str(pd.Series(["a"]).dtype)


def test_column_values_read_every_dtype_as_the_object_matrix_does(monkeypatch):
    frame = pd.DataFrame({
        "text": pd.Series(["a", None, "中文"], dtype="str"), "object": pd.Series([1, "b", None], dtype=object),
        "float": [1.5, np.nan, -0.0], "int": [1, 2, 3], "bool": [True, False, True],
        "nullable": pd.Series([1, None, 3], dtype="Int64"), "when": pd.to_datetime(["2020-01-02", None, "2021-03-04"]),
    })
    matrix = frame.to_numpy(dtype=object)
    want = [matrix[:, j].tolist() for j in range(matrix.shape[1])]
    got = featureset_module.column_values(frame)
    for column, a, b in zip(frame.columns, got, want):
        assert [type(v) for v in a] == [type(v) for v in b], column
        assert all(same_value(x, y) for x, y in zip(a, b)), column
    category = frame.astype({"text": "category"})
    assert featureset_module.column_values(category) is None  # load_table's job: the usual path
    # numbers consolidated in 2-D blocks (one per dtype), read block by block; one row of such a frame
    blocks = pd.concat([pd.DataFrame(np.arange(12.0).reshape(3, 4), columns=list("abcd")), frame], axis=1)
    blocks = blocks[["text", "b", "int", "a", "float", "nullable", "d", "c", "bool", "object"]]._consolidate()
    assert any(block.values.ndim == 2 and block.values.shape[0] > 1 for block in blocks._mgr.blocks)
    for part in (blocks, blocks.iloc[[1]]):
        matrix = part.to_numpy(dtype=object)
        got = featureset_module._block_values(part)
        assert got is not None
        for j, column in enumerate(got):
            assert [type(v) for v in column] == [type(v) for v in matrix[:, j].tolist()], part.columns[j]
            assert all(same_value(x, y) for x, y in zip(column, matrix[:, j].tolist())), part.columns[j]
    assert featureset_module._block_values(frame) is None  # dates: the per-column path
    monkeypatch.delattr(pd.DataFrame, "_iter_column_arrays")  # a pandas without the private reader
    fallback = featureset_module.column_values(frame)
    assert all(same_value(x, y) and type(x) is type(y) for a, b in zip(fallback, want) for x, y in zip(a, b))
    assert featureset_module.column_values(category) is None


def same_value(x, y) -> bool:
    if x is pd.NA or y is pd.NA:
        return x is y
    return x == y or (x != x and y != y)


@pytest.mark.parametrize("unclipped_copy", [False, True])
def test_number_block_equals_each_feature_on_its_own(unclipped_copy):
    """Plain number features share one matrix op (``NumberBlock``); interleaved with ones that keep
    their own path (indicator, bins, quantile), every output equals the pandas path's, bit for bit.
    With an unclipped copy for the ensemble's trees (clean.outliers: auto), that matrix too."""
    from forgeml.config import NumberFeature as NumberConfig
    from forgeml.features.featureset import UNCLIPPED_KEY, FeatureSet
    from forgeml.features.number import NumberFeature
    from forgeml.features.target import ClassTarget

    rng = np.random.default_rng(3)
    configs = [NumberConfig(name="z"), NumberConfig(name="ind", missing="indicator"), NumberConfig(name="mm", scaling="minmax"),
               NumberConfig(name="bins", bins=4), NumberConfig(name="raw", scaling="none"), NumberConfig(name="q", scaling="quantile"),
               NumberConfig(name="mean", missing="mean")]
    train = pd.DataFrame({c.name: np.where(rng.random(300) < 0.1, np.nan, rng.normal(50, 10, 300)) for c in configs})
    train.loc[0, "z"] = 1e6  # an outlier: clipping limits are fitted
    train["y"] = rng.integers(0, 2, 300).astype(str)
    features = FeatureSet([NumberFeature(c) for c in configs], ClassTarget("y"))
    features.fit(train, FitContext(clean=CleanConfig(), report=CleaningReport(rows_in=300), unclipped_copy=unclipped_copy))
    block, members = features._number_block()
    assert block is not None and block.names == ["z", "mm", "raw", "mean"] and members == [0, 2, 4, 6]
    rows = [{"z": 1e9, "ind": None, "mm": -5, "bins": 3.5, "raw": 7, "q": None, "mean": None},
            {"z": None, "ind": 1.5, "mm": 2**40, "bins": None, "raw": -1e-300, "q": 60.0, "mean": 49.5}]
    fast = features.transform_records(rows)
    slow = features.transform(pd.DataFrame(rows, dtype=object).astype(float))
    assert fast.keys() == slow.keys() and (UNCLIPPED_KEY in fast) == unclipped_copy
    if unclipped_copy:  # only the clipped column differs: z (1e9) as it is, scaled
        differs = np.flatnonzero((fast[UNCLIPPED_KEY] != fast["dense"]).any(axis=0))
        assert differs.tolist() == [0] and fast[UNCLIPPED_KEY][0, 0] > 1e3 > fast["dense"][0, 0]
    for key in fast:
        np.testing.assert_array_equal(fast[key], slow[key], err_msg=key)
    assert features.transform_records([dict(rows[0], mm="5")]) is None  # text in a blocked column: pandas parses it
    assert features.transform_records([dict(rows[0], raw=True)]) is None
    # all Python floats and ints (a numeric frame's values): one matrix check instead of one per value, same bits
    plain = [{"z": 1e9, "ind": 1.5, "mm": -5, "bins": 3.5, "raw": 7, "q": 60.0, "mean": float("nan")},
             {"z": 3.0, "ind": 2.0, "mm": 2**40, "bins": 1.0, "raw": 1e20, "q": 1.0, "mean": -1e-300}]
    fast = features.transform_records(plain)
    slow = features.transform(pd.DataFrame(plain, dtype=object).astype(float))
    for key in fast:
        np.testing.assert_array_equal(fast[key], slow[key], err_msg=key)
    assert features.transform_records([dict(plain[0], z=float("inf"))]) is None  # pandas reads inf in a text column as a word
    assert features.transform_records([dict(plain[0], raw=2**70)]) is None  # too large for int64: pandas decides
    assert features.transform_records([dict(plain[0], raw=-float("inf"))]) is None
