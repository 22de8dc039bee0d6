"""In-process single-row ``Predictor.predict`` latency (preprocessing included), and where it goes.

Baseline in the same run: the network alone on pre-built tensors (``estimator.scores`` on the
row's arrays), i.e. what a row costs with no preprocessing. Also times each feature's transform
on the row, so a miss on the target says which step to speed up. Target: < 1 ms per row.

    .venv/bin/python bench/predict_latency.py            # 500 timed calls after 50 warm-up
    .venv/bin/python bench/predict_latency.py --quick    # 100
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


def timed(fn, calls: int) -> float:
    """Median of 5 rounds of ``calls // 5`` calls, in ms per call."""
    per_round = max(1, calls // 5)
    rounds = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(per_round):
            fn()
        rounds.append((time.perf_counter() - started) / per_round * 1e3)
    return median(rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    calls = 100 if args.quick else args.calls
    import pandas as pd
    import torch

    from _serving import bundle
    from forgeml.bundle import load_predictor

    torch.set_num_threads(1)
    print(machine_line())
    predictor = load_predictor(bundle())
    from forgeml.datasets import DEMO

    row = pd.read_csv(DEMO.path)[predictor.featureset.input_names].head(1)  # as a user's DataFrame arrives
    arrays = predictor.featureset.transform(row, strict=True)
    for _ in range(50):
        predictor.predict(row)
    meter = ForeignLoad()
    ours = timed(lambda: predictor.predict(row), calls)
    model = timed(lambda: predictor.estimator.scores(arrays), calls)
    transform = timed(lambda: predictor.featureset.transform(row, strict=True), calls)
    print(f"Predictor.predict, 1 row: {ours:.3f} ms   (network alone on tensors: {model:.3f} ms; ratio {ours / model:.1f}×)")
    print(f"  FeatureSet.transform: {transform:.3f} ms; the rest (frame copy, decode, output frame): {ours - transform - model:.3f} ms")
    print("    per feature: fast path (Feature.transform_small) / pandas path (Feature.transform)")
    for feature in predictor.featureset.features:
        column = row[feature.name]
        small = feature.transform_small(column) is not None
        fast = timed(lambda: feature.transform_small(column), max(20, calls // 5)) if small else float("nan")
        slow = timed(lambda: feature.transform(column, strict=True), max(20, calls // 5))
        print(f"    {feature.type_name:9s} {feature.name:28s} {fast:7.3f} ms / {slow:7.3f} ms")
    print(f"target < 1 ms: {verdict(ours < 1.0)}")
    print(meter.report()[1])
    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.runcall(lambda: [predictor.predict(row) for _ in range(200)])
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)


if __name__ == "__main__":
    main()
