"""Out-of-fold trial scores on small data, and the untuned default as the first trial."""
from __future__ import annotations

import numpy as np
import optuna
import pytest

from forgeml.tune.folds import default_point, out_of_fold, trial_folds
from forgeml.tune.objective import TrialObjective
from forgeml.tune.space import Choice, Float, Int, search_space
from tests.tune.test_objective import _prepared

optuna.logging.set_verbosity(optuna.logging.ERROR)


@pytest.mark.parametrize("setting, rows, expected", [("auto", 300, 5), ("auto", 5_000, 5), ("auto", 5_001, 1), (3, 100, 3), (5, 6, 3), (1, 50, 1)])
def test_fold_count(setting, rows, expected):
    assert trial_folds(setting, rows) == expected


def test_out_of_fold_holds_out_every_row_once_and_averages_the_fold_losses():
    rows = 103
    arrays, targets = {"x": np.arange(rows, dtype=float)[:, None]}, np.array([0, 1, 2] * 34 + [0])[:, None]
    seen, losses = [], []

    def fit_fold(train, y_train, held, y_held, fold):
        assert not set(train["x"][:, 0]) & set(held["x"][:, 0])
        seen.extend(held["x"][:, 0])
        losses.append(float(fold))
        return float(fold)

    assert out_of_fold(fit_fold, arrays, targets, 4, seed=0, classes=True) == pytest.approx(np.mean(losses)) == 2.5
    assert sorted(seen) == list(range(rows))


def test_default_point_keeps_the_configs_values_that_the_space_holds():
    class Train:
        learning_rate, batch_size = 0.001, 100  # 100 is not among the batch sizes searched
    class Model:
        num_layers, dropout = 2, 0.9  # 0.9 lies outside the dropout range
    class Config:
        train, model = Train, Model

    space = {"train.learning_rate": Float(1e-4, 1e-2, log=True), "train.batch_size": Choice((32, 64)),
             "model.num_layers": Int(1, 4), "model.dropout": Float(0.0, 0.5)}
    assert default_point(Config, space) == {"train.learning_rate": 0.001, "model.num_layers": 2}


def test_an_out_of_fold_trial_scores_the_mean_of_its_folds(monkeypatch):
    prepared = _prepared("gbm", **{"model.num_boost_round": 40, "train.progress": False})
    fits = []
    import forgeml.tune.objective as objective_module

    real = objective_module.validation_loss
    monkeypatch.setattr(objective_module, "validation_loss", lambda *a: fits.append(real(*a)) or fits[-1])
    objective = TrialObjective(prepared, search_space("gbm"), ("loss",), None, "boosting round", print, folds=3)
    study = optuna.create_study()
    study.optimize(objective, n_trials=1)
    assert len(fits) == 3 and study.trials[0].value == pytest.approx(np.mean(fits))


def test_out_of_fold_trials_are_pruned_between_folds_on_the_running_mean():
    """The pruner sees the mean held-out loss after each fold (steps are folds, never a fold's
    rounds), so a pruned trial stopped after a whole fold, and a finished one reported all five."""
    prepared = _prepared("gbm", **{"model.num_boost_round": 60, "train.progress": False})
    objective = TrialObjective(prepared, search_space("gbm"), ("loss",), None, "fold", print, report_every=2, folds=5)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0),
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=2))
    study.optimize(objective, n_trials=8)
    pruned = [t for t in study.trials if t.state.name == "PRUNED"]
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert pruned and all(t.user_attrs["pruned_at"] in (2, 3, 4, 5) for t in pruned)
    assert all(set(t.intermediate_values) == {1, 2, 3, 4, 5} for t in complete)
    assert all(t.intermediate_values[5] == pytest.approx(t.value) for t in complete)  # the last running mean is the score


def test_the_pruner_judges_folds_from_the_second_and_epochs_from_a_thirtieth_of_the_limit():
    from forgeml.tune.study import pruner_steps

    prepared = _prepared("mlp", **{"train.epochs": 90})
    assert pruner_steps(prepared.config, 5) == (5, 2)
    assert pruner_steps(prepared.config, 1) == ("auto", 3)
