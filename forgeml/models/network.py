"""The torch network of every neural model family: one encoder per input feature → combiner → head.

Numbers, booleans and dates arrive as columns of the ``dense`` matrix, categories as ``codes``
(one embedding table each), text as ``tokens.<feature>`` and images as ``images.<feature>``;
each kind has its encoder (``encoders/``), the combiner (``combiners.py``) joins them, and a
linear head gives the task's outputs. With only numbers and categories and the concat combiner
this is exactly the tabular MLP (same modules, same creation order, so the same seed gives the
same weights).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from forgeml.errors import ConfigError
from forgeml.features.featureset import InputSpec
from forgeml.models.combiners import COMBINERS
from forgeml.models.encoders.image import ImageEncoder
from forgeml.models.encoders.text import TEXT_ENCODERS
from forgeml.models.frozen_cache import embedded_key

HEAVY_PREDICT_BATCH = 256  # images and sequence encoders: bounded activation memory at predict time


class FusionNet(nn.Module):
    def __init__(self, spec: InputSpec, output_size: int, cfg: Any, *, load_weights: bool = True):
        super().__init__()
        self.embeddings = nn.ModuleList(nn.Embedding(cardinality, dim) for _, cardinality, dim in spec.codes)
        self.text_keys = [f"tokens.{t.feature}" for t in spec.tokens]
        self.text = nn.ModuleList(TEXT_ENCODERS[cfg.text.type](t, cfg.text, load_weights) for t in spec.tokens)
        self.image_keys = [f"images.{i.feature}" for i in spec.images]
        self.images = nn.ModuleList(ImageEncoder(i, cfg.image) for i in spec.images)
        combiner = COMBINERS[cfg.combiner]
        self.dense_widths = [width for _, width in spec.dense_groups if width] if combiner.split_dense else ([spec.dense_width] if spec.dense_width else [])
        widths = self.dense_widths + [dim for *_, dim in spec.codes] + [m.width for m in self.text] + [m.width for m in self.images]
        if not widths:
            raise ConfigError("the model has no inputs", hint="every input column was dropped; see the config's data.drop_reasons")
        self.combiner = combiner(widths, cfg)
        self.head = nn.Linear(self.combiner.width, output_size)
        heavy = self.images or any(cfg.text.type != "bag" for _ in spec.tokens)
        self.predict_batch_size = HEAVY_PREDICT_BATCH if heavy else 4096

    def parts(self, inputs: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """One (B, width) tensor per input part, in the combiner's order."""
        dense = inputs["dense"]
        parts = list(dense.split(self.dense_widths, dim=1)) if len(self.dense_widths) > 1 else ([dense] if self.dense_widths else [])
        codes = inputs["codes"]
        parts.extend(embedding(codes[:, i]) for i, embedding in enumerate(self.embeddings))
        for key, encoder in zip(self.text_keys, self.text):  # a frozen encoder's vectors may be cached (frozen_cache)
            cached = inputs.get(embedded_key(key))
            parts.append(cached if cached is not None else encoder(inputs[key]))
        parts.extend(encoder(inputs[key]) for key, encoder in zip(self.image_keys, self.images))
        return parts

    def encode(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.combiner(self.parts(inputs))  # (B, width)

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.head(self.encode(inputs))  # (B, outputs)
