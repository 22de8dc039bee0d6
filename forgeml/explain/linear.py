"""Linear and n-gram models: exact contributions, coefficient × (value − baseline value).

A linear model's raw output is a sum over its design columns, so each column's term minus the
baseline row's is that column's exact share (no sampling, no approximation); columns are summed
into their input feature (a category's one-hot block, a text column's n-grams). The n-gram
model's baseline text is empty (its TF-IDF row is 0), so an n-gram's share is its weight × its
TF-IDF value in the row, which ``text_spans`` spreads over the characters it covers: token
highlights come for free. The embed model's baseline text is empty too: a text column's share is
(vector(text) − vector("")) · its weights, exact, but a sentence vector does not split into
tokens, so it has no highlights.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from forgeml.explain.base import Attribution, Context, add_columns, baseline_codes, baseline_dense, code_owners, dense_owners

METHOD = "exact linear contributions: coefficient × (value − baseline value)"


def explain(estimator: Any, ctx: Context, arrays: dict[str, np.ndarray]) -> Attribution:
    spec = estimator.spec
    weight = np.nan_to_num(np.asarray(estimator.weight, dtype=np.float64), neginf=0.0)
    bias = np.nan_to_num(np.asarray(estimator.bias, dtype=np.float64), neginf=-1e9)
    w_out, offset = ctx.output_weights(weight.shape[1])  # [rows, outputs]
    rows = len(ctx.classes)
    values = np.zeros((rows, len(ctx.names)))
    width = spec.dense_width
    dense = np.nan_to_num(arrays["dense"].astype(np.float64))
    base_dense = baseline_dense(ctx, spec).astype(np.float64)
    # per dense column: (x − b) · (W[col] @ w_out[row])
    column_weights = w_out @ weight[:width].T  # [rows, dense columns]
    add_columns(values, dense_owners(ctx, spec), (dense - base_dense) * column_weights)
    codes = arrays["codes"].astype(np.int64)
    base_codes = baseline_codes(ctx, spec)
    code_terms = np.zeros((rows, codes.shape[1]))
    for j in range(codes.shape[1]):
        offset_j = estimator.offsets[j]
        chosen, neutral = weight[offset_j + codes[:, j]], weight[offset_j + base_codes[j]]  # [rows, outputs]
        code_terms[:, j] = ((chosen - neutral) * w_out).sum(axis=1)
    add_columns(values, code_owners(ctx, spec), code_terms)
    base_raw = bias + base_dense @ weight[:width] + sum(weight[estimator.offsets[j] + base_codes[j]] for j in range(codes.shape[1]))
    base = (np.broadcast_to(base_raw, (rows, len(bias))) * w_out).sum(axis=1) + offset
    text = _text_terms(estimator, ctx, arrays, w_out, values)
    blocks = getattr(estimator, "vector_terms", None)  # the embed family: a text column's sentence-vector block
    if blocks is not None:
        for feature, (terms, empty) in blocks(arrays).items():  # terms [rows, outputs], empty text's [outputs]
            values[:, ctx.index(feature)] += ((terms - empty) * w_out).sum(axis=1)
            base = base + (np.broadcast_to(empty, terms.shape) * w_out).sum(axis=1)
    return Attribution(values, base, base + values.sum(axis=1), METHOD, text=text)


def _text_terms(estimator: Any, ctx: Context, arrays: dict[str, np.ndarray], w_out: np.ndarray, values: np.ndarray) -> dict[str, list[np.ndarray]]:
    """The n-gram block (n-gram family only): per row, each n-gram's weight × TF-IDF value, summed
    into its text feature and spread over the characters it covers."""
    vectors = getattr(estimator, "vectors", None)
    if vectors is None or not vectors.width:
        return {}
    from forgeml.explain.text_spans import character_scores
    from forgeml.models.text_vectors import column_texts

    weight = np.asarray(estimator.weight, dtype=np.float64)
    start = estimator.design_width() - vectors.width
    rows = len(ctx.classes)
    text: dict[str, list[np.ndarray]] = {}
    for analyzer in vectors.analyzers:
        block = weight[start: start + len(analyzer.terms)]
        start += len(analyzer.terms)
        if not analyzer.terms:
            continue
        texts = column_texts(arrays, analyzer.feature)
        tfidf = analyzer.transform(texts).tocsr()  # [rows, terms]
        scores = text.setdefault(analyzer.feature, [np.zeros(len(t)) for t in texts])
        feature = ctx.index(analyzer.feature)
        for i in range(rows):
            row = tfidf.getrow(i)
            terms = row.indices
            contributions = row.data * (block[terms] @ w_out[i])  # per n-gram present in the row
            values[i, feature] += contributions.sum()
            scores[i] += character_scores(texts[i], analyzer, {analyzer.terms[t]: c for t, c in zip(terms, contributions)})
    return text
