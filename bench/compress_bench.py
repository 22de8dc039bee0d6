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
pruning 0.5 — parameters and disk roughly halved (≥ 1.8×), batch latency lower, metric within 1 point
(the MLP, and the text transformer: heads, feed-forward units, residual width with the token
embedding table, and hidden blocks).

The text transformer's int8 figure is split into its causes by a side-by-side run (``side_by_side``:
round-robin over the same 256 test rows, wall and CPU time): the source's torch network (its
predict runs rows in length buckets, as the int8 graph does: ``models.length_buckets``), its float
graph in onnxruntime run exactly as the int8 one is (additive attention mask, length buckets), and
the int8 bundle — so what int8 itself gives is the last two columns, and what the runtime gives the
first two. CPU time is the steadier figure on a shared machine (other processes' load stretches
wall time, not the CPU time of a one-thread process).

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


def side_by_side(bundle: Path, int8: Path, seconds: float) -> dict[str, dict[str, float]]:
    """Median wall and CPU ms per batch of 256 test rows: torch, float ONNX (same runtime as int8), int8."""
    import statistics
    import tempfile

    import numpy as np

    from forgeml import Pipeline
    from forgeml.compress.data import data_path, prepare_data
    from forgeml.export.formats import OnnxFormat
    from forgeml.export.graph import build_graph
    from forgeml.export.verification import verification_arrays
    from forgeml.models.onnx_runtime import onnx_session
    from forgeml.models.length_buckets import length_batched, token_pads
    from forgeml.models.quantized import QuantizedEstimator

    source = Pipeline.load(bundle).predictor_
    prepared = prepare_data(source, data_path(source.config, None))
    arrays = prepared.arrays[prepared.test_split]
    index = np.arange(256) % len(next(iter(arrays.values())))
    batch = {key: value[index] for key, value in arrays.items()}
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "float.onnx"
        OnnxFormat().write(build_graph(source), verification_arrays(source), path, dynamic_lengths=True)
        session = onnx_session(path.read_bytes(), 1)
    names = [i.name for i in session.get_inputs()]
    float_graph = lambda part: session.run(None, {n: np.ascontiguousarray(part[n]) for n in names})[0]  # noqa: E731
    pads = token_pads(source.featureset.input_spec())
    quantized = Pipeline.load(int8).predictor_.estimator
    assert isinstance(quantized, QuantizedEstimator)
    runs = {"torch": lambda: source.estimator.scores(batch),
            "float onnx": lambda: length_batched(float_graph, {n: batch[n] for n in names}, pads),
            "int8": lambda: quantized.scores(batch)}
    wall: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    for run in runs.values():
        run()  # warm-up
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(wall["int8"]) < 5:
        for name, run in runs.items():
            started, started_cpu = time.perf_counter(), time.process_time()
            run()
            wall[name].append(1000 * (time.perf_counter() - started))
            cpu[name].append(1000 * (time.process_time() - started_cpu))
    return {name: {"wall_ms": statistics.median(wall[name]), "cpu_ms": statistics.median(cpu[name]), "runs": len(wall[name])} for name in runs}


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
        split = side_by_side(bundle, args.out / "text" / "int8", 10 * args.seconds)
        tables["text_int8_side_by_side"] = split
        for name, row in split.items():
            print(f"text batch 256, side by side: {name:10s} wall {row['wall_ms']:7.1f} ms  CPU {row['cpu_ms']:7.1f} ms  ({row['runs']} runs)")
        for what, key in (("wall", "wall_ms"), ("CPU", "cpu_ms")):
            print(f"text int8 {what}: {split['torch'][key] / split['int8'][key]:.2f}× torch, "
                  f"{split['float onnx'][key] / split['int8'][key]:.2f}× the float graph run the same way")
        tables["text_prune"] = compress(bundle, "prune", {"amount": 0.5, "structured": True}, args.out / "text" / "pruned")
        verdicts += judge("text transformer prune 0.5", tables["text_prune"], {"parameters": 1.8, "size_bytes": 1.8, "latency_256_ms": 1.0})
    _, load = meter.report()
    print("\n".join(verdicts))
    print(load)
    (args.out / "tables.json").write_text(json.dumps(tables, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
