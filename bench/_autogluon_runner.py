"""AutoGluon's side of ``automl_vs_autogluon.py``: runs in ``bench/.venv-autogluon`` (made by
``autogluon_venv.sh``), never imported by forgeml or by the bench itself.

    bench/.venv-autogluon/bin/python bench/_autogluon_runner.py WORKDIR

WORKDIR holds ``train.parquet`` (the 80 %, target included), ``test.parquet`` (the 20 %, no
target) and ``settings.json`` (target, task, eval_metric, preset, time_limit, threads,
latency_calls, latency_seconds, verbosity, fit_kwargs: extra ``fit`` arguments). It writes
``result.json``: predictions and class probabilities for every test row, fit seconds, predict
timings, versions and the leaderboard.
Scoring is left to the bench, so every contender is scored by the same code.

Timing follows the bench's protocol for all contenders: fit wall time around ``fit``;
``persist()`` (AutoGluon's advice for online inference: models stay in memory instead of being
read from disk per call) before timing predictions; batch = one call on the whole test frame;
single row = one-row frames, median over up to ``latency_calls`` calls or ``latency_seconds``.
"""
from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path


def main(workdir: Path) -> int:
    settings = json.loads((workdir / "settings.json").read_text())
    import pandas as pd
    from autogluon.tabular import TabularPredictor, __version__

    train = pd.read_parquet(workdir / "train.parquet")
    test = pd.read_parquet(workdir / "test.parquet")
    started = time.perf_counter()
    predictor = TabularPredictor(label=settings["target"], problem_type=settings["task"], eval_metric=settings["eval_metric"],
                                 path=str(workdir / "model"), verbosity=settings.get("verbosity", 1))
    predictor.fit(train, presets=settings["preset"], time_limit=settings["time_limit"],
                  num_cpus=settings["threads"], num_gpus=0, **settings.get("fit_kwargs", {}))
    fit_seconds = time.perf_counter() - started
    predictor.persist()

    classes = settings["task"] != "regression"
    started = time.perf_counter()
    if classes:
        proba = predictor.predict_proba(test)
        predicted = proba.idxmax(axis=1)  # predict() is the same argmax (thresholds only when calibrated)
    else:
        predicted = predictor.predict(test)
    batch_seconds = time.perf_counter() - started

    single = []
    deadline = time.perf_counter() + settings["latency_seconds"]
    for index in range(min(settings["latency_calls"], len(test))):
        row = test.iloc[[index]]
        started = time.perf_counter()
        predictor.predict_proba(row) if classes else predictor.predict(row)
        single.append(time.perf_counter() - started)
        if time.perf_counter() > deadline and len(single) >= 3:
            break

    board = predictor.leaderboard(silent=True)
    result = {
        "version": __version__,
        "fit_seconds": fit_seconds,
        "predict_batch_ms_per_row": 1000 * batch_seconds / len(test),
        "predict_single_ms_median": 1000 * statistics.median(single),
        "predict_single_calls": len(single),
        "predictions": predicted.tolist(),
        "proba": {str(c): proba[c].tolist() for c in proba.columns} if classes else None,
        "best_model": predictor.model_best,
        "models": [{"model": str(r["model"]), "score_val": float(r["score_val"]), "fit_time": float(r["fit_time"])}
                   for _, r in board.iterrows()],
    }
    (workdir / "result.json").write_text(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
