"""TF-IDF n-gram vectors of raw text columns, saved without pickle: what the n-gram family and
LightGBM's text features read.

Each text column gets up to two vocabularies: words (1–2-grams by default) and characters
(``char_wb`` 1–3-grams: n-grams inside each word, padded with a space). Text is NFKC-normalised
(full-width letters, digits and punctuation become their half-width forms, so "ＡＢＣ１２３，"
and "ABC123," are the same n-grams) and lower-cased before either.

Chinese and Japanese have no spaces: a whole clause is one "word", so the word analyzer would
only see whole clauses. Words here are therefore runs of letters and digits *outside* the CJK
blocks (English words, numbers, model names in mixed text), and CJK text is read through the
character n-grams: characters and character bigrams/trigrams, the segmentation-free features
that character-level models of Chinese use (no segmenter, no dictionary). Where a segmenter is
at hand (``segmenters``: jieba, chosen by ``auto`` when the train texts hold CJK), the word
analyzer also cuts each CJK run into words, so Chinese gets word n-grams beside its characters.

Fitting uses scikit-learn's ``TfidfVectorizer`` (sublinear tf, smooth idf, l2 rows). Saved: the
terms of each vocabulary in column order (JSON) and their idf (safetensors). Loading rebuilds a
``CountVectorizer`` on the saved vocabulary and applies the same tf-idf steps, so a bundle needs
neither pickle nor the training data (``tests/models/test_text_vectors.py`` checks the two agree).
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from forgeml.models.segmenters import CJK, WordNgrams, resolve

# runs of word characters that are not CJK: English words, numbers, "iphone15" in Chinese text
WORD_PATTERN = rf"(?u)[^\W{CJK}]+"


def normalise(text: str) -> str:
    """NFKC (full-width → half-width, compatibility forms) and lower case."""
    return unicodedata.normalize("NFKC", text).lower()


@dataclass
class Analyzer:
    """One vocabulary of one column: ``kind`` is "word" or "char_wb"; ``terms`` in column order."""

    feature: str
    kind: str
    ngram: tuple[int, int]
    segmenter: str = "none"  # word analyzers: how CJK runs become words ("auto" until fitted)
    terms: list[str] = field(default_factory=list)
    idf: np.ndarray | None = None
    _counter: Any = None

    @property
    def key(self) -> str:
        return f"{self.feature}/{self.kind}"

    def _vectorizer(self, **extra: Any) -> dict[str, Any]:
        if self.kind == "word" and self.segmenter not in ("none", "auto"):
            return dict(analyzer=WordNgrams(tuple(self.ngram), self.segmenter, normalise), lowercase=False, token_pattern=None,
                        dtype=np.float32, **extra)
        return dict(analyzer=self.kind, ngram_range=tuple(self.ngram), preprocessor=normalise, lowercase=False,
                    token_pattern=WORD_PATTERN if self.kind == "word" else None, dtype=np.float32, **extra)

    def fit_transform(self, texts: np.ndarray, min_df: int, max_features: int) -> Any:
        from sklearn.feature_extraction.text import TfidfVectorizer

        if self.kind == "word" and self.segmenter == "auto":
            self.segmenter = resolve("auto", (normalise(text) for text in texts))
        vectorizer = TfidfVectorizer(sublinear_tf=True, min_df=min(min_df, max(1, len(texts) // 2)), max_features=max_features,
                                     **self._vectorizer())
        try:
            matrix = vectorizer.fit_transform(texts)
        except ValueError:  # no term kept (one-character texts for word bigrams, all blank): an empty block
            from scipy import sparse

            self.terms, self.idf = [], np.zeros(0, np.float32)
            return sparse.csr_matrix((len(texts), 0), dtype=np.float32)
        self.terms = vectorizer.get_feature_names_out().tolist()
        self.idf = vectorizer.idf_.astype(np.float32)
        self._counter = None
        return matrix.tocsr()

    def transform(self, texts: np.ndarray) -> Any:
        """TfidfVectorizer.transform, rebuilt from the terms and idf: counts, 1 + log(tf), × idf, l2 rows."""
        from scipy import sparse

        if not self.terms:
            return sparse.csr_matrix((len(texts), 0), dtype=np.float32)
        if self._counter is None:
            from sklearn.feature_extraction.text import CountVectorizer

            self._counter = CountVectorizer(vocabulary={term: i for i, term in enumerate(self.terms)}, **self._vectorizer())
        counts = self._counter.transform(texts).astype(np.float32).tocsr()
        np.log(counts.data, out=counts.data)
        counts.data += 1.0
        counts = counts @ sparse.diags(self.idf.astype(np.float32))
        norms = np.sqrt(np.asarray(counts.multiply(counts).sum(axis=1), dtype=np.float32)).ravel()
        return sparse.csr_matrix(sparse.diags(1.0 / np.where(norms > 0, norms, 1.0)) @ counts, dtype=np.float32)


class TextVectors:
    """The analyzers of every text column of a spec; ``transform`` stacks their blocks."""

    def __init__(self, features: list[str], word_ngrams: tuple[int, int] | None, char_ngrams: tuple[int, int] | None,
                 min_df: int = 2, max_features: int = 200_000, segmenter: str = "auto"):
        self.min_df, self.max_features = min_df, max_features
        self.analyzers = [Analyzer(name, kind, tuple(ngram), segmenter if kind == "word" else "none") for name in features
                          for kind, ngram in (("word", word_ngrams), ("char_wb", char_ngrams)) if ngram]

    @property
    def width(self) -> int:
        return sum(len(a.terms) for a in self.analyzers)

    def blocks(self) -> list[tuple[str, int]]:
        """(feature, columns) per analyzer, in column order (feature importance per text column)."""
        return [(a.feature, len(a.terms)) for a in self.analyzers]

    def fit_transform(self, arrays: dict[str, np.ndarray]) -> Any:
        from scipy import sparse

        parts = [a.fit_transform(column_texts(arrays, a.feature), self.min_df, self.max_features) for a in self.analyzers]
        return sparse.hstack(parts, format="csr", dtype=np.float32)

    def transform(self, arrays: dict[str, np.ndarray]) -> Any:
        from scipy import sparse

        parts = [a.transform(column_texts(arrays, a.feature)) for a in self.analyzers]
        return sparse.hstack(parts, format="csr", dtype=np.float32)

    def to_json(self) -> dict[str, Any]:
        return {"min_df": self.min_df, "max_features": self.max_features,
                "analyzers": [{"feature": a.feature, "kind": a.kind, "ngram": list(a.ngram), "segmenter": a.segmenter, "terms": a.terms} for a in self.analyzers]}

    def tensors(self) -> dict[str, np.ndarray]:
        return {f"idf/{a.key}": np.ascontiguousarray(a.idf if a.idf is not None else np.zeros(0, np.float32)) for a in self.analyzers}

    def restore(self, saved: dict[str, Any], tensors: dict[str, np.ndarray]) -> None:
        """The fitted state from ``to_json`` and ``tensors``; a KeyError or ValueError if they do not match this spec."""
        entries = saved["analyzers"]
        if [(e["feature"], e["kind"]) for e in entries] != [(a.feature, a.kind) for a in self.analyzers]:
            raise ValueError("the saved vocabularies are for other text columns or analyzers")
        for analyzer, entry in zip(self.analyzers, entries):
            analyzer.ngram, analyzer.terms = tuple(entry["ngram"]), list(entry["terms"])
            analyzer.segmenter = entry.get("segmenter", "none")  # bundles from before segmenters: none
            analyzer.idf, analyzer._counter = tensors[f"idf/{analyzer.key}"], None
            if len(analyzer.idf) != len(analyzer.terms):
                raise ValueError(f"{analyzer.key}: {len(analyzer.terms)} terms but {len(analyzer.idf)} idf values")


class SharedTexts:
    """A fitted ``TextVectors`` and the n-gram matrix of the rows it was fitted on, looked up by
    the rows' texts: the folds of a bag read their rows' vectors from here instead of fitting and
    transforming again (``NgramEstimator.fit_fold_shared``). A row is found by its texts (one per
    text column), since a fold's arrays carry no row numbers; texts not among them are vectorised."""

    def __init__(self, vectors: TextVectors, matrix: Any, arrays: dict[str, np.ndarray]):
        self.vectors, self._matrix = vectors, matrix
        self.features = list(dict.fromkeys(a.feature for a in vectors.analyzers))
        keys = self._keys(arrays)
        first = ~keys.duplicated()
        self._index, self._rows = keys[first], np.flatnonzero(first)

    @classmethod
    def fit(cls, vectors: TextVectors, arrays: dict[str, np.ndarray]) -> "SharedTexts":
        return cls(vectors, vectors.fit_transform(arrays), arrays)

    def _keys(self, arrays: dict[str, np.ndarray]) -> Any:
        import pandas as pd

        columns = [column_texts(arrays, feature) for feature in self.features]
        return pd.Index(columns[0]) if len(columns) == 1 else pd.MultiIndex.from_arrays(columns)

    def matrix(self, arrays: dict[str, np.ndarray]) -> Any:
        """The n-gram rows of ``arrays``, as ``vectors.transform(arrays)`` would give them."""
        from scipy import sparse

        from forgeml.features.text import TEXT_KEY

        found = self._index.get_indexer(self._keys(arrays))
        if (found >= 0).all():
            return self._matrix[self._rows[found]]
        rows = np.flatnonzero(found < 0)  # texts the bag did not fit on: vectorised as any new row
        fresh = self.vectors.transform({key: value[rows] for key, value in arrays.items() if key.startswith(TEXT_KEY)})
        out = sparse.vstack([self._matrix[self._rows[np.where(found >= 0, found, 0)]], fresh], format="csr")
        order = np.arange(len(found))
        order[rows] = len(found) + np.arange(len(rows))
        return out[order]


def column_texts(arrays: dict[str, np.ndarray], feature: str) -> np.ndarray:
    """The raw strings of text feature ``feature`` (``FeatureSet`` adds them as ``text.<feature>``)."""
    from forgeml.features.text import TEXT_KEY

    try:
        return arrays[TEXT_KEY + feature]
    except KeyError:
        from forgeml.errors import ConfigError

        raise ConfigError(f"no raw text for text column {feature!r} in the model's inputs", where=f"column {feature!r}",
                          hint="the arrays come from an older forgeml; re-run the features (forgeml train) with this version") from None
