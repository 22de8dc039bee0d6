"""LightGBM behind the estimator interface: its boosting rounds reach the run's callbacks (so
metrics.jsonl, loggers and the dashboard see learning curves), and small data can split on a
category (LightGBM's min_data_per_group follows model.min_data_in_leaf)."""
from __future__ import annotations

import numpy as np
import pandas as pd

import pytest

from forgeml import Pipeline
from forgeml.errors import ConfigError
from forgeml.models.gbm import rounds_between_rows

QUIET = {"train.progress": False, "train.threads": 1}


class Rows:
    def __init__(self):
        self.rows: list[dict] = []

    def on_epoch_end(self, row: dict) -> None:
        self.rows.append(dict(row))


def _by_category(rows: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    group = rng.choice(list("abcdefgh"), rows)
    return pd.DataFrame({"group": group, "noise": rng.normal(size=rows).round(4),
                         "y": np.where(np.isin(group, list("abcd")), "yes", "no")})


def test_rounds_reach_the_callbacks_every_n_rounds_and_the_last():
    seen = Rows()
    pipeline = Pipeline(target="y", model="gbm", overrides={**QUIET, "model.num_boost_round": 250, "model.early_stopping_rounds": 250})
    pipeline.fit(_by_category(), callbacks=[seen])
    every = rounds_between_rows(250)
    rounds = [row["epoch"] for row in seen.rows]
    assert every == 3
    assert rounds == [1, *range(every, 250, every), 250]
    assert all(set(row) == {"epoch", "train_loss", "val_loss"} for row in seen.rows)
    history = {row["epoch"]: row for row in pipeline.fit_summary_.history}
    for row in seen.rows:  # the same numbers as the fit's own history
        assert row["val_loss"] == history[row["epoch"]]["val_loss"]


def test_several_targets_send_their_mean_rounds_once_trained(make_regression):
    import warnings

    seen = Rows()
    pipeline = Pipeline(target=["price", "size"], model="gbm", overrides={**QUIET, "model.num_boost_round": 30})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pipeline.fit(make_regression(), callbacks=[seen])
    assert not [w for w in caught if "sliced data" in str(w.message)]  # LightGBM's warning, printed to the user
    rounds = [row["epoch"] for row in seen.rows]
    assert rounds == sorted(set(rounds)) and rounds[0] == 1 and rounds[-1] == len(pipeline.fit_summary_.history)


def test_small_data_splits_on_a_many_valued_category():
    """The label is set by an 8-value category, 140 train rows: LightGBM's default
    min_data_per_group of 100 forbade every many-vs-many split and left the model at chance."""
    pipeline = Pipeline(target="y", model="gbm", overrides=QUIET).fit(_by_category())
    assert pipeline.metrics_["accuracy"] >= 0.9, pipeline.metrics_


def test_early_stopping_min_delta_is_lightgbms_zero_and_a_high_r2_regression_runs_on():
    """model.early_stopping_min_delta (0, LightGBM's default) reaches LightGBM's early stopping. A
    regression the trees fit to R² ≈ 0.99 still improves by less than 1e-4 of the standardised
    target's variance per 50 rounds: train.early_stopping_min_delta's 1e-4 (what gbm used before)
    stopped it early, at a higher RMSE; separable classes still stop by themselves."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-3, 3, size=(1500, 2))
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "y": np.sin(x[:, 0]) * 3 + x[:, 1] ** 2 + rng.normal(0, 0.1, 1500)})

    def fit(**overrides):
        pipeline = Pipeline(target="y", model="gbm", overrides={**QUIET, **overrides}).fit(frame)
        return pipeline.predictor_.estimator.boosters[0].current_iteration(), pipeline.metrics_["rmse"]

    (rounds, rmse), (old_rounds, old_rmse) = fit(), fit(**{"model.early_stopping_min_delta": 1e-4})
    assert old_rounds < rounds and rmse < old_rmse, (rounds, rmse, old_rounds, old_rmse)
    separable = rng.uniform(1, 2, size=400) * rng.choice([-1, 1], size=400)  # a clear gap at 0
    classes = pd.DataFrame({"x": separable, "z": rng.normal(size=400), "y": np.where(separable > 0, "pos", "neg")})
    pipeline = Pipeline(target="y", model="gbm", overrides=QUIET).fit(classes)
    assert pipeline.metrics_["accuracy"] == 1.0 and pipeline.predictor_.estimator.boosters[0].current_iteration() < 1000


def test_text_columns_are_read_as_ngram_components_by_default(tmp_path):
    """Item 4 of issue 14: --model gbm reads text (TF-IDF n-gram SVD components), saved without
    pickle; refuse and ignore stay available."""
    rng = np.random.default_rng(0)
    words = rng.choice(["great", "awful", "fine", "ok"], size=240)
    frame = pd.DataFrame({"x": rng.normal(size=240).round(3), "note": [f"{w} item {i} 很{'好' if w == 'great' else '一般'}" for i, w in enumerate(words)],
                          "y": np.where(words == "great", "a", "b")})
    pipeline = Pipeline(target="y", model="gbm", overrides={**QUIET, "model.min_data_in_leaf": 5}).fit(frame)
    assert pipeline.metrics_["accuracy"] > 0.95, pipeline.metrics_  # the label is in the text only
    importance = pipeline.predictor_.estimator.feature_importance()
    assert max(importance, key=importance.get) == "note"
    pipeline.save(tmp_path / "bundle")
    assert {"gbm_text_vocab.json", "gbm_text.safetensors"} <= {p.name for p in (tmp_path / "bundle").iterdir()}
    assert not [p for p in (tmp_path / "bundle").rglob("*") if p.suffix in (".pkl", ".pickle", ".joblib")]
    np.testing.assert_allclose(Pipeline.load(tmp_path / "bundle").predict(frame).filter(like="proba").to_numpy(),
                               pipeline.predict(frame).filter(like="proba").to_numpy(), rtol=1e-6)
    with pytest.raises(ConfigError, match="cannot read the text column 'note'") as caught:
        Pipeline(target="y", model="gbm", overrides={**QUIET, "model.text_columns": "refuse"}).fit(frame)
    assert "\n" not in str(caught.value) and "text_columns=features" in caught.value.hint
    ignored = Pipeline(target="y", model="gbm", overrides={**QUIET, "model.text_columns": "ignore"}).fit(frame)
    assert ignored.metrics_["accuracy"] < 0.9  # without the text the label is not there


def test_text_components_of_a_tiny_table_do_not_fail():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"note": [f"{'很好' if i % 2 else '太差'} the {i} th day of use" for i in range(30)],
                          "x": rng.normal(size=30).round(3), "y": ["a", "b"] * 15})
    pipeline = Pipeline(target="y", model="gbm", overrides={**QUIET, "model.min_data_in_leaf": 2, "model.text_components": 3}).fit(frame)
    assert "accuracy" in pipeline.metrics_ and len(pipeline.predictor_.estimator.text.columns) == 3


def test_a_metric_of_another_task_is_refused_and_patience_zero_turns_early_stopping_off():
    frame = _by_category()
    with pytest.raises(ConfigError, match="'r2' is not a .* metric"):
        Pipeline(target="y", model="gbm", overrides={**QUIET, "train.early_stopping_metric": "r2"}).fit(frame)
    rounds = 60
    pipeline = Pipeline(target="y", model="gbm", overrides={**QUIET, "train.early_stopping_patience": 0, "model.num_boost_round": rounds}).fit(frame)
    assert pipeline.predictor_.estimator.boosters[0].num_trees() == rounds * (1 if pipeline.predictor_.task.n_targets <= 2 else pipeline.predictor_.task.n_targets)


@pytest.mark.parametrize("target", ["y", "noise"])
def test_random_forest_mode_averages_sampled_deep_trees_and_round_trips(tmp_path, target):
    """model.boosting: rf is LightGBM's forest (rows sampled per tree, √columns per split for
    classes): a different model from the boosted one, saved and loaded as LightGBM text."""
    from forgeml.api import describe_model

    frame = _by_category(300)
    frame["other"] = np.random.default_rng(1).normal(size=300).round(3)
    forest = Pipeline(target=target, model="gbm", overrides={**QUIET, "model.boosting": "rf", "model.num_boost_round": 60}).fit(frame)
    params = forest.predictor_.estimator.boosters[0].params
    assert params["boosting"] == "rf" and params["bagging_freq"] == 1 and params["bagging_fraction"] == pytest.approx(0.632)
    assert params["feature_fraction_bynode"] == (1.0 if target == "noise" else pytest.approx(2 / 3))  # 3 columns: round(√3) = 2
    boosted = Pipeline(target=target, model="gbm", overrides={**QUIET, "model.num_boost_round": 60}).fit(frame)
    rows = frame.drop(columns=[target]).head(20)
    assert not np.allclose(forest.predictor_.scores(rows), boosted.predictor_.scores(rows))
    if target == "y":
        assert forest.metrics_["accuracy"] >= 0.9, forest.metrics_
    loaded = Pipeline.load(forest.save(tmp_path / "forest"))
    pd.testing.assert_frame_equal(loaded.predict(rows), forest.predict(rows))
    assert "random forest" in describe_model(loaded.predictor_)


def test_a_few_rows_are_predicted_on_one_thread_and_a_batch_on_the_configured_threads(monkeypatch):
    """Waking OpenMP's threads for one row cost LightGBM 2–14 ms a call on busy cores, where the
    row takes 0.2–0.4 ms; a large batch still uses the cores."""
    import lightgbm as lgb

    pipeline = Pipeline(target="y", model="gbm", overrides={**QUIET, "train.threads": 2, "model.num_boost_round": 20}).fit(_by_category())
    seen: list[int] = []
    real = lgb.Booster.predict
    monkeypatch.setattr(lgb.Booster, "predict", lambda self, x, **kw: seen.append(kw.get("num_threads")) or real(self, x, **kw))
    rows = _by_category(600, seed=2).drop(columns=["y"])
    pipeline.predict(rows.head(1))
    pipeline.predict(rows)
    assert seen == [1, 2]
