"""The Python API: ``Pipeline`` in the scikit-learn spirit, on DataFrames and files."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forgeml import Pipeline
from forgeml.config import Config
from forgeml.errors import ConfigError, ForgeError, NotFittedError

FAST = {"train.epochs": 3, "train.progress": False, "train.threads": 1}


@pytest.fixture(scope="module")
def breast_cancer() -> tuple[pd.DataFrame, pd.DataFrame]:
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    return frame.iloc[:450].reset_index(drop=True), frame.iloc[450:].reset_index(drop=True)


@pytest.fixture(scope="module")
def cancer_pipeline(breast_cancer):
    train, _ = breast_cancer
    before = train.copy(deep=True)
    pipeline = Pipeline(target="target", overrides=dict(FAST))
    assert pipeline.fit(train) is pipeline
    pd.testing.assert_frame_equal(train, before)  # fit never changes its input
    return pipeline


def test_fit_returns_self_and_classifies(cancer_pipeline, breast_cancer):
    _, test = breast_cancer
    metrics = cancer_pipeline.evaluate(test)
    assert isinstance(metrics, dict) and metrics["n"] == len(test)
    assert metrics["accuracy"] > 0.8  # 30 clean numeric features: easy even in 3 epochs
    predictions = cancer_pipeline.predict(test.drop(columns=["target"]))
    assert list(predictions.columns) == ["target_prediction", "target_proba_0", "target_proba_1"]
    assert len(predictions) == len(test)
    assert set(predictions["target_prediction"]) <= {0, 1}


def test_using_a_pipeline_before_fit_raises_not_fitted(breast_cancer):
    _, test = breast_cancer
    pipeline = Pipeline(target="target")
    for use in (lambda: pipeline.predict(test), lambda: pipeline.evaluate(test), lambda: pipeline.save("never")):
        with pytest.raises(NotFittedError, match="not fitted"):
            use()
    assert issubclass(NotFittedError, ForgeError)


def test_constructor_only_stores_its_arguments():
    pipeline = Pipeline(target="price", model="gbm", overrides={"train.epochs": 2})
    assert (pipeline.target, pipeline.model, pipeline.overrides) == ("price", "gbm", {"train.epochs": 2})
    assert not any(name.endswith("_") and not name.startswith("_") for name in vars(pipeline))


def test_no_target_and_no_config_is_a_config_error():
    with pytest.raises(ConfigError, match="target"):
        Pipeline().fit(pd.DataFrame({"x": [1, 2]}))


def test_save_load_round_trip_predicts_identically(cancer_pipeline, breast_cancer, tmp_path):
    _, test = breast_cancer
    saved = cancer_pipeline.save(tmp_path / "bundle")
    loaded = Pipeline.load(saved)
    pd.testing.assert_frame_equal(loaded.predict(test), cancer_pipeline.predict(test))
    assert loaded.evaluate(test) == cancer_pipeline.evaluate(test)
    assert loaded.metrics_ == cancer_pipeline.metrics_


def test_inputs_are_never_modified(fitted_pipeline, mixed_frame, make_mixed):
    pd.testing.assert_frame_equal(mixed_frame, make_mixed())  # the frame fitted_pipeline was fitted on
    new = mixed_frame.drop(columns=["label"]).head(30)
    labelled = mixed_frame.head(40)
    new_before, labelled_before = new.copy(deep=True), labelled.copy(deep=True)
    fitted_pipeline.predict(new)
    fitted_pipeline.evaluate(labelled)
    pd.testing.assert_frame_equal(new, new_before)
    pd.testing.assert_frame_equal(labelled, labelled_before)


def test_regression_on_a_dataframe(make_regression, tmp_path):
    frame = make_regression(rows=200, seed=2)
    pipeline = Pipeline(target="price", overrides=dict(FAST)).fit(frame)
    metrics = pipeline.evaluate(make_regression(rows=50, seed=3))
    assert {"r2", "mae", "rmse"} <= set(metrics)
    new = tmp_path / "new.csv"
    frame.drop(columns=["price"]).head(10).to_csv(new, index=False)
    for data in (new, str(new), pd.read_csv(new)):  # a path or a DataFrame, alike
        predictions = pipeline.predict(data)
        assert list(predictions.columns) == ["price_prediction"] and len(predictions) == 10
        assert np.isfinite(predictions["price_prediction"]).all()


def test_from_config_path_with_overrides(mixed_frame, tmp_path):
    config = Config(target="label", train={"epochs": 5, "progress": False}, model={"type": "mlp", "hidden_size": 16})
    path = tmp_path / "config.yaml"
    path.write_text(config.to_yaml(), encoding="utf-8")
    pipeline = Pipeline.from_config(path, overrides={"train.epochs": 2}).fit(mixed_frame)
    assert pipeline.predictor_.config.model.hidden_size == 16  # from the file
    assert max(row["epoch"] for row in pipeline.fit_summary_.history) == 2  # the override wins
    assert pipeline.predictor_.config.task == "binary"  # resolved and kept
    assert {f.name for f in pipeline.predictor_.config.features} >= {"age", "city", "signup", "review"}


def test_gbm_model(mixed_frame, tmp_path):
    pipeline = Pipeline(target="label", model="gbm", overrides={"model.num_boost_round": 30, "model.min_data_in_leaf": 5, "train.threads": 1,
                                                                "model.text_columns": "ignore"})
    pipeline.fit(mixed_frame)
    assert pipeline.predictor_.config.model.type == "gbm"
    assert 0 <= pipeline.evaluate(mixed_frame)["accuracy"] <= 1
    saved = pipeline.save(tmp_path / "bundle")
    assert (saved / "gbm_model_0.txt").read_text(encoding="utf-8").startswith("tree")  # LightGBM's text format
    assert not (saved / "weights.safetensors").exists()
    pd.testing.assert_frame_equal(Pipeline.load(saved).predict(mixed_frame), pipeline.predict(mixed_frame))


def test_fit_takes_validation_and_test_frames(breast_cancer):
    train, rest = breast_cancer
    pipeline = Pipeline(target="target", overrides={**FAST, "train.bagging_folds": 1}).fit(train, validation=rest.iloc[:60], test=rest.iloc[60:])
    assert len(pipeline.prepared_.frames["validation"]) == 60 and len(pipeline.prepared_.frames["test"]) == len(rest) - 60
    assert pipeline.metrics_["n"] == len(rest) - 60
