"""K tabular networks evaluated as one: their weights stacked, one batched matmul per layer.

A bagged bundle holds K copies of the same network (``models/bagging.py``). Called one by one,
each forward is ~20 small torch ops and ~20 ``nn.Module.__call__``s, and for a few rows that
fixed cost *is* the prediction time: on the 5-member penguins bundle, 1 row, the member loop
took ~1.4 ms and this stacked form ~0.15 ms (contended machine, bench/predict_latency.py). Here
each layer's K weight matrices become one [K, in, out] tensor, so a forward is the same ~20 ops
whatever K is, run under ``torch.inference_mode`` with no module calls.

Only the plain tabular network is stacked: ``FusionNet`` with the concat combiner over
``dense`` + ``codes`` (the ``mlp`` family on numbers, categories, booleans and dates — the one
``train.bagging_folds: auto`` bags), optionally inside ``LinearSkip``. ``StackedNet.build``
returns None for anything else (text, images, the transformer combiner, bf16), and callers keep
the per-member loop. The arithmetic is the modules' own in eval mode (dropout off, batch norm on
its running statistics, folded into one scale and shift); results match the loop within float32
rounding (tests/models/test_stacked.py checks ≤ 1e-6).

The stacked tensors are copies: ``StackedNet.is_current`` compares the source tensors' version
counters (bumped by optimizer steps, ``load_state_dict`` and any in-place edit), so an owner can
rebuild when the members' weights changed.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from forgeml.models.combiners import ConcatCombiner
from forgeml.models.linear_skip import LinearSkip
from forgeml.models.network import FusionNet

ACTIVATION_FUNCTIONS: dict[type, Callable[[nn.Module], Callable[[torch.Tensor], torch.Tensor]]] = {
    nn.ReLU: lambda module: torch.relu,
    nn.GELU: lambda module: (lambda x: F.gelu(x, approximate=module.approximate)),
    nn.SiLU: lambda module: F.silu,
}

# The same activations on numpy arrays, for the small-batch forward (``StackedNet.numpy_scores``).
NUMPY_ACTIVATIONS: dict[type, Callable[[nn.Module], Callable[[np.ndarray], np.ndarray]]] = {
    nn.ReLU: lambda module: lambda x: np.maximum(x, 0, dtype=np.float32),
    nn.GELU: lambda module: _numpy_gelu(module.approximate),
    nn.SiLU: lambda module: _numpy_silu(),
}

# Up to this many rows, a CPU forward runs in numpy: each torch op has a fixed cost of a few
# microseconds, numpy's a fraction of that, and a bag's ~20 ops on one row are the whole
# prediction time (bench/predict_latency.py). Above it, torch's multi-threaded kernels win.
NUMPY_ROWS = 64


def _numpy_gelu(approximate: str) -> Callable[[np.ndarray], np.ndarray]:
    from scipy.special import erf

    if approximate == "tanh":
        return lambda x: 0.5 * x * (1 + np.tanh(np.float32(np.sqrt(2 / np.pi)) * (x + np.float32(0.044715) * x**3)))
    return lambda x: 0.5 * x * (1 + erf(x * np.float32(1 / np.sqrt(2))))


def _numpy_silu() -> Callable[[np.ndarray], np.ndarray]:
    from scipy.special import expit

    return lambda x: x * expit(x)


def _stack(tensors: list[torch.Tensor]) -> torch.Tensor:
    return torch.stack([t.detach() for t in tensors]).contiguous()


class _Layer:
    """One hidden block of K members: x [K, B, in] → [K, B, out]."""

    def __init__(self, blocks: list[nn.Module]):
        linear, norm, activation = (blocks[0].layers[i] for i in range(3))
        self.weight = _stack([b.layers[0].weight.t() for b in blocks])  # (K, in, out)
        self.bias = _stack([b.layers[0].bias for b in blocks]).unsqueeze(1)  # (K, 1, out)
        self.norm = "none"
        if isinstance(norm, nn.BatchNorm1d):
            # eval-mode batch norm is an affine map per feature: fold it into one scale and shift
            scale = [(b.layers[1].running_var + b.layers[1].eps).rsqrt() * b.layers[1].weight for b in blocks]
            self.scale = _stack(scale).unsqueeze(1)
            self.shift = _stack([b.layers[1].bias - b.layers[1].running_mean * s for b, s in zip(blocks, scale)]).unsqueeze(1)
            self.norm = "batch"
        elif isinstance(norm, nn.LayerNorm):
            self.norm_shape, self.eps = norm.normalized_shape, norm.eps
            self.scale = _stack([b.layers[1].weight for b in blocks]).unsqueeze(1)
            self.shift = _stack([b.layers[1].bias for b in blocks]).unsqueeze(1)
            self.norm = "layer"
        self.activation = ACTIVATION_FUNCTIONS[type(activation)](activation)
        self.numpy_activation = NUMPY_ACTIVATIONS[type(activation)](activation)
        self.residual = blocks[0].residual

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.baddbmm(self.bias, x, self.weight)  # (K, B, out)
        if self.norm == "batch":
            y = torch.addcmul(self.shift, y, self.scale)
        elif self.norm == "layer":
            y = torch.addcmul(self.shift, F.layer_norm(y, self.norm_shape, eps=self.eps), self.scale)
        y = self.activation(y)
        return x + y if self.residual else y

    def numpy_forward(self, x: np.ndarray) -> np.ndarray:
        """``__call__`` in numpy on the same (CPU) weights."""
        weight, bias, scale, shift = self.__dict__.get("_numpy") or self._numpy_views()
        y = np.matmul(x, weight) + bias
        if self.norm == "batch":
            y = y * scale + shift
        elif self.norm == "layer":
            centred = y - y.mean(axis=-1, keepdims=True)
            y = centred / np.sqrt((centred * centred).mean(axis=-1, keepdims=True) + np.float32(self.eps)) * scale + shift
        y = self.numpy_activation(y)
        return x + y if self.residual else y

    def _numpy_views(self) -> tuple:
        """The stacked tensors as numpy arrays sharing their memory, made on first use (CPU only)."""
        norm = (self.scale.numpy(), self.shift.numpy()) if self.norm != "none" else (None, None)
        self._numpy = (self.weight.numpy(), self.bias.numpy(), *norm)
        return self._numpy


def _plain_block(block: nn.Module) -> bool:
    layers = list(getattr(block, "layers", []))
    return (len(layers) == 4 and type(layers[0]) is nn.Linear and layers[0].bias is not None
            and (type(layers[1]) in (nn.BatchNorm1d, nn.Identity) or (type(layers[1]) is nn.LayerNorm and layers[1].elementwise_affine
                                                                      and layers[1].bias is not None))
            and type(layers[2]) in ACTIVATION_FUNCTIONS and type(layers[3]) is nn.Dropout
            and (type(layers[1]) is not nn.BatchNorm1d or (layers[1].affine and layers[1].track_running_stats)))


def _stackable(model: nn.Module) -> bool:
    net = model.network if type(model) is LinearSkip else model
    return (type(net) is FusionNet and type(net.combiner) is ConcatCombiner and not len(net.text) and not len(net.images)
            and all(_plain_block(block) for block in net.combiner.blocks))


def _shape_key(model: nn.Module) -> tuple:
    return tuple((name, tuple(t.shape)) for name, t in model.state_dict().items()) + (repr(model),)


class StackedNet:
    """Scores of K same-shaped tabular networks, averaged: what the member loop returns."""

    def __init__(self, models: list[nn.Module], score_tensor: Callable[[torch.Tensor], torch.Tensor]):
        self.k = len(models)
        self.score_tensor = score_tensor
        skip = type(models[0]) is LinearSkip
        nets = [m.network if skip else m for m in models]
        self.sources = [t for m in models for t in (*m.parameters(), *m.buffers())]
        self.versions = [t._version for t in self.sources]
        self.dense_width = nets[0].dense_widths[0] if nets[0].dense_widths else 0
        # one table per code column holding every member's embedding side by side: (cardinality, K * dim)
        self.embeddings = [torch.cat([n.embeddings[i].weight.detach() for n in nets], dim=1).contiguous() for i in range(len(nets[0].embeddings))]
        self.embedding_dims = [e.embedding_dim for e in nets[0].embeddings]
        self.layers = [_Layer([n.combiner.blocks[j] for n in nets]) for j in range(len(nets[0].combiner.blocks))]
        self.head_weight = _stack([n.head.weight.t() for n in nets])  # (K, width, outputs)
        self.head_bias = _stack([n.head.bias for n in nets]).unsqueeze(1)
        self.skip = None
        if skip:
            self.skip = (_stack([m.linear.weight.t() for m in models]), _stack([m.linear.bias for m in models]).unsqueeze(1),
                         _stack([m.gate for m in models]).view(self.k, 1, 1),
                         [torch.cat([m.code_weights[i].weight.detach() for m in models], dim=1).contiguous() for i in range(len(models[0].code_weights))])

    @classmethod
    def build(cls, models: list[nn.Module], score_tensor: Callable[[torch.Tensor], torch.Tensor]) -> "StackedNet | None":
        """The stacked form of ``models``, or None when they are not all the same plain tabular network."""
        if not models or not all(_stackable(m) for m in models) or len({type(m) for m in models}) != 1:
            return None
        key = _shape_key(models[0])
        if any(_shape_key(m) != key for m in models[1:]):
            return None
        return cls(models, score_tensor)

    def is_current(self) -> bool:
        """False once any member's weights changed after stacking (training, loading, editing)."""
        return [t._version for t in self.sources] == self.versions

    def _members(self, dense: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """Raw outputs of every member: (K, B, outputs)."""
        k, rows = self.k, dense.shape[0]
        parts = [dense.expand(k, rows, self.dense_width)] if self.dense_width else []
        for i, (table, dim) in enumerate(zip(self.embeddings, self.embedding_dims)):
            parts.append(F.embedding(codes[:, i], table).view(rows, k, dim).transpose(0, 1))  # (K, B, dim)
        x = torch.cat(parts, dim=2) if len(parts) > 1 else parts[0]
        for layer in self.layers:
            x = layer(x)
        out = torch.baddbmm(self.head_bias, x, self.head_weight)
        if self.skip is not None:
            weight, bias, gate, tables = self.skip
            out = torch.baddbmm(bias, dense.expand(k, rows, dense.shape[1]), weight) + gate * out
            outputs = out.shape[2]
            for i, table in enumerate(tables):
                out = out + F.embedding(codes[:, i], table).view(rows, k, outputs).transpose(0, 1)
        return out

    def _numpy_members(self, dense: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """``_members`` in numpy, for a few rows on the CPU."""
        k, rows = self.k, dense.shape[0]
        embeddings, head_weight, head_bias, skip = self.__dict__.get("_numpy") or self._numpy_views()
        parts = [np.broadcast_to(dense, (k, rows, self.dense_width))] if self.dense_width else []
        for i, (table, dim) in enumerate(zip(embeddings, self.embedding_dims)):
            parts.append(table[codes[:, i]].reshape(rows, k, dim).transpose(1, 0, 2))
        x = np.concatenate(parts, axis=2) if len(parts) > 1 else parts[0]
        for layer in self.layers:
            x = layer.numpy_forward(x)
        out = np.matmul(x, head_weight) + head_bias
        if skip is not None:
            weight, bias, gate, tables = skip
            out = np.matmul(np.broadcast_to(dense, (k, rows, dense.shape[1])), weight) + bias + gate * out
            outputs = out.shape[2]
            for i, table in enumerate(tables):
                out = out + table[codes[:, i]].reshape(rows, k, outputs).transpose(1, 0, 2)
        return out

    def _numpy_views(self) -> tuple:
        """The stacked tensors as numpy arrays sharing their memory, made on first use (CPU only)."""
        skip = None
        if self.skip is not None:
            weight, bias, gate, tables = self.skip
            skip = (weight.numpy(), bias.numpy(), gate.numpy(), [table.numpy() for table in tables])
        self._numpy = ([table.numpy() for table in self.embeddings], self.head_weight.numpy(), self.head_bias.numpy(), skip)
        return self._numpy

    def numpy_scores(self, dense: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """``scores`` for at most ``NUMPY_ROWS`` rows on CPU weights: the network in numpy, then
        the task's own ``score_tensor`` (one torch op) and the mean over members."""
        raw = self._numpy_members(dense.astype(np.float32, copy=False), codes)
        k, rows, outputs = raw.shape
        with torch.inference_mode():
            scored = self.score_tensor(torch.from_numpy(np.ascontiguousarray(raw, dtype=np.float32)).view(k * rows, outputs)).numpy()
        scored = scored.reshape(k, rows, -1)
        return scored.mean(axis=0) if k > 1 else scored[0]

    def scores(self, dense: torch.Tensor, codes: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
        """Mean over members of ``score_tensor(member(x))``: (B, C)."""
        chunks = []
        with torch.inference_mode():
            for start in range(0, dense.shape[0], batch_size):
                raw = self._members(dense[start : start + batch_size], codes[start : start + batch_size])  # (K, b, outputs)
                k, rows, outputs = raw.shape
                scored = self.score_tensor(raw.reshape(k * rows, outputs))
                chunks.append(scored.view(k, rows, -1).mean(dim=0) if k > 1 else scored)
        return torch.cat(chunks) if len(chunks) > 1 else chunks[0]


class StackedScorer:
    """Keeps a ``StackedNet`` for a changing list of models: rebuilt when weights change, None when
    the models cannot be stacked (the caller then runs them one by one)."""

    def __init__(self) -> None:
        self._net: StackedNet | None = None
        self._models: list[nn.Module] = []
        self._refused = False

    def get(self, models: list[nn.Module], config: Any, score_tensor: Callable) -> StackedNet | None:
        if getattr(config.train, "precision", "fp32") != "fp32":
            return None  # autocast changes the arithmetic; the loop runs it
        same = len(models) == len(self._models) and all(a is b for a, b in zip(models, self._models))
        if same and self._refused:
            return None
        if not same or self._net is None or not self._net.is_current():
            self._models = list(models)
            self._net = StackedNet.build(self._models, score_tensor)
            self._refused = self._net is None
        return self._net


def stacked_scores(scorer: StackedScorer, models: list[nn.Module], config: Any, task: Any, arrays: dict[str, Any]) -> Any:
    """``Estimator.scores`` through the stacked form: a numpy array, or None (use the member loop)."""
    if set(arrays) - {"dense", "codes"} or "dense" not in arrays or not len(arrays["dense"]):
        return None
    net = scorer.get(models, config, task.score_tensor)
    if net is None:
        return None
    device = net.head_weight.device  # the members' device (train.device); a no-op on CPU
    if device.type == "cpu" and len(arrays["dense"]) <= NUMPY_ROWS:
        return net.numpy_scores(arrays["dense"], arrays.get("codes", np.zeros((len(arrays["dense"]), 0), np.int64)))
    dense = torch.from_numpy(np.ascontiguousarray(arrays["dense"])).to(device)
    codes = torch.from_numpy(np.ascontiguousarray(arrays.get("codes", np.zeros((len(dense), 0), np.int64)))).to(device)
    return net.scores(dense, codes, getattr(models[0], "predict_batch_size", 4096)).cpu().numpy()
