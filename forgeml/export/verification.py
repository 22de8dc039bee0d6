"""What makes an export trustworthy, shared by every format (``exporter``: torch graphs;
``native``: LightGBM's own files): the verification rows (the user's rows through the FeatureSet,
or generated arrays covering every code and token id) and the comparison with the eager model at
batch N and batch 1. Its own module so the formats and the exporter that registers them import
it, not each other."""
from __future__ import annotations

from typing import Any

import numpy as np

from forgeml.errors import ForgeError

TOLERANCE = 1e-4


class ExportError(ForgeError):
    """An export could not be written, or does not reproduce the eager model."""


def full_arrays(predictor: Any, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Graph inputs plus the zero-width ``dense``/``codes`` the eager estimator expects."""
    rows = len(next(iter(arrays.values())))
    out = dict(arrays)
    out.setdefault("dense", np.zeros((rows, 0), np.float32))
    out.setdefault("codes", np.zeros((rows, 0), np.int64))
    return out


def verification_arrays(predictor: Any, data: Any = None, rows: int = 256) -> dict[str, np.ndarray]:
    from forgeml.export.graph import input_names, sample_arrays

    spec = predictor.featureset.input_spec()
    if data is None:
        return sample_arrays(spec, rows=rows, seed=predictor.config.train.seed)
    from forgeml.data.load import describe_source

    frame = predictor.read(data)
    arrays = predictor.featureset.transform(frame, strict=True, source=describe_source(data))
    return {name: arrays[name] for name in input_names(spec)}


def verify(runner: Any, predictor: Any, arrays: dict[str, np.ndarray], tolerance: float, label: str) -> float:
    """Largest |export − eager| over the rows, at batch N and batch 1 (the dynamic axis)."""
    expected = predictor.estimator.scores(full_arrays(predictor, arrays))
    worst = 0.0
    for sliced in (arrays, {k: v[:1] for k, v in arrays.items()}):
        got = np.asarray(runner(sliced))
        want = expected[: len(got)]
        if got.shape != want.shape:
            raise ExportError(f"{label} export returns shape {got.shape}, eager PyTorch {want.shape}", hint="report this: the exporter changed the graph")
        worst = max(worst, float(np.max(np.abs(got - want))) if got.size else 0.0)
    if not np.isfinite(worst) or worst > tolerance:
        raise ExportError(
            f"{label} export differs from eager PyTorch by {worst:.3g} (tolerance {tolerance:g}); nothing was written",
            hint="report this with the bundle; the torch backend and safetensors weights are unaffected",
        )
    return worst
