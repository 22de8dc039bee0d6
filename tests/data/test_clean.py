"""Cleaning: duplicates, missing targets, text repair, outlier limits and the drop action."""
from __future__ import annotations

import json
import math
import time

import numpy as np
import pandas as pd
import pytest

from forgeml.data.clean import (
    CleaningReport,
    drop_duplicates,
    drop_missing_target,
    drop_outlier_rows,
    outlier_limits,
    repair_text,
    repair_text_columns,
)
from forgeml.errors import ConfigError


def _report(df: pd.DataFrame) -> CleaningReport:
    return CleaningReport(rows_in=len(df))


# ----------------------------------------------------------------------------- rows
def test_drop_duplicates_counts_and_keeps_first() -> None:
    df = pd.DataFrame({"a": [1, 1, 2, 1, 3], "b": ["x", "x", "y", "z", "w"]})
    original = df.copy()
    report = _report(df)
    out = drop_duplicates(df, report)
    assert report.duplicates_dropped == 1
    assert report.rows_out == 4
    assert out["b"].tolist() == ["x", "y", "z", "w"]
    assert out.index.tolist() == [0, 1, 2, 3]
    pd.testing.assert_frame_equal(df, original)  # the input is never modified
    assert "dropped 1 exact duplicate row" in report.summary_lines()


def test_drop_duplicates_with_unhashable_cells() -> None:
    df = pd.DataFrame({"tags": [["a"], ["a"], ["b"]], "y": [1, 1, 2]})
    report = _report(df)
    assert len(drop_duplicates(df, report)) == 2
    assert report.duplicates_dropped == 1


def test_drop_missing_target_counts_na_tokens() -> None:
    # In a numeric target "NA" and "null" mean missing; in a text target they may be real classes
    # (infer_task counts them as classes too), so only blanks are missing there.
    numeric = pd.DataFrame({"x": range(6), "y": ["1.5", None, "NA", "2", " null ", ""]})
    assert drop_missing_target(numeric, ["y"], _report(numeric))["y"].tolist() == ["1.5", "2"]
    df = pd.DataFrame({"x": range(6), "y": ["a", None, "NA", "b", " null ", ""]})
    report = _report(df)
    out = drop_missing_target(df, ["y"], report)
    assert out["y"].tolist() == ["a", "NA", "b", " null "]
    df = df.iloc[[0, 1, 3, 5]].reset_index(drop=True)
    report = _report(df)
    out = drop_missing_target(df, ["y"], report)
    assert out["y"].tolist() == ["a", "b"]
    assert report.target_missing_dropped == 2
    assert report.rows_out == 2
    assert "dropped 2 rows with a missing target 'y'" in report.messages


def test_drop_missing_target_numeric() -> None:
    df = pd.DataFrame({"x": range(4), "y": [1.0, np.nan, 3.0, 0.0]})
    report = _report(df)
    out = drop_missing_target(df, ["y"], report)
    assert out["y"].tolist() == [1.0, 3.0, 0.0]
    assert report.messages == ["dropped 1 row with a missing target 'y'"]


def test_nothing_dropped_leaves_no_message() -> None:
    df = pd.DataFrame({"x": [1, 2], "y": ["a", "b"]})
    report = _report(df)
    drop_duplicates(df, report)
    drop_missing_target(df, ["y"], report)
    assert report.messages == []
    assert report.summary_lines() == ["2 rows in, 2 rows out"]


# ----------------------------------------------------------------------------- text
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("hello\x1a\x1a\x1a\x1a world", "hello world"),
        ("caf\u00c3\u00a9", "café"),  # UTF-8 read as Latin-1
        ("it\u00e2\u20ac\u2122s", "it’s"),  # UTF-8 read as cp1252
        ("\u00c3\u0192\u00c2\u00a9t\u00c3\u0192\u00c2\u00a9", "été"),  # mangled twice
        ("broken \ufffd char", "broken char"),
        ("机器学习很有趣。", "机器学习很有趣。"),
        ("café crème", "café crème"),  # correct Latin text is not "fixed"
        ("  too   many    spaces  ", "too many spaces"),
        ("line one\r\n\r\n   line two", "line one\nline two"),
        ("ＦＵＬＬ width", "FULL width"),  # NFKC
        ("tab\tkept", "tab\tkept"),
    ],
)
def test_repair_text_cells(raw: str, expected: str) -> None:
    repaired, n_changed = repair_text(pd.Series([raw, "plain"], dtype=object))
    assert repaired.tolist() == [expected, "plain"]
    assert n_changed == int(raw != expected)


def test_repair_text_keeps_missing_and_non_strings() -> None:
    series = pd.Series(["ok\x00", None, 3, np.nan], dtype=object)
    repaired, n_changed = repair_text(series)
    assert n_changed == 1
    assert repaired[0] == "ok" and repaired[1] is None and repaired[2] == 3 and math.isnan(repaired[3])
    assert series[0] == "ok\x00"  # the input is never modified


def test_repair_text_with_repeated_index_labels() -> None:
    series = pd.Series(["fine", "x\x1a"], index=[7, 7])
    repaired, n_changed = repair_text(series)
    assert n_changed == 1 and repaired.tolist() == ["fine", "x"]


def test_repair_text_leaves_numbers_alone() -> None:
    series = pd.Series([1.5, 2.5])
    repaired, n_changed = repair_text(series)
    assert n_changed == 0 and repaired.tolist() == [1.5, 2.5]


def test_repair_text_columns_records_counts() -> None:
    df = pd.DataFrame({"text": ["caf\u00c3\u00a9", "fine", "x\x1a"], "n": [1, 2, 3]})
    report = _report(df)
    out = repair_text_columns(df, ["text", "absent"], report)
    assert out["text"].tolist() == ["café", "fine", "x"]
    assert df["text"][0] == "caf\u00c3\u00a9"
    assert report.text_repaired == {"text": 2}
    assert any("2 cells of 'text'" in line for line in report.summary_lines())


def test_full_width_punctuation_is_counted_as_normalised_not_broken() -> None:
    df = pd.DataFrame({"c": ["上海，浦东", "北京\u3000", "时间：上午", "ＡＢ", "too  many", "caf\u00c3\u00a9", "x\x1a", "ok"]})
    report = _report(df)
    out = repair_text_columns(df, ["c"], report)
    assert out["c"].tolist() == ["上海,浦东", "北京", "时间:上午", "AB", "too many", "café", "x", "ok"]
    assert report.text_repaired == {"c": 2} and report.text_normalized == {"c": 5}
    assert report.messages == ["repaired broken characters in 2 cells of 'c'",
                               "normalised full-width punctuation, letters or spacing in 5 cells of 'c' (harmless)"]
    plain = _report(df)
    repair_text_columns(df.head(2), ["c"], plain)
    assert plain.text_repaired == {} and not any("broken" in line for line in plain.summary_lines())


def test_repair_text_is_fast_on_100k_rows() -> None:
    values = ["an ordinary ascii sentence"] * 95_000 + ["caf\u00c3\u00a9 \x1a"] * 5_000
    series = pd.Series(values)
    start = time.perf_counter()
    repaired, n_changed = repair_text(series)
    elapsed = time.perf_counter() - start
    assert n_changed == 5_000
    assert repaired.iloc[-1] == "café"
    assert elapsed < 2.0, f"repair_text took {elapsed:.2f}s on 100k rows"


# ----------------------------------------------------------------------------- outliers
def test_outlier_limits_zscore() -> None:
    values = np.array([1.0, 2.0, 3.0, 4.0, 5.0, np.nan])
    low, high = outlier_limits(values, "zscore", 2.0)
    std = np.std([1, 2, 3, 4, 5])  # population std, NaN ignored
    assert low == pytest.approx(3 - 2 * std)
    assert high == pytest.approx(3 + 2 * std)


def test_outlier_limits_iqr() -> None:
    values = pd.Series([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0])  # Q1 = 3, Q3 = 7
    assert outlier_limits(values, "iqr", 1.5) == pytest.approx((3 - 6, 7 + 6))


def test_outlier_limits_degenerate_spread() -> None:
    assert outlier_limits(np.full(10, 4.0), "zscore", 3.0) == (-math.inf, math.inf)
    assert outlier_limits(np.array([0, 0, 0, 0, 0, 0, 100.0]), "iqr", 3.0) == (-math.inf, math.inf)
    assert outlier_limits(np.array([np.nan, np.nan]), "iqr", 3.0) == (-math.inf, math.inf)


def test_outlier_limits_unknown_method() -> None:
    with pytest.raises(ConfigError, match="unknown outlier method"):
        outlier_limits(np.arange(5.0), "mad", 3.0)  # type: ignore[arg-type]


def test_drop_outlier_rows() -> None:
    train = pd.DataFrame({"a": [*range(1, 10), 1000], "b": [*range(10, 19), 11], "y": range(10)})
    numbers = {"a": train["a"].to_numpy(float), "b": np.array([*range(10, 18), np.nan, -500.0])}
    report = _report(train)
    out = drop_outlier_rows(train, ["a", "b"], numbers, "iqr", 1.5, report)
    assert out["y"].tolist() == list(range(9))  # row 9 is outlying in both columns: counted once
    assert report.outlier_rows_dropped == 1
    assert report.rows_out == 9
    assert report.outliers["a"]["dropped"] == 1 and report.outliers["a"]["method"] == "iqr"
    assert report.outliers["b"]["dropped"] == 1
    assert len(train) == 10


def test_record_outliers_and_missing_make_json() -> None:
    report = CleaningReport(rows_in=5)
    report.record_outliers("x", "zscore", -math.inf, np.float64(2.5), clipped=3)
    report.record_missing("x", np.int64(2), "median", np.float64(1.25))
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["outliers"]["x"] == {"method": "zscore", "low": None, "high": 2.5, "clipped": 3}
    assert data["missing"]["x"] == {"count": 2, "strategy": "median", "value": 1.25}
    lines = report.summary_lines()
    assert any("clipped 3 outlying values of 'x'" in line for line in lines)
    assert any("filled 2 missing values in 'x' with the median (1.25)" in line for line in lines)
