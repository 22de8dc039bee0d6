"""CatBoost behind the estimator interface: categories read as CatBoost categorical features, early
stopping and a deadline keep the best trees, the .cbm bundle round-trips, text is refused in one line."""
from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("catboost")

from forgeml import Pipeline  # noqa: E402
from forgeml.errors import ConfigError  # noqa: E402

QUIET = {"train.progress": False, "train.threads": 1, "model.iterations": 150}


def _by_category(rows: int = 300, seed: int = 0) -> pd.DataFrame:
    """The label is set by an 8-value category (plus a number past 1.5), the targets by both."""
    rng = np.random.default_rng(seed)
    group = rng.choice(list("abcdefgh"), rows)
    x = rng.normal(size=rows).round(4)
    in_first_half = np.isin(group, list("abcd"))
    return pd.DataFrame({
        "group": group, "x": x,
        "y": np.where(in_first_half ^ (x > 1.5), "yes", "no"),
        "price": (in_first_half * 3 + x + rng.normal(0, 0.1, rows)).round(3),
        "size": (2 * x - in_first_half + rng.normal(0, 0.1, rows)).round(3),
    })


def test_classifier_learns_a_category_and_round_trips_through_its_cbm_bundle(tmp_path):
    frame = _by_category()
    pipeline = Pipeline(target="y", model="catboost", overrides=QUIET).fit(frame.drop(columns=["price", "size"]))
    assert pipeline.metrics_["accuracy"] >= 0.95, pipeline.metrics_
    estimator = pipeline.predictor_.estimator
    assert estimator.categorical == [len(estimator.spec.dense_columns)]  # the code column is a CatBoost category
    importance = estimator.feature_importance()
    assert set(importance) == {"x", "group"} and importance["group"] > 0.2
    pipeline.save(tmp_path / "bundle")
    assert (tmp_path / "bundle" / "catboost_model_0.cbm").is_file()
    assert not list((tmp_path / "bundle").rglob("*.pkl")) and not list((tmp_path / "bundle").rglob("*.pt"))
    loaded = Pipeline.load(tmp_path / "bundle")
    many = frame.head(200)  # over SMALL_ROWS: read as a DataFrame; the first rows alone go in as an object array
    np.testing.assert_allclose(loaded.predict(many).filter(like="proba").to_numpy(),
                               pipeline.predict(many).filter(like="proba").to_numpy())
    np.testing.assert_allclose(loaded.predict(many.head(5)).filter(like="proba").to_numpy(),
                               pipeline.predict(many).filter(like="proba").to_numpy()[:5], rtol=1e-6)
    from forgeml.export.exporter import ExportError, export_bundle

    with pytest.raises(ExportError, match="this catboost bundle has no torch network") as caught:
        export_bundle(tmp_path / "bundle", "onnx")
    assert "catboost_model_0.cbm" in str(caught.value) and "LightGBM" not in str(caught.value)


def test_multi_target_regression_round_trips(tmp_path):
    pipeline = Pipeline(target=["price", "size"], model="catboost", overrides=QUIET).fit(_by_category().drop(columns=["y"]))
    assert pipeline.metrics_["per_target"]["price"]["r2"] > 0.9 and pipeline.metrics_["per_target"]["size"]["r2"] > 0.9
    assert pipeline.predictor_.estimator.files == ("catboost_model_0.cbm",)  # one MultiRMSE model for both
    pipeline.save(tmp_path / "bundle")
    new = _by_category(rows=20, seed=5)
    np.testing.assert_allclose(Pipeline.load(tmp_path / "bundle").predict(new).to_numpy(dtype=float),
                               pipeline.predict(new).to_numpy(dtype=float))


def test_huber_fits_one_model_per_target():
    pipeline = Pipeline(target=["price", "size"], model="catboost", overrides={**QUIET, "train.loss": "huber"})
    pipeline.fit(_by_category().drop(columns=["y"]))
    assert len(pipeline.predictor_.estimator.models) == 2
    assert pipeline.metrics_["r2"] > 0.8


def test_early_stopping_keeps_the_best_trees():
    pipeline = Pipeline(target="y", model="catboost", overrides={**QUIET, "model.iterations": 3000, "model.early_stopping_rounds": 20,
                                                                  "model.learning_rate": 0.3})
    pipeline.fit(_by_category().drop(columns=["price", "size"]))
    model, summary = pipeline.predictor_.estimator.models[0], pipeline.fit_summary_
    assert summary.stopped_early and len(summary.history) < 3000
    assert model.tree_count_ == summary.best_epoch >= len(summary.history) - 20
    losses = [row["val_loss"] for row in summary.history]
    assert losses[summary.best_epoch - 1] == min(losses)


def test_separable_data_stops_once_the_loss_only_creeps():
    """train.early_stopping_min_delta reaches CatBoost: a validation log-loss creeping towards zero
    is no improvement, so far fewer trees than with min_delta 0, at the same accuracy."""
    rng = np.random.default_rng(0)
    x = rng.uniform(1, 2, size=300) * rng.choice([-1, 1], size=300)  # a clear gap at 0
    frame = pd.DataFrame({"x": x, "z": rng.normal(size=300), "y": np.where(x > 0, "pos", "neg")})

    def fit(**overrides):
        settings = {**QUIET, "model.iterations": 600, "model.learning_rate": 0.3, "model.early_stopping_rounds": 20, **overrides}
        pipeline = Pipeline(target="y", model="catboost", overrides=settings).fit(frame)
        return len(pipeline.fit_summary_.history), pipeline.metrics_["accuracy"]

    (default_trees, default_accuracy), (creeping_trees, _) = fit(), fit(**{"train.early_stopping_min_delta": 0.0})
    assert default_trees < creeping_trees / 2, (default_trees, creeping_trees)
    assert default_accuracy == 1.0


def test_balanced_class_weights_raise_the_rare_class():
    rng = np.random.default_rng(1)
    x = rng.normal(size=400).round(3)
    frame = pd.DataFrame({"x": x, "noise": rng.normal(size=400).round(3),
                          "y": np.where(x + rng.normal(0, 1.0, 400) > 1.6, "rare", "common")})

    def mean_rare(weighting: str) -> float:
        pipeline = Pipeline(target="y", model="catboost", overrides={**QUIET, "train.class_weight": weighting}).fit(frame)
        return float(pipeline.predict(frame)["y_proba_rare"].mean())

    assert mean_rare("balanced") > 1.5 * mean_rare("none")


def test_a_passed_deadline_stops_boosting_and_still_predicts():
    from forgeml.config import Config
    from forgeml.models.catboost_family import CatBoostEstimator
    from forgeml.models.estimator import FitOptions
    from forgeml.models.tasks import Task
    from forgeml.features.featureset import InputSpec

    config = Config.from_dict({"target": "y", "model": {"type": "catboost", "iterations": 500}, "train": {"threads": 1}})
    estimator = CatBoostEstimator(config, Task.resolve("binary", "auto", 2), InputSpec(dense_columns=["a", "b"]))
    rng = np.random.default_rng(0)
    arrays = {"dense": rng.normal(size=(200, 2)).astype(np.float32), "codes": np.zeros((200, 0), np.int64)}
    labels = (arrays["dense"][:, 0] > 0).astype(np.int64)
    options = FitOptions()
    options.deadline = time.monotonic()  # the lead's FitOptions.deadline; read with getattr
    summary = estimator.fit(arrays, labels, arrays, labels, options)
    assert estimator.models[0].tree_count_ <= 2 and len(summary.history) <= 2
    assert estimator.scores(arrays).shape == (200, 2)


def test_a_text_column_is_refused_naming_it(make_mixed):
    with pytest.raises(ConfigError, match="text column 'review'") as caught:
        Pipeline(target="label", model="catboost", overrides=QUIET).fit(make_mixed())
    assert "\n" not in str(caught.value)


def test_without_catboost_installed_build_names_the_extra(monkeypatch):
    """Said at build, before any fitting: an ensemble then lists the member as skipped."""
    from forgeml.config import Config
    from forgeml.features.featureset import InputSpec
    from forgeml.models import catboost_family
    from forgeml.models.tasks import Task

    monkeypatch.setitem(sys.modules, "catboost", None)  # `import catboost` now raises ImportError
    config = Config.from_dict({"target": "y", "model": {"type": "catboost"}})
    with pytest.raises(ConfigError, match="catboost") as caught:
        catboost_family.build(config, Task.resolve("binary", "auto", 2), InputSpec(dense_columns=["a"]))
    assert caught.value.hint == "pip install 'forgeml[catboost]'"
