"""``forgeml tune``'s course: check the request, open the storage, prepare the data once, create
or resume the study (refusing one of another family, target, space or data), run trials here and
in worker processes until the study holds the asked-for count or the budget ends, then refit the
best trial as a normal run (bundle, report with a tuning section, trials.csv/json).

Nothing finished is lost: every trial is written to the storage as it ends, a worker killed
mid-trial only fails its own trial, and a lost PostgreSQL server ends the command with one line
while its finished trials stay in the database for the next run of the same command.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from forgeml.errors import ConfigError, StudyError
from forgeml.tune import storage as storages
from forgeml.tune.folds import default_point, scoring_words, trial_folds
from forgeml.tune.objective import OBJECTIVES, TrialObjective, input_kinds
from forgeml.tune.space import active, search_space, signature

FINISHED = ("COMPLETE", "PRUNED", "FAIL")  # what counts towards --trials: a failed trial is not run again
# Reports to the pruner per trial, at most, over a family's step limit (1,000 rounds: every 33rd;
# 200 epochs: every 6th): each costs 3 ms on a journal file, 12-17 ms on SQLite or PostgreSQL
REPORTS_PER_TRIAL = 30


@dataclass
class TuneRequest:
    """What the command line asked for (``--workers`` spawn copies of it with ``until`` set)."""

    source: Path  # the data file or config.yaml, as given
    data: Path
    config: Any  # forgeml.config.Config with model.type = the family
    trials: int = 20
    time_budget: float | None = None
    workers: int = 1
    storage: str | None = None
    study: str | None = None
    objectives: tuple[str, ...] = ("loss",)
    pruner: str = "hyperband"
    folds: int | str = "auto"  # trials scored out of fold over this many folds (forgeml.tune.folds)
    refit: bool = True
    until: int | None = None  # a worker: run until the study holds this many finished trials
    worker_index: int = 0
    runs_root: Path = Path("runs")
    argv_tail: list[str] = field(default_factory=list)  # --target/--set options, repeated to the workers
    fixed: frozenset[str] = frozenset()  # options given with --set: every trial keeps them, the space leaves them out

    @property
    def family(self) -> str:
        return self.config.model.type


# name → Optuna pruner for a study of ``trials`` whose trials take up to ``steps`` steps and are
# first judged at step ``first``: Hyperband is the pruner Optuna's benchmarks pair with TPE (each
# bracket gets its own TPE); median is the simplest to reason about. See ``pruner_steps``.
PRUNERS: dict[str, Callable[[int, int | str, int], Any]] = {
    "hyperband": lambda trials, steps, first: __import__("optuna").pruners.HyperbandPruner(min_resource=first, max_resource=steps, reduction_factor=3),
    "median": lambda trials, steps, first: __import__("optuna").pruners.MedianPruner(n_startup_trials=max(2, min(5, trials // 5)),
                                                                                     n_warmup_steps=first),
    "none": lambda trials, steps, first: __import__("optuna").pruners.NopPruner(),
}
FOLDS_BEFORE_PRUNING = 2  # out-of-fold trials: the mean of two folds (2/5 of the rows) is the first judged


def pruner_steps(config: Any, folds: int) -> tuple[int | str, int]:
    """(most steps, first step judged). One split: "auto" (Hyperband takes the first finished
    trial's steps: early stopping ends most well before the family's step limit), judged from 1/30
    of the limit (200 epochs, 1,000 rounds). Out of fold: the folds (``objective.fold_pruning``), judged
    from the mean of ``FOLDS_BEFORE_PRUNING`` folds — one fold's 60-80 held-out rows on a small set
    rank configurations too noisily to drop one for good."""
    if folds > 1:
        return folds, min(FOLDS_BEFORE_PRUNING, folds)
    return "auto", max(1, step_limit(config) // 30)


def step_limit(config: Any) -> int:
    """The most steps a trial of this family can take (its ``STEP_LIMIT`` option); 1 for a family
    without one (linear: a fixed alpha is one fit), whose trials are then never pruned."""
    from forgeml.models.families import family_module

    section, _, key = getattr(family_module(config.model.type), "STEP_LIMIT", "").partition(".")
    return int(getattr(getattr(config, section, None), key, 1) or 1) if key else 1


def check_request(request: TuneRequest) -> dict[str, Any]:
    """Everything that can be refused before reading the data: the family's space, the
    objectives, the pruner, the storage's scheme. Returns the family's full space."""
    space = search_space(request.family)
    if space is None:
        raise ConfigError(f"the {request.family} family has no search space", where="--model",
                          hint="tune one of its members instead (--model gbm, catboost, linear or mlp); train the ensemble with forgeml train --model ensemble")
    unknown = [name for name in request.objectives if name not in OBJECTIVES]
    if unknown or request.objectives[0] != "loss" or len(request.objectives) > 2 or len(set(request.objectives)) < len(request.objectives):
        raise ConfigError(f"--objective {','.join(request.objectives)} is not one forgeml tunes for", where="--objective",
                          hint="loss (default), loss,latency or loss,params")
    if request.config.train.privacy.enabled:  # every trial would spend the budget again on the same rows
        raise ConfigError("tuning trains many models on the same rows, and each would spend the privacy budget", where="train.privacy",
                          hint="tune without train.privacy on public or other data, then train once privately with the settings found (forgeml train --privacy-epsilon)")
    if request.pruner not in PRUNERS:
        raise ConfigError(f"unknown pruner {request.pruner!r}", where="--pruner", hint=f"one of {', '.join(PRUNERS)}")
    if request.trials < 1 or request.workers < 1:
        raise ConfigError("--trials and --workers must be at least 1", where="--trials" if request.trials < 1 else "--workers", hint="e.g. --trials 50 --workers 2")
    return dict(space)


def run_tune(request: TuneRequest, echo: Callable[[str], None]) -> dict[str, Any] | None:
    """Run the study; returns the tuning summary (with the refitted run) or None for a worker."""
    import optuna

    from forgeml.api import Pipeline

    full_space = check_request(request)
    started = time.monotonic()
    deadline = started + request.time_budget if request.time_budget else None
    study_name = request.study or f"{Path(request.data).stem}-{request.family}"
    url = storages.normalise(request.storage or storages.default_storage(request.runs_root / "tuning", study_name, request.workers))
    _quiet_optuna()
    storage = storages.open_storage(url)  # an unreachable server: one line, before seconds of reading data
    prepared = Pipeline(config=request.config).prepare(request.data)
    if not len(prepared.targets.get("validation", [])):
        raise ConfigError("tuning needs a validation split to score trials on", where="data.split",
                          hint="keep data.split.validation above 0 or give a validation file; the test split stays untouched")
    if deadline is not None and time.monotonic() >= deadline:
        raise StudyError(f"reading and preparing the data took {time.monotonic() - started:.1f} s, the whole --time-budget", where="--time-budget",
                         hint="give a longer budget, e.g. --time-budget 10m")
    space = {key: dim for key, dim in active(full_space, input_kinds(prepared.featureset.input_spec())).items() if key not in request.fixed}
    if not space:
        raise ConfigError(f"--set fixes every option the {request.family} search space tunes", where="--set",
                          hint=f"leave some of {', '.join(sorted(full_space))} to the search")
    rows = len(prepared.targets["train"]) + len(prepared.targets["validation"])
    folds = trial_folds(request.folds, rows)
    study = _open_study(storage, url, study_name, request, _study_meta(request, prepared, space, scoring_words(folds, rows)), space, pruner_steps(request.config, folds))
    dead = storages.fail_dead_workers(study)
    if dead:
        echo(f"trials {', '.join(map(str, dead))} were left running by a worker that died: marked failed")
    total = request.until or _finished(study) + request.trials
    workers = _spawn_workers(request, url, study_name, total, deadline) if request.until is None and request.workers > 1 else []
    from forgeml.runs.history import step_name

    limit = step_limit(request.config)
    objective = TrialObjective(prepared, space, request.objectives, deadline, step_name(request.family), echo,
                               report_every=max(1, limit // REPORTS_PER_TRIAL), prunable=limit > 1, folds=folds)
    try:
        study.optimize(objective, n_trials=None, timeout=None if deadline is None else max(0.0, deadline - time.monotonic()),
                       callbacks=[_StopAt(total), _Echo(echo, request.objectives, request.worker_index, folds > 1)],
                       catch=(ValueError, RuntimeError, ArithmeticError), gc_after_trial=True)
    except BaseException as exc:
        _stop(workers)
        if isinstance(exc, Exception) and _storage_failure(exc):
            raise storages.lost(url, exc) from None
        raise
    killed = _wait(workers, echo)
    if killed or workers:
        dead = storages.fail_dead_workers(study)
        if dead:
            echo(f"trial {', '.join(map(str, dead))} of a killed worker marked failed; the study went on without it")
    if request.until is not None:
        return None
    from forgeml.tune.results import summarise

    summary = summarise(study, request, url, space)
    if summary["best"] is None:
        raise _nothing_finished(study, request)
    return summary


class _StopAt:
    """Start no trial once the study's finished trials and those running in other processes make
    ``total``: a worker that only counted finished ones started one more while the other's last
    trial ran, so two workers ran total + 1 trials and the command waited for the extra one.
    (A killed worker's running trial still counts: it ends as failed, and failed trials count.)"""

    def __init__(self, total: int):
        self.total = total

    def __call__(self, study: Any, trial: Any) -> None:
        from optuna.trial import TrialState

        running = len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))  # this process's trial has just finished
        if _finished(study) + running >= self.total:
            study.stop()


class _Echo:
    """One line per finished trial: number, state, score, the sampled options."""

    def __init__(self, echo: Callable[[str], None], objectives: tuple[str, ...], worker: int, by_fold: bool = False):
        self.echo, self.objectives = echo, objectives
        self.pruned_words = "pruned after fold" if by_fold else "pruned at step"  # out-of-fold trials are pruned between folds
        self.prefix = f"worker {worker} · " if worker else ""

    def __call__(self, study: Any, trial: Any) -> None:
        from forgeml.evaluate.report_tuning import format_params

        state = trial.state.name.lower()
        if state == "complete":
            score = " · ".join(f"{name} {value:.4g}" for name, value in zip(self.objectives, trial.values))
        elif state == "pruned":
            score = trial.user_attrs.get("cut_by_budget") and "stopped by the time budget" or f"{self.pruned_words} {trial.user_attrs.get('pruned_at', '?')}"
        else:
            score = f"failed: {trial.user_attrs.get('failure', '?')[:160]}"
        self.echo(f"{self.prefix}trial {trial.number} {state} · {score} · {format_params(trial.params)}")


def _finished(study: Any) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=tuple(TrialState[name] for name in FINISHED)))


def _study_meta(request: TuneRequest, prepared: Any, space: dict[str, Any], scoring: str) -> dict[str, Any]:
    """What a study must keep to stay comparable: family, target, space, objectives, and the
    validation split's fingerprint (another file or split seed would score trials on other rows)."""
    import hashlib

    import numpy as np

    targets = np.ascontiguousarray(prepared.targets["validation"])
    return {
        "family": request.family,
        "target": list(prepared.config.target),
        "objectives": list(request.objectives),
        "space": signature(space),
        "validation": f"{len(targets)} rows, {hashlib.sha256(targets.tobytes()).hexdigest()[:16]}",
        "scoring": scoring,
    }


_META_WORDS = {"family": "model family", "target": "target", "objectives": "objective", "space": "search space", "validation": "validation split", "scoring": "trial scoring"}


def _open_study(storage: Any, url: str, name: str, request: TuneRequest, meta: dict[str, Any], space: dict[str, Any], steps: tuple[int | str, int]) -> Any:
    import optuna

    directions = [OBJECTIVES[o][0] for o in request.objectives]
    seed = request.config.train.seed + request.worker_index  # workers must not draw the same points
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(3, min(10, request.trials // 4)), multivariate=True,
                                         constant_liar=True)  # running trials count as bad guesses: parallel workers spread out
    try:
        study = optuna.create_study(storage=storage, study_name=name, directions=directions, sampler=sampler,
                                    pruner=PRUNERS[request.pruner](request.trials, *steps), load_if_exists=True)
        kept = study.user_attrs.get("forgeml")
        if kept is None:
            study.set_user_attr("forgeml", meta)
            study.enqueue_trial(default_point(request.config, space), user_attrs={"default": True})  # the untuned default, tried first
        elif kept != meta:
            key = next(k for k in _META_WORDS if kept.get(k) != meta.get(k))
            raise StudyError(f"study {name!r} was made for another {_META_WORDS[key]} ({_short(kept.get(key))}, now {_short(meta.get(key))})",
                             where=storages.shown(url), hint="pick another --study name (or --storage) for this search; the old study is kept as it is")
        if list(study.directions) != [optuna.study.StudyDirection[d.upper()] for d in directions]:
            raise StudyError(f"study {name!r} has {len(study.directions)} objective(s), not {len(directions)}", where=storages.shown(url),
                             hint="pick another --study name for this search")
    except StudyError:
        raise
    except Exception as exc:
        if not _storage_failure(exc):
            raise
        raise storages.unreachable(url, exc) from None
    return study


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "…"


def _storage_failure(exc: BaseException) -> bool:
    """A storage that stopped answering (``storage.storage_cause``)."""
    return storages.storage_cause(exc) is not None


def _quiet_optuna() -> None:
    """forgeml prints one line per trial; Optuna's own log would add a traceback per failure."""
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def _spawn_workers(request: TuneRequest, url: str, study: str, total: int, deadline: float | None) -> list[subprocess.Popen]:
    """``--workers K``: K - 1 copies of this command as worker processes on the same study
    (this process is the K-th). Each prepares the data itself (the same seeded split)."""
    workers = []
    for index in range(1, request.workers):
        command = [sys.executable, "-m", "forgeml.cli", "tune", str(request.source), "--model", request.family, "--storage", url,
                   "--study", study, "--objective", ",".join(request.objectives), "--pruner", request.pruner, "--folds", str(request.folds), "--until", str(total),
                   "--no-refit", "--worker-index", str(index), "--runs-dir", str(request.runs_root), *request.argv_tail]
        if deadline is not None:
            command += ["--time-budget", f"{max(0.1, deadline - time.monotonic()):.1f}s"]
        workers.append(subprocess.Popen(command, env=os.environ.copy()))
    return workers


def _wait(workers: list[subprocess.Popen], echo: Callable[[str], None]) -> list[int]:
    """Wait for the workers (they stop at the same trial count); an interrupted parent stops them."""
    killed = []
    try:
        for worker in workers:
            code = worker.wait()
            if code != 0:
                killed.append(worker.pid)
                echo(f"worker process {worker.pid} ended with {'signal ' + str(-code) if code < 0 else 'exit code ' + str(code)}; the others went on")
    finally:
        _stop(workers)
    return killed


def _stop(workers: list[subprocess.Popen]) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.terminate()
            try:
                worker.wait(timeout=10)
            except subprocess.TimeoutExpired:
                worker.kill()


def _nothing_finished(study: Any, request: TuneRequest) -> StudyError:
    trials = study.trials
    if request.time_budget and (not trials or any(t.user_attrs.get("cut_by_budget") for t in trials)):
        took = max((t.user_attrs.get("fit_seconds") or 0 for t in trials), default=0)
        return StudyError(f"--time-budget {request.time_budget:g}s ended before any trial finished"
                          + (f" (a trial had trained {took:.1f} s when it was stopped)" if took else ""),
                          where="--time-budget", hint="give a longer budget or fewer epochs/rounds (--set train.epochs=…)")
    failed = [t for t in trials if t.state.name == "FAIL"]
    reason = failed[0].user_attrs.get("failure", "") if failed else ""
    return StudyError(f"no trial of the study finished ({len(failed)} failed{': ' + reason[:200] if reason else ''})",
                      where="forgeml tune", hint="run with --debug for the traceback, or try --trials with another --model")
