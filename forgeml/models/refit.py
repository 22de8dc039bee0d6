"""Refit (AutoGluon's ``refit_full``): each weighted tree member of the ensemble, once selected on
its out-of-fold predictions, is fitted again once on every train row, with the mean number of
boosting rounds its fold models early-stopped at, and that one model replaces its K fold models.

Why: a bagged member predicts with K models. For LightGBM and CatBoost, batch predict time is
the trees walked, so K fold models cost K times one (a 10,000-row diamonds batch: 0.5–3 s per
5-fold LightGBM member, the features 6 ms). AutoGluon's medium preset predicts with one model per
member for this reason. The refit model learns from all rows (a fold model from (K-1)/K of
them) but is not averaged over K fits and has no out-of-fold predictions of its own: the
leaderboard's scores and the ensemble weights stay those of the bag, and its ``refit`` column
says which members predict with the refit model. Networks keep their bag (its K members run as
one stacked forward, ``stacked.py``); so do the linear models (cheap to predict).

The time budget still holds: a member is refitted only when its estimated refit time (one fold's
time × K/(K-1), for the extra rows) fits in what is left; else it keeps its bag and the
leaderboard says so. A family opts in with ``REFITS = True`` and its ``STEP_LIMIT`` option
(the rounds of the refit model: the folds' mean), or with its own ``refit_setting(bag)`` — the one
option the refit model takes from its folds — as the n-gram model does (the median of the
regularisation its folds chose).

Two reasons to refit, so two switches: for trees it buys batch speed at a little accuracy, so it
is the preset's choice (``fast`` only, ``model.refit: full`` asks for it anywhere). A family that
says ``REFIT_ALWAYS`` (the n-gram model) is refitted in every preset unless ``model.refit: off``:
its refit cost no accuracy where it was measured (reviews_zh, 5 folds choosing alphas 0.3, 0.1,
0.3, 0.1, 0.1: refitted at 0.1, accuracy 0.8480 against the bag's 0.8474) and it then predicts —
segments, vectorises — once instead of K times.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from forgeml.errors import ForgeError


def refit_members(ensemble: Any, train: dict[str, np.ndarray], y_train: np.ndarray, deadline: float, *, speed: bool = True) -> None:
    """Replace the bag of every weighted member whose family ``REFITS`` by one model on all rows;
    with ``speed`` off, only the families that say ``REFIT_ALWAYS``."""
    from forgeml.models.bagging import BaggedEstimator, predict_ms_per_row
    from forgeml.models.member_inputs import member_inputs
    from forgeml.models.estimator import FitOptions
    from forgeml.models.families import family_module

    if ensemble.stacker is not None:  # the second level learned the bags' predictions
        return
    ensemble.bags_before_refit_ = {}  # in memory only: bench/automl_vs_autogluon.py scores the ensemble both ways
    for member in sorted(ensemble.members, key=lambda m: -m["weight"]):  # the heaviest first: it saves the most
        module = family_module(member["model"]["type"])
        if not getattr(module, "REFITS", False) or not (speed or getattr(module, "REFIT_ALWAYS", False)):
            continue
        setting = _setting(module, member)
        if setting is None:
            continue
        bag, folds = member["estimator"], member["folds"]
        fold_seconds = member["fit_seconds"] * getattr(bag, "workers", 1) / folds
        needed = fold_seconds * folds / max(folds - 1, 1)
        left = deadline - time.monotonic()
        row = next(r for r in ensemble.leaderboard if r["member"] == member["member"])
        if needed > left:
            row["refit"] = member["refit"] = f"no: about {needed:.0f} s needed, {max(left, 0):.0f} s left (its {folds} fold models predict)"
            continue
        option, value = setting
        section, _, key = option.partition(".")
        entry = {**member, section: {**member.get(section, {}), key: value}}
        config = ensemble.member_config(entry, 1)
        # one thread, as its fold models had (fold_threads.py): the estimate holds, and a process
        # whose OpenMP was loaded before forgeml set its wait policy does not stall on a busy machine
        one_thread = config.model_copy(update={"train": config.train.model_copy(update={"threads": 1})})
        started = time.monotonic()
        inputs = member_inputs(train, member["model"]["type"])  # the trees' numbers unclipped (clean.outliers: auto)
        try:
            single = module.build(one_thread, ensemble.task, ensemble.member_spec(member["model"]["type"]))
            shared = getattr(bag, "fold_shared_", None)  # what its folds read (the n-gram vectors of every train row)
            if shared is not None:
                single.use_fold_shared(shared)
            try:
                summary = single.fit(inputs, y_train, None, None, FitOptions(deadline=deadline, label=f"refit {member['member']}"))
            finally:
                if shared is not None:
                    single.use_fold_shared(None)
        except ForgeError as exc:
            row["refit"] = member["refit"] = f"no: {exc.message}"
            continue
        if summary.note:  # the deadline stopped its solve short of where its folds' ended: worse than the bag
            row["refit"] = member["refit"] = f"no: {summary.note} (its {folds} fold models predict)"
            continue
        seconds = time.monotonic() - started
        rounds = value if option == getattr(module, "STEP_LIMIT", None) else None  # a step limit: the refit must reach it
        if rounds is not None and len(summary.history) < rounds:  # the deadline cut it: fewer rounds than its folds found best, worse than the bag
            row["refit"] = member["refit"] = f"no: the time budget ended it after {len(summary.history)} of {rounds} rounds (its {folds} fold models predict)"
            continue
        said = f"all {len(y_train)} rows, " + (f"{rounds} rounds" if rounds is not None else f"{key} {value:g}") + f", {seconds:.1f} s"
        ensemble._say(f"{member['member']}: refitted on {said}")
        ensemble.bags_before_refit_[member["member"]] = bag
        refitted = BaggedEstimator([single], config, ensemble.task, single.spec, module.load)
        milliseconds = predict_ms_per_row(refitted, {key: value[: min(len(y_train), 256)] for key, value in inputs.items()})
        member.update(estimator=refitted, folds=1, model=entry["model"], refit=said, predict_ms_per_row=milliseconds)
        row.update(refit=said, predict_ms_per_row=milliseconds)
    total = next((r for r in ensemble.leaderboard if r["member"] == "ensemble"), None)
    if total is not None:
        total["predict_ms_per_row"] = round(sum(m["predict_ms_per_row"] for m in ensemble.members), 4)


def _setting(module: Any, member: dict[str, Any]) -> tuple[str, Any] | None:
    """(dotted option, value): the option the refit model takes from the member's folds — the
    family's own ``refit_setting(bag)``, else its step limit at the folds' mean best steps."""
    if hasattr(module, "refit_setting"):
        return module.refit_setting(member["estimator"])
    return (module.STEP_LIMIT, int(member["best_steps"])) if member.get("best_steps") else None
