"""The tabular MLP: one encoder per input kind, concatenated, then residual MLP blocks.

dense columns pass straight in; each category gets its own embedding table; each text column
gets a mean-pooled bag of embeddings. Width, depth, norm, dropout and residuals come from
``MLPConfig``.
"""
from __future__ import annotations

import torch
from torch import nn

from forgeml.config import MLPConfig
from forgeml.features.featureset import InputSpec

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU}
NORMS = {"batch": nn.BatchNorm1d, "layer": nn.LayerNorm, "none": lambda width: nn.Identity()}


class Block(nn.Module):
    def __init__(self, width_in: int, width_out: int, cfg: MLPConfig):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(width_in, width_out), NORMS[cfg.norm](width_out), ACTIVATIONS[cfg.activation](), nn.Dropout(cfg.dropout)
        )
        self.residual = cfg.residual and width_in == width_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layers(x) if self.residual else self.layers(x)


class TabularMLP(nn.Module):
    def __init__(self, spec: InputSpec, output_size: int, cfg: MLPConfig):
        super().__init__()
        self.embeddings = nn.ModuleList(nn.Embedding(cardinality, dim) for _, cardinality, dim in spec.codes)
        self.text_keys = [f"tokens.{name}" for name, *_ in spec.tokens]
        self.text = nn.ModuleList(nn.EmbeddingBag(vocab, dim, mode="mean", padding_idx=0) for _, vocab, dim, _ in spec.tokens)
        width = spec.dense_width + sum(dim for *_, dim in spec.codes) + sum(dim for _, _, dim, _ in spec.tokens)
        if width == 0:
            raise ValueError("the model has no inputs")
        blocks, current = [], width
        for _ in range(cfg.num_layers):
            blocks.append(Block(current, cfg.hidden_size, cfg))
            current = cfg.hidden_size
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(current, output_size)

    def encode(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        parts = [inputs["dense"]] if inputs["dense"].shape[1] else []
        codes = inputs["codes"]
        parts.extend(embedding(codes[:, i]) for i, embedding in enumerate(self.embeddings))
        parts.extend(bag(inputs[key]) for key, bag in zip(self.text_keys, self.text))
        return torch.cat(parts, dim=1)  # (B, width)

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.head(self.blocks(self.encode(inputs)))  # (B, outputs)
