"""Metrics on hand-checkable cases, and parity with scikit-learn on seeded random data."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn import metrics as skm

from forgeml.errors import ConfigError
from forgeml.evaluate.metrics import HEADLINE, compute_metrics, known_metrics, metric_direction


def _onehot_proba(codes: list[int], n_classes: int, confidence: float = 0.9) -> np.ndarray:
    rest = (1.0 - confidence) / (n_classes - 1)
    proba = np.full((len(codes), n_classes), rest)
    proba[np.arange(len(codes)), codes] = confidence
    return proba


# ----------------------------------------------------------------------------- classification
def test_binary_two_by_two_hand_checked():
    # TP=2 (rows 2,3), FN=1 (row 4), FP=1 (row 1), TN=1 (row 0)
    y_true = np.array([0, 0, 1, 1, 1])
    y_pred = np.array([0, 1, 1, 1, 0])
    result = compute_metrics("binary", y_true, y_pred=y_pred, class_names=["no", "yes"])

    assert result["confusion_matrix"] == [[1, 1], [1, 2]]
    assert result["accuracy"] == pytest.approx(3 / 5)
    assert result["per_class"]["yes"] == pytest.approx({"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3, "support": 3})
    assert result["per_class"]["no"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2})
    assert result["f1_macro"] == pytest.approx((2 / 3 + 0.5) / 2)
    assert result["balanced_accuracy"] == pytest.approx((0.5 + 2 / 3) / 2)
    assert result["n"] == 5
    # no probabilities: the probability metrics are undefined, not invented
    assert result["log_loss"] is None and result["roc_auc"] is None and result["pr_auc"] is None


def test_perfect_predictions_score_one():
    codes = [0, 1, 2, 1, 0, 2]
    result = compute_metrics("multiclass", np.array(codes), y_proba=_onehot_proba(codes, 3))
    assert result["accuracy"] == 1.0
    assert result["f1_macro"] == 1.0
    assert result["roc_auc"] == 1.0
    assert result["pr_auc"] == 1.0
    assert result["confusion_matrix"] == [[2, 0, 0], [0, 2, 0], [0, 0, 2]]


def test_y_pred_defaults_to_argmax_of_proba():
    y_true = np.array([0, 1, 1, 0])
    proba = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.1, 0.9]])  # argmax 0, 1, 0, 1
    result = compute_metrics("binary", y_true, y_proba=proba)
    assert result["confusion_matrix"] == [[1, 1], [1, 1]]
    assert result["accuracy"] == 0.5
    assert result["roc_auc"] == pytest.approx(skm.roc_auc_score(y_true, proba[:, 1]))


def test_multiclass_with_class_absent_from_y_true():
    # class 2 never occurs in y_true: AUC is averaged over classes 0 and 1 only, per_class still lists it.
    y_true = np.array([0, 0, 1, 1])
    proba = np.array([[0.7, 0.2, 0.1], [0.5, 0.1, 0.4], [0.2, 0.6, 0.2], [0.3, 0.3, 0.4]])
    result = compute_metrics("multiclass", y_true, y_proba=proba, class_names=["a", "b", "c"])

    expected_auc = np.mean([skm.roc_auc_score(y_true == c, proba[:, c]) for c in (0, 1)])
    assert result["roc_auc"] == pytest.approx(expected_auc)
    assert result["per_class"]["c"]["support"] == 0
    assert result["confusion_matrix"] == [[2, 0, 0], [0, 1, 1], [0, 0, 0]]  # row 3 predicted as c
    assert result["log_loss"] == pytest.approx(skm.log_loss(y_true, proba, labels=[0, 1, 2]))


def test_single_class_split_gives_none_auc_not_error():
    y_true = np.array([1, 1, 1])
    proba = np.array([[0.2, 0.8], [0.4, 0.6], [0.7, 0.3]])
    result = compute_metrics("binary", y_true, y_proba=proba)
    assert result["roc_auc"] is None and result["pr_auc"] is None
    assert result["accuracy"] == pytest.approx(2 / 3)
    assert result["log_loss"] == pytest.approx(skm.log_loss(y_true, proba, labels=[0, 1]))


def test_probability_metrics_match_sklearn_on_random_data():
    rng = np.random.default_rng(7)
    y_true = rng.integers(0, 4, size=200)
    proba = rng.dirichlet(np.ones(4), size=200)
    result = compute_metrics("multiclass", y_true, y_proba=proba)

    assert result["log_loss"] == pytest.approx(skm.log_loss(y_true, proba, labels=range(4)))
    assert result["roc_auc"] == pytest.approx(skm.roc_auc_score(y_true, proba, multi_class="ovr", average="macro"))
    expected_ap = np.mean([skm.average_precision_score(y_true == c, proba[:, c]) for c in range(4)])
    assert result["pr_auc"] == pytest.approx(expected_ap)
    assert result["f1_weighted"] == pytest.approx(skm.f1_score(y_true, proba.argmax(1), average="weighted"))

    y_bin = rng.integers(0, 2, size=150)
    p1 = rng.random(150)
    binary = compute_metrics("binary", y_bin, y_proba=np.column_stack([1 - p1, p1]))
    assert binary["roc_auc"] == pytest.approx(skm.roc_auc_score(y_bin, p1))
    assert binary["pr_auc"] == pytest.approx(skm.average_precision_score(y_bin, p1))


def test_classification_result_is_plain_json():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 3, size=30)
    result = compute_metrics("multiclass", y_true, y_proba=rng.dirichlet(np.ones(3), size=30), class_names=["猫", "狗", "鸟"])
    text = json.dumps(result, ensure_ascii=False, allow_nan=False)  # numpy scalars or NaN would fail here
    assert set(json.loads(text)["per_class"]) == {"猫", "狗", "鸟"}
    assert type(result["accuracy"]) is float and type(result["n"]) is int


# ----------------------------------------------------------------------------- regression
def test_regression_perfect_and_hand_checked():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    perfect = compute_metrics("regression", y, y_pred=y.copy())
    assert perfect["r2"] == 1.0 and perfect["mae"] == 0.0 and perfect["rmse"] == 0.0 and perfect["mape"] == 0.0

    pred = np.array([2.0, 2.0, 3.0, 2.0])  # errors 1, 0, 0, 2
    result = compute_metrics("regression", y, y_pred=pred)
    assert result["mae"] == pytest.approx(0.75)
    assert result["rmse"] == pytest.approx(math.sqrt(5 / 4))
    assert result["r2"] == pytest.approx(1 - 5 / 5)  # SS_res = 5, SS_tot = 5
    assert result["mape"] == pytest.approx((1 / 1 + 0 + 0 + 2 / 4) / 4)
    assert result["n"] == 4
    assert "per_target" not in result


def test_mape_skips_zero_targets_and_is_none_when_all_zero():
    result = compute_metrics("regression", np.array([0.0, 2.0]), y_pred=np.array([5.0, 1.0]))
    assert result["mape"] == pytest.approx(0.5)  # only the row with y=2 counts
    assert compute_metrics("regression", np.zeros(3), y_pred=np.ones(3))["mape"] is None


def test_multi_target_regression_averages_and_reports_each_target():
    y_true = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]])
    y_pred = np.array([[1.0, 12.0], [2.0, 18.0], [3.0, 30.0]])
    result = compute_metrics("regression", y_true, y_pred=y_pred, target_names=["价格", "面积"])
    assert result["per_target"]["价格"]["mae"] == 0.0
    assert result["per_target"]["面积"]["mae"] == pytest.approx(4 / 3)
    assert result["mae"] == pytest.approx(2 / 3)
    assert result["r2"] == pytest.approx((1.0 + skm.r2_score(y_true[:, 1], y_pred[:, 1])) / 2)


# ----------------------------------------------------------------------------- names and directions
def test_headline_and_directions():
    assert HEADLINE == {"binary": "f1_macro", "multiclass": "f1_macro", "regression": "r2"}
    for name in ("loss", "log_loss", "mae", "rmse", "mape", "val_loss", "train_loss", "val_mae"):
        assert metric_direction(name) == "min", name
    for name in ("accuracy", "f1_macro", "roc_auc", "pr_auc", "r2", "val_f1_macro"):
        assert metric_direction(name) == "max", name


def test_unknown_metric_and_task_raise_config_error_listing_names():
    with pytest.raises(ConfigError) as error:
        metric_direction("f1_micro")
    assert "f1_macro" in str(error.value) and "rmse" in str(error.value)
    with pytest.raises(ConfigError):
        compute_metrics("ranking", np.array([1]), y_pred=np.array([1]))
    assert "r2" in known_metrics("regression") and "r2" not in known_metrics("binary")
    assert set(HEADLINE.values()) <= set(known_metrics())
