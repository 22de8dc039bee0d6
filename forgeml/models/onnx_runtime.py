"""An ONNX Runtime session for a model's bytes: used by the int8 estimator (models) and by the
exporter's checks and the server's ONNX backend (``export.formats`` re-exports it)."""
from __future__ import annotations

from typing import Any


def onnx_session(model: bytes, threads: int | None = None) -> Any:
    from forgeml.extras import import_optional

    ort = import_optional("onnxruntime", "onnx", needed_by="ONNX scoring")

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
