"""Pre-norm Transformer blocks on ``scaled_dot_product_attention``, shared by the text encoder
and the feature-token combiner.

Pre-norm (LayerNorm before attention and MLP, as in GPT-2 and "On Layer Normalization in the
Transformer Architecture", Xiong et al. 2020) trains stably without warm-up tricks; SDPA picks
the fused kernel the device offers.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from forgeml.errors import ConfigError


class SelfAttention(nn.Module):
    # Exporters lower a boolean ``attn_mask`` to where(mask, 0, -inf) + scores, then a NaN guard
    # (isnan → where) over the whole (B, nh, T, T) probability tensor: in onnxruntime those
    # element-wise passes took more time than the attention products (bench/RESULTS.md,
    # "int8 text transformer"). ``export.graph.export_friendly`` sets this, so the graph gets the
    # additive (B, 1, 1, T) float mask instead: the same numbers, since every row keeps position 0
    # (``encoders.text._trim``), so no row is all -inf and the guard has nothing to catch.
    additive_mask = False

    def __init__(self, width: int, heads: int, dropout: float, head_size: int | None = None):
        """``head_size``: None splits ``width`` among the heads; a pruned network (``forgeml compress
        --prune``) keeps fewer heads of the original size, so heads × head_size < width."""
        super().__init__()
        if head_size is None and width % heads:
            raise ConfigError(f"width {width} is not divisible by {heads} attention heads", where="model config",
                              hint="choose a width that is a multiple of the number of heads")
        self.heads, self.dropout = heads, dropout
        self.head_size = head_size or width // heads
        inner = heads * self.head_size
        self.qkv = nn.Linear(width, 3 * inner)  # rows: q | k | v, each head after head
        self.proj = nn.Linear(inner, width)

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        B, T, _ = x.shape
        inner = self.heads * self.head_size
        q, k, v = self.qkv(x).split(inner, dim=2)
        q, k, v = (t.view(B, T, self.heads, self.head_size).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
        mask = keep[:, None, None, :] if keep is not None else None  # (B, 1, 1, T): True = attend
        if mask is not None and self.additive_mask:
            mask = torch.zeros(mask.shape, dtype=q.dtype, device=q.device).masked_fill(~mask, float("-inf"))  # (B, 1, 1, T)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(B, T, inner))


class TransformerBlock(nn.Module):
    def __init__(self, width: int, heads: int, dropout: float, head_size: int | None = None, ffn_size: int | None = None):
        """``ffn_size``: feed-forward units (None: 4 × width, GPT-2's ratio; fewer after pruning)."""
        super().__init__()
        ffn_size = ffn_size or 4 * width
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.attention = SelfAttention(width, heads, dropout, head_size)
        self.mlp = nn.Sequential(nn.Linear(width, ffn_size), nn.GELU(), nn.Linear(ffn_size, width), nn.Dropout(dropout))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.drop(self.attention(self.norm1(x), keep))
        return x + self.mlp(self.norm2(x))


def sinusoidal_positions(length: int, width: int) -> torch.Tensor:
    """The fixed encodings of "Attention Is All You Need" (Vaswani et al. 2017), (length, width)."""
    position = torch.arange(length, dtype=torch.float32)[:, None]
    frequency = torch.exp(torch.arange(0, width, 2, dtype=torch.float32) * (-math.log(10_000.0) / width))
    table = torch.zeros(length, width)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency)[:, : width // 2]
    return table
