"""``--quantize int8``: the network's scoring graph exported to ONNX, then ONNX Runtime's dynamic
quantisation (``quantize_dynamic``): int8 weights for every MatMul/Gemm (the Linear layers,
the attention projections and feed-forward layers of the text transformer and the transformer
combiner), activations quantised per batch at run time. Embedding tables, norms and biases stay
float. Why ONNX Runtime and not torchao: ``quantized`` says, with the measurement.

The float graph is verified against eager PyTorch before it is quantised (``export``'s own
check), so a graph the exporter gets wrong never becomes a bundle; the int8 graph's difference
from the float one is what the trade-off table's metric shows.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from forgeml.compress.errors import CompressError
from forgeml.compress.networks import require_network

DTYPES = ("int8",)


def check(source: Any, options: dict[str, Any]) -> None:
    """Refuse a dtype other than int8 and a bundle without a torch network, before data is read."""
    dtype = str(options.get("dtype", "")).lower()
    if dtype not in DTYPES:
        raise CompressError(f"--quantize {options.get('dtype')!r} is not supported", where="--quantize", hint="use --quantize int8")
    require_network(source, "int8 quantisation", "--quantize")


def quantized_bytes(predictor: Any, per_channel: bool = False) -> bytes:
    """The predictor's network as an int8 ONNX graph (bytes), text length axes left dynamic."""
    import logging

    from forgeml.errors import ForgeError
    from forgeml.export.verification import TOLERANCE, verification_arrays, verify
    from forgeml.export.formats import OnnxFormat, onnx_session
    from forgeml.export.graph import build_graph
    from forgeml.extras import require_extra

    require_extra("onnx", needed_by="forgeml compress --quantize", modules=("onnx", "onnxscript", "onnxruntime"))
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from forgeml.models.length_buckets import length_batched, token_pads

    graph = build_graph(predictor)
    arrays = verification_arrays(predictor)  # generated rows covering every code and token id
    pads = token_pads(predictor.featureset.input_spec())
    with tempfile.TemporaryDirectory(prefix="forgeml-quantize-") as scratch:
        exported, target = Path(scratch) / "model.onnx", Path(scratch) / "model.int8.onnx"
        try:
            OnnxFormat().write(graph, arrays, exported, dynamic_lengths=True)
        except ForgeError:
            raise
        except Exception as exc:  # the exporter raises many types; the user needs one line and the cause
            raise CompressError(f"the network does not export to ONNX ({exc.__class__.__name__}: {str(exc).splitlines()[0][:160]})",
                                where="--quantize", hint="run with --debug for the trace; the source bundle is unchanged") from exc
        session = onnx_session(str(exported))
        names = [i.name for i in session.get_inputs()]
        float_graph = lambda part: session.run(None, {n: np.ascontiguousarray(part[n]) for n in names})[0]  # noqa: E731
        verify(lambda part: length_batched(float_graph, part, pads), predictor, arrays, TOLERANCE, "onnx")  # before any rounding
        root = logging.getLogger()
        level = root.level
        root.setLevel(max(level, logging.ERROR))  # the quantiser's "consider pre-processing" notice is not the user's concern
        try:
            quantize_dynamic(str(exported), str(target), weight_type=QuantType.QInt8, per_channel=per_channel)
        except Exception as exc:  # onnxruntime's quantiser raises many types; the user needs one line
            raise CompressError(f"onnxruntime could not quantise the graph ({exc.__class__.__name__}: {str(exc).splitlines()[0][:160]})",
                                where="--quantize", hint="run with --debug for the trace; the source bundle is unchanged") from exc
        finally:
            root.setLevel(level)
        return stripped(target.read_bytes())


def stripped(model: bytes) -> bytes:
    """The graph without the exporter's debugging notes (each node's source line and stack in
    ``metadata_props``/``doc_string``, the intermediate shapes in ``value_info``): on a small
    network they outweighed its int8 weights (26 kB file, 6 kB of weights); ONNX Runtime needs none of it."""
    import onnx

    proto = onnx.load_from_string(model)
    for item in [*proto.graph.node, *proto.graph.initializer, *proto.graph.input, *proto.graph.output]:
        item.ClearField("doc_string")
        del item.metadata_props[:]
    del proto.graph.value_info[:]
    proto.graph.ClearField("doc_string")
    return proto.SerializeToString()


def compress(source: Any, data: Any, options: dict[str, Any]) -> Any:
    """The source's network in int8 (``methods`` describes the interface); needs no data."""
    from forgeml.models.quantized import QuantizedEstimator
    from forgeml.compress.run import derived_pipeline
    from forgeml.config import apply_overrides
    from forgeml.predict import Predictor

    check(source, options)
    predictor = source.predictor_
    model = quantized_bytes(predictor, per_channel=bool(options.get("per_channel", False)))
    config = predictor.config
    if getattr(config.train, "bagging_folds", 1) not in (1, "auto"):  # the bag's members are averaged inside the one graph
        config = apply_overrides(config, {"train.bagging_folds": 1})
    estimator = QuantizedEstimator(model, config, predictor.task, predictor.featureset.input_spec())
    return derived_pipeline(source, Predictor(config, predictor.featureset, predictor.task, estimator))
