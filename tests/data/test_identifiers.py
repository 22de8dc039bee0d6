"""Identifier columns found by their values (row numbers, shuffled ids), and the leak smell that
a single input dominating the permutation importance gives off."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forgeml.data.infer import drop_notes, infer_features
from forgeml.data.load import load_table
from forgeml.datasets import DEMO
from forgeml.evaluate.importance import announce_dominance, dominance_warning

ROWS = 200


def _kinds(df: pd.DataFrame) -> tuple[dict[str, str], dict[str, str]]:
    features, dropped = infer_features(df, ["y"])
    return {feature.name: feature.type for feature in features}, dropped


def _frame(**columns: object) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"x": rng.normal(size=ROWS), "y": rng.integers(0, 3, ROWS), **columns})


@pytest.mark.parametrize(("name", "values"), [
    ("rownames", np.arange(1, ROWS + 1)),  # R's write.csv
    ("Unnamed: 0", np.arange(ROWS)),  # pandas' to_csv with its index
    ("row", np.random.default_rng(1).permutation(ROWS) + 1000),  # a shuffled id: dense, unique
    ("ref", np.random.default_rng(2).permutation(int(ROWS * 1.6))[:ROWS]),  # shuffled, with gaps
    ("serial", np.sort(np.random.default_rng(3).choice(ROWS * 3 // 2, ROWS, replace=False))),  # sorted, with gaps
    ("Sample Number", np.concatenate([np.arange(1, 81), np.arange(1, 71), np.arange(1, 51)])),  # counters, restarting
    ("code", [str(v) for v in np.random.default_rng(4).permutation(ROWS)]),  # the same, stored as text
])
def test_row_numbers_and_ids_are_dropped_by_their_values(name: str, values: object) -> None:
    kinds, dropped = _kinds(_frame(**{name: values}))
    assert name in dropped and name not in kinds, kinds
    assert "row number" in dropped[name] or "identifier" in dropped[name]
    assert drop_notes({name: dropped[name]}) == [f"dropped column {name!r}: {dropped[name]}"]


@pytest.mark.parametrize(("name", "values"), [
    ("price", np.round(np.random.default_rng(5).lognormal(10, 1, ROWS), 2)),  # unique floats
    ("sqft", np.random.default_rng(6).choice(np.arange(400, 9000), ROWS, replace=False)),  # unique, sparse, unordered
    ("sorted_price", np.sort(np.random.default_rng(7).normal(5e5, 1e5, ROWS))),  # sorted floats
    ("euros", np.sort(np.random.default_rng(9).choice(10**6, ROWS, replace=False))),  # sorted, unique, sparse
    ("year", np.arange(1820, 1820 + ROWS)),  # a time series' year counts up by one: time, not a row number
    ("rooms", np.random.default_rng(8).integers(1, 9, ROWS)),  # repeating small integers
])
def test_real_numbers_that_happen_to_be_unique_or_ordered_are_kept(name: str, values: object) -> None:
    kinds, dropped = _kinds(_frame(**{name: values}))
    assert kinds.get(name) == "number" and name not in dropped, dropped


def test_penguins_sample_number_is_dropped_and_the_measurements_kept() -> None:
    frame = load_table(DEMO.path)
    features, dropped = infer_features(frame, [DEMO.target])
    assert "counting by 1 from row to row, starting again 2 time(s)" in dropped["Sample Number"]
    kinds = {feature.name: feature.type for feature in features}
    assert {"Culmen Length (mm)", "Body Mass (g)", "Flipper Length (mm)"} <= {n for n, k in kinds.items() if k == "number"}


def test_a_dominant_input_is_a_leak_smell_and_a_strong_one_is_not() -> None:
    penguins = {"Culmen Length (mm)": 0.449, "Date Egg": 0.116, "Delta 13 C": 0.057, "Flipper": 0.048, "Island": 0.043}
    assert dominance_warning(penguins) is None  # 61% of the total, 3.9x the next: a strong feature
    assert dominance_warning({"alcalinity_of_ash": 0.91, "ash": 0.14, "magnesium": 0.12}) is None  # 78%, 6.5x
    leak = {"id": 0.9, "RI": 0.05, "Na": 0.03, "Mg": 0.0}
    warning = dominance_warning(leak)
    assert warning and warning.startswith("possible leak: 'id' holds 92%") and "18× the next input ('RI')" in warning
    assert "over 100× the next input" in dominance_warning({"id": 0.9, "RI": 0.001, "Na": 0.0})
    assert dominance_warning({"a": 0.9, "b": 0.0}) is None  # two inputs: one often carries it all
    assert dominance_warning({"a": 0.01, "b": 0.0, "c": 0.0}) is None  # nothing matters much
    assert dominance_warning(None) is None and dominance_warning({}) is None


def test_the_leak_smell_goes_where_the_data_lines_go() -> None:
    class Log:
        notes: list[str] = []

        def on_data_prepared(self, notes: list[str]) -> None:
            self.notes.extend(notes)

    log = Log()
    assert announce_dominance({"a": 0.2, "b": 0.1, "c": 0.1}, [log, object()]) is None and log.notes == []
    warning = announce_dominance({"id": 0.9, "b": 0.01, "c": 0.0}, [log, object()])
    assert warning and log.notes == [warning]


def test_the_report_shows_the_leak_smell_under_the_metrics() -> None:
    from forgeml.evaluate.report import ReportInputs, render_report

    inputs = ReportInputs(title="t", task="binary", targets=["y"], model_description="mlp", metrics={"f1_macro": 0.99},
                          feature_importance={"id": 0.9, "b": 0.01, "c": 0.0})
    page = render_report(inputs)
    assert '<section id="warnings">' in page and "possible leak: &#x27;id&#x27;" in page
    assert page.index('id="metrics"') < page.index('id="warnings"')
    inputs.feature_importance = {"a": 0.2, "b": 0.1, "c": 0.1}
    assert '<section id="warnings">' not in render_report(inputs)
