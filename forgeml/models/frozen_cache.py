"""Frozen pretrained text encoders run once per row, not once per row per epoch.

A frozen encoder (``model.text.freeze: true``) is a fixed function of its input, kept in eval
mode (no dropout), so its pooled output for a row never changes during training. Before the
first epoch every row of the train and validation sets is encoded once — rows sorted by length
and cut into batches, each batch trimmed to its own longest row, under ``inference_mode`` — and
the vectors replace the token ids as ``embedded.<feature>``. ``FusionNet`` uses such a vector
instead of calling the encoder, so each epoch trains only the layers above it; predictions are
the same as the uncached path's (up to float rounding: padding is masked either way).

Under torchrun each rank encodes its share of the rows and the shares are gathered, so the
encoding is split like the training.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from forgeml.train.distributed import DistContext
from forgeml.train.precision import autocast

TOKENS, EMBEDDED = "tokens.", "embedded."
ENCODE_BATCH = 64  # rows per encoder call: sorted by length, so a batch holds similar lengths


def embedded_key(tokens_key: str) -> str:
    """``tokens.<feature>`` → ``embedded.<feature>``: where the cached vectors of a feature live."""
    return EMBEDDED + tokens_key[len(TOKENS):]


def frozen_encoders(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(tokens key, encoder) for every frozen pretrained text encoder whose output may be cached."""
    network = getattr(model, "network", model)  # LinearSkip wraps the FusionNet
    keys, encoders = getattr(network, "text_keys", []), getattr(network, "text", [])
    return [(key, encoder) for key, encoder in zip(keys, encoders)
            if getattr(encoder, "frozen", False) and getattr(encoder, "cache_frozen", True)]


def encode_rows(encoder: nn.Module, tokens: torch.Tensor, *, precision: str = "fp32", dist: DistContext | None = None,
                batch_size: int = ENCODE_BATCH) -> torch.Tensor:
    """The encoder's pooled output for every row, (N, width); each row encoded once."""
    dist = dist or DistContext()
    rows = tokens.shape[0]
    share = -(-rows // dist.world_size)  # ceil: equal shares, so the gather lines up
    mine = tokens[dist.rank * share : (dist.rank + 1) * share]
    was_training = encoder.training
    encoder.eval()
    try:
        with torch.inference_mode(), autocast(precision):
            lengths = (mine != encoder.pad_id).sum(dim=1)
            order = torch.argsort(lengths, stable=True)
            out = torch.empty(mine.shape[0], encoder.width, dtype=torch.float32)
            for start in range(0, len(order), batch_size):
                index = order[start : start + batch_size]
                longest = max(1, int(lengths[index].max()))
                out[index] = encoder.encode_trimmed(mine[index, :longest]).float()
        out = out.clone()  # a plain tensor: autograd may save it (inference tensors it may not)
    finally:
        encoder.train(was_training)
    if not dist.enabled:
        return out
    import torch.distributed as torch_dist

    padded = torch.zeros(share, out.shape[1])
    padded[: out.shape[0]] = out
    shares = [torch.empty_like(padded) for _ in range(dist.world_size)]
    torch_dist.all_gather(shares, padded)
    return torch.cat(shares)[:rows]


def cache_inputs(model: nn.Module, inputs: dict[str, torch.Tensor], *, precision: str = "fp32",
                 dist: DistContext | None = None, batch_size: int = ENCODE_BATCH) -> dict[str, torch.Tensor]:
    """``inputs`` with each frozen encoder's token ids replaced by its cached vectors."""
    encoders = frozen_encoders(model)
    if not encoders:
        return inputs
    out = dict(inputs)
    for key, encoder in encoders:
        out[embedded_key(key)] = encode_rows(encoder, out.pop(key), precision=precision, dist=dist, batch_size=batch_size)
    return out


def describe(model: Any) -> list[str]:
    """The features whose encoder output is cached (for logs and tests)."""
    return [key[len(TOKENS):] for key, _ in frozen_encoders(model)]
