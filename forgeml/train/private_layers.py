"""Layers Opacus has no fitting per-row gradient for, rewritten as ones it has, with the same
outputs (and in-place activations made out-of-place); ``forgeml.train.privacy.private_module`` applies ``PRIVATE_REPLACEMENTS`` before
Opacus's own ``ModuleValidator.fix`` (batch norm, LSTM, GRU, attention).

``nn.EmbeddingBag`` (the bag text encoder): Opacus's per-row gradient for it expects the
(indices, offsets) call, ignores ``padding_idx`` in the mean and drops repeated tokens of a row;
an ``nn.Embedding`` and a masked mean give the same vectors, and Opacus computes the embedding's
per-row gradients exactly.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn


class MaskedMeanBag(nn.Module):
    """``nn.EmbeddingBag(mode="mean", padding_idx=p)`` on (B, T) token ids: the mean of each
    row's non-padding token vectors, zeros for a row of padding only."""

    def __init__(self, bag: nn.EmbeddingBag):
        super().__init__()
        self.embed = nn.Embedding(bag.num_embeddings, bag.embedding_dim, padding_idx=bag.padding_idx)
        with torch.no_grad():
            self.embed.weight.copy_(bag.weight)
        self.pad = -1 if bag.padding_idx is None else bag.padding_idx

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        keep = (tokens != self.pad).unsqueeze(-1)  # (B, T, 1)
        vectors = self.embed(tokens) * keep  # (B, T, dim)
        return vectors.sum(dim=1) / keep.sum(dim=1).clamp(min=1)  # (B, dim)


def _mean_bag(bag: nn.Module) -> nn.Module:
    return MaskedMeanBag(bag) if getattr(bag, "mode", None) == "mean" else bag  # sum/max bags: Opacus's validation decides


# module type → the replacement with the same outputs; a new one is a function and one line
PRIVATE_REPLACEMENTS: dict[type, Callable[[nn.Module], nn.Module]] = {
    nn.EmbeddingBag: _mean_bag,
}


def replace_layers(model: nn.Module) -> nn.Module:
    """``model`` with every layer of a ``PRIVATE_REPLACEMENTS`` type replaced in place, and in-place
    activations (``ReLU(inplace=True)`` after a conv's norm) made out-of-place: Opacus's backward
    hooks wrap each layer's output, which autograd forbids modifying in place."""
    for module in list(model.modules()):
        if getattr(module, "inplace", False) is True:
            module.inplace = False
        for child_name, child in list(module.named_children()):
            replace = PRIVATE_REPLACEMENTS.get(type(child))
            if replace is not None:
                setattr(module, child_name, replace(child))
    return model
