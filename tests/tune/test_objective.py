"""A trial in process: options drawn from the family's space, validation losses reported to the
pruner as the fit goes (and thinned), a one-step family never pruned, the second objectives."""
from __future__ import annotations

import optuna
import pytest

from forgeml.api import Pipeline
from forgeml.tune.objective import PruningReporter, TrialObjective
from forgeml.tune.space import search_space
from forgeml.tune.study import step_limit
from tests.e2e.test_tune_cli import _table

optuna.logging.set_verbosity(optuna.logging.ERROR)


def _prepared(family: str, target: str = "label", **overrides):
    return Pipeline(target=target, overrides={"model.type": family, "train.threads": 1, **overrides}).prepare(_table())


def _study(objective: TrialObjective, trials: int, pruner=None, directions=("minimize",)) -> optuna.Study:
    study = optuna.create_study(directions=list(directions), sampler=optuna.samplers.TPESampler(seed=0), pruner=pruner)
    study.optimize(objective, n_trials=trials)
    return study


def test_lightgbm_trials_are_pruned_from_their_boosting_rounds():
    prepared = _prepared("gbm", **{"model.num_boost_round": 300})
    limit = step_limit(prepared.config)
    objective = TrialObjective(prepared, search_space("gbm"), ("loss",), None, "boosting round", print, report_every=limit // 30)
    study = _study(objective, 10, optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=10))
    pruned = [t for t in study.trials if t.state.name == "PRUNED"]
    assert pruned and all(10 <= t.user_attrs["pruned_at"] < 300 for t in pruned)
    reported = [len(t.intermediate_values) for t in study.trials]
    assert max(reported) <= 31  # every 10th round at most, not 100 rows a trial


def test_a_one_step_family_is_never_pruned():
    prepared = _prepared("linear", target="price")
    assert step_limit(prepared.config) == 1
    objective = TrialObjective(prepared, search_space("linear"), ("loss",), None, "regularisation step", print, prunable=False)
    study = _study(objective, 5, optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0))
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 5


def test_two_objectives_score_loss_and_parameter_count():
    prepared = _prepared("mlp", **{"train.epochs": 3, "train.progress": False})
    objective = TrialObjective(prepared, search_space("mlp"), ("loss", "params"), None, "epoch", print)
    study = _study(objective, 3, directions=("minimize", "minimize"))
    for trial in study.trials:
        loss, params = trial.values
        width, depth = trial.params["model.hidden_size"], trial.params["model.num_layers"]
        assert 0 < loss < 5 and params > width * width * (depth - 1)  # the hidden blocks alone hold that many weights


@pytest.mark.parametrize("every, expected", [(1, [1, 2, 3, 4, 5, 6]), (3, [3, 6])])
def test_reports_are_thinned_to_every_nth_step(every, expected):
    study = optuna.create_study()
    trial = study.ask()
    reporter = PruningReporter(trial, enabled=True, every=every)
    for step in range(1, 7):
        reporter.on_epoch_end({"epoch": step, "val_loss": 1.0 / step})
    assert sorted(study.trials[0].intermediate_values) == expected


def test_a_failed_trial_keeps_its_reason_and_the_study_goes_on(monkeypatch):
    prepared = _prepared("linear", target="price")
    objective = TrialObjective(prepared, search_space("linear"), ("loss",), None, "regularisation step", print, prunable=False)
    calls = iter([RuntimeError("diverged at step 3\nsecond line"), None, None])

    def fit_or_fail(self, *args, **kwargs):
        error = next(calls)
        if error:
            raise error
        return original(self, *args, **kwargs)

    from forgeml.models.linear import LinearEstimator

    original = LinearEstimator.fit
    monkeypatch.setattr(LinearEstimator, "fit", fit_or_fail)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    study.optimize(objective, n_trials=3, catch=(RuntimeError,))
    assert [t.state.name for t in study.trials] == ["FAIL", "COMPLETE", "COMPLETE"]
    assert study.trials[0].user_attrs["failure"] == "RuntimeError: diverged at step 3"
