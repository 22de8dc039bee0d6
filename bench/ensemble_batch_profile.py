"""Where an ensemble bundle's batch predict spends its time (issue 13, "speed kept"): the fitted
features, each member's fold models (as the bag predicts them, and one after the other), and the
whole ``Pipeline.predict`` call; ``--profile`` adds cProfile's top functions. Rows of ``--data``
are resampled (with replacement when there are fewer) to ``--rows``. Best of three calls each.

    .venv/bin/python bench/ensemble_batch_profile.py runs/<id>/bundle --data test.csv --rows 10000

Found with it (bench/RESULTS.md, session 13): on a medium diamonds bundle the features take
6–23 ms of 10,000 rows, LightGBM's C predict nearly all the rest, in proportion to the trees
walked (K fold models × rounds).
"""
from __future__ import annotations

import argparse
import time
import warnings
from typing import Any, Callable


def best_of(fn: Callable[[], Any], calls: int = 3) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(calls):
        started = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - started)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle")
    parser.add_argument("--data", required=True, help="a table with the bundle's input columns (the target may be there)")
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    import pandas as pd

    from forgeml import Pipeline

    pipeline = Pipeline.load(args.bundle)
    predictor = pipeline.predictor_
    frame = pd.read_parquet(args.data) if args.data.endswith(".parquet") else pd.read_csv(args.data)
    frame = frame.drop(columns=[c for c in predictor.config.target if c in frame.columns])
    frame = frame.sample(args.rows, replace=len(frame) < args.rows, random_state=0).reset_index(drop=True)
    pipeline.predict(frame.head(300))  # warm: thread pools, stacked networks
    total, _ = best_of(lambda: pipeline.predict(frame))
    print(f"Pipeline.predict, {args.rows} rows: {total * 1000:.0f} ms = {total / args.rows * 1e6:.1f} µs/row ({args.rows / total:,.0f} rows/s)")
    features, arrays = best_of(lambda: predictor.featureset.transform_rows(frame, strict=True, source="data")[0])
    print(f"  features: {features * 1000:.0f} ms")
    for member in getattr(predictor.estimator, "members", []):
        bag = member["estimator"] if isinstance(member, dict) else member
        name = member["member"] if isinstance(member, dict) else "fold model"
        seconds, _ = best_of(lambda: bag.scores(arrays))
        folds = getattr(bag, "members", [bag])
        one_by_one = sum(best_of(lambda: fold.scores(arrays), 1)[0] for fold in folds)
        print(f"  {name:<16} weight {member.get('weight', 1.0) if isinstance(member, dict) else 1.0:.2f}: {seconds * 1000:6.0f} ms, "
              f"{len(folds)} model(s), {getattr(bag, 'workers', 1)} at a time; one after the other {one_by_one * 1000:.0f} ms")
    if args.profile:
        import cProfile
        import pstats

        profile = cProfile.Profile()
        profile.enable()
        pipeline.predict(frame)
        profile.disable()
        pstats.Stats(profile).sort_stats("cumulative").print_stats(20)


if __name__ == "__main__":
    main()
