"""Bad-input table: answers that were silently wrong (issue 18, items 1-5). Each case now
trains to a correct result with a ``data:`` line saying what was done (an identifier dropped, a
decimal-comma target read as numbers, missingness kept as information, overlapping rows dropped, a
leak named) or fails with one clear line. Harness: tests/e2e/bad_input.py.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.e2e.bad_input import Outcome, assert_one_clear_line, assert_one_line_or_result, cases_of, start_cases, train_args


def _quick(file: str, target: str, *extra: str) -> list:
    return [*train_args(file, target), "--model", "mlp", "--set", "train.epochs=3", *extra]


def case_row_number_sorted_by_class(folder, bundle, frame):
    # pandas' to_csv with its index, of a frame sorted by the label: the row number predicts the class
    frame.sort_values("label").reset_index(drop=True).to_csv(folder / "data.csv")
    return _quick("data.csv", "label")


def _comma_prices(frame: pd.DataFrame) -> pd.DataFrame:
    # a German export: semicolons, and "3101,66" prices; read as text, they were 60 classes
    return frame.assign(price=[f"{value * 60:.2f}".replace(".", ",") for value in frame["price"]])


def case_decimal_comma_target(folder, bundle, frame):
    _comma_prices(frame).to_csv(folder / "data.csv", index=False, sep=";")
    return _quick("data.csv", "price")


def case_decimal_comma_target_told_regression(folder, bundle, frame):
    _comma_prices(frame).to_csv(folder / "data.csv", index=False, sep=";")
    return _quick("data.csv", "price", "--set", "task=regression")


def case_a_class_per_row(folder, bundle, frame):
    frame.assign(order=[f"A-{i:04d}" for i in range(len(frame))]).to_csv(folder / "data.csv", index=False)
    return _quick("data.csv", "order")


def case_missing_as_information(folder, bundle, frame):
    rng = np.random.default_rng(7)
    yes = (frame["label"] == "yes").to_numpy()
    alley = rng.choice(["Grvl", "Pave"], len(frame)).astype(object)
    alley[rng.random(len(frame)) < 0.9] = None  # 90% blank: no alley, not the commoner paving
    bonus = rng.normal(100, 10, len(frame)).round(1)
    bonus[yes & (rng.random(len(frame)) < 0.8)] = np.nan  # blank mostly where the label is yes
    frame.assign(alley=alley, bonus=bonus).to_csv(folder / "data.csv", index=False)
    return _quick("data.csv", "label")


def case_test_file_overlapping_training(folder, bundle, frame):
    frame.iloc[:50].to_csv(folder / "train.csv", index=False)
    frame.iloc[35:].to_csv(folder / "test.csv", index=False)  # 15 rows in both files
    return _quick("train.csv", "label", "--set", "data.split.test_path=test.csv")


def case_a_column_derived_from_the_target(folder, bundle, frame):
    # who checked the order, known only once its label was: a leak that looks like a perfect feature
    frame.assign(checked_by=frame["label"].map({"yes": "anna", "no": "ben"})).to_csv(folder / "data.csv", index=False)
    return [*train_args("data.csv", "label"), "--model", "gbm", "--set", "model.text_columns=ignore"]  # the leak alone, without the review text's components


CASES = cases_of(globals())


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory, trained, cli, cli_pool, make_mixed) -> dict:
    return start_cases(CASES, tmp_path_factory, trained.bundle, cli, cli_pool, make_mixed(rows=60, seed=5))


@pytest.mark.parametrize("name", list(CASES))
def test_every_case_is_one_error_line_or_a_result(outcomes, name):
    assert_one_line_or_result(outcomes[name].result())


# ----------------------------------------------------------------------------- silent wrong answers
def _trained(outcome: Outcome) -> tuple[str, Path]:
    """The run's stderr (its ``data:`` lines) and bundle, after checking it succeeded, no traceback."""
    result = outcome.result
    assert result.returncode == 0 and "Traceback" not in result.stderr, result
    assert {k: v for k, v in outcome.after.items() if k in outcome.before} == outcome.before, "an input changed"
    bundles = list(outcome.folder.glob("runs/*/bundle"))
    assert len(bundles) == 1, result
    return " ".join(result.stderr.split()), bundles[0]  # rich wraps long data: lines


def _config(bundle: Path) -> dict:
    import yaml

    return yaml.safe_load((bundle / "config.yaml").read_text(encoding="utf-8"))


def test_a_row_number_column_is_dropped_with_a_data_line(outcomes):
    stderr, bundle = _trained(outcomes["row_number_sorted_by_class"].result())
    assert "data: dropped column 'Unnamed: 0': looks like a row number" in stderr
    config = _config(bundle)
    assert config["data"]["drop_reasons"]["Unnamed: 0"].startswith("looks like a row number")
    assert "Unnamed: 0" not in [feature["name"] for feature in config["features"]]


@pytest.mark.parametrize("case", ["decimal_comma_target", "decimal_comma_target_told_regression"])
def test_a_decimal_comma_target_is_a_regression(outcomes, case):
    outcome = outcomes[case].result()
    stderr, bundle = _trained(outcome)
    assert json.loads((bundle / "manifest.json").read_text())["task"] == "regression"
    metrics = json.loads((bundle / "metrics.json").read_text())["test"]
    assert {"r2", "mae"} <= set(metrics) and 1 < metrics["mae"] < 3000  # in the file's units, not 1000x off


def test_a_class_per_row_fails_instead_of_an_empty_metrics_table(outcomes):
    assert_one_clear_line(outcomes["a_class_per_row"].result(), "'order'", "nothing left to evaluate on", "task: regression")


def test_missing_values_that_tell_something_are_kept_as_information(outcomes):
    stderr, bundle = _trained(outcomes["missing_as_information"].result())
    features = {feature["name"]: feature for feature in _config(bundle)["features"]}
    assert features["alley"]["type"] == "category" and "missing is its own level" in features["alley"]["note"]
    assert "'bonus' is missing in" in stderr and "a was-missing indicator keeps that information" in stderr


def test_rows_in_both_the_training_and_the_test_file_leave_training(outcomes):
    stderr, bundle = _trained(outcomes["test_file_overlapping_training"].result())
    said = "dropped 15 training row(s) that are also in the test data (test.csv)"
    assert f"data: {said}" in stderr and said in (bundle / "report.html").read_text(encoding="utf-8")
    assert json.loads((bundle / "metrics.json").read_text())["test"]["n"] == 25  # the test file whole


def test_a_dominant_input_is_reported_as_a_possible_leak(outcomes):
    stderr, bundle = _trained(outcomes["a_column_derived_from_the_target"].result())
    assert "data: possible leak: 'checked_by' holds 100% of the permutation importance" in stderr
    report = (bundle / "report.html").read_text(encoding="utf-8")
    assert '<section id="warnings">' in report and "possible leak: &#x27;checked_by&#x27;" in report
