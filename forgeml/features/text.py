"""Text features for tables: a word vocabulary fitted on train, token ids padded to a length.

Scripts written without spaces (Chinese, Japanese) are split into single characters, which
is what character-level models of those languages use; Latin-script words stay whole. Issue 3
brings trained subword tokenizers; this keeps tables with a free-text column useful today.
"""
from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pandas as pd

from forgeml.features.base import Feature, FitContext, OutputSpec, register

PAD, UNK = 0, 1
TOKEN_PATTERN = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]|[^\W_]+", re.UNICODE)


def tokenize(text: str, lowercase: bool = True) -> list[str]:
    return TOKEN_PATTERN.findall(text.lower() if lowercase else text)


@register
class TextFeature(Feature):
    type_name = "text"

    def _token_lists(self, column: pd.Series) -> list[list[str]]:
        texts = column.fillna(self.config.fill_value).astype(str)
        if self.config.repair:
            from forgeml.data.clean import repair_text

            texts, _ = repair_text(texts)
        return [tokenize(t, self.config.lowercase) for t in texts]

    def fit(self, column: pd.Series, context: FitContext) -> None:
        n_missing = int(column.isna().sum())
        if n_missing:
            context.report.record_missing(self.name, n_missing, "constant", self.config.fill_value)
        token_lists = self._token_lists(column)
        counts = Counter(token for tokens in token_lists for token in tokens)
        vocabulary = [token for token, count in counts.most_common(self.config.vocab_size) if count >= 2]
        lengths = np.array([len(t) for t in token_lists] or [1])
        max_length = self.config.max_length or int(min(256, max(4, np.percentile(lengths, 95))))
        self.state = {"vocabulary": vocabulary, "max_length": max_length}

    def transform(self, column: pd.Series, *, strict: bool = False) -> np.ndarray:
        index = {token: i + 2 for i, token in enumerate(self.state["vocabulary"])}
        length = self.state["max_length"]
        out = np.zeros((len(column), length), dtype=np.int64)
        for row, tokens in enumerate(self._token_lists(column)):
            ids = [index.get(token, UNK) for token in tokens[:length]]
            out[row, : len(ids)] = ids
        return out

    def output_spec(self) -> OutputSpec:
        return OutputSpec(
            "tokens",
            width=self.state["max_length"],
            cardinality=len(self.state["vocabulary"]) + 2,
            embedding_dim=self.config.embedding_dim,
        )
