"""Properties of the fitted transforms and of inference, over inputs hypothesis generates:

- transforms: a JSON round trip changes no output; the fast paths (``transform_values``, the
  server's records path) give exactly what the pandas path gives; every output is finite;
- unseen values: a category never seen in training is the "<other>" code, never an error;
- targets: labels and regression values come back from their codes unchanged;
- inference: whatever numbers (NaN, ±inf, 1e308), categories and dates a row holds, predict gives
  finite probabilities summing to 1 (finite values for regression) — NaN never leaks out — and
  the records path agrees with the DataFrame path.

Seeded (``derandomize``), a few dozen examples each: seconds, not minutes.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forgeml.config import CategoryFeature, CleanConfig, NumberFeature
from forgeml.data.clean import CleaningReport
from forgeml.features import FitContext, build_feature, feature_from_json
from forgeml.features.target import ClassTarget, RegressionTarget

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

finite = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False, allow_infinity=False)
any_float = st.floats(allow_nan=True, allow_infinity=True)  # 1e308, -inf, NaN, -0.0, subnormals
number_cell = st.one_of(st.none(), any_float, st.integers(min_value=-(2**53), max_value=2**53))
label = st.text(st.characters(blacklist_categories=["Cs", "Cc"]), min_size=1, max_size=8)
category_cell = st.one_of(st.none(), label, st.integers(-5, 5), st.booleans())


def _fit(config, values: list) -> object:
    feature = build_feature(config)
    feature.fit(pd.Series(values, dtype=object if any(isinstance(v, str) for v in values) else None),
                FitContext(CleanConfig(outliers="iqr"), CleaningReport(rows_in=len(values))))
    return feature


def _round_trip(feature):
    return feature_from_json(json.loads(json.dumps(feature.to_json())))


# ----------------------------------------------------------------------------- transforms
@SETTINGS
@given(
    train=st.lists(st.one_of(finite, st.just(float("nan"))), min_size=8, max_size=60).filter(
        lambda v: len({x for x in v if x == x}) >= 2),
    new=st.lists(st.one_of(st.none(), any_float), min_size=1, max_size=20),
    scaling=st.sampled_from(["zscore", "minmax", "quantile", "power", "none"]),
    missing=st.sampled_from(["median", "mean", "indicator"]),
)
def test_a_fitted_number_transform_is_finite_and_survives_json_and_the_fast_path(train, new, scaling, missing):
    feature = _fit(NumberFeature(name="x", scaling=scaling, missing=missing), train)
    column = pd.Series(new, dtype=float)
    out = feature.transform(column)
    assert out.dtype == np.float32 and out.shape[0] == len(new)
    assert np.isfinite(out).all(), (new, out)  # missing, ±inf and 1e308 are filled or clipped, never NaN
    np.testing.assert_array_equal(_round_trip(feature).transform(column), out)
    fast = feature.transform_values(list(new))
    if fast is not None:
        np.testing.assert_array_equal(fast, out)


@SETTINGS
@given(
    train=st.lists(st.one_of(st.none(), st.sampled_from(["red", "green", "blue", "Ａ", "北京\u3000"])), min_size=5, max_size=40).filter(
        lambda v: any(x is not None for x in v)),
    new=st.lists(category_cell, min_size=1, max_size=20),
)
def test_a_fitted_category_maps_unseen_values_to_other_and_survives_json_and_the_fast_path(train, new):
    from forgeml.data.repair import repair_text

    cleaned = repair_text(pd.Series(train, dtype=object))[0]  # as cleaning hands the train split to fit
    feature = _fit(CategoryFeature(name="c", min_count=1), cleaned.tolist())
    codes = feature.transform(pd.Series(new, dtype=object))
    assert codes.shape == (len(new),) and ((0 <= codes) & (codes < len(feature.vocabulary))).all()
    for value, code in zip(new, codes):
        if isinstance(value, str) and value not in {"red", "green", "blue", "A", "北京"}:
            assert code == 0  # "<other>": never seen in training
    seen = feature.transform(pd.Series([v for v in train if v is not None], dtype=object))
    assert (seen > 0).all()  # every value of the train split has its own code
    np.testing.assert_array_equal(_round_trip(feature).transform(pd.Series(new, dtype=object)), codes)
    fast = feature.transform_values(list(new))
    if fast is not None:
        np.testing.assert_array_equal(fast, codes)


@SETTINGS
@given(labels=st.lists(st.one_of(label.map(str.strip).filter(bool), st.integers(0, 9).map(str)), min_size=2, max_size=40).filter(
    lambda v: len(set(v)) >= 2))
def test_class_labels_come_back_from_their_codes(labels):
    """Labels as cleaning leaves them (surrounding spaces stripped: " yes" is "yes")."""
    frame = pd.DataFrame({"y": labels})
    target = ClassTarget(["y"])
    target.fit(frame)
    back = ClassTarget(["y"], json.loads(json.dumps(target.to_json()))["state"])
    assert list(back.decode(back.encode(frame)).astype(str)) == [str(v) for v in labels]


@SETTINGS
@given(values=st.lists(finite, min_size=2, max_size=40))
def test_regression_values_come_back_from_their_standardised_codes(values):
    frame = pd.DataFrame({"y": values})
    target = RegressionTarget(["y"])
    target.fit(frame)
    back = RegressionTarget(["y"], json.loads(json.dumps(target.to_json()))["state"])
    encoded = back.encode(frame)
    assert np.isfinite(encoded).all()
    np.testing.assert_allclose(back.decode(encoded.astype(np.float64))[:, 0], values, rtol=1e-5, atol=1e-6 * (1 + max(map(abs, values))))


# ----------------------------------------------------------------------------- inference
date_cell = st.one_of(st.none(), st.dates().map(str), st.sampled_from(["not a date", "2020-13-01", "1800-02-30", ""]))
text_cell = st.one_of(st.none(), st.text(st.characters(blacklist_categories=["Cs", "Cc"]), max_size=30))


@st.composite
def mixed_rows(draw) -> list[dict]:
    """Rows for the mixed table's bundle: any numbers, known and unseen cities, odd dates, any text."""
    row = st.fixed_dictionaries({
        "age": number_cell, "income": number_cell, "price": number_cell, "size": number_cell,
        "city": st.one_of(category_cell, st.sampled_from(["paris", "lyon", "nice", "lille"])),
        "signup": date_cell, "review": text_cell,
    })
    return draw(st.lists(row, min_size=1, max_size=6))


@pytest.fixture(scope="module")
def classifier(fitted_pipeline):
    return fitted_pipeline.predictor_


@SETTINGS
@given(rows=mixed_rows())
def test_nan_never_leaks_out_of_predict_and_both_paths_agree(classifier, rows):
    records = classifier.predict_records(rows)
    proba = np.array([[r["label_proba_no"], r["label_proba_yes"]] for r in records])
    assert np.isfinite(proba).all() and ((proba >= 0) & (proba <= 1)).all(), (rows, proba)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert [r["label_prediction"] for r in records] == [("no", "yes")[i] for i in proba.argmax(axis=1)]
    frame = pd.DataFrame.from_records(rows, columns=list(rows[0]))
    np.testing.assert_allclose(classifier.scores(frame), proba, rtol=1e-5, atol=1e-6)  # the pandas path


@pytest.fixture(scope="module")
def regressor(make_regression):
    from forgeml import Pipeline

    overrides = {"model.type": "mlp", "train.epochs": 2, "train.progress": False, "train.threads": 1}
    return Pipeline(target="price", overrides=overrides).fit(make_regression(rows=120, seed=4).drop(columns=["size"])).predictor_


@SETTINGS
@given(rows=st.lists(st.fixed_dictionaries({"x1": number_cell, "x2": number_cell, "kind": category_cell}), min_size=1, max_size=6))
def test_regression_predictions_are_always_finite(regressor, rows):
    predicted = np.array([r["price_prediction"] for r in regressor.predict_records(rows)], dtype=float)
    assert np.isfinite(predicted).all(), (rows, predicted)
    frame = pd.DataFrame.from_records(rows, columns=["x1", "x2", "kind"])
    np.testing.assert_allclose(regressor.scores(frame)[:, 0], predicted, rtol=1e-5)
