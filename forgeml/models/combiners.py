"""Combiners: the per-feature vectors → one vector for the output head.

- ``concat``: join the vectors, then ``num_layers`` hidden blocks (norm, activation, dropout,
  residual between equal widths) — the tabular MLP when every input is a number or category;
- ``transformer``: each feature's vector projected to a token (plus a learned feature-identity
  embedding and a [CLS] token), pre-norm self-attention across features (as FT-Transformer does
  across columns, Gorishniy et al. 2021), then the [CLS] state through the same hidden blocks.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from forgeml.models.attention import TransformerBlock

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU}
NORMS = {"batch": nn.BatchNorm1d, "layer": nn.LayerNorm, "none": lambda width: nn.Identity()}


class Block(nn.Module):
    def __init__(self, width_in: int, width_out: int, cfg: Any):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(width_in, width_out), NORMS[cfg.norm](width_out), ACTIVATIONS[cfg.activation](), nn.Dropout(cfg.dropout)
        )
        self.residual = cfg.residual and width_in == width_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layers(x) if self.residual else self.layers(x)


def hidden_blocks(width: int, cfg: Any) -> tuple[nn.Sequential, int]:
    blocks, current = [], width
    for _ in range(cfg.num_layers):
        blocks.append(Block(current, cfg.hidden_size, cfg))
        current = cfg.hidden_size
    return nn.Sequential(*blocks), current


class ConcatCombiner(nn.Module):
    split_dense = False  # the dense matrix stays one part: one slice per batch, not one per feature

    def __init__(self, widths: list[int], cfg: Any):
        super().__init__()
        self.blocks, self.width = hidden_blocks(sum(widths), cfg)

    def forward(self, parts: list[torch.Tensor]) -> torch.Tensor:
        return self.blocks(torch.cat(parts, dim=1) if len(parts) > 1 else parts[0])  # (B, width)


class TransformerCombiner(nn.Module):
    split_dense = True  # one token per feature, so each number/date feature is its own part

    def __init__(self, widths: list[int], cfg: Any):
        super().__init__()
        size = cfg.combiner_size
        self.project = nn.ModuleList(nn.Linear(width, size) for width in widths)
        self.identity = nn.Parameter(torch.zeros(len(widths) + 1, size))  # which feature a token is; row 0: [CLS]
        nn.init.normal_(self.identity, std=0.02)
        self.layers = nn.ModuleList(TransformerBlock(size, cfg.combiner_heads, cfg.dropout, cfg.combiner_head_size, cfg.combiner_ffn_size)
                                    for _ in range(cfg.combiner_layers))
        self.norm = nn.LayerNorm(size)
        self.blocks, self.width = hidden_blocks(size, cfg)

    def forward(self, parts: list[torch.Tensor]) -> torch.Tensor:
        tokens = torch.stack([project(part) for project, part in zip(self.project, parts)], dim=1)  # (B, F, size)
        cls = torch.zeros_like(tokens[:, :1])
        x = torch.cat([cls, tokens], dim=1) + self.identity  # (B, F+1, size)
        for layer in self.layers:
            x = layer(x)
        return self.blocks(self.norm(x[:, 0]))


COMBINERS: dict[str, Callable[[list[int], Any], nn.Module]] = {"concat": ConcatCombiner, "transformer": TransformerCombiner}
