"""The linear family: scikit-learn fits it, numpy predicts it from safetensors weights (no pickle, no
sklearn at predict), alpha "auto" follows the validation loss, text is refused in one line."""
from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from forgeml import Pipeline
from forgeml.config import Config
from forgeml.errors import ConfigError
from forgeml.features.featureset import InputSpec
from forgeml.models.estimator import FitOptions
from forgeml.models.linear import ALPHAS, LinearEstimator
from forgeml.models.tasks import Task

QUIET = {"train.progress": False, "train.threads": 1}


def _table(rows: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    group = rng.choice(list("abcdef"), rows)
    x = rng.normal(size=rows).round(4)
    lifted = np.isin(group, list("abc"))
    return pd.DataFrame({
        "group": group, "x": x,
        "y": np.where(2 * lifted + x + rng.normal(0, 0.3, rows) > 1, "yes", "no"),
        "price": (3 * lifted + x + rng.normal(0, 0.1, rows)).round(3),
        "size": (2 * x - lifted + rng.normal(0, 0.1, rows)).round(3),
    })


def _estimator(task: Task, alpha: float | str = "auto", codes: int = 4) -> LinearEstimator:
    config = Config.from_dict({"target": "y", "model": {"type": "linear", "alpha": alpha}})
    return LinearEstimator(config, task, InputSpec(dense_columns=["a", "b"], codes=[("g", codes, 2)]))


def _arrays(rows: int, codes: int = 4, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"dense": rng.normal(size=(rows, 2)).astype(np.float32), "codes": rng.integers(0, codes, size=(rows, 1))}


def test_classifier_round_trips_and_predicts_without_scikit_learn(tmp_path):
    frame = _table()
    pipeline = Pipeline(target="y", model="linear", overrides=QUIET).fit(frame.drop(columns=["price", "size"]))
    assert pipeline.metrics_["accuracy"] >= 0.85, pipeline.metrics_
    importance = pipeline.predictor_.estimator.feature_importance()
    assert importance["group"] > importance["x"] > 0
    pipeline.save(tmp_path / "bundle")
    assert (tmp_path / "bundle" / "linear.safetensors").is_file() and not list((tmp_path / "bundle").rglob("*.pkl"))
    frame.head(50).to_csv(tmp_path / "new.csv", index=False)
    code = ("import sys\nimport numpy as np, pandas as pd\nfrom forgeml import Pipeline\n"
            f"p = Pipeline.load({str(tmp_path / 'bundle')!r}).predict(pd.read_csv({str(tmp_path / 'new.csv')!r}))\n"
            "np.save(sys.argv[1], p.filter(like='proba').to_numpy())\n"
            "assert 'sklearn' not in sys.modules, 'scikit-learn was imported to predict'")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "p.npy")], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), pipeline.predict(frame.head(50)).filter(like="proba").to_numpy(), rtol=1e-6)


@pytest.mark.parametrize("classes", [2, 3])
def test_numpy_scores_equal_scikit_learns_on_the_one_hot_design(classes):
    from sklearn.linear_model import LogisticRegression

    arrays = _arrays(240)
    labels = (arrays["codes"][:, 0] + (arrays["dense"][:, 0] > 0)) % classes
    estimator = _estimator(Task.resolve("binary" if classes == 2 else "multiclass", "auto", classes), alpha=0.5)
    estimator.fit(arrays, labels, None, None, FitOptions())
    design = np.concatenate([arrays["dense"], np.eye(4)[arrays["codes"][:, 0]]], axis=1)
    reference = LogisticRegression(C=2.0, max_iter=1000).fit(design, labels)
    np.testing.assert_allclose(estimator.scores(arrays), reference.predict_proba(design), atol=1e-4)


def test_a_class_absent_from_the_train_rows_gets_probability_zero():
    arrays = _arrays(200)
    labels = arrays["codes"][:, 0] % 3  # classes 0..2 of 4
    estimator = _estimator(Task.resolve("multiclass", "auto", 4), alpha=1.0)
    estimator.fit(arrays, labels, None, None, FitOptions())
    scores = estimator.scores(arrays)
    assert scores.shape == (200, 4) and np.all(scores[:, 3] == 0) and np.allclose(scores.sum(axis=1), 1)


def test_auto_alpha_keeps_the_lowest_validation_loss():
    arrays, val = _arrays(200), _arrays(100, seed=1)
    target = lambda a: (a["dense"] @ [[1.0], [-2.0]] + a["codes"] * 0.5).astype(np.float64)  # noqa: E731
    estimator = _estimator(Task.resolve("regression", "auto", 1))
    summary = estimator.fit(arrays, target(arrays), val, target(val), FitOptions())
    losses = [row["val_loss"] for row in summary.history]
    assert [row["alpha"] for row in summary.history] == list(ALPHAS)
    assert summary.best_epoch == int(np.argmin(losses)) + 1 and estimator.alpha_ == ALPHAS[summary.best_epoch - 1]
    assert estimator.alpha_ < 1 and summary.best_value == min(losses)  # noiseless: weak regularisation wins
    fixed = _estimator(Task.resolve("regression", "auto", 1), alpha=10.0)
    assert len(fixed.fit(arrays, target(arrays), val, target(val), FitOptions()).history) == 1


def test_a_passed_deadline_keeps_the_first_fit():
    arrays = _arrays(100)
    labels = (arrays["dense"][:, 0] > 0).astype(np.int64)
    options = FitOptions()
    options.deadline = time.monotonic()  # the lead's FitOptions.deadline; read with getattr
    estimator = _estimator(Task.resolve("binary", "auto", 2))
    summary = estimator.fit(arrays, labels, arrays, labels, options)
    assert len(summary.history) == 1 and summary.stopped_early and estimator.alpha_ == ALPHAS[0]


def test_balanced_class_weights_raise_the_rare_class():
    rng = np.random.default_rng(1)
    x = rng.normal(size=400).round(3)
    frame = pd.DataFrame({"x": x, "noise": rng.normal(size=400).round(3),
                          "y": np.where(x + rng.normal(0, 1.0, 400) > 1.6, "rare", "common")})

    def mean_rare(weighting: str) -> float:
        pipeline = Pipeline(target="y", model="linear", overrides={**QUIET, "train.class_weight": weighting}).fit(frame)
        return float(pipeline.predict(frame)["y_proba_rare"].mean())

    assert mean_rare("balanced") > 1.5 * mean_rare("none")


def test_multi_target_regression_round_trips(tmp_path):
    pipeline = Pipeline(target=["price", "size"], model="linear", overrides=QUIET).fit(_table().drop(columns=["y"]))
    assert pipeline.metrics_["r2"] > 0.95, pipeline.metrics_
    pipeline.save(tmp_path / "bundle")
    new = _table(rows=20, seed=3)
    np.testing.assert_allclose(Pipeline.load(tmp_path / "bundle").predict(new).to_numpy(dtype=float), pipeline.predict(new).to_numpy(dtype=float))


def test_bad_alpha_and_text_columns_get_one_line(make_mixed):
    with pytest.raises(ConfigError, match="alpha must be greater than 0, or 'auto'"):
        Config.from_dict({"target": "y", "model": {"type": "linear", "alpha": 0}})
    with pytest.raises(ConfigError, match="text column 'review'") as caught:
        Pipeline(target="label", model="linear", overrides=QUIET).fit(make_mixed())
    assert "\n" not in str(caught.value) and "data.drop=[review]" in caught.value.hint
