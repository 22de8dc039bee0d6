"""Each explanation method keeps its promise: integrated gradients sum to f(x) − f(baseline)
within 5 %, tree contributions sum to the raw score (LightGBM, CatBoost), linear contributions
are exact, a feature the model cannot see gets 0, and the ensemble is its members' weighted mean."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forgeml.api import Pipeline
from forgeml.explain.run import explain_frame

FAST = {"train.epochs": 2, "train.bagging_folds": 1, "train.progress": False, "train.threads": 1}


@pytest.fixture(scope="module")
def frame(make_mixed) -> pd.DataFrame:
    frame = make_mixed(160).drop(columns=["price", "size"])
    frame["noise"] = np.random.default_rng(3).normal(size=len(frame))
    return frame


def fit(frame: pd.DataFrame, model: str, target: str = "label", **overrides) -> Pipeline:
    return Pipeline(target, model=model, overrides={**FAST, **overrides}).fit(frame)


def log_odds_of_prediction(pipeline: Pipeline, frame: pd.DataFrame) -> np.ndarray:
    p = pipeline.predictor_.scores(frame)[:, 1]
    return np.abs(np.log(p / (1 - p)))  # the predicted class's log-odds is positive


@pytest.mark.parametrize("text_type", ["bag", "transformer"])
def test_integrated_gradients_sum_to_the_change_from_the_baseline(frame, text_type):
    pipeline = fit(frame, "mlp", **{"model.text.type": text_type})
    rows = frame.head(6)
    answer = explain_frame(pipeline.predictor_, rows)
    assert answer["completeness_gap"] < 0.05
    for row in answer["rows"]:
        change = row["output"] - row["base"]
        assert abs(sum(row["contributions"].values()) - change) <= 0.05 * max(abs(change), 0.01)  # 0.01 log-odds: negligible
        assert "review" in row["tokens"] and row["tokens"]["review"]  # token highlights
    # the explained output is the network's own log-odds of the predicted class
    outputs = np.array([row["output"] for row in sorted(answer["rows"], key=lambda r: r["row"])])
    np.testing.assert_allclose(outputs, log_odds_of_prediction(pipeline, rows), rtol=1e-3, atol=1e-4)


def test_integrated_gradients_give_zero_to_a_column_the_network_cannot_see(frame):
    import torch

    pipeline = fit(frame.drop(columns=["review"]), "mlp")
    predictor = pipeline.predictor_
    spec = predictor.estimator.spec
    column = spec.dense_columns.index(next(c for c in spec.dense_columns if c.startswith("noise")))
    with torch.no_grad():
        predictor.estimator.model.combiner.blocks[0].layers[0].weight[:, column] = 0.0
    answer = explain_frame(predictor, frame.head(5))
    assert all(row["contributions"]["noise"] == 0.0 for row in answer["rows"])
    assert any(abs(row["contributions"]["income"]) > 0 for row in answer["rows"])


def test_lightgbm_contributions_sum_to_the_raw_score(frame):
    pipeline = fit(frame, "gbm", **{"model.num_boost_round": 30})
    estimator = pipeline.predictor_.estimator
    rows = frame.head(8)
    answer = explain_frame(pipeline.predictor_, rows, rows=list(range(8)))
    booster = estimator.boosters[0]
    raw = booster.predict(estimator._matrix(pipeline.predictor_.featureset.transform(rows)), raw_score=True,
                          num_iteration=booster.best_iteration or None)
    for row in answer["rows"]:
        sign = 1.0 if row["prediction"] == pipeline.predictor_.class_names[1] else -1.0
        assert row["base"] + sum(row["contributions"].values()) == pytest.approx(sign * raw[row["row"]], abs=1e-4)
    assert answer["completeness_gap"] < 1e-4


def test_lightgbm_regression_contributions_sum_to_the_prediction(frame):
    pipeline = fit(frame.drop(columns=["label"]).assign(price=frame["income"] / 1000 + frame["age"].fillna(40)), "gbm", target="price",
                   **{"model.num_boost_round": 30})
    rows = frame.head(5).drop(columns=["label"])
    answer = explain_frame(pipeline.predictor_, rows, rows=[0, 1, 2, 3, 4])
    predicted = pipeline.predictor_.scores(rows)[:, 0]
    for row in answer["rows"]:
        assert row["base"] + sum(row["contributions"].values()) == pytest.approx(predicted[row["row"]], rel=1e-4)
        assert row["output"] == pytest.approx(row["prediction"], rel=1e-4)


def test_catboost_shap_values_sum_to_the_raw_score(frame):
    pytest.importorskip("catboost")
    pipeline = fit(frame.drop(columns=["review"]), "catboost", **{"model.iterations": 30})
    model = pipeline.predictor_.estimator.models[0]
    rows = frame.head(6).drop(columns=["review"])
    answer = explain_frame(pipeline.predictor_, rows, rows=list(range(6)))
    raw = model.predict(pipeline.predictor_.estimator._data(pipeline.predictor_.featureset.transform(rows)), prediction_type="RawFormulaVal")
    for row in answer["rows"]:
        sign = 1.0 if row["prediction"] == pipeline.predictor_.class_names[1] else -1.0
        assert row["base"] + sum(row["contributions"].values()) == pytest.approx(sign * raw[row["row"]], abs=1e-4)


def test_linear_contributions_are_exact_and_a_zero_weight_column_gets_zero(frame):
    pipeline = fit(frame.drop(columns=["review"]), "linear")
    estimator = pipeline.predictor_.estimator
    noise = estimator.spec.dense_columns.index(next(c for c in estimator.spec.dense_columns if c.startswith("noise")))
    estimator.weight[noise] = 0.0
    rows = frame.head(6).drop(columns=["review"])
    answer = explain_frame(pipeline.predictor_, rows, rows=list(range(6)))
    raw = estimator._raw_scores(pipeline.predictor_.featureset.transform(rows))
    for row in answer["rows"]:
        assert row["contributions"]["noise"] == 0.0
        assert row["output"] == pytest.approx(abs(raw[row["row"], 1] - raw[row["row"], 0]), abs=1e-5)
    assert answer["completeness_gap"] < 1e-9


def test_ngram_tokens_carry_the_text_feature_s_whole_contribution(frame):
    pipeline = fit(frame, "ngram")
    answer = explain_frame(pipeline.predictor_, frame.head(4), rows=[0, 1, 2, 3])
    for row in answer["rows"]:
        tokens = row["tokens"]["review"]
        assert "".join(t for t, _ in tokens) == frame["review"].iloc[row["row"]]  # the tokens join back into the text
        assert [t for t, _ in tokens if t.strip()][:2] == frame["review"].iloc[row["row"]].split()[:2]
        assert sum(score for _, score in tokens) == pytest.approx(row["contributions"]["review"], abs=1e-6)


def test_embed_contributions_are_exact_against_the_empty_text(frame):
    pipeline = fit(frame, "embed")
    rows = frame.head(4)
    answer = explain_frame(pipeline.predictor_, rows, rows=[0, 1, 2, 3])
    raw = pipeline.predictor_.estimator._raw_scores(pipeline.predictor_.featureset.transform(rows))
    for row in answer["rows"]:
        assert row["contributions"]["review"] != 0.0
        assert row["output"] == pytest.approx(abs(raw[row["row"], 1] - raw[row["row"], 0]), abs=1e-5)
    assert answer["completeness_gap"] < 1e-6


def test_chinese_word_ngrams_reach_the_characters_they_cover():
    """jieba's words are n-gram terms too: their share must land on their characters, or the
    highlights of a Chinese review would sum to less than its contribution."""
    from pathlib import Path

    reviews = pd.read_csv(Path(__file__).parents[1] / "fixtures" / "reviews_zh_300.csv")
    pipeline = fit(reviews, "ngram", target="sentiment")
    assert pipeline.predictor_.estimator.vectors.analyzers[0].segmenter == "jieba"
    answer = explain_frame(pipeline.predictor_, reviews.head(3), rows=[0, 1, 2])
    for row in answer["rows"]:
        tokens = row["tokens"]["review"]
        assert "".join(t for t, _ in tokens) == reviews["review"].iloc[row["row"]]
        # each token's score is rounded to 6 decimals: the sum of a long Chinese review's may drift by a few 1e-6
        assert sum(score for _, score in tokens) == pytest.approx(row["contributions"]["review"], abs=1e-6 * len(tokens))


def test_the_ensemble_is_the_weighted_mean_of_its_members(frame):
    from forgeml.explain.base import Context
    from forgeml.explain.methods import explain_estimator

    pipeline = fit(frame, "ensemble", **{"model.members": ["lightgbm", "ngram"], "model.folds": 2, "train.time_budget": 60})
    predictor = pipeline.predictor_
    rows = frame.head(5)
    answer = explain_frame(predictor, rows, rows=list(range(5)))
    assert "weighted average" in answer["method"]
    arrays = predictor.featureset.transform(rows)
    classes = predictor.scores(rows).argmax(axis=1)
    ctx = Context(predictor.featureset, predictor.task, predictor.config, classes)
    members = predictor.estimator.members
    total = sum(m["weight"] for m in members)
    expected = sum(m["weight"] / total * explain_estimator(m["estimator"], m["family"], ctx, arrays).values for m in members)
    got = np.array([[row["contributions"][name] for name in ctx.names] for row in answer["rows"]])
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_images_get_a_saliency_map_and_the_page_overlays_it(tmp_path):
    from tests.multimodal_data import write_image_folder

    from forgeml.explain.page import render
    from forgeml.explain.run import page_extras

    root = write_image_folder(tmp_path / "images", per_class=6, size=16)
    pipeline = Pipeline(target="label", overrides={**FAST, "train.epochs": 1}).fit(root)
    frame = pipeline.predictor_.read(root)
    answer = explain_frame(pipeline.predictor_, frame, rows=[0, 1], keep_arrays=True)
    images, saliency = page_extras(answer)
    assert "integrated gradients" in answer["method"] and answer["completeness_gap"] < 0.05
    name = next(iter(answer["rows"][0]["saliency"]))
    grid = np.asarray(answer["rows"][0]["saliency"][name])
    assert grid.shape == (16, 16) and np.abs(grid).sum() > 0
    # the coarse grid is the full map summed, so it adds up to the image's contribution
    assert grid.sum() == pytest.approx(answer["rows"][0]["contributions"][name], rel=1e-4, abs=1e-6)
    page = render(answer, images, saliency)
    assert page.count("data:image/png;base64,") == 1 + 2 + 2  # importance, two row charts, two overlays


def test_a_stacked_ensemble_weighs_each_member_by_its_share_of_the_stacker():
    from types import SimpleNamespace

    from forgeml.explain.ensemble import member_weights

    stacker = SimpleNamespace(weight=np.array([[1.0, -1.0], [0.0, 0.0], [0.5, 0.5], [-0.5, 0.0]]))  # 2 members × 2 classes
    assert member_weights(SimpleNamespace(stacker=stacker, members=[{"weight": 0.9}, {"weight": 0.1}])) == [2.0, 1.5]
    assert member_weights(SimpleNamespace(stacker=None, members=[{"weight": 0.9}, {"weight": 0.1}])) == [0.9, 0.1]
