"""LightGBM's text features (``model.text_columns: features``, gbm's default): per text column,
TF-IDF word and character n-grams (``text_vectors``) reduced by a truncated SVD to a few dozen
dense components — latent semantic analysis — that the trees split on like numbers.

Why SVD and not the raw n-grams: LightGBM handles sparse input, but hundreds of thousands of
n-gram columns make each boosting round slow and each split weak (one n-gram is rarely decisive);
a few dozen components hold the text's main directions (topic, tone) in columns a tree can use.
The n-gram family (``model.type: ngram``) reads every n-gram and is the better text model alone;
these features let a GBM use text beside numbers and categories instead of dropping it.

Saved without pickle: ``gbm_text_vocab.json`` (terms per analyzer, as the n-gram family) and
``gbm_text.safetensors`` (idf per analyzer, ``components/<feature>`` [k, n-grams]).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from forgeml.fileio import atomic_write_json

VOCAB, TENSORS = "gbm_text_vocab.json", "gbm_text.safetensors"
MAX_FEATURES = 50_000  # n-grams per column and kind before the SVD (its cost grows with them)


class TextComponents:
    """TF-IDF → truncated SVD per text column; ``columns`` names the components."""

    files = (VOCAB, TENSORS)

    def __init__(self, features: list[str], components: int, seed: int = 0):
        from forgeml.models.text_vectors import TextVectors

        self.features, self.components, self.seed = features, components, seed
        self.vectors = {name: TextVectors([name], (1, 2), (1, 3), min_df=2, max_features=MAX_FEATURES) for name in features}
        self.matrices: dict[str, np.ndarray] = {}  # feature → components [k, n-grams]

    @property
    def columns(self) -> list[str]:
        return [f"{name} (text {i + 1})" for name in self.features for i in range(len(self.matrices.get(name, [])))]

    def fit_transform(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        from sklearn.decomposition import TruncatedSVD

        parts = []
        for name, vectors in self.vectors.items():
            tfidf = vectors.fit_transform(arrays)
            k = min(self.components, tfidf.shape[0] - 1, tfidf.shape[1] - 1)
            if k < 1:  # too few rows or n-grams to reduce: no component (the column is read as nothing)
                self.matrices[name] = np.zeros((0, tfidf.shape[1]), np.float32)
                parts.append(np.zeros((tfidf.shape[0], 0), np.float32))
                continue
            svd = TruncatedSVD(k, algorithm="randomized", n_iter=5, random_state=self.seed)
            parts.append(svd.fit_transform(tfidf).astype(np.float32))
            self.matrices[name] = svd.components_.astype(np.float32)
        return np.concatenate(parts, axis=1) if parts else np.zeros((0, 0), np.float32)

    def transform(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        parts = [np.asarray(self.vectors[name].transform(arrays) @ self.matrices[name].T, dtype=np.float32) for name in self.features]
        return np.concatenate(parts, axis=1)

    def save(self, directory: Path) -> list[str]:
        from safetensors.numpy import save_file

        saved = {name: vectors.to_json() for name, vectors in self.vectors.items()}
        atomic_write_json(Path(directory) / VOCAB, {"components": self.components, "columns": saved}, indent=None)
        tensors = {f"vectors/{name}/{key}": value for name, vectors in self.vectors.items() for key, value in vectors.tensors().items()}
        tensors.update({f"components/{name}": np.ascontiguousarray(matrix) for name, matrix in self.matrices.items()})
        save_file(tensors, str(Path(directory) / TENSORS), metadata={"format": "forgeml", "model": "gbm text features"})
        return list(self.files)

    def load(self, directory: Path) -> None:
        """The fitted state; OSError, ValueError or KeyError when the files are missing or do not match."""
        from safetensors.numpy import load_file

        saved = json.loads((Path(directory) / VOCAB).read_text(encoding="utf-8"))["columns"]
        tensors = load_file(str(Path(directory) / TENSORS))
        for name, vectors in self.vectors.items():
            prefix = f"vectors/{name}/"
            vectors.restore(saved[name], {key[len(prefix):]: value for key, value in tensors.items() if key.startswith(prefix)})
            self.matrices[name] = tensors[f"components/{name}"]
            if self.matrices[name].shape[1] != vectors.width:
                raise ValueError(f"{name}: SVD components for {self.matrices[name].shape[1]} n-grams, vocabulary of {vectors.width}")

    def importance_owner(self) -> list[str]:
        """The input column each component belongs to (feature importance is per input column)."""
        return [name for name in self.features for _ in range(len(self.matrices.get(name, [])))]
