"""Inference: numbers and dates in text, the task from the target, a type (or a reason) per column."""
from __future__ import annotations

import uuid
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forgeml.data.infer import (
    NA_TOKENS,
    decimal_mark,
    guess_date_format,
    infer_features,
    infer_task,
    to_datetime,
    to_numeric,
    unparsable_mask,
)
from forgeml.data.load import load_table
from forgeml.errors import ConfigError, DataError

BIRDS = Path("/work/shared/data/birds.csv")
ROWS = 60


def _types(df: pd.DataFrame, targets: list[str] | None = None) -> tuple[dict[str, str], dict[str, str]]:
    features, dropped = infer_features(df, targets or [])
    return {feature.name: feature.type for feature in features}, dropped


@pytest.fixture
def mixed() -> pd.DataFrame:
    """One column per rule, 60 rows, deterministic."""
    rng = np.random.default_rng(0)
    words = "the engine was hit by a large bird during the climb and the crew returned safely".split()
    return pd.DataFrame({
        "row": np.arange(ROWS),
        "uuid": [str(uuid.UUID(int=int(i) + 1)) for i in rng.permutation(ROWS)],
        "customer_id": [f"N{i}A{i % 7}" for i in range(ROWS)],
        "constant": ["same"] * ROWS,
        "nothing": [np.nan] * ROWS,
        "flag": rng.choice(["yes", "no"], ROWS),
        "price": [f"{v:,}" for v in rng.integers(1_000, 5_000_000, ROWS)],
        "weight": rng.normal(70, 10, ROWS),  # all different, but a measurement
        "count": rng.choice(np.arange(0, 10_000, 7), ROWS, replace=False),  # unique whole numbers, unordered
        "when": [f"{m}/{d}/{y} 0:00:00" for m, d, y in
                 zip(rng.integers(1, 13, ROWS), rng.integers(1, 29, ROWS), rng.integers(1990, 2020, ROWS))],
        "remarks": [" ".join(rng.choice(words, 8)) for _ in range(ROWS)],
        "answer": rng.choice(["None", "NA", "yes", "maybe"], ROWS),
        "target": rng.integers(0, 3, ROWS),
    })


# ----------------------------------------------------------------------------- numbers
def test_na_tokens() -> None:
    assert {"", "NA", "N/A", "n/a", "NaN", "nan", "null", "NULL", "None", "none", "-", "?", "#N/A"} <= NA_TOKENS


def test_to_numeric_parses_numbers_written_as_text() -> None:
    values = pd.Series(["1,234,567", " 1 234 ", "$5", "7%", "(3)", "-€2.5", "1e3", "12",
                        "NA", "-", None, "abc", "1,5", "inf"])
    expected = [1234567, 1234, 5, 7, -3, -2.5, 1000, 12] + [np.nan] * 6
    np.testing.assert_array_equal(to_numeric(values).to_numpy(), np.array(expected, dtype="float64"))
    assert to_numeric(values).dtype == np.float64


@pytest.mark.parametrize(("text", "number"), [
    ("￥1,200", 1200), ("¥3,000", 3000), ("1200元", 1200), ("500円", 500), ("12 €", 12), ("5€", 5),
    ("3.5万", 35_000), ("3.5万元", 35_000), ("1,200万", 12_000_000), ("2亿", 2e8), ("1.2千", 1200), ("500万円", 5e6),
    ("-¥5", -5), (" 8 万 ", 80_000), ("万", np.nan), ("3万5千", np.nan), ("北京", np.nan),
])
def test_to_numeric_reads_money_and_chinese_magnitudes(text: str, number: float) -> None:
    np.testing.assert_array_equal(to_numeric(pd.Series([text, "1"])).to_numpy(), [number, 1.0])


def test_a_column_of_prices_in_yuan_is_a_number() -> None:
    df = pd.DataFrame({"价格": ["￥1,200", "3.5万", "800元", "2亿", "¥99"] * 6})
    assert _types(df) == ({"价格": "number"}, {})


def test_unparsable_mask_flags_text_but_not_missing() -> None:
    values = pd.Series(["1", "NA", None, "abc", "2,000", "", "1,5"])
    assert unparsable_mask(values).tolist() == [False, False, False, True, False, False, True]
    assert not unparsable_mask(pd.Series([1.0, np.nan])).any()


def test_to_numeric_keeps_index_and_passes_numbers_through() -> None:
    numbers = pd.Series([1, 2, 3], index=[10, 20, 30])
    assert to_numeric(numbers).dtype == np.float64 and list(to_numeric(numbers).index) == [10, 20, 30]
    mixed = pd.Series([1, "x", None, "2.5"], dtype=object, index=[5, 6, 7, 8])
    assert to_numeric(mixed).tolist()[::3] == [1.0, 2.5] and list(to_numeric(mixed).index) == [5, 6, 7, 8]


@pytest.mark.parametrize(("values", "mark", "numbers"), [
    (["12,50 €", "1.234,56", "3,5", "1.200", "-7,25"], ",", [12.5, 1234.56, 3.5, 1200.0, -7.25]),  # European
    (["1,234.56", "3.5", "1,200", "12"], ".", [1234.56, 3.5, 1200.0, 12.0]),  # US style stays
    (["1.200", "2.500", "3.000"], ".", [1.2, 2.5, 3.0]),  # nothing proves decimal commas: read as today
    (["1.200", "3,5", "x"], ",", [1200.0, 3.5, np.nan]),  # "3,5" proves the column writes decimal commas
    (["1.234.567,5", "0,25", "12"], ",", [1234567.5, 0.25, 12.0]),
    ([f"{i},{i * 7 % 1000:03d}" for i in range(1, 60)] + ["2,5"], ".",  # English thousands with one typo: not flipped
     [float(f"{i}{i * 7 % 1000:03d}") for i in range(1, 60)] + [np.nan]),  # the typo is missing (counted)
])
def test_the_decimal_mark_is_decided_per_column(values: list, mark: str, numbers: list) -> None:
    column = pd.Series(values, dtype="str")
    assert decimal_mark(column) == mark
    np.testing.assert_array_equal(to_numeric(column, mark).to_numpy(), np.array(numbers, dtype="float64"))
    assert to_numeric(pd.Series(["1.200"]), ",").tolist() == [1200.0]  # one row to predict reads like train


def test_decimal_comma_columns_are_inferred_as_numbers_and_remember_the_mark() -> None:
    frame = pd.DataFrame({"preis": [f"{i},{i % 100:02d} €" for i in range(1, 61)] + ["1.200,00 €"],
                          "y": [i % 2 for i in range(61)]})
    features, _ = infer_features(frame, ["y"])
    (preis,) = [feature for feature in features if feature.name == "preis"]
    assert preis.type == "number" and preis.decimal == "," and "decimal commas" in preis.note
    plain = infer_features(pd.DataFrame({"x": [f"{i},000.{i}" for i in range(1, 61)], "y": [0, 1] * 30}), ["y"])[0]
    assert [feature.decimal for feature in plain if feature.name == "x"] == ["."]


def test_full_width_digits_are_numbers() -> None:
    column = pd.Series(["１２００", "３．５", "－５", "１，２００", "￥１２", "7"], dtype="str")
    assert to_numeric(column).tolist() == [1200.0, 3.5, -5.0, 1200.0, 12.0, 7.0]
    features, _ = infer_features(pd.DataFrame({"n": ["１２００", "３．５", "４", "１，２５０"] * 15, "y": [0, 1] * 30}), ["y"])
    assert [feature.type for feature in features if feature.name == "n"] == ["number"]


# ----------------------------------------------------------------------------- dates
@pytest.mark.parametrize(("values", "fmt"), [
    (["9/30/1990 0:00:00", "11/29/1993 13:05:00", "1/2/2001 0:00:00"], "%m/%d/%Y %H:%M:%S"),
    (["2007-11-11", "2008-01-02", "2010-12-31"], "%Y-%m-%d"),
    (["30/09/1990", "01/02/2001", "25/12/2010"], "%d/%m/%Y"),
    (["2024年3月5日", "2023年12月25日", "2020年1月1日"], "%Y年%m月%d日"),
])
def test_guess_date_format(values: list[str], fmt: str) -> None:
    assert guess_date_format(pd.Series(values + ["NA"])) == fmt


@pytest.mark.parametrize("values", [["2007", "2008", "1999"], ["12", "13", "14"], ["a", "b", "c"], ["N1A1", "N2A2"]])
def test_numbers_and_codes_are_not_dates(values: list[str]) -> None:
    assert guess_date_format(pd.Series(values)) is None


def test_to_datetime_missing_and_bad_values_are_nat_without_warnings() -> None:
    values = pd.Series(["9/30/1990 0:00:00", "NA", None, "junk", "1/2/1991 13:05:00"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parsed = to_datetime(values, None)
        mixed = to_datetime(pd.Series(["2020-01-01", "March 3, 2021", "?"]), None)
    assert parsed.tolist()[0] == pd.Timestamp("1990-09-30") and parsed.tolist()[4] == pd.Timestamp("1991-01-02 13:05")
    assert parsed.isna().tolist() == [False, True, True, True, False]
    assert mixed.isna().tolist() == [False, False, True]


MIXED_DATES = {  # spellings of one date (and ISO times) that a column may mix
    "2021-03-04": "2021-03-04", "2021/3/4": "2021-03-04", "2021年3月4日": "2021-03-04", "04.03.2021": "2021-03-04",
    "2021-3-4": "2021-03-04", "2021-03-04 10:20": "2021-03-04 10:20", "2021-03-04 10:20:30": "2021-03-04 10:20:30",
    "2021-03-04T10:20:30Z": "2021-03-04 10:20:30", "2021-03-04T10:20:30.250+08:00": "2021-03-04 02:20:30.25",
    "13/04/2021": "2021-04-13", "junk": None, "2021-02-30": None,
}


def test_a_column_mixing_date_spellings_parses_every_row() -> None:
    parsed = to_datetime(pd.Series(list(MIXED_DATES) + ["暂无", None]), "%Y-%m-%d")
    expected = [pd.Timestamp(value) if value else pd.NaT for value in MIXED_DATES.values()] + [pd.NaT, pd.NaT]
    assert parsed.tolist() == expected


def test_a_column_mixing_date_spellings_is_a_date() -> None:
    rng = np.random.default_rng(0)
    days = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 900, 200), unit="D")
    spell = ["%Y-%m-%d", "%Y/%-m/%-d", "%Y年%-m月%-d日", "%d.%m.%Y"]
    df = pd.DataFrame({"when": [day.strftime(spell[i % 4]) for i, day in enumerate(days)]})
    (feature,), _ = infer_features(df, [])
    assert feature.type == "date" and "mixed spellings" in feature.note
    assert (to_datetime(df["when"], feature.format) == pd.Series(days)).all()


def test_to_datetime_with_format_and_time_zones() -> None:
    assert to_datetime(pd.Series(["2024年3月5日"]), "%Y年%m月%d日").iloc[0] == pd.Timestamp("2024-03-05")
    aware = to_datetime(pd.Series(["2021-03-04T10:00:00Z", "2021-03-04T10:00:00+02:00"]), None)
    assert aware.tolist() == [pd.Timestamp("2021-03-04 10:00"), pd.Timestamp("2021-03-04 08:00")]
    assert to_datetime(pd.Series([20240305, 20231225]), "%Y%m%d").iloc[0] == pd.Timestamp("2024-03-05")


# ----------------------------------------------------------------------------- task
@pytest.mark.parametrize(("target", "task"), [
    (["a", "b", "a", None], "binary"),
    (["a", "b", "c", "a"], "multiclass"),
    ([0, 1, 1, 0], "binary"),
    ([0, 1, 2, 9], "multiclass"),
    ([0.5, 1.2, 3.3, 4.0], "regression"),
    (list(range(30)), "regression"),  # whole numbers, but too many values for classes
    (["1,234.5", "2,000", "3,500.25", "NA"], "regression"),  # numbers written as text
    (["1,000", "2,000", "3,000", "NA"], "multiclass"),  # whole numbers, few values: classes
    ([1.0, 2.0, 1.0, np.nan], "binary"),
])
def test_infer_task(target: list, task: str) -> None:
    df = pd.DataFrame({"x": range(len(target)), "y": target})
    assert infer_task(df, ["y"]) == task


def test_several_numeric_targets_are_regression_and_text_ones_an_error() -> None:
    df = pd.DataFrame({"a": [1.5, 2.5, 3.5], "b": [1, 2, 3], "c": ["x", "y", "x"]})
    assert infer_task(df, ["a", "b"]) == "regression"
    with pytest.raises(ConfigError, match="'c'"):
        infer_task(df, ["a", "c"])


def test_missing_target_suggests_the_nearest_name() -> None:
    df = pd.DataFrame({"price": [1, 2], "area": [3, 4]})
    with pytest.raises(DataError) as caught:
        infer_task(df, ["prise"])
    assert caught.value.where == "column 'prise'" and "did you mean 'price'?" in str(caught.value)


def test_target_all_missing_or_single_valued_is_an_error() -> None:
    df = pd.DataFrame({"x": [1, 2, 3], "empty": [np.nan] * 3, "y": ["a", "a", None], "n": [2.0, 2.0, 2.0]})
    with pytest.raises(DataError, match="all missing"):
        infer_task(df, ["empty"])
    with pytest.raises(DataError, match="target 'y' has a single value 'a': nothing to learn"):
        infer_task(df, ["y"])
    with pytest.raises(DataError, match="single value 2.0"):
        infer_task(df, ["n"])


def test_a_class_with_one_row_is_not_an_error_here() -> None:
    df = pd.DataFrame({"x": range(5), "y": ["a", "a", "b", "b", "rare"]})
    assert infer_task(df, ["y"]) == "multiclass"


# ----------------------------------------------------------------------------- features
def test_each_rule_on_a_mixed_frame(mixed: pd.DataFrame) -> None:
    types, dropped = _types(mixed, ["target"])
    assert types == {
        "flag": "binary", "price": "number", "weight": "number", "count": "number",
        "when": "date", "remarks": "text", "answer": "category",
    }
    assert set(dropped) == {"row", "uuid", "customer_id", "constant", "nothing"}
    assert "all values missing" in dropped["nothing"] and "constant" in dropped["constant"]
    assert "identifier" in dropped["uuid"] and "row number" in dropped["row"]


def test_features_carry_notes_and_formats(mixed: pd.DataFrame) -> None:
    mixed.loc[3, "price"] = "call us"
    mixed.loc[4, "price"] = "NA"
    features, _ = infer_features(mixed, ["target"])
    by_name = {feature.name: feature for feature in features}
    assert by_name["when"].format == "%m/%d/%Y %H:%M:%S"
    assert "1 value(s) are not numbers" in by_name["price"].note and "'call us'" in by_name["price"].note
    assert "2 missing" in by_name["price"].note  # the NA token and the unparsable value
    assert all(feature.note for feature in features)
    assert "target" not in by_name


def test_none_and_na_strings_are_real_categories(mixed: pd.DataFrame) -> None:
    features, _ = infer_features(mixed, ["target"])
    answer = next(feature for feature in features if feature.name == "answer")
    assert answer.type == "category" and answer.note.startswith("4 distinct values")


def test_numeric_text_with_na_tokens_is_a_number() -> None:
    df = pd.DataFrame({"x": ["1", "2", "NA", "3", "-", "4"] * 5})
    assert _types(df) == ({"x": "number"}, {})


def test_chinese_placeholders_are_missing_in_numbers_and_dates_but_values_in_categories() -> None:
    placeholders = ["暂无", "无", "空", "缺失", "未知", "--"]
    df = pd.DataFrame({
        "面积": (["85", "120", "90", "100"] + placeholders) * 3,
        "日期": (["2021-03-04", "2021-05-06", "2021-07-08", "2022-01-01"] + placeholders) * 3,
        "备注": (["靠近地铁", "南北通透", "精装修", "无"] + placeholders) * 3,
    })
    features, dropped = infer_features(df, [])
    assert {f.name: f.type for f in features} == {"面积": "number", "日期": "date", "备注": "category"} and not dropped
    assert next(f for f in features if f.name == "面积").note == "text parsed as numbers; 18 missing"
    assert to_numeric(df["面积"]).isna().sum() == 18 and not unparsable_mask(df["面积"]).any()
    assert to_datetime(df["日期"], "%Y-%m-%d").isna().sum() == 18
    assert pd.Series(placeholders).isin(NA_TOKENS).all()


def test_small_tables_keep_unique_columns() -> None:
    df = pd.DataFrame({"city": ["a", "b", "c"], "n": [1, 2, 3]})
    assert _types(df)[0] == {"city": "category", "n": "number"}


def test_ids_by_name_and_chinese_id_names() -> None:
    rng = np.random.default_rng(1)
    df = pd.DataFrame({
        "userId": rng.permutation(1000)[:ROWS] * 13,
        "订单编号": [f"D{i:05d}" for i in rng.permutation(ROWS)],
        "valid": rng.integers(0, 5, ROWS),  # ends in "id" but is not an id
    })
    types, dropped = _types(df)
    assert set(dropped) == {"userId", "订单编号"} and types == {"valid": "number"}


def test_nested_json_values_are_dropped() -> None:
    df = pd.DataFrame({"tags": [["a"], ["b", "c"]] * 15, "x": range(30)})
    types, dropped = _types(df)
    assert "nested" in dropped["tags"]


def test_chinese_file_end_to_end(tmp_path: Path) -> None:
    rows = ["城市,价格,评论"]
    reviews = ["这家餐厅的菜很好吃，服务也非常周到", "环境一般，但是价格比较便宜，值得再来", "排队时间太长了，味道还可以吧",
               "老板很热情，推荐大家来尝尝招牌菜", "分量很足，性价比高，下次还会再来"]
    for i in range(40):
        rows.append(f"{['北京', '上海', '广州'][i % 3]},\"{(i + 1) * 1000:,}\",{reviews[i % 5]}{i}")
    path = tmp_path / "zh.csv"
    path.write_bytes(("\n".join(rows) + "\n").encode("gbk"))
    df = load_table(path)
    assert _types(df) == ({"城市": "category", "价格": "number", "评论": "text"}, {})


# ----------------------------------------------------------------------------- real data
def test_breast_cancer_all_numbers_binary_target() -> None:
    from sklearn.datasets import load_breast_cancer

    df = load_breast_cancer(as_frame=True).frame
    types, dropped = _types(df, ["target"])
    assert set(types.values()) == {"number"} and len(types) == 30 and not dropped
    assert infer_task(df, ["target"]) == "binary"


def test_digits_pixels_are_never_categories() -> None:
    from sklearn.datasets import load_digits

    df = load_digits(as_frame=True).frame
    types, dropped = _types(df, ["target"])
    assert len(types) + len(dropped) == 64
    assert set(types.values()) <= {"number", "binary"}  # binary: pixels that are only ever 0 or 1
    assert all(reason.startswith("constant") for reason in dropped.values())
    assert sum(kind == "number" for kind in types.values()) >= 55
    assert infer_task(df, ["target"]) == "multiclass"


def test_diabetes_is_regression() -> None:
    from sklearn.datasets import load_diabetes

    df = load_diabetes(as_frame=True).frame
    types, dropped = _types(df, ["target"])
    assert types["bmi"] == "number" and types["sex"] == "binary" and not dropped
    assert infer_task(df, ["target"]) == "regression"


@pytest.mark.skipif(not BIRDS.exists(), reason="shared birds.csv not available")
def test_birds() -> None:
    df = load_table(BIRDS)
    assert len(df) == 19_302
    types, dropped = _types(df, ["effect"])
    assert types["remarks"] == "text" and types["date"] == "date"
    assert types["height"] == "number" and types["species"] == "category" and not dropped
    assert infer_task(df, ["effect"]) == "multiclass"


def test_large_frame_uses_a_sample_but_exact_counts() -> None:
    rng = np.random.default_rng(0)
    rows = 50_000
    df = pd.DataFrame({"x": rng.normal(size=rows), "c": rng.choice(["a", "b", "c"], rows)})
    df.loc[:99, "x"] = np.nan
    features, _ = infer_features(df, [])
    assert features[0].note == "numeric; 100 missing"
    assert features[1].note == "3 distinct values"


def test_whole_numbers_named_like_an_id_that_repeat_are_categories() -> None:
    df = pd.DataFrame({"store_id": np.arange(ROWS) % 12 * 3, "weight_key": np.linspace(50, 90, ROWS)})
    features, dropped = infer_features(df, [])
    kinds = {feature.name: feature.type for feature in features}
    assert kinds == {"store_id": "category", "weight_key": "number"} and not dropped
    assert "codes, not quantities" in features[0].note
