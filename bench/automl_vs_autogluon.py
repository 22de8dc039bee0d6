"""forgeml against AutoGluon-Tabular 1.6 and a default LightGBM, side by side (issue 13, "Figures").

For each public data set (``_tabular_sets.py``; all on disk, nothing downloaded at run time):
one 80/20 split (seeded, stratified for classes) shared by every contender. Each contender fits
on the 80 % on the same cores within the same time budget and is scored by this script on the
20 %: ROC-AUC (binary), accuracy (multiclass), RMSE (regression), plus fit wall seconds and
predict time (median of single-row calls, and one batch call on the whole test frame, per row).

Contenders:

* ``forgeml``: ``Pipeline(target, overrides).fit(train_80, test=test_20)`` then
  ``predict(test_20)``, in this process, as a user with a separate test file runs it: the
  ensemble trains on the whole 80 % (out-of-fold validation), a single network carves its
  validation split from it; the 20 % only gets evaluated (its labels never reach training). ``--forgeml-set key=value`` adds overrides (e.g. a preset
  once it exists); the budget goes to ``--forgeml-budget-key`` (default ``train.time_budget``)
  when forgeml's config has that key, else forgeml runs on its defaults with no budget.
* ``autogluon``: ``TabularPredictor(eval_metric=<the metric>).fit(presets=medium_quality,
  time_limit=budget, num_cpus=threads)`` in ``bench/.venv-autogluon`` (``bench/autogluon_venv.sh``),
  as a subprocess (``_autogluon_runner.py``); ``persist()`` before predict timing.
* ``lightgbm``: ``LGBMClassifier()`` / ``LGBMRegressor()`` defaults (n_jobs=threads), no
  tuning, no early stopping: the floor forgeml must never fall below. Inputs: numbers as they are,
  dates as int64, every other column a pandas category with the train split's values. Single
  rows are predicted on one thread (two make a row wait on OpenMP when the machine is busy).

Verdicts per set, forgeml against each peer (issue 13's margins): tie within 0.002 AUC/accuracy
or within 0.5 % of the peer's RMSE, else win/loss. Fit time is checked against budget + 10 %.
The contenders and the scoring are in ``_automl_contenders.py``, the data sets in
``_tabular_sets.py``. Peer results are cached in ``bench/results/peer_cache.json`` per (set, seed, split fingerprint,
budget, preset, threads, peer version): a run recomputes them unless ``--reuse-peers``.

    bash bench/autogluon_venv.sh                                   # once: AutoGluon's own venv
    .venv/bin/python bench/automl_vs_autogluon.py                  # all default sets, 120 s (quiet machine: ~1.5 h)
    .venv/bin/python bench/automl_vs_autogluon.py --only penguins diabetes --budget 15      # smoke run
    .venv/bin/python bench/automl_vs_autogluon.py --contenders forgeml --reuse-peers --forgeml-set model.type=gbm
    .venv/bin/python bench/automl_vs_autogluon.py --ag-preset best_quality --budget 300     # best vs best
"""
from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import BENCH_DIR, ForeignLoad, machine_line, pin_threads  # noqa: E402
from _tabular_sets import SETS, TabularSet, default_names  # noqa: E402

CONTENDERS = ("forgeml", "autogluon", "lightgbm")
PEERS = ("autogluon", "lightgbm")
RESULTS_DIR = BENCH_DIR / "results"
PEER_CACHE = RESULTS_DIR / "peer_cache.json"
METRICS = {"binary": "roc_auc", "multiclass": "accuracy", "regression": "rmse"}
TIE_ABSOLUTE = 0.002  # AUC / accuracy
TIE_RELATIVE = 0.005  # RMSE, as a share of the peer's
BUDGET_SLACK = 1.10
PROTOCOL = 1  # in the peer cache's keys: bump when a change here changes what a peer's figures mean


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=sorted(SETS), metavar="SET", help=f"data sets (default: {' '.join(default_names())})")
    parser.add_argument("--contenders", nargs="+", choices=CONTENDERS, default=list(CONTENDERS))
    parser.add_argument("--budget", type=float, default=120.0, help="fit time budget in seconds (default 120)")
    parser.add_argument("--ag-preset", default="medium_quality", help="AutoGluon preset (best_quality for the best-vs-best run)")
    parser.add_argument("--ag-fit", dest="ag_fit", action="append", default=[], metavar="KEY=VALUE",
                        help="extra TabularPredictor.fit argument, repeatable (YAML values), e.g. "
                             "'ag_args_ensemble={fold_fitting_strategy: sequential_local}' to bag without ray")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="split seeds; each (set, seed) is a row")
    parser.add_argument("--threads", type=int, default=2, help="cores every contender may use (default 2)")
    parser.add_argument("--forgeml-set", dest="forgeml_set", action="append", default=[], metavar="KEY=VALUE",
                        help="forgeml override, repeatable (YAML values), e.g. --forgeml-set model.type=gbm")
    parser.add_argument("--forgeml-budget-key", default="train.time_budget",
                        help="config key that takes the budget in seconds, used when forgeml has it ('none': never)")
    parser.add_argument("--reuse-peers", action="store_true", help="take AutoGluon/LightGBM results from the cache when present")
    parser.add_argument("--latency-calls", type=int, default=200, help="single-row predict calls per contender (at most)")
    parser.add_argument("--latency-seconds", type=float, default=10.0, help="time cap of the single-row calls")
    parser.add_argument("--out", type=Path, help="result JSON (default bench/results/automl_vs_autogluon-<UTC time>.json)")
    parser.add_argument("--keep", action="store_true", help="keep AutoGluon's model folders under bench/out/autogluon/")
    args = parser.parse_args()
    import yaml

    args.ag_fit_kwargs = {key: yaml.safe_load(value) for key, _, value in (item.partition("=") for item in args.ag_fit)}
    args.forgeml_overrides = {key: yaml.safe_load(value) for key, _, value in (item.partition("=") for item in args.forgeml_set)}
    return args


ARGS = parse_args()
pin_threads(ARGS.threads)

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from _automl_contenders import Outcome, autogluon_version, label_key, run_autogluon, run_forgeml, run_lightgbm  # noqa: E402

RUNNERS = {"forgeml": run_forgeml, "autogluon": run_autogluon, "lightgbm": run_lightgbm}


# ----------------------------------------------------------------------------- data and verdicts
def split(spec: TabularSet, seed: int) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    from sklearn.model_selection import train_test_split

    frame = spec.load()
    if frame is None:
        return None
    frame = frame[frame[spec.target].notna()].reset_index(drop=True)
    stratify = None
    if spec.task != "regression":
        labels = frame[spec.target].map(label_key)
        counts = labels.value_counts()
        stratify = labels.where(labels.map(counts) >= 2, "<rare>")  # a one-row class cannot be split
    train, test = train_test_split(frame, test_size=0.2, random_state=seed, stratify=stratify)
    return train.reset_index(drop=True), test.reset_index(drop=True)


def fingerprint(train: pd.DataFrame, test: pd.DataFrame) -> str:
    digest = hashlib.sha256()
    for part in (train, test):
        digest.update(pd.util.hash_pandas_object(part.astype(str), index=False).to_numpy().tobytes())
    return digest.hexdigest()[:12]


def verdict(task: str, ours: float | None, theirs: float | None) -> str:
    if ours is None or theirs is None:
        return "n/a"
    if task == "regression":  # lower is better
        margin = TIE_RELATIVE * abs(theirs)
        return "tie" if abs(ours - theirs) <= margin else ("win" if ours < theirs else "loss")
    return "tie" if abs(ours - theirs) <= TIE_ABSOLUTE + 1e-12 else ("win" if ours > theirs else "loss")


# ----------------------------------------------------------------------------- cache
def peer_key(name: str, seed: int, print_: str, peer: str, version: str) -> str:
    if peer == "lightgbm":  # no budget, no preset
        return f"v{PROTOCOL}|{name}|seed={seed}|split={print_}|lightgbm|defaults|threads={ARGS.threads}|{version}"
    extra = json.dumps(ARGS.ag_fit_kwargs, sort_keys=True) if ARGS.ag_fit_kwargs else ""
    return f"v{PROTOCOL}|{name}|seed={seed}|split={print_}|autogluon|{ARGS.ag_preset}{extra}|budget={ARGS.budget:g}|threads={ARGS.threads}|{version}"


def load_cache() -> dict:
    return json.loads(PEER_CACHE.read_text()) if PEER_CACHE.is_file() else {}


def save_cache(cache: dict) -> None:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    PEER_CACHE.write_text(json.dumps(cache, indent=1, sort_keys=True) + "\n")


# ----------------------------------------------------------------------------- main
def fmt(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else (f"{value:.{digits}f}" if abs(value) < 1000 else f"{value:,.0f}")


def run_set(spec: TabularSet, seed: int, cache: dict, versions: dict[str, str | None]) -> dict | None:
    parts = split(spec, seed)
    if parts is None:
        print(f"{spec.name}: skipped — its data is not on this machine")
        return None
    train, test = parts
    print_ = fingerprint(train, test)
    classes = sorted(set(train[spec.target].map(label_key)) | set(test[spec.target].map(label_key))) if spec.task != "regression" else []
    row = {"set": spec.name, "seed": seed, "task": spec.task, "metric": METRICS[spec.task], "rows": len(train) + len(test),
           "train_rows": len(train), "test_rows": len(test), "columns": train.shape[1] - 1, "split": print_, "note": spec.note,
           "contenders": {}}
    print(f"{spec.name} (seed {seed}): {spec.task}, {len(train)} train / {len(test)} test rows, {train.shape[1] - 1} columns; {spec.note}")
    for contender in ARGS.contenders:
        key = peer_key(spec.name, seed, print_, contender, versions.get(contender) or "?") if contender in PEERS else None
        if key and ARGS.reuse_peers and key in cache:
            outcome = Outcome(**{**cache[key], "cached": True})
        else:
            load = ForeignLoad()
            try:
                outcome = RUNNERS[contender](spec, train, test, classes, seed, ARGS)
            except Exception as error:  # one contender failing on one set must not stop the bench
                outcome = Outcome(error=f"{type(error).__name__}: {str(error).splitlines()[0][:300] if str(error) else ''}")
            outcome.other_cores = load.report()[0]
            if key and outcome.error is None:
                cache[key] = {k: v for k, v in asdict(outcome).items() if k != "cached"}
        row["contenders"][contender] = asdict(outcome)
        budget_text = ""
        if contender != "lightgbm" and outcome.fit_seconds is not None:
            budget_text = f" ({'≤' if outcome.fit_seconds <= ARGS.budget * BUDGET_SLACK else 'OVER'} budget + 10 %)"
        print(f"  {contender:<9} {METRICS[spec.task]} {fmt(outcome.score)}  fit {fmt(outcome.fit_seconds, 1)} s{budget_text}  "
              f"predict 1 row {fmt(outcome.predict_single_ms, 2)} ms, batch {fmt(outcome.predict_batch_ms_per_row, 3)} ms/row"
              + (" [cached" + (f", measured with ≈{outcome.other_cores:.1f} other cores busy" if (outcome.other_cores or 0) > 0.1 else "") + "]" if outcome.cached else "") + (f"  ERROR {outcome.error}" if outcome.error else "")
              + (f"  ({'; '.join(outcome.notes)})" if outcome.notes else ""))
    ours = row["contenders"].get("forgeml", {}).get("score")
    row["verdicts"] = {peer: verdict(spec.task, ours, row["contenders"][peer]["score"]) for peer in PEERS if peer in row["contenders"]}
    return row


def summarize(rows: list[dict]) -> dict:
    summary: dict = {}
    for peer in PEERS:
        counts = {v: sum(r["verdicts"].get(peer) == v for r in rows) for v in ("win", "tie", "loss", "n/a")}
        judged = counts["win"] + counts["tie"] + counts["loss"]
        counts["win_or_tie_share"] = (counts["win"] + counts["tie"]) / judged if judged else None
        summary[f"vs_{peer}"] = counts
    for contender in ("forgeml", "autogluon"):
        fits = [r["contenders"][contender]["fit_seconds"] for r in rows if r["contenders"].get(contender, {}).get("fit_seconds") is not None]
        summary[f"{contender}_within_budget"] = f"{sum(s <= ARGS.budget * BUDGET_SLACK for s in fits)}/{len(fits)}"
    for contender in CONTENDERS:
        single = [r["contenders"][contender]["predict_single_ms"] for r in rows if r["contenders"].get(contender, {}).get("predict_single_ms") is not None]
        summary[f"{contender}_predict_single_ms_median"] = float(np.median(single)) if single else None
    ratios = [r["contenders"]["autogluon"]["predict_batch_ms_per_row"] / r["contenders"]["forgeml"]["predict_batch_ms_per_row"] for r in rows
              if (r["contenders"].get("autogluon", {}).get("predict_batch_ms_per_row") or 0) > 0
              and (r["contenders"].get("forgeml", {}).get("predict_batch_ms_per_row") or 0) > 0]
    summary["batch_speedup_vs_autogluon_median"] = float(np.median(ratios)) if ratios else None  # issue 13: ≥ 20×
    # the refitted ensemble's fold models put back (same fit): the count and the speed both ways
    judged = [r for r in rows if r["contenders"].get("forgeml", {}).get("score") is not None and "autogluon" in r["contenders"]]
    refitted = [r for r in judged if "score_without_refit" in r["contenders"]["forgeml"]["extra"]]
    if refitted:
        verdicts = [verdict(r["task"], r["contenders"]["forgeml"]["extra"].get("score_without_refit", r["contenders"]["forgeml"]["score"]),
                            r["contenders"]["autogluon"]["score"]) for r in judged]
        summary["without_refit_vs_autogluon"] = {v: verdicts.count(v) for v in ("win", "tie", "loss")} | {"refitted_sets": [r["set"] for r in refitted]}
        summary["without_refit_batch_speedup_vs_autogluon_median"] = float(np.median(
            [r["contenders"]["autogluon"]["predict_batch_ms_per_row"] / r["contenders"]["forgeml"]["extra"].get(
                "batch_ms_per_row_without_refit", r["contenders"]["forgeml"]["predict_batch_ms_per_row"]) for r in judged]))
    return summary


def print_table(rows: list[dict], summary: dict) -> None:
    names = [c for c in CONTENDERS if c in ARGS.contenders]
    print(f"\n{'set':<16} {'task':<10} {'rows':>7} {'metric':<8} " + " ".join(f"{c:>10}" for c in names)
          + f"  {'vs AG':<5} {'vs LGBM':<7} fit s ({'/'.join(n[:3] for n in names)})")
    for r in rows:
        scores = " ".join(f"{fmt(r['contenders'][c]['score']):>10}" for c in names)
        fits = "/".join(fmt(r["contenders"][c]["fit_seconds"], 0) for c in names)
        over = [c for c in ("forgeml", "autogluon") if c in names and (r["contenders"][c]["fit_seconds"] or 0) > ARGS.budget * BUDGET_SLACK]
        print(f"{r['set']:<16} {r['task']:<10} {r['rows']:>7} {r['metric']:<8} {scores}  {r['verdicts'].get('autogluon', '-'):<5} "
              f"{r['verdicts'].get('lightgbm', '-'):<7} {fits}" + (f"  OVER BUDGET: {', '.join(over)}" if over else ""))
    for peer, goal in (("autogluon", "goal: win or tie on ≥ 80 %"), ("lightgbm", "goal: no loss")):
        if "forgeml" not in names or peer not in names:
            continue
        counts = summary[f"vs_{peer}"]
        share = counts["win_or_tie_share"]
        print(f"forgeml vs {peer}: {counts['win']} win / {counts['tie']} tie / {counts['loss']} loss"
              + (f" ({counts['n/a']} n/a)" if counts["n/a"] else "") + (f", win or tie {share:.0%}" if share is not None else "") + f"  ({goal})")
    if "without_refit_vs_autogluon" in summary:
        both = summary["without_refit_vs_autogluon"]
        print(f"the same fits without refit (fold models predicting; {len(both['refitted_sets'])} sets refitted): {both['win']} win / {both['tie']} tie / "
              f"{both['loss']} loss vs autogluon; batch rows/s ÷ autogluon, median: {summary['without_refit_batch_speedup_vs_autogluon_median']:.1f}×")
    budgeted = [f"{c} {summary[f'{c}_within_budget']}" for c in ("forgeml", "autogluon") if c in names]
    if budgeted:
        print(f"fit ≤ budget {ARGS.budget:g} s + 10 %: {', '.join(budgeted)}")
    single = [f"{c} {summary[f'{c}_predict_single_ms_median']:.2f}" for c in names if summary[f"{c}_predict_single_ms_median"] is not None]
    print(f"single-row predict, median over sets (ms): {', '.join(single)}"
          + (f"; batch rows/s forgeml ÷ autogluon, median over sets: {summary['batch_speedup_vs_autogluon_median']:.1f}×" if summary["batch_speedup_vs_autogluon_median"] else ""))


def code_version() -> str:
    """forgeml's commit (``+dirty`` with uncommitted changes): the bench follows the code, so results name it."""
    root = BENCH_DIR.parent
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "forgeml"], capture_output=True, text=True).stdout.strip()
    return (head or "?") + ("+dirty" if dirty else "")


def main() -> int:
    args = ARGS
    sys.stdout.reconfigure(line_buffering=True)  # progress shows in a log file while the bench runs
    names = args.only or default_names()
    # the version from the package metadata: importing lightgbm here would load OpenMP before forgeml
    # sets its wait policy (forgeml/train/openmp.py), which a user's process does not do
    from importlib.metadata import version

    versions = {"forgeml": code_version(), "lightgbm": version("lightgbm") if "lightgbm" in args.contenders else None,
                "autogluon": autogluon_version() if "autogluon" in args.contenders else None}
    started_at = datetime.now(timezone.utc)
    print(f"automl_vs_autogluon: forgeml {versions['forgeml']}, budget {args.budget:g} s, {args.threads} threads, AutoGluon {versions['autogluon'] or '-'} {args.ag_preset} {args.ag_fit_kwargs or ''}, "
          f"forgeml overrides {args.forgeml_overrides or 'none (defaults)'}; {'peers from cache when present' if args.reuse_peers else 'peers recomputed'}")
    print(f"machine: {machine_line()}\n")
    load = ForeignLoad()
    cache = load_cache()
    rows, skipped = [], []
    for name in names:
        for seed in args.seeds:
            row = run_set(SETS[name], seed, cache, versions)
            if row is None:
                skipped.append(name)
                break
            rows.append(row)
            save_cache(cache)
    if not rows:
        print("no data set ran")
        return 1
    summary = summarize(rows)
    print_table(rows, summary)
    share, load_text = load.report()
    print(load_text)
    out = args.out or RESULTS_DIR / f"automl_vs_autogluon-{started_at:%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"started": started_at.isoformat(timespec="seconds"), "argv": sys.argv[1:], "machine": machine_line(),
                               "budget": args.budget, "threads": args.threads, "ag_preset": args.ag_preset, "ag_fit": args.ag_fit_kwargs,
                               "forgeml_overrides": args.forgeml_overrides, "versions": versions, "other_cores": share,
                               "summary": summary, "skipped": skipped, "rows": rows}, indent=1, default=str) + "\n")
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
