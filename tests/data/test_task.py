"""The task from the target: targets read by the features' number rules (decimal commas, units),
a class per row that is really a quantity, and a split with nothing to evaluate on failing."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forgeml.config import SplitConfig
from forgeml.data.split import split_frame
from forgeml.data.task import infer_task, target_numbers
from forgeml.errors import DataError
from forgeml.features.target import RegressionTarget, target_from_json

ROWS = 120


def _comma(values: np.ndarray, suffix: str = "") -> list[str]:
    return [f"{value:.2f}".replace(".", ",") + suffix for value in values]


@pytest.fixture
def prices() -> np.ndarray:
    return np.random.default_rng(0).uniform(1000, 5000, ROWS).round(2)


@pytest.mark.parametrize("suffix", ["", " €"])
def test_a_decimal_comma_target_is_regression_and_reads_as_numbers(prices: np.ndarray, suffix: str) -> None:
    df = pd.DataFrame({"x": np.arange(ROWS) % 7, "price": _comma(prices, suffix)})
    assert infer_task(df, ["price"]) == "regression"
    np.testing.assert_allclose(target_numbers(df["price"]), prices)


def test_thousands_with_decimal_commas_and_whole_classes_keep_their_reading() -> None:
    df = pd.DataFrame({"amount": ["3.101,66", "1.200,00", "12,5", "7,25"] * 10,  # German thousands too
                       "grade": ["1", "2", "3", "2"] * 10})  # whole numbers, few values: classes
    np.testing.assert_allclose(target_numbers(df["amount"])[:4], [3101.66, 1200.0, 12.5, 7.25])
    assert infer_task(df, ["amount"]) == "regression" and infer_task(df, ["grade"]) == "multiclass"


def test_one_row_per_class_that_mostly_reads_as_numbers_is_regression(prices: np.ndarray) -> None:
    values = _comma(prices)
    values[3], values[40] = "about 3000", "n.a. (see notes)"  # typos: not numbers, not NA tokens
    df = pd.DataFrame({"price": values})
    assert infer_task(df, ["price"]) == "regression"
    labels = pd.DataFrame({"code": [f"K{i:04d}" for i in range(ROWS)]})  # one row per class, no numbers
    assert infer_task(labels, ["code"]) == "multiclass"
    small = pd.DataFrame({"y": ["1,5 kg", "2 kg", "x", "y", "z"]})  # tiny tables say nothing
    assert infer_task(small, ["y"]) == "multiclass"


def test_regression_target_keeps_its_decimal_mark_for_later_files(prices: np.ndarray) -> None:
    train = pd.DataFrame({"price": _comma(prices)})
    target = RegressionTarget(["price"])
    target.fit(train)
    assert target.state["decimal"] == [","]
    restored = target_from_json(target.to_json())
    later = pd.DataFrame({"price": ["1.200", "3101,66"]})  # read in the training file's mark: 1200, not 1.2
    np.testing.assert_allclose(restored.raw(later).ravel(), [1200.0, 3101.66])
    np.testing.assert_allclose(target.decode(target.encode(train)).ravel(), prices, rtol=1e-6)
    old_bundle = RegressionTarget(["price"], {"mean": [0.0], "std": [1.0]})  # written before 'decimal' existed
    np.testing.assert_allclose(old_bundle.raw(pd.DataFrame({"price": ["1,200.5"]})).ravel(), [1200.5])


def test_a_target_value_that_is_not_a_number_is_named() -> None:
    target = RegressionTarget(["price"])
    target.fit(pd.DataFrame({"price": ["1,5", "2,5", "3,5"]}))
    with pytest.raises(DataError, match=r"target 'price' value 'about 3' in row 2 is not a number") as caught:
        target.raw(pd.DataFrame({"price": ["1,5", "about 3"]}), source="test split")
    assert caught.value.where == "test split" and caught.value.hint


def test_a_class_per_row_leaves_nothing_to_evaluate_and_fails_clearly() -> None:
    df = pd.DataFrame({"x": np.arange(ROWS), "y": [f"K{i}" for i in range(ROWS)]})
    with pytest.raises(DataError, match="nothing left to evaluate on: each of the 120 classes") as caught:
        split_frame(df, ["y"], "multiclass", SplitConfig())
    assert "task: regression" in caught.value.hint and caught.value.where == "column 'y'"


def test_no_held_out_rows_at_all_fails_clearly() -> None:
    df = pd.DataFrame({"x": np.arange(ROWS), "y": np.arange(ROWS) * 1.5, "part": "train"})
    with pytest.raises(DataError, match="validation and test splits are both empty") as caught:
        split_frame(df, ["y"], "regression", SplitConfig(column="part"))
    assert caught.value.where == "data.split"
