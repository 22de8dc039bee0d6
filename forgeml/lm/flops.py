"""The machine's matmul peak, measured, so MFU means something on a CPU with no data sheet.

MFU (model FLOPs utilisation, PaLM §B) = the FLOPs the model needs per second at the achieved
tokens/s, over the FLOPs a large matrix multiply reaches on the same cores in the same precision.
"""
from __future__ import annotations

import os
import time

import torch

_PEAKS: dict[tuple[str, int], float] = {}


def measure_matmul_peak(precision: str = "fp32", seconds: float = 0.3, size: int = 1024, device: torch.device | str = "cpu") -> float:
    """FLOP/s of square matmuls on ``device`` (on the CPU with this process's torch threads),
    best of short rounds.

    ``FORGEML_PEAK_FLOPS`` overrides the measurement (a known GPU peak, or a quiet-machine figure).
    """
    if os.environ.get("FORGEML_PEAK_FLOPS"):
        return float(os.environ["FORGEML_PEAK_FLOPS"])
    device = torch.device(device)
    key = (precision, torch.get_num_threads(), str(device))
    if key in _PEAKS:
        return _PEAKS[key]
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    size = size * 4 if device.type == "cuda" else size  # a GPU needs a larger product to be busy
    a = torch.randn(size, size, dtype=dtype, device=device)
    b = torch.randn(size, size, dtype=dtype, device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    torch.mm(a, b)  # warm-up: first call allocates and picks kernels
    sync()
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        torch.mm(a, b)
        sync()  # CUDA kernels return at once: time the work, not the launch
        best = max(best, 2 * size**3 / (time.perf_counter() - started))
    _PEAKS[key] = best
    return best
