"""In-process single-row ``Predictor.predict`` latency (preprocessing included), and where it goes.

The bundle is the default config on the bundled penguins data (``_serving.bundle``): since
``train.bagging_folds: auto`` it is a bag of 5 MLPs, so a prediction runs 5 networks (one stacked
forward, ``models/stacked.py``). Ours: ``Predictor.predict`` on a one-row DataFrame as a user's
row arrives (the issue's figure), and ``Predictor.predict_records`` on the same row as a dict.
Baseline in the same run: the network alone on pre-built tensors (``estimator.scores`` on the
row's arrays). Also shown: the member loop the bag ran before stacking, and each feature's
transform on the row (fast path / pandas path), so a miss says which step to speed up.

Calls are timed one by one (median and p99 over ``--calls``), the variants interleaved call by
call so that other processes' load falls on all of them alike; the thread's CPU time per call is
printed too (on a busy machine, wall time includes waiting for a core). Target: median < 1 ms.

    .venv/bin/python bench/predict_latency.py            # 3000 timed calls each, after 200 warm-up
    .venv/bin/python bench/predict_latency.py --quick    # 500
    .venv/bin/python bench/predict_latency.py --profile  # + cProfile top entries
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ForeignLoad, machine_line, median, pin_threads, verdict  # noqa: E402

pin_threads(1)


def interleaved(functions: dict, calls: int, warmup: int = 200, cpu: dict | None = None) -> dict[str, list[float]]:
    """Per-call wall times in ms for each function, calling them in turn ``calls`` times; with
    ``cpu``, also this thread's CPU time per call (less sensitive to waiting for a busy core)."""
    for fn in functions.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in functions}
    if cpu is not None:
        cpu.update({name: [] for name in functions})
    clock, thread_clock = time.perf_counter, time.thread_time
    for _ in range(calls):
        for name, fn in functions.items():
            started, started_cpu = clock(), thread_clock()
            fn()
            times[name].append((clock() - started) * 1e3)
            if cpu is not None:
                cpu[name].append((thread_clock() - started_cpu) * 1e3)
    return times


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def member_loop(predictor):
    """What ``BaggedEstimator.scores`` did before the stacked forward: each member's module call."""
    import numpy as np
    import torch

    from forgeml.train.trainer import Trainer

    members = getattr(predictor.estimator, "members", [predictor.estimator])

    def run(arrays):
        tensors = {k: torch.from_numpy(v) for k, v in arrays.items()}
        outs = []
        for member in members:
            member.model.eval()
            with torch.no_grad():
                outs.append(predictor.task.scores(Trainer(predictor.config.train).predict(member.model, tensors)))
        return np.mean(outs, axis=0)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    calls = 500 if args.quick else args.calls
    import numpy as np
    import pandas as pd
    import torch

    from _serving import bundle
    from forgeml.bundle import load_predictor

    torch.set_num_threads(1)
    print(machine_line())
    predictor = load_predictor(bundle())
    from forgeml.datasets import DEMO

    row = pd.read_csv(DEMO.path)[predictor.featureset.input_names].head(1)  # as a user's DataFrame arrives
    record = [{k: (None if isinstance(v, float) and v != v else v) for k, v in row.to_dict("records")[0].items()}]
    arrays = predictor.featureset.transform(row, strict=True)
    members = len(getattr(predictor.estimator, "members", [None]))
    loop = member_loop(predictor)
    np.testing.assert_allclose(predictor.estimator.scores(arrays), loop(arrays), rtol=0, atol=1e-6)
    print(f"bundle: {predictor.config.model.type}, {members} bagged member(s), {len(predictor.featureset.features)} input features")
    meter = ForeignLoad()
    cpu: dict[str, list[float]] = {}
    times = interleaved({
        "predict": lambda: predictor.predict(row),
        "predict_records": lambda: predictor.predict_records(record),
        "network": lambda: predictor.estimator.scores(arrays),
        "member loop": lambda: loop(arrays),
    }, calls, cpu=cpu)
    stats = {name: (median(values), p99(values)) for name, values in times.items()}
    ours, base = stats["predict"][0], stats["network"][0]
    for name, label in (("predict", "Predictor.predict, 1-row DataFrame"), ("predict_records", "Predictor.predict_records, 1 dict"),
                        ("network", "baseline: network alone on tensors"), ("member loop", "  (the 5-member loop before stacking)")):
        print(f"{label:40s} median {stats[name][0]:7.3f} ms   p99 {stats[name][1]:7.3f} ms   "
              f"(CPU time median {median(cpu[name]):.3f} ms; {calls} calls)")
    print(f"ratio predict / network: {ours / base:.1f}×; predict_records / network: {stats['predict_records'][0] / base:.1f}×")
    print("per feature, 1 row: fast path (Feature.transform_values) / pandas path (Feature.transform), median ms")
    values = {name: row[name].tolist() for name in predictor.featureset.input_names}
    for feature in predictor.featureset.features:
        column = row[feature.name]
        per = interleaved({"fast": lambda: feature.transform_values(values[feature.name]),
                           "slow": lambda: feature.transform(column, strict=True)}, max(50, calls // 10), warmup=20)
        print(f"    {feature.type_name:9s} {feature.name:28s} {median(per['fast']):7.3f} / {median(per['slow']):7.3f}")
    print(f"target: Predictor.predict median < 1 ms: {ours:.3f} ms → {verdict(ours < 1.0)} (p99 {stats['predict'][1]:.3f} ms)")
    print(meter.report()[1])
    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.runcall(lambda: [predictor.predict(row) for _ in range(200)])
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)


if __name__ == "__main__":
    main()
