"""Rows run in buckets of similar text length, each bucket's token columns cut to its own longest
row, rows returned in their order: how a text network's predictions are batched, the float
torch network's (``torch_estimator``) and the int8 ONNX graph's (``quantized``) alike.

Why: a batch padded to its longest row spends most of its time on padding when lengths are
skewed (reviews_zh: median 45 tokens, longest 185), and attention costs the square of the
length. The answers do not change: every text encoder masks its padding (``encoders.text``:
``_trim`` and the attention keep-mask, packed RNN sequences, EmbeddingBag's ``padding_idx``, the
pretrained encoder's attention mask), and in eval mode each row's output depends on that row
alone. Only float rounding differs (other batch shapes take other kernel paths).
"""
from __future__ import annotations

from typing import Any

import numpy as np

CHUNK = 256  # most rows per run: the torch network's own predict batch for text (HEAVY_PREDICT_BATCH)
SLACK = 1.25  # a run's padded cells (rows × its longest row) stay within this × its real tokens ...
MIN_ROWS = 8  # ... once it has this many rows (fewer, longer runs would cost more in per-run overhead)


def token_pads(spec: Any) -> dict[str, int]:
    """Graph input name → padding id, for every text input."""
    return {f"tokens.{token.feature}": token.pad_id for token in spec.tokens}


def length_chunks(lengths: np.ndarray, chunk: int = CHUNK, slack: float = SLACK, min_rows: int = MIN_ROWS) -> list[np.ndarray]:
    """Row indices in runs of similar length, shortest first: rows sorted by length, a run closed
    at ``chunk`` rows or when the next (longer) row would make its padding exceed ``slack``.

    Why not fixed runs of ``chunk`` rows: text lengths are skewed (reviews_zh: median 45 tokens,
    longest 185), so one 256-row run cut to its longest row spent most of its time on padding;
    attention costs the square of the length. Bounding the waste keeps every run close to its real
    tokens whatever the data set's lengths are (short texts still run 256 at a time)."""
    order = np.argsort(lengths, kind="stable")
    runs, start, tokens = [], 0, 0
    for position, row in enumerate(order):
        length = max(int(lengths[row]), 1)
        rows = position - start
        if rows >= chunk or (rows >= min_rows and (rows + 1) * length > slack * (tokens + length)):
            runs.append(order[start:position])
            start, tokens = position, 0
        tokens += length
    if start < len(order):
        runs.append(order[start:])
    return runs


def length_batched(run: Any, arrays: dict[str, np.ndarray], pads: dict[str, int], chunk: int = CHUNK,
                   slack: float = SLACK, min_rows: int = MIN_ROWS) -> np.ndarray:
    """``run(arrays)`` on runs of rows of similar text length (``length_chunks``), each run's token
    columns cut to its longest row: what the torch network does per batch (``_trim``), with less
    padding. Same numbers: padding is masked inside the graph. Rows come back in their order."""
    keys = [key for key in pads if key in arrays]
    if not keys or not len(arrays[keys[0]]):
        return run(arrays)
    counts = {key: (arrays[key] != pads[key]).sum(axis=1) for key in keys}
    out: np.ndarray | None = None
    for rows in length_chunks(np.max(np.stack(list(counts.values())), axis=0), chunk, slack, min_rows):
        part = {key: value[rows] for key, value in arrays.items()}
        for key in keys:
            full = part[key].shape[1]
            part[key] = np.ascontiguousarray(part[key][:, : max(min(2, full), int(counts[key][rows].max()))])
        scores = run(part)
        if out is None:
            out = np.empty((len(next(iter(arrays.values()))), *scores.shape[1:]), dtype=scores.dtype)
        out[rows] = scores
    assert out is not None
    return out
