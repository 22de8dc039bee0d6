"""Held-out text → loss (nats/token), perplexity and bits per byte.

Bits per byte divide the total loss by the text's UTF-8 bytes instead of its tokens, so models
with different tokenizers (or none) can be compared on the same text. Every token is scored
once: the text is cut into consecutive windows of the model's context.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from forgeml.errors import DataError


@torch.no_grad()
def evaluate_text(bundle: Any, path: str | Path, batch: int = 8) -> dict[str, float]:
    from forgeml.lm.corpus import read_documents
    from forgeml.lm.tokenizer import encode_documents

    corpus_config = bundle.config.corpus.model_copy(update={"val_fraction": 0.0})
    documents, _ = read_documents(path, corpus_config)
    ids = [t for doc in encode_documents(bundle.tokenizer, documents.texts) for t in doc]
    if len(ids) < 2:
        raise DataError("too little text to evaluate (fewer than 2 tokens)", where=str(path), hint="pass a longer held-out text")
    tokens = torch.tensor(ids)
    context = bundle.model.config.block_size
    windows = [(start, min(start + context, len(ids) - 1)) for start in range(0, len(ids) - 1, context)]
    total_nats, counted = 0.0, 0
    model = bundle.model.eval()
    device = model.wte.weight.device
    for i in range(0, len(windows), batch):
        group = windows[i : i + batch]
        width = max(end - start for start, end in group)
        x = torch.zeros(len(group), width, dtype=torch.long)
        y = torch.full((len(group), width), -100, dtype=torch.long)  # -100: ignored by cross-entropy
        for row, (start, end) in enumerate(group):
            x[row, : end - start] = tokens[start:end]
            y[row, : end - start] = tokens[start + 1 : end + 1]
        logits, _ = model(x.to(device))
        losses = torch.nn.functional.cross_entropy(logits.float().view(-1, logits.size(-1)), y.to(device).view(-1), ignore_index=-100, reduction="sum")
        total_nats += float(losses)
        counted += int((y != -100).sum())
    loss = total_nats / counted
    return {"loss": loss, "perplexity": math.exp(min(loss, 50.0)), "bits_per_byte": total_nats / math.log(2) / documents.meta["bytes"],
            "tokens": counted, "bytes": documents.meta["bytes"], "documents": documents.meta["documents"]}
