"""Compression figures (issue 15): int8 quantisation of an MLP bundle and of a text-transformer
bundle, and 50 % structured pruning of the MLP, each against its own source bundle in one run.

- MLP: ``telco_churn`` (modeldata's wa_churn, 7,043 rows, binary; ``_tabular_sets``), the mlp
  family with its defaults (2 × 128 hidden units; no bag above 1,000 train rows).
- Text transformer: ``/work/shared/data/reviews_zh.csv`` (``--text-rows`` rows, sentiment), the
  transformer family with its defaults (a transformer text encoder and the transformer combiner),
  ``--text-epochs`` epochs (default 3: a figure about compression, not about the best model).

Each bundle is trained with ``Pipeline.fit(path)`` (so it records its data file, as ``forgeml
train`` does) and compressed by ``forgeml.compress.run.compress_bundle``, which scores both models
on the same test split and times ``estimator.scores`` on precomputed features (1 row and 256 rows,
median over ``--seconds`` per figure) — the table ``forgeml compress`` prints. One torch/onnxruntime
thread (``pin_threads(1)``): the machine is shared, and one thread is what a server worker gets.

Targets: int8 — batch-256 ≥ 1.5× faster, ≥ 2× smaller on disk, metric within 1 point (0.01);
pruning 0.5 — parameters and disk roughly halved (≥ 1.8×), batch latency lower, metric within 1 point.

    flock /tmp/forgeml-heavy.lock .venv/bin/python bench/compress_bench.py
    .venv/bin/python bench/compress_bench.py --only mlp --seconds 1     # quick look
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import OUT_DIR, ForeignLoad, machine_line, pin_threads, shared_data_missing, verdict  # noqa: E402

pin_threads(1)

REVIEWS = Path("/work/shared/data/reviews_zh.csv")
BASE = {"train.progress": False, "train.threads": 1, "train.seed": 0}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", default=["mlp", "text"], choices=["mlp", "text"])
    parser.add_argument("--text-rows", type=int, default=6000)
    parser.add_argument("--text-epochs", type=int, default=3)
    parser.add_argument("--mlp-epochs", type=int, default=None, help="cap the MLP's epochs (default: its own, early-stopped)")
    parser.add_argument("--seconds", type=float, default=3.0, help="timing per latency figure")
    parser.add_argument("--out", type=Path, default=OUT_DIR / "compress")
    return parser.parse_args()


def train(csv: Path, target: str, overrides: dict, folder: Path) -> Path:
    from forgeml import Pipeline

    started = time.perf_counter()
    bundle = Pipeline(target=target, overrides={**BASE, **overrides}).fit(str(csv)).save(folder)
    print(f"trained {folder.name} in {time.perf_counter() - started:.0f} s")
    return bundle


def compress(bundle: Path, method: str, options: dict, out: Path) -> dict:
    from forgeml.compress.run import compress_bundle
    from forgeml.compress.tradeoff import print_table

    started = time.perf_counter()
    result = compress_bundle(bundle, method, options, output=out)
    print_table(result.table, f"{bundle.parent.name}: {method} {options} ({time.perf_counter() - started:.0f} s)")
    return result.table


def judge(name: str, table: dict, targets: dict[str, float]) -> list[str]:
    """PASS/FAIL lines: ratios at least ``targets[key]``, the metric within 0.01."""
    lines = []
    for key, least in targets.items():
        value = table["ratios"].get(key)
        lines.append(f"{name}: {key} ratio {value:.2f}× (target ≥ {least}×) {verdict(value is not None and value >= least)}")
    change = table["metric_change"]
    lines.append(f"{name}: {table['metric_name']} {table['before']['metric']:.4f} → {table['after']['metric']:.4f} "
                 f"({change:+.4f}; target within 0.01) {verdict(change is not None and abs(change) <= 0.01)}")
    return lines


def main() -> int:
    args = parse_args()
    import forgeml.compress.tradeoff as tradeoff

    tradeoff.LATENCY_SECONDS = args.seconds
    print(machine_line())
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    meter = ForeignLoad()
    verdicts, tables = [], {}
    if "mlp" in args.only:
        from _tabular_sets import SETS

        frame = SETS["telco_churn"].load()
        csv = args.out / "telco_churn.csv"
        frame.to_csv(csv, index=False)
        bundle = train(csv, SETS["telco_churn"].target, {"model.type": "mlp", **({"train.epochs": args.mlp_epochs} if args.mlp_epochs else {})}, args.out / "mlp" / "bundle")
        tables["mlp_int8"] = compress(bundle, "quantize", {"dtype": "int8"}, args.out / "mlp" / "int8")
        verdicts += judge("mlp int8", tables["mlp_int8"], {"latency_256_ms": 1.5, "size_bytes": 2.0})
        tables["mlp_prune"] = compress(bundle, "prune", {"amount": 0.5, "structured": True}, args.out / "mlp" / "pruned")
        verdicts += judge("mlp prune 0.5", tables["mlp_prune"], {"parameters": 1.8, "size_bytes": 1.8, "latency_256_ms": 1.0})
    if "text" in args.only and not shared_data_missing(REVIEWS):
        import pandas as pd

        frame = pd.read_csv(REVIEWS).sample(n=args.text_rows, random_state=0)
        csv = args.out / "reviews_zh.csv"
        frame.to_csv(csv, index=False)
        bundle = train(csv, "sentiment", {"model.type": "transformer", "train.epochs": args.text_epochs}, args.out / "text" / "bundle")
        tables["text_int8"] = compress(bundle, "quantize", {"dtype": "int8"}, args.out / "text" / "int8")
        verdicts += judge("text transformer int8", tables["text_int8"], {"latency_256_ms": 1.5, "size_bytes": 2.0})
    _, load = meter.report()
    print("\n".join(verdicts))
    print(load)
    (args.out / "tables.json").write_text(json.dumps(tables, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
