"""The n-gram model (``model.type: ngram``): TF-IDF word and character n-grams of every text
column, with the table's numbers (scaled) and categories (one-hot) alongside, into logistic
regression (classes) or ridge regression (numbers).

Why it is a family: on small labelled text sets — a few thousand reviews, tickets, questions —
a sparse n-gram linear model is the baseline to beat (issue 14: forgeml's from-scratch network
reached a ROC-AUC 0.20 below it on English reviews). It fits in seconds, predicts in well under
a millisecond a row, needs no pretrained weights, and reads Chinese through character n-grams
and, with jieba's dictionary, word n-grams (``text_vectors``, ``segmenters``). It is its own family, not an option of ``linear``, so
the ensemble can fit both: ``linear`` is the cheap tabular member that leaves text to others,
``ngram`` the text member, skipped on tables without text.

It is the linear family with a wider design matrix: ``[dense | one-hot codes | text n-grams]``.
The regularisation path (``alpha: auto``) runs from C = 1 to C = 33 and stops at the first alpha
whose validation loss is worse (TF-IDF models want weaker regularisation than tabular ones).

In the ensemble it keeps its time share (issue 13): on birds (15k rows of free-text remarks) it
took 144 s of a 120 s budget — five vectoriser fits and eleven L-BFGS solves. Now a bag fits the
vectoriser once on all its rows and its folds look their rows up (``fit_fold_shared``; the refit
reads the same), the first fold runs the alpha path and the others fit its alpha
(``adopt_first_fold``), each path step starts from the previous solution, and a solve stops at
its fold's deadline (``linear.solve_until``), which the leaderboard's ``note`` then says.

Saved without pickle: ``ngram.safetensors`` (weight [design columns, outputs], bias),
``ngram_vocab.json`` (each analyzer's terms in column order) and ``ngram_idf.safetensors``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field, field_validator

from forgeml.config_base import StrictModel as _Strict
from forgeml.errors import BundleError, ConfigError
from forgeml.fileio import atomic_write_json
from forgeml.models.linear import LinearEstimator, positive_alpha
from forgeml.models.tabular import require_text_inputs

if TYPE_CHECKING:
    from forgeml.features.featureset import InputSpec
    from forgeml.models.estimator import FitOptions, FitSummary
    from forgeml.models.tasks import Task

STEP_NAME = "regularisation step"
READS_TEXT = True  # the ensemble gives this member the text columns (ensemble.member_spec)
REFITS = True  # in the ensemble, one model on every train row replaces the folds' (models/refit.py)
REFIT_ALWAYS = True  # ... in every preset, not only for speed: it costs no accuracy (models/refit.py)
WEIGHTS, VOCAB, IDF = "ngram.safetensors", "ngram_vocab.json", "ngram_idf.safetensors"


class NgramConfig(_Strict):
    type: Literal["ngram"] = "ngram"
    word_ngrams: tuple[int, int] | None = Field(
        (1, 2), description="Word n-gram lengths (min, max); words are letter/digit runs outside Chinese and Japanese, "
        "which the character n-grams read. null: no word n-grams.")
    char_ngrams: tuple[int, int] | None = Field(
        (1, 3), description="Character n-gram lengths (min, max) inside each word (scikit-learn's char_wb); for Chinese, "
        "characters and character bigrams/trigrams. null: none.")
    segmenter: Literal["auto", "jieba", "none"] = Field(
        "auto", description="How Chinese/Japanese runs become words for the word n-grams: jieba's dictionary, or none "
        "(characters only). auto: jieba when the train text holds CJK characters (models.segmenters).")
    min_df: int = Field(2, ge=1, description="An n-gram is kept if it occurs in at least this many train rows.")
    max_features: int = Field(200_000, ge=1, description="At most this many n-grams per text column and kind (the most frequent).")
    alpha: float | Literal["auto"] = Field(
        "auto", description="L2 strength (logistic regression's C is 1/alpha). auto: the alpha of 1 … 0.03 with the lowest "
        "validation loss (0.1 without a validation split).")
    max_iter: int = Field(1000, ge=1, description="Solver iterations.")

    @field_validator("word_ngrams", "char_ngrams")
    @classmethod
    def _range(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        if value is not None and not 1 <= value[0] <= value[1] <= 6:
            raise ValueError("an n-gram range is (min, max) with 1 <= min <= max <= 6, or null")
        return value

    _positive = field_validator("alpha")(positive_alpha)


class NgramEstimator(LinearEstimator):
    files: tuple[str, ...] = (WEIGHTS, VOCAB, IDF)
    weights_file = WEIGHTS
    family = "ngram"
    alphas = (1.0, 0.3, 0.1, 0.03)  # C = 1 … 33: TF-IDF rows have norm 1, so they want weak regularisation
    default_alpha = 0.1  # C = 10: the best of the path on reviews_zh and on English reviews (bench/text_vs_tfidf.py)
    stop_when_worse = True
    first_fold_cost = 3.0  # in a bag, the first fold runs the path (2–4 solves), the others its alpha (1): its share of the time

    def __init__(self, config: Any, task: Task, spec: InputSpec):
        super().__init__(config, task, spec)
        from forgeml.models.text_vectors import TextVectors

        cfg = config.model
        self.vectors = TextVectors([token.feature for token in spec.tokens], cfg.word_ngrams, cfg.char_ngrams, cfg.min_df,
                                   cfg.max_features, cfg.segmenter)
        self._cached: dict[int, Any] = {}  # id(raw text array) → its n-gram matrix, during fit only
        self._fitting = False
        self._shared: Any = None  # a bag's SharedTexts (vectors fitted once on all its rows), while it fits

    def _check_inputs(self, spec: InputSpec) -> None:
        require_text_inputs(spec, "ngram")
        if not (self.config.model.word_ngrams or self.config.model.char_ngrams):
            raise ConfigError("word_ngrams and char_ngrams are both null: no text features", where="model.word_ngrams",
                              hint="keep at least one, e.g. --set 'model.char_ngrams=[1,3]'")

    def design_width(self) -> int:
        return super().design_width() + self.vectors.width

    def _text_matrix(self, arrays: dict[str, np.ndarray]) -> Any:
        """The n-gram block of these rows; during fit, each split's is built once (the alpha path
        scores the train and validation rows at every step)."""
        from forgeml.models.text_vectors import column_texts

        if self._shared is not None:
            return self._shared.matrix(arrays)
        key = id(column_texts(arrays, self.vectors.analyzers[0].feature))
        matrix = self._cached.get(key)
        if matrix is None:
            matrix = self.vectors.transform(arrays)
            if self._fitting:
                self._cached[key] = matrix
        return matrix

    def _design(self, arrays: dict[str, np.ndarray]) -> Any:
        from scipy import sparse

        tabular = super()._design(arrays)
        return sparse.hstack([sparse.csr_matrix(tabular), self._text_matrix(arrays)], format="csr")

    def fit(self, train, y_train, val, y_val, options: FitOptions) -> FitSummary:
        from forgeml.models.text_vectors import column_texts

        texts = self.vectors.fit_transform(train) if self._shared is None else self._shared.matrix(train)
        if not self.vectors.width:
            raise ConfigError("no n-gram occurs in enough train rows to learn from", where="model.min_df",
                              hint="lower model.min_df, or check that the text columns hold text")
        self._fitting, self._cached = True, {id(column_texts(train, self.vectors.analyzers[0].feature)): texts}
        try:
            return super().fit(train, y_train, val, y_val, options)
        finally:
            self._fitting, self._cached = False, {}
            # float32 halves the bundle; scores differ by ~1e-7
            self.weight = None if self.weight is None else self.weight.astype(np.float32)

    # ------------------------------------------------------------------ in a bag (bagging.share_across_folds)
    def fit_fold_shared(self, arrays: dict[str, np.ndarray]) -> Any:
        """The vectoriser fitted once on all of the bag's rows, with their matrix: each fold reads
        its rows from it instead of fitting its own (label-free: no target is read)."""
        from forgeml.models.text_vectors import SharedTexts

        return SharedTexts.fit(self.vectors, arrays)

    def use_fold_shared(self, shared: Any) -> None:
        """Read the text through ``shared`` (None: back to vectorising the rows it is given)."""
        self._shared = shared
        if shared is not None:
            self.vectors = shared.vectors

    def adopt_first_fold(self, first: "NgramEstimator") -> None:
        """The later folds fit the first fold's alpha only, instead of running the path again.

        Why: the path (1 → 0.3 → 0.1 → 0.03, until the validation loss rises) fitted 2–4 models per
        fold, the most expensive part of the member (birds: 11 solves for 5 folds and the refit).
        The folds' rows overlap by (K-2)/(K-1); reviews_zh's five paths chose 0.3, 0.1, 0.3, 0.1,
        0.1, and the refit takes one alpha for all of them anyway."""
        if self.config.model.alpha == "auto" and first.alpha_ is not None:
            self.alphas = (first.alpha_,)

    def _raw_scores(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        out = super()._raw_scores(arrays)
        start = super().design_width()
        assert self.weight is not None
        return out + np.asarray(self._text_matrix(arrays) @ self.weight[start:], dtype=np.float64)

    def feature_importance(self) -> dict[str, float] | None:
        """The linear family's per-column values, plus per text column the norm of its centred
        n-gram weights (an upper bound of its share of a row's score: TF-IDF rows have norm 1)."""
        values = dict(super().feature_importance() or {})
        if self.weight is None:
            return None
        weight = self.weight - self.weight.mean(axis=0, keepdims=True) if self.task.is_classification else self.weight
        start = super().design_width()
        for feature, columns in self.vectors.blocks():
            block = weight[start: start + columns]
            values[feature] = values.get(feature, 0.0) + float(np.linalg.norm(block, axis=0).mean()) if columns else values.get(feature, 0.0)
            start += columns
        total = sum(values.values())
        return {name: v / total for name, v in values.items()} if total > 0 else None

    def save(self, directory: Path) -> list[str]:
        from safetensors.numpy import save_file

        written = super().save(directory)
        atomic_write_json(Path(directory) / VOCAB, self.vectors.to_json(), indent=None)
        save_file(self.vectors.tensors(), str(Path(directory) / IDF), metadata={"format": "forgeml", "model": "ngram"})
        return [*written, VOCAB, IDF]

    def _load_extra(self, directory: Path) -> None:
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        try:
            saved = json.loads((directory / VOCAB).read_text(encoding="utf-8"))
            self.vectors.restore(saved, load_file(str(directory / IDF)))
        except (OSError, ValueError, KeyError, TypeError, SafetensorError) as exc:
            raise BundleError(f"the n-gram vocabularies do not load ({exc.__class__.__name__}: {exc})", where=str(directory),
                              hint="the bundle is corrupted or from another run; retrain or restore it") from None


def refit_setting(bag: Any) -> tuple[str, float] | None:
    """The refit model's L2 strength: the median of the alphas the folds chose on their held-out rows."""
    alphas = [member.alpha_ for member in getattr(bag, "members", []) if getattr(member, "alpha_", None) is not None]
    return ("model.alpha", float(np.median(alphas))) if len(alphas) > 1 else None


def build(config: Any, task: Task, spec: InputSpec) -> NgramEstimator:
    return NgramEstimator(config, task, spec)


def load(directory: Path, config: Any, task: Task, spec: InputSpec) -> NgramEstimator:
    return NgramEstimator.load(directory, config, task, spec)


def describe(cfg: NgramConfig, inputs: dict[str, int]) -> str:
    parts = [f"word {a}-{b}-grams" for a, b in [cfg.word_ngrams] if cfg.word_ngrams] + \
        [f"character {a}-{b}-grams" for a, b in [cfg.char_ngrams] if cfg.char_ngrams]
    alpha = "alpha chosen on validation" if cfg.alpha == "auto" else f"alpha {cfg.alpha:g}"
    return f"TF-IDF {' and '.join(parts)} + linear model (L2, {alpha})"
