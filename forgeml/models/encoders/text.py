"""Text encoders: token ids (B, L), padded with ``pad_id`` on the right → (B, width).

- ``bag``: mean of token embeddings (fastText-like; fast, a strong baseline on short texts);
- ``lstm`` / ``gru``: bidirectional RNN over packed sequences, mean / max / last-state pooling;
- ``transformer``: pre-norm encoder with learned or sinusoidal positions, masked pooling;
- ``pretrained``: a BERT-family checkpoint from a local folder via ``transformers``, mean-pooled
  as sentence-transformers does, frozen or fine-tuned at ``lr_scale`` × the learning rate.

Batches are cut to their longest row before the sequence encoders run: padding costs nothing.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from forgeml.features.featureset import TokenInput
from forgeml.models.attention import TransformerBlock, sinusoidal_positions


def _trim(tokens: torch.Tensor, pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Tokens cut to the batch's longest row, the keep-mask and lengths (≥ 1: an empty text keeps
    its first position, so pooling and attention always have something to look at)."""
    keep = tokens != pad_id
    lengths = keep.sum(dim=1).clamp(min=1)
    longest = int(lengths.max())
    tokens, keep = tokens[:, :longest], keep[:, :longest].clone()
    keep[:, 0] = True
    return tokens, keep, lengths


def _untrimmed(tokens: torch.Tensor, pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``_trim`` without the cut: every position kept in the tensor, padding masked. The same
    numbers (masked keys get no attention, pooling skips them), with no data-dependent shape, so
    exporters can trace it (``export.graph.export_friendly`` switches encoders to it)."""
    keep = tokens != pad_id
    lengths = keep.sum(dim=1).clamp(min=1)
    keep = torch.cat([torch.ones_like(keep[:, :1]), keep[:, 1:]], dim=1)
    return tokens, keep, lengths


def _pool(states: torch.Tensor, keep: torch.Tensor, how: str) -> torch.Tensor:
    """(B, T, C) → (B, C) over the kept positions."""
    if how == "max":
        return states.masked_fill(~keep[..., None], float("-inf")).max(dim=1).values
    if how == "last":
        return states[:, 0]  # the first token ([CLS] for BERT-style tokenizers)
    weights = keep[..., None].to(states.dtype)
    return (states * weights).sum(dim=1) / weights.sum(dim=1)


class BagEncoder(nn.Module):
    def __init__(self, spec: TokenInput, cfg: Any, load_weights: bool = True):
        super().__init__()
        self.bag = nn.EmbeddingBag(spec.vocab, spec.dim, mode="mean", padding_idx=spec.pad_id)
        self.width = spec.dim

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.bag(tokens)  # (B, dim)


class RNNEncoder(nn.Module):
    def __init__(self, spec: TokenInput, cfg: Any, load_weights: bool = True, cell: str = "lstm"):
        super().__init__()
        self.pad_id, self.pooling, self.cell = spec.pad_id, cfg.pooling, cell
        self.embed = nn.Embedding(spec.vocab, spec.dim, padding_idx=spec.pad_id)
        rnn = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = rnn(spec.dim, cfg.hidden_size, num_layers=cfg.num_layers, batch_first=True, bidirectional=True,
                       dropout=cfg.dropout if cfg.num_layers > 1 else 0.0)
        self.drop = nn.Dropout(cfg.dropout)
        self.width = 2 * cfg.hidden_size

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        tokens, keep, lengths = _trim(tokens, self.pad_id)
        x = self.drop(self.embed(tokens))  # (B, T, dim)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, hidden = self.rnn(packed)
        if self.pooling == "last":
            h = hidden[0] if self.cell == "lstm" else hidden  # (layers·2, B, H)
            return torch.cat([h[-2], h[-1]], dim=1)  # final forward and backward states, (B, 2H)
        states, _ = pad_packed_sequence(out, batch_first=True, total_length=tokens.shape[1])  # (B, T, 2H)
        return _pool(states, keep, self.pooling)


class TransformerTextEncoder(nn.Module):
    def __init__(self, spec: TokenInput, cfg: Any, load_weights: bool = True):
        super().__init__()
        width = cfg.hidden_size
        self.pad_id, self.pooling = spec.pad_id, cfg.pooling
        self.embed = nn.Embedding(spec.vocab, width, padding_idx=spec.pad_id)
        if cfg.positions == "learned":
            self.positions = nn.Parameter(torch.zeros(spec.length, width))
            nn.init.normal_(self.positions, std=0.02)
        else:
            self.register_buffer("positions", sinusoidal_positions(spec.length, width), persistent=False)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(TransformerBlock(width, cfg.heads, cfg.dropout, cfg.head_size, cfg.ffn_size) for _ in range(cfg.num_layers))
        self.norm = nn.LayerNorm(width)
        self.width = width

    trim = True  # cut each batch to its longest row; False for export (no data-dependent shapes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        tokens, keep, _ = (_trim if self.trim else _untrimmed)(tokens, self.pad_id)
        x = self.drop(self.embed(tokens) + self.positions[: tokens.shape[1]])  # (B, T, C)
        for block in self.blocks:
            x = block(x, keep)
        return _pool(self.norm(x), keep, self.pooling)


class PretrainedEncoder(nn.Module):
    """A local Hugging Face checkpoint. Built from the config stored in the bundle; the
    checkpoint's weights are read only when training starts (``load_weights``), so predicting
    needs the bundle alone."""

    def __init__(self, spec: TokenInput, cfg: Any, load_weights: bool = True):
        super().__init__()
        from forgeml.features.text import check_checkpoint, import_transformers

        transformers = import_transformers()
        AutoConfig, AutoModel, hf_logging = transformers.AutoConfig, transformers.AutoModel, transformers.utils.logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        if spec.pretrained is None:
            from forgeml.errors import ConfigError

            raise ConfigError(f"text feature {spec.feature!r} was not tokenised with the checkpoint's tokenizer", where=f"features: {spec.feature}",
                              hint="set its tokenizer to 'pretrained' (or 'auto')")
        if load_weights:
            folder = check_checkpoint(cfg.checkpoint)
            self.model = AutoModel.from_pretrained(str(folder), local_files_only=True, add_pooling_layer=False) \
                if spec.pretrained.get("model_type") == "bert" else AutoModel.from_pretrained(str(folder), local_files_only=True)
        else:
            config = AutoConfig.for_model(**spec.pretrained)
            self.model = AutoModel.from_config(config, add_pooling_layer=False) if config.model_type == "bert" else AutoModel.from_config(config)
        self.pad_id, self.pooling, self.frozen = spec.pad_id, cfg.pooling, cfg.freeze
        self.cache_frozen = getattr(cfg, "cache_frozen", True)  # models.frozen_cache encodes each row once
        self.width = int(self.model.config.hidden_size)
        for parameter in self.model.parameters():
            parameter.lr_scale = cfg.lr_scale  # the optimizer groups parameters by this (train.optim)
        if cfg.freeze:
            self.model.requires_grad_(False)
        elif cfg.freeze_layers:
            self._freeze_lowest(cfg.freeze_layers)

    def _freeze_lowest(self, count: int) -> None:
        embeddings = getattr(self.model, "embeddings", None)
        if embeddings is not None:
            embeddings.requires_grad_(False)
        layers = getattr(getattr(self.model, "encoder", None), "layer", None)
        for layer in list(layers or [])[:count]:
            layer.requires_grad_(False)

    def train(self, mode: bool = True) -> "PretrainedEncoder":
        super().train(mode)
        if self.frozen:
            self.model.eval()  # a frozen encoder keeps its dropout off
        return self

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Rows are run in buckets of similar length (powers of two), each cut to its own longest
        row: a batch of mostly short texts and a few long ones costs what its tokens cost, not
        batch × longest (attention and the feed-forward layers dominate a BERT on CPU)."""
        keep = tokens != self.pad_id
        lengths = keep.sum(dim=1).clamp(min=1)
        buckets = torch.ceil(torch.log2(lengths.float())).long()
        out = None
        for bucket in buckets.unique():
            rows = (buckets == bucket).nonzero(as_tuple=True)[0]
            pooled = self.encode_trimmed(tokens[rows, : int(lengths[rows].max())])
            if out is None:
                out = pooled.new_empty(tokens.shape[0], pooled.shape[1])
            out[rows] = pooled
        return out  # (B, hidden)

    def encode_trimmed(self, tokens: torch.Tensor) -> torch.Tensor:
        """(b, T) ids already cut to their longest row → (b, hidden) pooled states."""
        keep = tokens != self.pad_id
        keep[:, 0] = True
        states = self.model(input_ids=tokens, attention_mask=keep.long()).last_hidden_state  # (b, T, hidden)
        return _pool(states, keep, self.pooling)


TEXT_ENCODERS: dict[str, Callable[..., nn.Module]] = {
    "bag": BagEncoder,
    "lstm": lambda spec, cfg, load_weights=True: RNNEncoder(spec, cfg, load_weights, cell="lstm"),
    "gru": lambda spec, cfg, load_weights=True: RNNEncoder(spec, cfg, load_weights, cell="gru"),
    "transformer": TransformerTextEncoder,
    "pretrained": PretrainedEncoder,
}
