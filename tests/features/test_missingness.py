"""Missing values as information: a was-missing indicator (numbers, binaries) when the train
split's target differs on the missing rows, and mostly-missing two-valued columns as categories."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forgeml.config import BinaryFeature, CleanConfig, NumberFeature
from forgeml.data.clean import CleaningReport
from forgeml.data.infer import infer_features
from forgeml.features import FitContext, build_feature, feature_from_json
from forgeml.features.featureset import FeatureSet
from forgeml.features.missingness import TrainTarget, informative_missing
from forgeml.features.target import ClassTarget, RegressionTarget

ROWS = 400


def _lot_frontage(seed: int = 0, informative: bool = True) -> pd.DataFrame:
    """A class target and a number that is missing mostly where the class is 'yes' (or at random)."""
    rng = np.random.default_rng(seed)
    label = rng.choice(["no", "yes"], ROWS)
    value = rng.normal(70, 10, ROWS)
    chance = np.where(label == "yes", 0.4, 0.02) if informative else np.full(ROWS, 0.2)
    value[rng.random(ROWS) < chance] = np.nan
    return pd.DataFrame({"frontage": value, "label": label})


def _fit(frame: pd.DataFrame, feature: object, target: object) -> tuple[FeatureSet, CleaningReport]:
    report = CleaningReport(rows_in=len(frame))
    features = FeatureSet([build_feature(feature)], target)
    return features.fit(frame, FitContext(CleanConfig(outliers="none"), report)), report


def test_the_rule_needs_a_difference_enough_missing_rows_and_a_target() -> None:
    rng = np.random.default_rng(1)
    classes = rng.integers(0, 2, ROWS)
    assert informative_missing((classes == 1) & (rng.random(ROWS) < 0.5), TrainTarget(classes, True)) < 0.01
    assert informative_missing(rng.random(ROWS) < 0.3, TrainTarget(classes, True)) is None  # at random
    assert informative_missing(np.arange(ROWS) < 5, TrainTarget(classes, True)) is None  # too few missing
    assert informative_missing(classes == 1, None) is None
    values = rng.normal(0, 1, ROWS)
    assert informative_missing(values > 1.0, TrainTarget(values, False)) < 0.01  # regression: Welch's t-test
    assert informative_missing(rng.random(ROWS) < 0.3, TrainTarget(values, False)) is None


def test_a_number_missing_where_the_class_differs_gets_an_indicator() -> None:
    frame = _lot_frontage()
    features, report = _fit(frame, NumberFeature(name="frontage"), ClassTarget(["label"]))
    number = features.features[0]
    assert number.output_spec().columns == ("frontage", "frontage__missing")
    arrays = features.transform(frame)
    np.testing.assert_array_equal(arrays["dense"][:, 1], frame["frontage"].isna().to_numpy(dtype=np.float32))
    assert any("'frontage' is missing in" in message and "indicator" in message for message in report.messages)
    restored = feature_from_json(number.to_json())  # the decision travels with the bundle
    assert restored.output_spec().width == 2


def test_missing_at_random_or_a_chosen_strategy_adds_nothing() -> None:
    features, report = _fit(_lot_frontage(informative=False), NumberFeature(name="frontage"), ClassTarget(["label"]))
    assert features.features[0].output_spec().width == 1 and not any("indicator" in m for m in report.messages)
    features, _ = _fit(_lot_frontage(), NumberFeature(name="frontage", missing="mean"), ClassTarget(["label"]))
    assert features.features[0].output_spec().width == 1  # the user's choice stands


def test_the_decision_is_made_on_the_train_split_only() -> None:
    train, test = _lot_frontage(seed=2, informative=False), _lot_frontage(seed=3, informative=True)
    features, _ = _fit(train, NumberFeature(name="frontage"), ClassTarget(["label"]))
    assert features.transform(test)["dense"].shape == (ROWS, 1)  # informative in test: not looked at


def test_a_regression_target_is_tested_too() -> None:
    rng = np.random.default_rng(4)
    price = rng.normal(200, 30, ROWS)
    pool = np.where(rng.random(ROWS) < 0.3, 1.0, np.nan)  # missing: no pool, and cheaper houses
    price = np.where(np.isnan(pool), price - 40, price)
    frame = pd.DataFrame({"pool_area": pool * rng.uniform(20, 60, ROWS), "price": price})
    features, _ = _fit(frame, NumberFeature(name="pool_area"), RegressionTarget(["price"]))
    assert features.features[0].output_spec().width == 2


def test_a_binary_with_informative_blanks_gets_missing_as_a_third_level() -> None:
    frame = _lot_frontage()
    frame["fence"] = np.where(frame["frontage"].isna(), None, np.where(frame.index % 2 == 0, "good", "bad"))
    features, _ = _fit(frame, BinaryFeature(name="fence"), ClassTarget(["label"]))
    dense = features.transform(frame)["dense"]
    assert features.features[0].output_spec().columns == ("fence", "fence__missing")
    levels = {tuple(row) for row in dense}
    assert len(levels) == 3  # good, bad, missing: no longer the mode's twin
    row = pd.DataFrame({"fence": [None], "frontage": [1.0]})
    np.testing.assert_array_equal(features.transform(row)["dense"][0, 1], 1.0)  # one row: the same columns


@pytest.mark.parametrize(("missing_share", "kind"), [(0.93, "category"), (0.10, "binary")])
def test_a_mostly_missing_two_valued_column_is_a_category(missing_share: float, kind: str) -> None:
    rng = np.random.default_rng(5)
    alley = rng.choice(["Grvl", "Pave"], ROWS).astype(object)
    alley[rng.random(ROWS) < missing_share] = np.nan
    features, dropped = infer_features(pd.DataFrame({"Alley": alley, "y": rng.normal(size=ROWS)}), ["y"])
    assert not dropped and features[0].type == kind
    if kind == "category":
        assert features[0].missing == "constant" and "missing is its own level" in features[0].note
