"""onnxruntime vs eager torch behind the same Predictor: batch-1 latency and batch-256 throughput.

Both run the same bundle's network on the same pre-built arrays (preprocessing excluded, so the
runtimes are compared, not pandas), one thread each, alternating rounds, medians. The ONNX graph
is the verified export (``forgeml export --format onnx``), built in memory here.

    .venv/bin/python bench/onnx_vs_torch.py           # 2000 batch-1 calls, 200 batch-256 calls
    .venv/bin/python bench/onnx_vs_torch.py --quick
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ForeignLoad, machine_line, median, pin_threads  # noqa: E402

pin_threads(1)


def rounds(fn, calls: int, count: int = 5) -> float:
    out = []
    for _ in range(count):
        started = time.perf_counter()
        for _ in range(calls):
            fn()
        out.append((time.perf_counter() - started) / calls)
    return median(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    small, large = (400, 40) if args.quick else (2000, 200)
    import numpy as np
    import torch

    from _serving import bundle
    from forgeml.bundle import load_predictor
    from forgeml.export.exporter import build_verified
    from forgeml.export.verification import full_arrays
    from forgeml.export.graph import input_names, sample_arrays
    from forgeml.serve.backends import OnnxEstimator

    torch.set_num_threads(1)
    print(machine_line())
    predictor = load_predictor(bundle())
    with tempfile.TemporaryDirectory() as scratch:
        path, _, diff, _ = build_verified(predictor, "onnx", Path(scratch))
        onnx = OnnxEstimator(path.read_bytes(), threads=1)
    spec = predictor.featureset.input_spec()
    arrays = full_arrays(predictor, sample_arrays(spec, rows=256))
    one = {k: v[:1] for k, v in arrays.items()}
    assert np.abs(onnx.scores(arrays) - predictor.estimator.scores(arrays)).max() <= 1e-4
    meter = ForeignLoad()
    torch_1 = rounds(lambda: predictor.estimator.scores(one), small // 5)
    onnx_1 = rounds(lambda: onnx.scores(one), small // 5)
    torch_256 = rounds(lambda: predictor.estimator.scores(arrays), large // 5)
    onnx_256 = rounds(lambda: onnx.scores(arrays), large // 5)
    print(f"inputs: {', '.join(input_names(spec))}; export max |diff| {diff:.2g}")
    print(f"batch 1 latency:      torch {torch_1 * 1e3:.3f} ms   onnxruntime {onnx_1 * 1e3:.3f} ms   (onnx {torch_1 / onnx_1:.2f}× faster)")
    print(f"batch 256 throughput: torch {256 / torch_256:,.0f} rows/s   onnxruntime {256 / onnx_256:,.0f} rows/s   (onnx {torch_256 / onnx_256:.2f}×)")
    print(meter.report()[1])


if __name__ == "__main__":
    main()
