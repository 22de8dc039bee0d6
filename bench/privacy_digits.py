"""Differential privacy on digits: the MLP trained with DP-SGD at (ε = 3, δ = 1e-5) next to the same
MLP trained without privacy, in one script; the ε forgeml reports is checked against a fresh
Opacus accountant given the same (noise multiplier, sampling rate, steps).

Data: scikit-learn's digits (1,797 8×8 images as 64 pixel columns, 10 classes), forgeml's default
70/15/15 split (seed 0): 1,257 training rows, so δ = 1e-5 is far below 1/n = 8e-4.

Both runs: model.type mlp, 2 × 128 blocks, layer norm (what a private run turns batch norm into,
so the two networks are the same), no linear path, no bagging, AdamW, cosine schedule, early
stopping on the validation loss with the best epoch kept. DP-SGD wants larger batches and a
larger learning rate than the defaults (Abadi et al. 2016; Opacus's tutorials): each batch's
noise has the same size whatever the batch, so more rows per step drown it better, and fewer,
bigger steps spend less ε. The defaults of this script (both runs):

    batch 256, learning rate 1e-2, 40 epochs, max_grad_norm 1.0, PRV accountant

    flock /tmp/forgeml-heavy.lock .venv/bin/python bench/privacy_digits.py            # ~1-2 min
    .venv/bin/python bench/privacy_digits.py --epochs 60 --batch-size 512 --learning-rate 1e-2
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import machine_line, pin_threads, verdict  # noqa: E402

EPSILON, DELTA = 3.0, 1e-5


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epsilon", type=float, default=EPSILON)
    parser.add_argument("--delta", type=float, default=DELTA)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--learning-rate", type=float, default=1e-2)
    parser.add_argument("--max-grad-norm", type=float, default=1.0)
    parser.add_argument("--accountant", choices=("prv", "rdp"), default="prv")
    parser.add_argument("--threads", type=int, default=1)
    return parser.parse_args()


ARGS = parse_args()
pin_threads(ARGS.threads)  # before torch is imported


def digits_frame():
    from sklearn.datasets import load_digits

    data = load_digits(as_frame=True)
    frame = data.frame.rename(columns={"target": "digit"})
    frame["digit"] = frame["digit"].astype(str)  # a class label, not a number to regress
    return frame


def train(frame, private: bool) -> tuple[object, float]:
    import warnings

    from forgeml import Pipeline
    from forgeml.errors import DataNote

    overrides = {
        "model.type": "mlp", "model.norm": "layer", "model.linear_skip": "off", "train.bagging_folds": 1,
        "train.epochs": ARGS.epochs, "train.batch_size": ARGS.batch_size, "train.learning_rate": ARGS.learning_rate,
        "train.progress": False, "train.threads": ARGS.threads, "task": "multiclass",
    }
    if private:
        overrides.update({"train.privacy.epsilon": ARGS.epsilon, "train.privacy.delta": ARGS.delta,
                          "train.privacy.max_grad_norm": ARGS.max_grad_norm, "train.privacy.accountant": ARGS.accountant})
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataNote)
        pipeline = Pipeline(target="digit", overrides=overrides).fit(frame)
    return pipeline, time.perf_counter() - started


def opacus_epsilon(spent: dict) -> float:
    """What Opacus's own accountant says for the run's steps, computed afresh."""
    from opacus.accountants import create_accountant

    accountant = create_accountant(mechanism=spent["accountant"])
    accountant.history = [(spent["noise_multiplier"], spent["sample_rate"], spent["steps"])]
    return float(accountant.get_epsilon(spent["delta"]))


def main() -> int:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent).stdout.strip()
    print(f"privacy_digits · commit {commit} · {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC · {machine_line()}")
    print(f"settings (both runs): mlp 2×128 layer-norm, batch {ARGS.batch_size}, lr {ARGS.learning_rate:g}, {ARGS.epochs} epochs (early stopping on "
          f"validation loss); private: ε {ARGS.epsilon:g}, δ {ARGS.delta:g}, max_grad_norm {ARGS.max_grad_norm:g}, {ARGS.accountant} accountant")
    frame = digits_frame()
    plain, plain_seconds = train(frame, private=False)
    private, private_seconds = train(frame, private=True)
    spent = private.fit_summary_.privacy
    recomputed = opacus_epsilon(spent)
    rows = [("non-private", plain, plain_seconds, "—"), (f"DP-SGD ε={ARGS.epsilon:g}", private, private_seconds, f"{spent['epsilon']:.3f}")]
    print("\n| run | test accuracy | macro-F1 | epochs (best) | seconds | ε spent |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, pipeline, seconds, epsilon in rows:
        summary = pipeline.fit_summary_
        print(f"| {name} | {pipeline.metrics_['accuracy']:.4f} | {pipeline.metrics_['f1_macro']:.4f} | {len(summary.history)} ({summary.best_epoch}) "
              f"| {seconds:.1f} | {epsilon} |")
    print(f"\nprivate run: {spent['training_rows']} training rows, δ {spent['delta']:g}, noise multiplier {spent['noise_multiplier']:.4f}, "
          f"sampling rate {spent['sample_rate']:.4f}, {spent['steps']} steps")
    within = spent["epsilon"] <= ARGS.epsilon
    matches = abs(spent["epsilon"] - recomputed) <= 1e-9 * max(1.0, recomputed)
    print(f"ε reported {spent['epsilon']:.6f} ≤ target {ARGS.epsilon:g}: {verdict(within)}")
    print(f"ε reported {spent['epsilon']:.6f} = Opacus {spent['accountant']} accountant afresh {recomputed:.6f}: {verdict(matches)}")
    return 0 if within and matches else 1


if __name__ == "__main__":
    sys.exit(main())
