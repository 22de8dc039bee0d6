"""Multimodal figure: birds.csv target ``effect`` — tabular + ``remarks`` text in one model, against
the same network on the tabular columns only and on the text only. Macro-F1 on the same test rows.

All three use forgeml's seeded, stratified 70/15/15 split (the rows are identical: the text-only
and tabular-only runs only drop columns after loading), default settings, early stopping on
validation loss; ``--epochs`` caps the epochs. The multimodal model is the default one (text
through a bag of embeddings, concat combiner); ``--combiner transformer`` tries feature tokens.

Target: multimodal macro-F1 > both the tabular-only and the text-only model.

    .venv/bin/python bench/multimodal.py                 # ~5-10 min on 2 busy cores
    .venv/bin/python bench/multimodal.py --epochs 30
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import ForeignLoad, machine_line, pin_threads, shared_data_missing, verdict  # noqa: E402

DATA = Path("/work/shared/data/birds.csv")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--combiner", choices=["concat", "transformer"], default="concat")
    parser.add_argument("--data", type=Path, default=DATA)
    return parser.parse_args()


ARGS = parse_args()
pin_threads(ARGS.threads)


def main() -> int:
    if shared_data_missing(ARGS.data):
        return 0
    from forgeml import Pipeline
    from forgeml.data.load import load_table

    frame = load_table(ARGS.data)
    print(f"multimodal bench — machine: {machine_line()}; {len(frame)} rows, target 'effect'")
    common = {"train.epochs": ARGS.epochs, "train.progress": False, "train.threads": ARGS.threads, "model.combiner": ARGS.combiner}
    load = ForeignLoad()
    scores = {}
    variants = {
        "multimodal": frame,
        "tabular-only": frame.drop(columns=["remarks"]),
        "text-only": frame[["remarks", "effect"]],
    }
    for name, data in variants.items():
        started = time.perf_counter()
        pipeline = Pipeline(target="effect", overrides=common).fit(data)
        types = sorted({f.type for f in pipeline.predictor_.config.features})
        scores[name] = pipeline.metrics_["f1_macro"]
        print(f"  {name:<13} macro-F1 {scores[name]:.4f}  accuracy {pipeline.metrics_['accuracy']:.4f}  inputs {types}  "
              f"({len(pipeline.fit_summary_.history)} epochs, {time.perf_counter() - started:.0f} s, {pipeline.metrics_['n']} test rows)")
    best_other = max(scores["tabular-only"], scores["text-only"])
    print(f"MULTIMODAL {scores['multimodal']:.4f} vs tabular-only {scores['tabular-only']:.4f}, text-only {scores['text-only']:.4f} "
          f"(target: above both) {verdict(scores['multimodal'] > best_other)}")
    print(f"load: {load.report()[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
