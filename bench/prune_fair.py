"""Pruning's accuracy against equal training (issue 15): the source network fine-tuned unpruned
exactly as ``--prune`` fine-tunes (``compress.prune.fine_tune``, the same epochs), and the pruned
one, on the bundle's own test split. ``compress_bench.py``'s table compares the pruned model with
its source, which had fewer epochs: an under-trained source makes pruning look like a gain.

Accuracy only (seeded; one thread, any load):

    .venv/bin/python bench/prune_fair.py bench/out/compress/text/bundle --epochs 5
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--epochs", type=int, nargs="+", default=[5], help="fine-tune epochs (each: unpruned and pruned)")
    parser.add_argument("--amount", type=float, default=0.5)
    parser.add_argument("--skip-unpruned", action="store_true")
    args = parser.parse_args()
    import torch

    from forgeml import Pipeline
    from forgeml.compress.data import data_path, prepare_data
    from forgeml.compress.prune import fine_tune
    from forgeml.compress.run import compress_bundle

    torch.set_num_threads(1)
    for epochs in args.epochs:
        if not args.skip_unpruned:
            predictor = Pipeline.load(args.bundle).predictor_
            prepared = prepare_data(predictor, data_path(predictor.config, None))
            frame = prepared.frames[prepared.test_split]
            metric = "f1_macro" if predictor.task.is_classification else "r2"
            before = predictor.evaluate_frame(frame, source="test").metrics[metric]
            fine_tune(predictor.estimator, predictor.config, predictor.task, prepared, epochs)
            after = predictor.evaluate_frame(frame, source="test").metrics[metric]
            print(f"unpruned + {epochs}-epoch fine-tune: {metric} {before:.4f} -> {after:.4f} ({after - before:+.4f}; {len(frame)} test rows)")
        out = Path(tempfile.mkdtemp()) / "pruned"
        try:
            table = compress_bundle(args.bundle, "prune", {"amount": args.amount, "structured": True, "epochs": epochs}, output=out).table
        finally:
            shutil.rmtree(out.parent, ignore_errors=True)
        print(f"prune {args.amount} + {epochs}-epoch fine-tune: {table['metric_name']} {table['before']['metric']:.4f} -> {table['after']['metric']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
