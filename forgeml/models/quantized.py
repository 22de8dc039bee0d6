"""The estimator of an int8-quantised bundle: the network's scoring graph as one ONNX file with
int8 weights (``model.int8.onnx``), run by ONNX Runtime.

Why ONNX Runtime and not torchao: on this CPU (bench/RESULTS.md, "compress") torchao's int8
dynamic-activation/int8-weight Linear was *slower* than float32 PyTorch at batch 256 (0.61 vs
0.44 ms for a 64→256→256→2 MLP; 183 vs 86 ms for a 2-layer text transformer), while
ONNX Runtime's dynamic quantisation was 5× and 1.6× faster; ``torch.ao.quantization`` is
deprecated in this torch. An ONNX file is also plain data (protobuf): loading it runs no code,
as the bundle's rule for weights requires (no pickle).

The graph is ``export.graph.ScoringGraph``: the FeatureSet's arrays in, the task's scores out
(a bag's members averaged inside it), so ``Predictor``, ``forgeml predict``/``evaluate``/``serve``
and ``Pipeline.load`` use it like any estimator. ``networks.load`` picks this class when the
bundle holds the file; it lives in models (not compress, which writes the file) because loading
a bundle is the models layer's job.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from forgeml.errors import BundleError
from forgeml.models.length_buckets import length_batched, token_pads

QUANTIZED_FILE = "model.int8.onnx"


class QuantizedEstimator:
    files = (QUANTIZED_FILE,)
    quantized = True  # read by export, serve and compress to say what they can do with it

    def __init__(self, model: bytes, config: Any, task: Any, spec: Any):
        self.config, self.task, self.spec = config, task, spec
        self.model_bytes = model
        self._session: Any = None
        self._threads: int | None = None

    def _get_session(self) -> Any:
        """The ONNX Runtime session, made on first use with the process's torch thread count
        (``--threads``/``train.threads`` set it), remade if that changed (the server sets it late)."""
        import torch

        from forgeml.models.onnx_runtime import onnx_session

        threads = torch.get_num_threads()
        if self._session is None or threads != self._threads:
            self._session, self._threads = onnx_session(self.model_bytes, threads), threads
            inputs = self._session.get_inputs()
            self.names = [i.name for i in inputs]
            # text inputs whose length axis the graph left dynamic can be cut to each batch's longest row
            self._pads = {i.name: pad for i in inputs for name, pad in token_pads(self.spec).items()
                          if i.name == name and len(i.shape) > 1 and isinstance(i.shape[1], str)}
        return self._session

    def scores(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        session = self._get_session()
        run = lambda part: session.run(None, {name: np.ascontiguousarray(part[name]) for name in self.names})[0]  # noqa: E731
        return length_batched(run, {name: arrays[name] for name in self.names}, self._pads)

    def fit(self, *args: Any, **kwargs: Any) -> Any:
        from forgeml.errors import ConfigError

        raise ConfigError("an int8-quantised model cannot be trained further", where="model.int8.onnx",
                            hint="train or fine-tune the float bundle it was made from, then quantise again")

    def save(self, directory: Path) -> list[str]:
        (Path(directory) / QUANTIZED_FILE).write_bytes(self.model_bytes)
        return [QUANTIZED_FILE]

    def feature_importance(self) -> dict[str, float] | None:
        return None

    def parameter_count(self) -> int:
        """Elements of every weight (int8 and the float ones left: biases, norms, embeddings)."""
        import onnx

        graph = onnx.load_from_string(self.model_bytes).graph
        return int(sum(int(np.prod(t.dims)) for t in graph.initializer if len(t.dims) and "scale" not in t.name and "zero_point" not in t.name))

    @classmethod
    def load(cls, directory: Path, config: Any, task: Any, spec: Any) -> "QuantizedEstimator":
        path = Path(directory) / QUANTIZED_FILE
        try:
            model = path.read_bytes()
        except OSError as exc:
            raise BundleError(f"{QUANTIZED_FILE} cannot be read ({exc.__class__.__name__})", where=str(directory), hint="restore the bundle or quantise its source again") from None
        estimator = cls(model, config, task, spec)
        try:
            estimator._get_session()
        except Exception as exc:  # onnxruntime raises its own exception types for a corrupt graph
            if exc.__class__.__name__ == "MissingExtraError":
                raise
            raise BundleError(f"{QUANTIZED_FILE} does not load in onnxruntime ({exc.__class__.__name__})", where=str(directory),
                              hint="the bundle is corrupted or from a newer onnxruntime; quantise its source again") from None
        return estimator
