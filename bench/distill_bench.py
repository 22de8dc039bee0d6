"""Distillation figure (issue 15): does one distilled student keep the AutoML ensemble's accuracy
at a single model's speed?

Per public tabular set (bench/_tabular_sets.py's loaders): the default ``medium`` ensemble is
trained as the teacher at a modest budget (``--budget``, 60 s) on forgeml's own split of the table
(85 % train, 15 % test: the ensemble validates out of fold), saved and loaded as a bundle; then
``forgeml.compress.distill`` trains the student (an MLP by default) on the teacher's soft
predictions over the train rows plus ``--augment`` × as many new rows, and the same student is
trained on the labels alone (``fit_on_labels``) for comparison. All three are scored on the
test split (ROC-AUC, accuracy, RMSE) and timed predicting one row in process (``Pipeline.predict``
on a one-row DataFrame, median, the AutoML bench's protocol).

Targets: the student keeps ≥ 99 % of the teacher's metric (RMSE within 2 %), predicts one row in
≤ 1 ms median and ≥ 10× faster than the teacher.

    flock /tmp/forgeml-heavy.lock .venv/bin/python bench/distill_bench.py [--only SET ...] [--budget 60]
    flock /tmp/forgeml-heavy.lock .venv/bin/python bench/distill_bench.py --retime bench/results/distill-<time>.json

Each set's teacher, student and labels-only bundles stay under bench/out/distill/<set>/, so
``--retime`` can time them again (after a change to the predict path, or on a quiet machine)
without training anything.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import BENCH_DIR, OUT_DIR, ForeignLoad, machine_line, pin_threads  # noqa: E402
from _tabular_sets import SETS  # noqa: E402

DEFAULT_SETS = ["breast_cancer", "attrition", "titanic", "credit", "telco_churn", "penguins", "digits", "seattle_weather",
                "diabetes", "wage", "ames"]
METRICS = {"binary": "roc_auc", "multiclass": "accuracy", "regression": "rmse"}
KEEP, RMSE_SLACK, MAX_MS, MIN_SPEEDUP = 0.99, 1.02, 1.0, 10.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=sorted(SETS), default=DEFAULT_SETS, metavar="SET")
    parser.add_argument("--budget", type=float, default=60.0, help="the teacher's time budget in seconds (default 60)")
    parser.add_argument("--student", default="mlp", choices=["mlp", "gbm", "auto"])
    parser.add_argument("--temperature", type=float, default=None, help="default: distill's")
    parser.add_argument("--augment", type=float, default=None, help="default: distill's")
    # 1: on this shared 2-core machine, two torch/LightGBM threads against other busy processes
    # spin at every barrier (an MLP step of 256 rows: 8 ms on 1 thread, 152 ms on 2, 2026-12-07);
    # a one-row prediction uses one thread anyway
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--latency-calls", type=int, default=200)
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    parser.add_argument("--out", type=Path, help="result JSON (default bench/results/distill-<UTC time>.json)")
    parser.add_argument("--retime", type=Path, metavar="JSON",
                        help="time again the bundles an earlier run saved under bench/out/distill/ (its result JSON): no training")
    return parser.parse_args()


def primary(task: str, metrics: dict) -> float:
    return float(metrics[METRICS[task]])


def kept(task: str, student: float, teacher: float) -> float:
    """Share of the teacher's metric the student keeps (RMSE: teacher / student, so > 1 is better)."""
    return teacher / student if task == "regression" else student / teacher


def paired_interval(task: str, y_true, teacher, student, resamples: int = 2000) -> list[float]:
    """95 % interval of (student − teacher) metric over bootstrap resamples of the test rows (both
    scored on the same resample): whether a miss of the 99 % target is more than the split's noise."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    def metric(scores, rows):
        if task == "binary":
            return roc_auc_score(y_true[rows], scores[rows, 1])
        if task == "multiclass":
            return float((scores[rows].argmax(1) == y_true[rows]).mean())
        return -float(np.sqrt(((scores[rows].ravel() - np.asarray(y_true)[rows].ravel()) ** 2).mean()))  # higher is better

    rng, differences = np.random.default_rng(0), []
    for _ in range(resamples):
        rows = rng.integers(0, len(y_true), len(y_true))
        if task == "binary" and len(np.unique(y_true[rows])) < 2:
            continue
        differences.append(metric(student, rows) - metric(teacher, rows))
    return [float(np.quantile(differences, 0.025)), float(np.quantile(differences, 0.975))]


def run_set(name: str, args: argparse.Namespace) -> dict:
    import numpy as np

    from forgeml.api import Pipeline
    from forgeml.compress.data import prepare_data
    from forgeml.compress.distill import DistillOptions, distill, fit_on_labels

    spec = SETS[name]
    frame = spec.load()
    frame = frame[frame[spec.target].notna()].reset_index(drop=True)
    folder = OUT_DIR / "distill" / name
    folder.mkdir(parents=True, exist_ok=True)
    csv = folder / "data.csv"
    frame.to_csv(csv, index=False)
    threads = {"train.threads": args.threads, "train.progress": False}
    started = time.perf_counter()
    teacher = Pipeline(target=spec.target, overrides={**threads, "train.time_budget": args.budget}).fit(csv)
    teacher_seconds = time.perf_counter() - started
    bundle = folder / "teacher"
    _replace(bundle)
    teacher.save(bundle)
    source = Pipeline.load(bundle)
    data = prepare_data(source.predictor_, csv)
    options = DistillOptions(student=args.student, seed=0, student_overrides=threads,
                             **{k: v for k, v in (("temperature", args.temperature), ("augment", args.augment)) if v is not None})
    started = time.perf_counter()
    student = distill(source, data, options)
    distill_seconds = time.perf_counter() - started
    labels_only = fit_on_labels(source, data, DistillOptions(student=student.predictor_.config.model.type, seed=0, student_overrides=threads))
    for label, pipeline in (("distilled", student), ("labels", labels_only)):
        _replace(folder / label)
        pipeline.save(folder / label)  # kept for --retime: latency re-measured later without training again
    test = data.frames["test"]
    row = {"set": name, "task": source.predictor_.task.name, "metric": METRICS[source.predictor_.task.name], "rows": len(frame),
           "train_rows": len(data.frames["train"]), "test_rows": len(test), "teacher_fit_s": round(teacher_seconds, 1),
           "distill_s": round(distill_seconds, 1), "teacher_members": len(source.predictor_.estimator.members),
           "student": student.predictor_.config.model.type, "distillation": student.distillation_}
    teacher_eval = source.predictor_.evaluate_frame(test, source="test split")
    for label, pipeline in (("teacher", source), ("distilled", student), ("labels", labels_only)):
        evaluation = pipeline.predictor_.evaluate_frame(test, source="test split")
        row[label] = primary(row["task"], evaluation.metrics)
        if row["task"] != "regression":
            row[f"{label}_agreement"] = float((evaluation.scores.argmax(1) == teacher_eval.scores.argmax(1)).mean())
            row[f"{label}_mean_abs_dp"] = float(np.abs(evaluation.scores - teacher_eval.scores).mean())
        if label != "teacher":
            row[f"{label}_minus_teacher_95"] = paired_interval(row["task"], teacher_eval.y_true, teacher_eval.scores, evaluation.scores)
    row["kept"] = kept(row["task"], row["distilled"], row["teacher"])
    row["kept_labels"] = kept(row["task"], row["labels"], row["teacher"])
    time_row(row, {"teacher": source, "distilled": student, "labels": labels_only}, data, args)
    return row


def time_row(row: dict, pipelines: dict, data, args: argparse.Namespace) -> None:
    """One-row latency of each pipeline (the front end included, then the model alone) and the verdicts."""
    from _automl_contenders import time_predictions

    from forgeml.compress.tradeoff import latency_ms

    test = data.frames["test"]
    inputs = test.drop(columns=list(pipelines["teacher"].predictor_.config.target))
    timing = SimpleNamespace(latency_calls=args.latency_calls, latency_seconds=args.latency_seconds)
    for label, pipeline in pipelines.items():
        row[f"{label}_ms"], _, _ = time_predictions(pipeline.predict, inputs, timing)
        # the model alone (features computed): compress's table's figure, without the pandas front end both share
        row[f"{label}_model_ms"] = latency_ms(pipeline.predictor_.estimator, data.arrays["test"], 1)
    row["speedup"] = row["teacher_ms"] / row["distilled_ms"]
    row["model_speedup"] = row["teacher_model_ms"] / row["distilled_model_ms"]
    floor = 1 / RMSE_SLACK if row["task"] == "regression" else KEEP
    row["passes"] = {"metric": row["kept"] >= floor, "1 ms": row["distilled_ms"] <= MAX_MS, "10x": row["speedup"] >= MIN_SPEEDUP}


def retime_set(row: dict, args: argparse.Namespace) -> dict:
    """``--retime``: the saved teacher, student and labels bundles of an earlier run timed again
    (after a change to the predict path, or on a quieter machine); metrics are kept as they were."""
    from forgeml.api import Pipeline
    from forgeml.compress.data import prepare_data

    folder = OUT_DIR / "distill" / row["set"]
    pipelines = {label: Pipeline.load(folder / label) for label in ("teacher", "distilled", "labels")}
    data = prepare_data(pipelines["teacher"].predictor_, folder / "data.csv")
    row = dict(row)
    time_row(row, pipelines, data, args)
    return row


def _replace(folder: Path) -> None:
    if folder.exists():
        import shutil

        shutil.rmtree(folder)


def print_table(rows: list[dict]) -> None:
    print(f"{'set':<16} {'task':<10} {'metric':<8} {'teacher':>8} {'distilled':>9} {'kept':>6} {'labels':>8} {'kept':>6} "
          f"{'teach ms':>8} {'stud ms':>7} {'speed-up':>8} {'model-only':>10}  targets")
    for r in rows:
        verdict = " ".join(("ok " if ok else "MISS ") + name for name, ok in r["passes"].items())
        print(f"{r['set']:<16} {r['task']:<10} {r['metric']:<8} {r['teacher']:>8.4f} {r['distilled']:>9.4f} {r['kept']:>6.3f} "
              f"{r['labels']:>8.4f} {r['kept_labels']:>6.3f} {r['teacher_ms']:>8.2f} {r['distilled_ms']:>7.3f} {r['speedup']:>7.1f}x "
              f"{r['model_speedup']:>9.1f}x  {verdict}")
    met = {name: sum(r["passes"][name] for r in rows) for name in ("metric", "1 ms", "10x")}
    print("targets met: " + ", ".join(f"{name} {count}/{len(rows)}" for name, count in met.items()))


def save(out: Path, started: datetime, args: argparse.Namespace, rows: list[dict]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"started": started.isoformat(), "machine": machine_line(), "args": {k: str(v) for k, v in vars(args).items()},
                               "rows": rows}, indent=1, default=str), encoding="utf-8")


def main() -> int:
    args = parse_args()
    pin_threads(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    started = datetime.now(timezone.utc)
    print(f"distill bench — {started:%Y-%m-%d %H:%M} UTC — {machine_line()} — teacher budget {args.budget:.0f} s, student {args.student}")
    out = args.out or BENCH_DIR / "results" / f"distill-{'retime-' if args.retime else ''}{started:%Y%m%dT%H%M%S}.json"
    rows, whole = [], ForeignLoad()
    earlier = {r["set"]: r for r in json.loads(args.retime.read_text())["rows"]} if args.retime else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in [n for n in args.only if n in earlier] if args.retime else args.only:
            load = ForeignLoad()
            rows.append(retime_set(earlier[name], args) if args.retime else run_set(name, args))
            r = rows[-1]
            r["other_cores"], r["load"] = load.report()
            save(out, started, args, rows)  # after every set: a long run stopped part-way keeps what it measured
            print(f"  {name}: teacher {r['teacher']:.4f} ({r['teacher_fit_s']} s), distilled {r['distilled']:.4f} ({r['distill_s']} s), "
                  f"labels {r['labels']:.4f}; 1 row {r['teacher_ms']:.2f} → {r['distilled_ms']:.3f} ms; {r['load']}", flush=True)
    print_table(rows)
    print(whole.report()[1])
    save(out, started, args, rows)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
