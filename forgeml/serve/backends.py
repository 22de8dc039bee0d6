"""Serving backends: which runtime computes the scores behind the same Predictor.

``torch`` is the bundle's own estimator (eager PyTorch; for a LightGBM bundle, LightGBM).
``onnx`` swaps in onnxruntime running the bundle's verified ONNX export: the one in
``<bundle>/exports`` when the bundle's manifest lists it and its bytes match, else one exported in memory at start-up (the
bundle folder may be read-only). Either way the ONNX graph is checked against eager PyTorch on
load, so the two backends give the same answers (within 1e-4) or the server refuses to start.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np


class OnnxEstimator:
    """``Estimator.scores`` on onnxruntime; everything else stays the torch estimator's."""

    def __init__(self, model: bytes, threads: int | None):
        from forgeml.export.formats import onnx_session

        self.session = onnx_session(model, threads)
        self.names = [i.name for i in self.session.get_inputs()]

    def scores(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        return self.session.run(None, {n: np.ascontiguousarray(arrays[n]) for n in self.names})[0]


def _torch(predictor: Any, bundle: Path, manifest: dict[str, Any], threads: int | None) -> Any:
    return predictor


def _onnx(predictor: Any, bundle: Path, manifest: dict[str, Any], threads: int | None) -> Any:
    from forgeml.export.exporter import build_verified, require_torch_bundle, verified_export
    from forgeml.export.verification import TOLERANCE, verification_arrays, verify
    from forgeml.predict import Predictor

    if getattr(predictor.estimator, "quantized", False):
        return predictor  # an int8 bundle (forgeml compress) already runs on onnxruntime
    require_torch_bundle(predictor, str(bundle))
    model = verified_export(bundle, "onnx", manifest)
    if model is None:
        with tempfile.TemporaryDirectory(prefix="forgeml-onnx-") as scratch:
            exported, *_ = build_verified(predictor, "onnx", Path(scratch))
            model = exported.read_bytes()
    estimator = OnnxEstimator(model, threads)
    verify(estimator.scores, predictor, verification_arrays(predictor), TOLERANCE, "onnx")
    return Predictor(predictor.config, predictor.featureset, predictor.task, estimator)


BACKENDS: dict[str, Callable[[Any, Path, dict[str, Any], int | None], Any]] = {"torch": _torch, "onnx": _onnx}
