"""The Python API: ``Pipeline`` in the scikit-learn spirit, on DataFrames and files."""
from __future__ import annotations

import re

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


# ----------------------------------------------------------------------------- scikit-learn protocol
FAST_XY = {**FAST, "train.bagging_folds": 1}


@pytest.fixture(scope="module")
def iris() -> tuple[pd.DataFrame, pd.Series]:
    """Sorted by class, as load_iris gives it: unstratified folds would hold classes never trained on."""
    from sklearn.datasets import load_iris

    return load_iris(return_X_y=True, as_frame=True)


def test_cross_val_score_and_grid_search(iris):
    from sklearn.model_selection import GridSearchCV, cross_val_score

    X, y = iris
    X_before = X.copy(deep=True)
    scores = cross_val_score(Pipeline(overrides=dict(FAST_XY)), X, y, cv=3)
    assert len(scores) == 3 and min(scores) > 0.5  # stratified folds; chance is 0.33
    assert np.isfinite(cross_val_score(Pipeline(overrides=dict(FAST_XY)), X, y, cv=3, scoring="roc_auc_ovr")).all()

    search = GridSearchCV(Pipeline(overrides=dict(FAST_XY)), {"overrides__train.epochs": [1, 3]}, cv=2).fit(X, y)
    assert len(search.cv_results_["params"]) == 2
    best = search.best_estimator_
    assert best.overrides["train.epochs"] == search.best_params_["overrides__train.epochs"]
    labels = best.predict(X.head(5))
    assert isinstance(labels, np.ndarray) and labels.shape == (5,) and set(labels) <= {0, 1, 2}
    proba = best.predict_proba(X.head(5))
    assert proba.shape == (5, 3) and np.allclose(proba.sum(axis=1), 1) and list(best.classes_) == [0, 1, 2]
    assert best.score(X, y) == pytest.approx(np.mean(best.predict(X) == y.to_numpy()))
    pd.testing.assert_frame_equal(X, X_before)  # never modified


def test_regression_fit_xy_scores_r2_on_arrays(make_regression):
    from sklearn.metrics import r2_score
    from sklearn.model_selection import cross_val_score

    frame = make_regression(rows=150, seed=4)
    X, y = frame[["x1", "x2"]].to_numpy(), frame["price"]
    assert np.isfinite(cross_val_score(Pipeline(overrides=dict(FAST_XY)), X, y, cv=2)).all()
    pipeline = Pipeline(overrides=dict(FAST_XY)).fit(X, y)
    assert pipeline.predictor_.config.target == ["price"]  # y's name
    values = pipeline.predict(X)
    assert values.shape == (150,) and values.dtype == np.float64
    assert pipeline.score(X, y) == pytest.approx(r2_score(y, values))
    with pytest.raises(ConfigError, match="predict_proba is for classification"):
        pipeline.predict_proba(X)
    assert pipeline.__sklearn_tags__().estimator_type == "regressor"


def test_params_clone_and_set_params():
    from sklearn.base import clone

    overrides = {"train.epochs": 2}
    pipeline = Pipeline(target="y", overrides=overrides)
    assert pipeline.get_params() == {"target": "y", "config": None, "model": None, "overrides": overrides, "output": "auto"}
    copy = clone(pipeline)
    assert copy.get_params() == pipeline.get_params() and copy.overrides is not overrides
    assert copy.set_params(model="gbm", **{"overrides__train.learning_rate": 0.01}) is copy
    assert copy.overrides == {"train.epochs": 2, "train.learning_rate": 0.01} and copy.model == "gbm"
    assert overrides == {"train.epochs": 2}  # the caller's dict is not changed
    copy.set_params(**{"overrides__train.seed": 7}, overrides={"train.epochs": 4})  # any order
    assert copy.overrides == {"train.epochs": 4, "train.seed": 7}
    with pytest.raises(ConfigError, match="unknown parameter 'epochs'"):
        copy.set_params(epochs=3)
    with pytest.raises(NotFittedError):
        Pipeline(target="y").predict_proba(pd.DataFrame({"x": [1]}))


def test_fit_xy_refuses_a_target_name_already_in_x(iris):
    from forgeml.errors import DataError

    X, y = iris
    with pytest.raises(DataError, match="X already has a column named 'sepal length \\(cm\\)'"):
        Pipeline(target="sepal length (cm)").fit(X, y)
    with pytest.raises(DataError, match="X has 150 rows but y has 10"):
        Pipeline().fit(X, y.head(10))


# ----------------------------------------------------------------------------- notebook habits
def test_repr_and_html_show_task_model_and_metrics(fitted_pipeline):
    assert repr(Pipeline(target="label", overrides={"train.epochs": 3})) == "Pipeline(target='label', overrides={'train.epochs': 3})"
    text = repr(fitted_pipeline)
    assert text.startswith("Pipeline(target='label', overrides=")
    assert "task: binary classification of 'label' (no, yes)" in text and "model: " in text and "MLP" in text
    assert re.search(r"held-out \(test split, \d+ rows\): f1_macro \d", text), text
    page = fitted_pipeline._repr_html_()
    assert page.startswith("<div") and "f1_macro" in page and "binary classification of &#x27;label&#x27;" in page
    assert "not fitted" in Pipeline(target="<b>")._repr_html_() and "<b>" not in Pipeline(target="<b>")._repr_html_()


def test_every_public_method_has_a_docstring():
    public = [name for name in dir(Pipeline) if not name.startswith("_") and callable(getattr(Pipeline, name))]
    assert {"fit", "predict", "predict_proba", "score", "evaluate", "save", "load", "get_params", "set_params"} <= set(public)
    assert [name for name in public if not (getattr(Pipeline, name).__doc__ or "").strip()] == []
    assert Pipeline.metrics_.__doc__


def test_data_notes_are_warned_while_fitting(make_mixed):
    from forgeml.errors import DataNote

    frame = make_mixed(rows=80)
    doubled = pd.concat([frame, frame.head(3)], ignore_index=True)
    with pytest.warns(DataNote, match="data: dropped 3 exact duplicate rows"):
        Pipeline(target="label", overrides=dict(FAST_XY)).fit(doubled)


def test_load_restores_importance(cancer_pipeline, tmp_path):
    loaded = Pipeline.load(cancer_pipeline.save(tmp_path / "bundle"))
    assert cancer_pipeline.importance_ and loaded.importance_ == pytest.approx(cancer_pipeline.importance_)
    assert loaded.test_split_ == cancer_pipeline.test_split_ and list(loaded.classes_) == [0, 1]
    assert isinstance(loaded.predict(pd.DataFrame(cancer_pipeline.prepared_.frames["test"]).head(2)), pd.DataFrame)
