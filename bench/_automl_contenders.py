"""The three contenders of ``automl_vs_autogluon.py`` and the scoring they share.

Each ``run_<name>(spec, train, test, classes, seed, args)`` fits on ``train`` (the 80 %), predicts
``test`` (the 20 %, target column present but never given to a model) and returns an
``Outcome``: the score computed here by ``score`` for everyone, fit wall seconds and predict
timings taken by the same protocol (``time_predictions``; AutoGluon's runner repeats it in its
own process). ``args`` is the bench's parsed command line.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from _common import BENCH_DIR, OUT_DIR, thread_env
from _tabular_sets import TabularSet

AG_PYTHON = BENCH_DIR / ".venv-autogluon" / "bin" / "python"
AG_METRICS = {"binary": "roc_auc", "multiclass": "accuracy", "regression": "root_mean_squared_error"}
# OpenMP's wait policy as the bench started: forgeml sets OMP_WAIT_POLICY=PASSIVE in its process
# when it first fits (forgeml/train/openmp.py); AutoGluon's subprocesses keep the environment
# their cached figures were measured in, whichever set runs first
WAIT_POLICY_AT_START = os.environ.get("OMP_WAIT_POLICY")


@dataclass
class Outcome:
    """One contender on one set: its score and what it cost."""

    score: float | None = None
    extra: dict[str, float] = field(default_factory=dict)  # secondary metrics: accuracy (binary), r2
    fit_seconds: float | None = None
    predict_single_ms: float | None = None  # median of single-row calls
    predict_batch_ms_per_row: float | None = None
    version: str = ""
    settings: str = ""
    other_cores: float | None = None  # CPU other processes used while it fitted and predicted
    error: str | None = None
    cached: bool = False
    notes: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- data and scoring
def label_key(value) -> str:
    """Class labels as comparable text: 1, 1.0 and '1' are one class; missing stays distinct."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def score(spec: TabularSet, y_test: pd.Series, predicted: list, proba: dict[str, np.ndarray] | None, classes: list[str]) -> tuple[float, dict[str, float]]:
    from sklearn.metrics import accuracy_score, r2_score, roc_auc_score

    if spec.task == "regression":
        y, p = y_test.to_numpy(float), np.asarray(predicted, dtype=float)
        return float(np.sqrt(np.mean((y - p) ** 2))), {"r2": float(r2_score(y, p))}
    truth = y_test.map(label_key).to_numpy()
    accuracy = float(accuracy_score(truth, [label_key(v) for v in predicted]))
    if spec.task == "multiclass":
        return accuracy, {}
    positive = classes[-1]  # AUC is the same whichever class is called positive, given its own probability
    return float(roc_auc_score(truth == positive, np.asarray(proba[positive], dtype=float))), {"accuracy": accuracy}


def time_predictions(predict, test: pd.DataFrame, args) -> tuple[float, float, object]:
    """(single-row median ms, batch ms per row, batch output): the same protocol for every contender."""
    started = time.perf_counter()
    output = predict(test)
    batch = (time.perf_counter() - started) / len(test)
    single, deadline = [], time.perf_counter() + args.latency_seconds
    for index in range(min(args.latency_calls, len(test))):
        row = test.iloc[[index]]
        started = time.perf_counter()
        predict(row)
        single.append(time.perf_counter() - started)
        if time.perf_counter() > deadline and len(single) >= 3:
            break
    return 1000 * float(np.median(single)), 1000 * batch, output


def run_lightgbm(spec: TabularSet, train: pd.DataFrame, test: pd.DataFrame, classes: list[str], seed: int, args) -> Outcome:
    import lightgbm as lgb

    x_train = train.drop(columns=[spec.target])
    categories = {}
    for column in x_train.columns:
        values = x_train[column]
        if not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_datetime64_any_dtype(values)) or pd.api.types.is_bool_dtype(values):
            categories[column] = pd.CategoricalDtype(sorted(values.dropna().astype(str).unique()))

    def inputs(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.drop(columns=[spec.target], errors="ignore").copy()
        for column in frame.columns:
            if column in categories:  # unseen values become missing
                frame[column] = frame[column].astype(str).where(frame[column].notna()).astype(categories[column])
            elif pd.api.types.is_datetime64_any_dtype(frame[column]):
                frame[column] = frame[column].astype("int64").where(frame[column].notna())
        return frame

    def threads_for(frame: pd.DataFrame) -> int:
        # one row on 2 OpenMP threads waits on the other thread: 12 ms instead of 0.35 ms when
        # another process is busy; a server predicting single rows would use one
        return 1 if len(frame) == 1 else args.threads

    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if spec.task == "regression":
            model = lgb.LGBMRegressor(verbose=-1, n_jobs=args.threads).fit(inputs(train), train[spec.target].to_numpy(float))
            predict = lambda frame: model.predict(inputs(frame), num_threads=threads_for(frame))  # noqa: E731
        else:
            model = lgb.LGBMClassifier(verbose=-1, n_jobs=args.threads).fit(inputs(train), train[spec.target].map(label_key).to_numpy())
            predict = lambda frame: model.predict_proba(inputs(frame), num_threads=threads_for(frame))  # noqa: E731
        fit_seconds = time.perf_counter() - started
        single, batch, output = time_predictions(predict, test, args)
    outcome = Outcome(fit_seconds=fit_seconds, predict_single_ms=single, predict_batch_ms_per_row=batch,
                      version=lgb.__version__, settings="defaults")
    if spec.task == "regression":
        outcome.score, outcome.extra = score(spec, test[spec.target], list(output), None, classes)
    else:
        names = [str(c) for c in model.classes_]
        proba = {name: output[:, i] for i, name in enumerate(names)}
        outcome.score, outcome.extra = score(spec, test[spec.target], [names[i] for i in output.argmax(axis=1)], proba, classes)
    return outcome


def autogluon_version() -> str | None:
    if not AG_PYTHON.is_file():
        return None
    probe = subprocess.run([str(AG_PYTHON), "-c", "import importlib.metadata as m; print(m.version('autogluon.tabular'))"],
                           capture_output=True, text=True)
    return probe.stdout.strip() or None


def run_autogluon(spec: TabularSet, train: pd.DataFrame, test: pd.DataFrame, classes: list[str], seed: int, args) -> Outcome:
    version = autogluon_version()
    if version is None:
        return Outcome(error=f"no AutoGluon venv at {AG_PYTHON.parent.parent}: run bash bench/autogluon_venv.sh")
    workdir = OUT_DIR / "autogluon" / f"{spec.name}-seed{seed}"
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    train.to_parquet(workdir / "train.parquet")
    test.drop(columns=[spec.target]).to_parquet(workdir / "test.parquet")
    settings = {"target": spec.target, "task": spec.task, "eval_metric": AG_METRICS[spec.task], "preset": args.ag_preset,
                "time_limit": args.budget, "threads": args.threads, "latency_calls": args.latency_calls,
                "latency_seconds": args.latency_seconds, "verbosity": 2, "fit_kwargs": args.ag_fit_kwargs}
    (workdir / "settings.json").write_text(json.dumps(settings))
    runner = [str(AG_PYTHON), str(BENCH_DIR / "_autogluon_runner.py"), str(workdir)]
    env = {**thread_env(args.threads), "HF_HUB_OFFLINE": "1"}
    if WAIT_POLICY_AT_START is None:
        env.pop("OMP_WAIT_POLICY", None)
    try:
        done = subprocess.run(runner, env=env, capture_output=True, text=True, timeout=3 * args.budget + 600)
    except subprocess.TimeoutExpired:
        return Outcome(version=version, error="AutoGluon did not finish within 3 × budget + 10 min")
    log = done.stdout + done.stderr
    (workdir / "runner.log").write_text(log)
    crashes = log.count("Fatal Python error") + log.count("Traceback (most recent call last)")
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["?"]
        return Outcome(version=version, error=f"runner exited {done.returncode}: {tail[0][:200]} (see {workdir / 'runner.log'})")
    result = json.loads((workdir / "result.json").read_text())
    outcome = Outcome(fit_seconds=result["fit_seconds"], predict_single_ms=result["predict_single_ms_median"],
                      predict_batch_ms_per_row=result["predict_batch_ms_per_row"], version=result["version"],
                      settings=f"{args.ag_preset}, time_limit={args.budget:g}" + "".join(f", {k}={v}" for k, v in args.ag_fit_kwargs.items()),
                      notes=[f"best {result['best_model']}; {len(result['models'])} models"])
    if crashes:  # seen here: ray fold workers aborting ("Mutex corrupt") under best_quality
        outcome.notes.append(f"{crashes} crash(es) in its log ({workdir / 'runner.log'}); "
                             "'--ag-fit ag_args_ensemble={fold_fitting_strategy: sequential_local}' bags without ray")
    proba = {label_key(k): np.asarray(v) for k, v in (result["proba"] or {}).items()}
    outcome.score, outcome.extra = score(spec, test[spec.target], result["predictions"], proba, classes)
    if not args.keep:
        shutil.rmtree(workdir / "model", ignore_errors=True)
    return outcome


def forgeml_overrides(spec: TabularSet, seed: int, args) -> tuple[dict, list[str]]:
    from forgeml.config import Config, apply_overrides
    from forgeml.errors import ConfigError

    overrides = {"data.split.seed": seed, "task": spec.task, "train.progress": False, "train.threads": args.threads}
    notes = []
    key = args.forgeml_budget_key
    if key and key != "none":
        try:
            apply_overrides(Config(target=spec.target), {key: args.budget})
            overrides[key] = args.budget
        except ConfigError:
            notes.append(f"no {key} in forgeml's config: no budget given")
    overrides.update(args.forgeml_overrides)
    return overrides, notes


def run_forgeml(spec: TabularSet, train: pd.DataFrame, test: pd.DataFrame, classes: list[str], seed: int, args) -> Outcome:
    import forgeml
    from forgeml import Pipeline

    overrides, notes = forgeml_overrides(spec, seed, args)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # the bench's 20 % is forgeml's test file: it trains on the whole 80 % (out-of-fold validation;
        # a single network carves its validation split from it) and never sees the test labels before scoring
        pipeline = Pipeline(target=spec.target, overrides=overrides).fit(train, test=test)
        fit_seconds = time.perf_counter() - started
        test_inputs = test.drop(columns=[spec.target])
        single, batch, output = time_predictions(pipeline.predict, test_inputs, args)
    shown = {k: v for k, v in overrides.items() if k not in ("train.progress", "data.split.seed", "task")}
    outcome = Outcome(fit_seconds=fit_seconds, predict_single_ms=single, predict_batch_ms_per_row=batch,
                      version=getattr(forgeml, "__version__", "?"), settings=", ".join(f"{k}={v}" for k, v in shown.items()), notes=notes)
    config = pipeline.prepared_.config
    board = pipeline.leaderboard() if config.model.type == "ensemble" else None
    if board is not None:  # which members fitted, were skipped or cut, their out-of-fold scores and weights: why a set won or lost
        columns = [c for c in ("member", "status", "score", "weight", "fit_seconds", "predict_ms_per_row", "refit", "note") if c in board.columns]
        outcome.notes += [" · ".join(f"{c} {row[c]}" for c in columns if row[c] == row[c]) for _, row in board[columns].iterrows()]
    else:
        outcome.notes.append(f"model {config.model.type}, bagging folds {config.train.bagging_folds}, "
                             f"{len(pipeline.fit_summary_.history)} {'rounds' if config.model.type == 'gbm' else 'epochs'}")
    outcome.score, outcome.extra = _score_output(spec, test, output, classes)
    bags = getattr(pipeline.predictor_.estimator, "bags_before_refit_", None)
    if bags:  # the refitted members' fold models put back: the same fit scored and timed both ways
        outcome.extra.update(_without_refit(spec, pipeline, bags, test, test_inputs, classes, args))
        outcome.notes.append(f"without refit ({', '.join(bags)} predicting with their fold models): score {outcome.extra['score_without_refit']:.6g}, "
                             f"batch {outcome.extra['batch_ms_per_row_without_refit']:.4f} ms/row")
    return outcome


def _score_output(spec: TabularSet, test: pd.DataFrame, output: pd.DataFrame, classes: list[str]) -> tuple[float, dict[str, float]]:
    prefix = f"{spec.target}_proba_"
    proba = {label_key(c[len(prefix):]): output[c].to_numpy() for c in output.columns if c.startswith(prefix)}
    return score(spec, test[spec.target], output[f"{spec.target}_prediction"].tolist(), proba, classes)


def _without_refit(spec: TabularSet, pipeline, bags: dict, test: pd.DataFrame, test_inputs: pd.DataFrame, classes: list[str], args) -> dict[str, float]:
    """Score and batch time of the ensemble with each refitted member's K fold models instead of its refit model."""
    members = pipeline.predictor_.estimator.members
    kept = {m["member"]: m["estimator"] for m in members}
    for member in members:
        member["estimator"] = bags.get(member["member"], member["estimator"])
    try:
        started = time.perf_counter()
        output = pipeline.predict(test_inputs)
        batch = 1000 * (time.perf_counter() - started) / len(test_inputs)
    finally:
        for member in members:
            member["estimator"] = kept[member["member"]]
    return {"score_without_refit": _score_output(spec, test, output, classes)[0], "batch_ms_per_row_without_refit": batch}
