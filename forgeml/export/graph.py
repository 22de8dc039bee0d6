"""The exported graph: the bundle's network plus its output activation, with positional inputs.

Preprocessing stays in the ``Predictor`` (FeatureSet state is JSON and runs in pandas/numpy);
the graph takes the tensors the FeatureSet produces (``dense`` float32 [B, D], ``codes`` int64
[B, K], ``tokens.<feature>`` int64 [B, L]) and returns what ``Estimator.scores`` returns: class
probabilities [B, C] or regression values in training units [B, T]. Only inputs the network
reads become graph inputs (a model without categories has no ``codes`` input).
"""
from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from torch import nn

from forgeml.features.featureset import InputSpec


def input_names(spec: InputSpec) -> list[str]:
    """Graph inputs in a fixed order; absent kinds are left out."""
    names = ["dense"] if spec.dense_width else []
    if spec.codes:
        names.append("codes")
    names.extend(f"tokens.{token.feature}" for token in spec.tokens)
    names.extend(f"images.{image.feature}" for image in spec.images)
    return names


class MaskedMeanEmbedding(nn.Module):
    """``EmbeddingBag(mode="mean", padding_idx=0)`` written with gather, sum and divide.

    Exporters lower EmbeddingBag with padding to an ONNX loop that onnxruntime runs ~30× slower
    than torch at batch 256; this form is the same arithmetic (padding excluded from the mean, an
    all-padding row gives zeros) and becomes three plain ops. Shares the original weight.
    """

    def __init__(self, bag: nn.EmbeddingBag):
        super().__init__()
        self.weight = bag.weight

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        mask = (tokens != 0).unsqueeze(-1).to(self.weight.dtype)  # (B, L, 1)
        summed = (nn.functional.embedding(tokens, self.weight) * mask).sum(dim=1)  # (B, dim)
        return summed / mask.sum(dim=1).clamp(min=1.0)


def export_friendly(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with padded mean EmbeddingBags swapped for ``MaskedMeanEmbedding``,
    text encoders that cut batches to their longest row set to keep the full length, and attention
    masks made additive (``attention.SelfAttention.additive_mask``): the same numbers, fewer ops."""
    model = copy.deepcopy(model).eval()
    for module in model.modules():
        if getattr(module, "trim", None) is True:  # the transformer text encoder: full length, padding masked
            module.trim = False
        if getattr(module, "additive_mask", None) is False:  # attention: a float mask, no per-score NaN guard
            module.additive_mask = True
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if isinstance(child, nn.EmbeddingBag) and child.mode == "mean" and child.padding_idx == 0:
                setattr(parent, name, MaskedMeanEmbedding(child))
    return model


class ScoringGraph(nn.Module):
    """Positional tensors in, scores out: the form tracers and exporters accept.

    A bagged bundle has several networks: the graph averages their scores (probabilities or
    values), exactly as ``BaggedEstimator.scores`` does.
    """

    def __init__(self, models: list[nn.Module], task: Any, names: list[str]):
        super().__init__()
        self.models, self.task, self.names = nn.ModuleList(models), task, list(names)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        arrays = dict(zip(self.names, inputs))
        batch = inputs[0].shape[0]
        # The network always looks up "dense" and "codes"; zero-width stand-ins keep it happy.
        arrays.setdefault("dense", inputs[0].new_zeros((batch, 0), dtype=torch.float32))
        arrays.setdefault("codes", inputs[0].new_zeros((batch, 0), dtype=torch.int64))
        scores = [self.task.score_tensor(model(arrays).float()) for model in self.models]
        return scores[0] if len(scores) == 1 else torch.stack(scores).mean(dim=0)


def build_graph(predictor: Any) -> ScoringGraph:
    spec = predictor.featureset.input_spec()
    members = getattr(predictor.estimator, "members", None) or [predictor.estimator]
    return ScoringGraph([export_friendly(member.model) for member in members], predictor.task, input_names(spec)).eval()


def sample_arrays(spec: InputSpec, rows: int = 256, seed: int = 0) -> dict[str, np.ndarray]:
    """Random inputs covering every code and token id the network can see.

    Used to verify an export when the bundle carries no data rows: dense values are standard
    normal (features are scaled), codes uniform over each vocabulary, token rows a random length
    of random ids followed by padding (and some all-padding rows).
    """
    rng = np.random.default_rng(seed)
    arrays: dict[str, np.ndarray] = {}
    if spec.dense_width:
        arrays["dense"] = rng.standard_normal((rows, spec.dense_width)).astype(np.float32)
    if spec.codes:
        arrays["codes"] = np.stack([rng.integers(0, card, rows) for _, card, _ in spec.codes], axis=1).astype(np.int64)
    for token in spec.tokens:
        length = token.length
        tokens = rng.integers(1, max(token.vocab, 2), (rows, length)).astype(np.int64)
        lengths = rng.integers(0, length + 1, rows)
        tokens[np.arange(length)[None, :] >= lengths[:, None]] = token.pad_id
        arrays[f"tokens.{token.feature}"] = tokens
    for image in spec.images:  # decoded pixels, as the image feature caches them
        arrays[f"images.{image.feature}"] = rng.integers(0, 256, (rows, image.channels, image.size, image.size), dtype=np.uint8)
    return arrays


def eager_scores(graph: ScoringGraph, arrays: dict[str, np.ndarray]) -> np.ndarray:
    with torch.inference_mode():
        return graph(*(torch.from_numpy(np.ascontiguousarray(arrays[n])) for n in graph.names)).numpy()
