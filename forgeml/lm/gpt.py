"""A GPT decoder in one module (Radford et al. 2018/2019, laid out as in nanoGPT).

Token + learned position embeddings → ``n_layer`` pre-norm blocks (causal self-attention, GELU
MLP, each added to the residual stream) → final layer norm → logits over the vocabulary, with the
output layer tied to the token embedding. Attention is ``scaled_dot_product_attention``, so torch
picks its fused kernel (flash/memory-efficient on GPU, a fused one on CPU).

Generation is fed one token at a time through a key/value cache (``KVCache``): the prompt is
run once, then each new token attends to the cached keys and values instead of recomputing the
whole prefix. An optional key mask lets prompts of different lengths share a batch (left padding).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from forgeml.lm.config import GPTConfig


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.n_head, self.n_embd, self.dropout = config.n_head, config.n_embd, config.dropout
        self.qkv = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, cache: "LayerCache | None" = None, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(self.n_embd, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
        if cache is None and key_mask is None:  # training: the fused causal kernel
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=True)
        else:
            start = 0
            if cache is not None:
                start = cache.length
                k, v = cache.append(k, v)  # (B, nh, start + T, hs)
            total = k.shape[2]
            # query i (absolute position start + i) may see keys 0 .. start + i, minus padding
            allowed = torch.ones(T, total, dtype=torch.bool, device=x.device).tril(diagonal=start)  # (T, start+T)
            mask = allowed[None, None]
            if key_mask is not None:
                # padding is hidden from every query, except a pad query from itself: a row with
                # no visible key would be NaN, and NaN values poison later layers even when masked
                itself = torch.zeros_like(allowed)
                itself[torch.arange(T), torch.arange(start, start + T)] = True
                mask = (mask & key_mask[:, None, None, :total]) | itself  # (B, 1, T, start+T)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C)
        return self.resid_dropout(self.proj(y))


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.proj(F.gelu(self.fc(x))))


class Block(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, cache: "LayerCache | None" = None, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), cache, key_mask)
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_weights:
            self.lm_head.weight = self.wte.weight
        self.apply(self._init_weights)
        # GPT-2: residual projections scaled by 1/sqrt(2·layers), so the stream's variance does not grow with depth
        for name, param in self.named_parameters():
            if name.endswith("proj.weight"):
                nn.init.normal_(param, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(
        self,
        idx: torch.Tensor,
        targets: torch.Tensor | None = None,
        *,
        cache: "KVCache | None" = None,
        positions: torch.Tensor | None = None,
        key_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits (B, T, vocab) and, given targets, the mean cross-entropy.

        ``positions`` (B, T) overrides 0..T-1 (left-padded prompts start later); ``key_mask``
        (B, total) is False at padding. Both are only needed for generation.
        """
        B, T = idx.shape
        start = cache.length if cache is not None else 0
        if positions is None:
            positions = torch.arange(start, start + T, device=idx.device)[None]  # (1, T)
        x = self.drop(self.wte(idx) + self.wpe(positions))  # (B, T, C)
        for i, block in enumerate(self.blocks):
            x = block(x, cache.layers[i] if cache is not None else None, key_mask)
        x = self.ln_f(x)
        if targets is None:
            return self.lm_head(x), None
        logits = self.lm_head(x)
        loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1))
        return logits, loss

    # ------------------------------------------------------------------ figures
    def num_params(self, non_embedding: bool = True) -> int:
        """Parameters; position embeddings excluded by default (the convention FLOP counts use).
        A tied output layer is counted once (it *is* the token embedding)."""
        total = sum(p.numel() for p in self.parameters())
        return total - self.wpe.weight.numel() if non_embedding else total

    def flops_per_token(self, context: int | None = None) -> int:
        """Training FLOPs per token (forward + backward): 6·N for the weights plus the attention
        scores, 12·layers·width·context (PaLM appendix B; nanoGPT's estimate_mfu)."""
        c = self.config
        return 6 * self.num_params() + 12 * c.n_layer * c.n_embd * (context or c.block_size)

    def optimizer_groups(self, weight_decay: float, learning_rate: float) -> list[dict]:
        """The foundation's AdamW groups: weight decay only on ≥2-D weights, never on biases or norm scales."""
        from forgeml.train.optim import _param_groups

        return _param_groups(self, weight_decay, learning_rate)


@dataclass
class LayerCache:
    keys: torch.Tensor  # (B, nh, max_len, hs), filled up to `length`
    values: torch.Tensor
    length: int = 0

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        end = self.length + k.shape[2]
        self.keys[:, :, self.length : end] = k
        self.values[:, :, self.length : end] = v
        self.length = end
        return self.keys[:, :, :end], self.values[:, :, :end]


class KVCache:
    """Preallocated keys and values for every layer, up to the model's context."""

    def __init__(self, model: GPT, batch: int, max_len: int | None = None, dtype: torch.dtype | None = None):
        c = model.config
        shape = (batch, c.n_head, max_len or c.block_size, c.n_embd // c.n_head)
        dtype, device = dtype or model.wte.weight.dtype, model.wte.weight.device
        self.layers = [LayerCache(torch.empty(shape, dtype=dtype, device=device), torch.empty(shape, dtype=dtype, device=device))
                       for _ in range(c.n_layer)]
        self.capacity = shape[2]

    @property
    def length(self) -> int:
        return self.layers[0].length
