"""Export formats: one small class each, registered by name.

Each format writes the scoring graph to a file and can load that file back as a function of the
FeatureSet's arrays, so ``exporter`` verifies every format the same way (the reloaded artifact
against eager PyTorch). Adding a format is one class plus one ``FORMATS`` line.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, ClassVar, Protocol

import numpy as np

from forgeml.models.onnx_runtime import onnx_session  # noqa: F401  (here for the exporter and the server's ONNX backend)

Runner = Callable[[dict[str, np.ndarray]], np.ndarray]

# onnxruntime 1.2x implements opset 18 fully; the dynamo exporter's translations target it.
ONNX_OPSET = 18


class ExportFormat(Protocol):
    name: ClassVar[str]
    filename: ClassVar[str]

    def write(self, graph: Any, example: dict[str, np.ndarray], path: Path) -> dict[str, Any]: ...

    def load(self, path: Path, graph: Any) -> Runner: ...


def _example_tensors(graph: Any, example: dict[str, np.ndarray]) -> tuple:
    import torch

    return tuple(torch.from_numpy(np.ascontiguousarray(example[n][:2])) for n in graph.names)


class OnnxFormat:
    """ONNX via the dynamo exporter, batch axis dynamic; run by onnxruntime."""

    name = "onnx"
    filename = "model.onnx"

    def write(self, graph: Any, example: dict[str, np.ndarray], path: Path, *, dynamic_lengths: bool = False) -> dict[str, Any]:
        """``dynamic_lengths``: token inputs get a dynamic length axis too (``forgeml compress``
        feeds batches cut to their longest row); the default keeps the exported length fixed."""
        import contextlib
        import io
        import logging
        import warnings

        import torch

        from forgeml.extras import require_extra

        require_extra("onnx", needed_by="ONNX export", modules=("onnx", "onnxscript"))  # torch.onnx's dynamo exporter imports both
        batch = torch.export.Dim("batch", min=1)
        # The exporter prints progress and torchvision notices; a CLI user needs none of it.
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                graph, _example_tensors(graph, example), dynamo=True, opset_version=ONNX_OPSET,
                input_names=list(graph.names), output_names=["scores"],
                dynamic_shapes=(tuple({0: batch, 1: torch.export.Dim(f"length{i}", min=2, max=int(example[n].shape[1]))}
                                      if dynamic_lengths and n.startswith("tokens.") else {0: batch}
                                      for i, n in enumerate(graph.names)),), verbose=False,
            )
        program.save(str(path))
        return {"opset": ONNX_OPSET, "inputs": list(graph.names), "outputs": ["scores"], "dynamic_axes": {"batch": 0}}

    def load(self, path: Path, graph: Any) -> Runner:
        return onnx_runner(path.read_bytes())


def onnx_runner(model: bytes, threads: int | None = None) -> Runner:
    session = onnx_session(model, threads)
    names = [i.name for i in session.get_inputs()]
    return lambda arrays: session.run(None, {n: np.ascontiguousarray(arrays[n]) for n in names})[0]


class TorchScriptFormat:
    """``torch.jit.trace`` of the scoring graph: loadable from C++ (libtorch) without Python."""

    name = "torchscript"
    filename = "model.pt"

    def write(self, graph: Any, example: dict[str, np.ndarray], path: Path) -> dict[str, Any]:
        import warnings

        import torch

        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")  # torch.jit's deprecation notice is not the user's concern
            traced = torch.jit.trace(graph, _example_tensors(graph, example), check_trace=False)
            torch.jit.save(traced, str(path))
        return {"inputs": list(graph.names), "outputs": ["scores"]}

    def load(self, path: Path, graph: Any) -> Runner:
        import warnings

        import torch

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module = torch.jit.load(str(path), map_location="cpu").eval()

        def run(arrays: dict[str, np.ndarray]) -> np.ndarray:
            with torch.inference_mode():
                return module(*(torch.from_numpy(np.ascontiguousarray(arrays[n])) for n in graph.names)).numpy()

        return run


class SafetensorsFormat:
    """The network's weights with the input layout in the header's metadata (no code, no pickle)."""

    name = "safetensors"
    filename = "model.safetensors"

    def write(self, graph: Any, example: dict[str, np.ndarray], path: Path) -> dict[str, Any]:
        from safetensors.torch import save_file

        state = {k: v.detach().contiguous() for k, v in graph.models.state_dict().items()}
        info = {"inputs": list(graph.names), "outputs": ["scores"], "task": graph.task.name, "loss": graph.task.loss}
        save_file(state, str(path), metadata={"format": "forgeml-export", "layout": json.dumps(info)})
        return info

    def load(self, path: Path, graph: Any) -> Runner:
        import copy

        import torch
        from safetensors.torch import load_file

        fresh = copy.deepcopy(graph)
        for parameter in fresh.parameters():  # prove the file, not the copy, supplies every weight
            torch.nn.init.zeros_(parameter)
        fresh.models.load_state_dict(load_file(str(path)))
        from forgeml.export.graph import eager_scores

        return lambda arrays: eager_scores(fresh, arrays)


FORMATS: dict[str, type] = {cls.name: cls for cls in (OnnxFormat, TorchScriptFormat, SafetensorsFormat)}
