"""train.class_weight: 'balanced' weights each row's loss by its class (scikit-learn's rule), so a
rare class is not drowned out when macro-F1 is what counts; 'none' (the default) leaves it alone."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.utils.class_weight import compute_class_weight
from torch.nn import functional as F

from forgeml import Pipeline
from forgeml.models.tasks import Task, balanced_class_weights


def test_balanced_weights_match_scikit_learn_and_leave_absent_classes_at_one():
    y = np.array([0] * 90 + [1] * 7 + [2] * 3)
    expected = compute_class_weight("balanced", classes=np.arange(3), y=y)
    np.testing.assert_allclose(balanced_class_weights(y, 3), expected)
    weights = balanced_class_weights(np.array([0, 0, 0, 2]), 3)  # class 1 has no train rows
    assert weights[1] == 1.0 and weights[2] == pytest.approx(2.0) and weights[0] == pytest.approx(4 / 6)


def test_weighted_losses_are_the_class_weighted_mean():
    torch.manual_seed(0)
    y = torch.tensor([0, 0, 0, 1, 2, 2])
    weights = np.array([0.5, 2.0, 1.0])
    multi = Task.resolve("multiclass", "auto", 3)
    logits = torch.randn(6, 3)
    per_row = F.cross_entropy(logits, y, reduction="none")
    w = torch.as_tensor(weights, dtype=torch.float32)[y]
    assert float(multi.loss_fn(weights)(logits, y)) == pytest.approx(float((per_row * w).sum() / w.sum()), rel=1e-6)
    assert float(multi.loss_fn()(logits, y)) == pytest.approx(float(per_row.mean()), rel=1e-6)

    binary = Task.resolve("binary", "auto", 2)
    yb = torch.tensor([0, 0, 0, 1])
    out = torch.randn(4, 1)
    per_row = F.binary_cross_entropy_with_logits(out[:, 0], yb.float(), reduction="none")
    wb = torch.tensor([1.0, 3.0])[yb]
    assert float(binary.loss_fn(np.array([1.0, 3.0]))(out, yb)) == pytest.approx(float((per_row * wb).sum() / wb.sum()), rel=1e-6)
    assert binary.class_weights("none", yb.numpy()) is None
    assert Task.resolve("regression", "auto", 1).class_weights("balanced", np.zeros((4, 1))) is None


@pytest.fixture(scope="module")
def imbalanced() -> pd.DataFrame:
    """95 % 'common', 5 % 'rare'; the rare rows sit higher on x but overlap the common ones, so an
    unweighted model puts its boundary past most rare rows and a balanced one moves it back."""
    rng = np.random.default_rng(0)
    rows = 1200
    rare = rng.random(rows) < 0.05
    x = rng.normal(0, 1, rows) + 1.5 * rare
    return pd.DataFrame({"x": x, "noise": rng.normal(0, 1, rows), "label": np.where(rare, "rare", "common")})


@pytest.mark.parametrize("model", ["mlp", "gbm"])
def test_balanced_weighting_predicts_the_rare_class_more_and_raises_its_recall(imbalanced, model):
    results = {}
    for how in ("none", "balanced"):
        overrides = {"train.class_weight": how, "train.progress": False, "train.threads": 1, "train.epochs": 15, "train.bagging_folds": 1}
        pipeline = Pipeline(target="label", model=model, overrides=overrides).fit(imbalanced)
        assert pipeline.predictor_.config.train.class_weight == how  # written into the resolved config (and the bundle)
        predicted = pipeline.predict(imbalanced[["x", "noise"]])["label_prediction"]
        truth = imbalanced["label"]
        results[how] = ((predicted == "rare").mean(), ((predicted == "rare") & (truth == "rare")).sum() / (truth == "rare").sum())
    (share_none, recall_none), (share_balanced, recall_balanced) = results["none"], results["balanced"]
    assert share_balanced > 2 * share_none  # the rare class is predicted far more often
    assert recall_balanced > recall_none + 0.2
