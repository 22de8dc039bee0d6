"""Single-row predict of a bagged LightGBM bundle: one thread for a few rows (forgeml's rule,
``forgeml.models.gbm.ONE_THREAD_ROWS``) against the training's thread count for every call (the
rule before it), in the same process on the same bundle; and a 5,000-row batch both ways, which
the rule must not slow down.

    flock /tmp/forgeml-heavy.lock .venv/bin/python bench/gbm_predict_threads.py [--threads 2] [--calls 300]

Data: scikit-learn's digits (10 classes: ten trees a boosting round), a 5-fold bag, so one
served row makes five LightGBM calls as an ensemble member does.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ForeignLoad, machine_line, median, pin_threads, verdict  # noqa: E402


def timed(pipeline, rows, calls: int) -> tuple[float, float]:
    """(median single-row ms, batch ms per row)."""
    for i in range(5):
        pipeline.predict(rows.iloc[[i]])
    single = []
    for i in range(calls):
        started = time.perf_counter()
        pipeline.predict(rows.iloc[[i % len(rows)]])
        single.append((time.perf_counter() - started) * 1000)
    batch = rows.sample(5000, replace=True, random_state=0)
    started = time.perf_counter()
    pipeline.predict(batch)
    return median(single), (time.perf_counter() - started) / len(batch) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    pin_threads(args.threads)
    from sklearn.datasets import load_digits

    import forgeml.models.gbm as gbm
    from forgeml import Pipeline

    print(machine_line())
    load = ForeignLoad()
    frame = load_digits(as_frame=True).frame
    overrides = {"train.threads": args.threads, "train.bagging_folds": 5, "train.progress": False}
    with tempfile.TemporaryDirectory() as folder:
        pipeline = Pipeline.load(Pipeline(target="target", model="gbm", overrides=overrides).fit(frame).save(Path(folder) / "bundle"))
    rows = frame.drop(columns=["target"])
    ours = timed(pipeline, rows, args.calls)
    rule = gbm.ONE_THREAD_ROWS
    gbm.ONE_THREAD_ROWS = 0  # every call on the training's threads: the rule before
    before = timed(pipeline, rows, args.calls)
    gbm.ONE_THREAD_ROWS = rule
    print(f"single row, median of {args.calls}: one thread {ours[0]:.2f} ms, {args.threads} threads {before[0]:.2f} ms, "
          f"ratio {before[0] / ours[0]:.1f}× faster: {verdict(ours[0] < before[0])}")
    print(f"5,000-row batch: {ours[1]:.3f} ms/row, before {before[1]:.3f} ms/row (same rule above {rule} rows: ratio {before[1] / ours[1]:.2f})")
    print(load.report()[1])


if __name__ == "__main__":
    main()
