"""Free-text features: cleaned, tokenised by a Hugging Face ``tokenizers`` model, padded to a length.

The tokenizer is either trained on the train split (word-level, BPE or WordPiece) or is a
pretrained checkpoint's own, so the ids match the encoder's embeddings. Either way its full
definition (normaliser, pre-tokeniser, vocabulary, merges) is stored in ``features.json`` as the
JSON that ``tokenizers`` writes, so a bundle tokenises exactly as in training with no other file.

Scripts written without spaces (Chinese, Japanese) have no word boundaries to split on. The
word-level tokenizer isolates each Han or kana character — what character-level models of
those languages use; BPE and WordPiece see whole runs of them and learn frequent multi-character
pieces (as SentencePiece does), so both give Chinese text useful tokens. Hangul keeps its spaces.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forgeml.errors import ConfigError, DataError
from forgeml.features.base import Feature, FitContext, OutputSpec, register

PAD, UNK = "[PAD]", "[UNK]"
SPECIALS = [PAD, UNK]  # so the pad id is 0 and the unknown id 1 for every tokenizer trained here
CJK_CHAR = r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]"  # kana, Han (not Hangul: it has spaces)
URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
MAX_LENGTH = 256
MAX_WORD_VOCAB = 20_000
MAX_SUBWORD_VOCAB = 8_000
_SAMPLE = 5_000  # rows whose token counts set the default max length


def _tokenizer_model(kind: str):
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers

    if kind == "word":
        pre = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(CJK_CHAR), behavior="isolated"), pre_tokenizers.Whitespace()])
        return Tokenizer(models.WordLevel(unk_token=UNK)), pre, trainers.WordLevelTrainer
    if kind == "bpe":
        return Tokenizer(models.BPE(unk_token=UNK)), pre_tokenizers.Whitespace(), trainers.BpeTrainer
    if kind == "wordpiece":
        return Tokenizer(models.WordPiece(unk_token=UNK)), pre_tokenizers.BertPreTokenizer(), trainers.WordPieceTrainer
    raise ValueError(kind)


def train_tokenizer(texts: list[str], kind: str, vocab_size: int | None, lowercase: bool):
    """A word-level, BPE or WordPiece tokenizer trained on ``texts`` (the train split)."""
    from tokenizers import normalizers

    tokenizer, pre_tokenizer, trainer_cls = _tokenizer_model(kind)
    steps = [normalizers.NFKC()] + ([normalizers.Lowercase()] if lowercase else [])
    tokenizer.normalizer = normalizers.Sequence(steps)
    tokenizer.pre_tokenizer = pre_tokenizer
    if vocab_size is None:
        vocab_size = MAX_WORD_VOCAB if kind == "word" else _subword_vocab(texts)
    trainer = trainer_cls(vocab_size=vocab_size, min_frequency=2, special_tokens=list(SPECIALS), show_progress=False)
    tokenizer.train_from_iterator(texts, trainer=trainer, length=len(texts))
    return tokenizer


def _subword_vocab(texts: list[str]) -> int:
    """Scaled to the corpus: a vocabulary much larger than its distinct words only memorises."""
    distinct = len({word for text in texts[:50_000] for word in text.split()})
    return int(min(MAX_SUBWORD_VOCAB, max(500, distinct // 2)))


def check_checkpoint(path: str | None, where: str = "model.text.checkpoint") -> Path:
    """The folder of a local Hugging Face checkpoint, or a ``ConfigError`` saying what is wrong."""
    if not path:
        raise ConfigError("the pretrained text encoder needs a checkpoint folder", where=where,
                          hint="pass --encoder /path/to/checkpoint (a folder with config.json and the weights)")
    folder = Path(path).expanduser()
    if not folder.exists():
        raise ConfigError("pretrained checkpoint folder not found", where=str(folder),
                          hint="give a local folder holding a Hugging Face checkpoint (nothing is downloaded)")
    if not folder.is_dir() or not (folder / "config.json").is_file():
        raise ConfigError("not a Hugging Face checkpoint (no config.json)", where=str(folder),
                          hint="point at the folder that holds config.json, the weights and the tokenizer files")
    if not any((folder / name).is_file() for name in ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json")):
        raise ConfigError("checkpoint folder has no weights (model.safetensors or pytorch_model.bin)", where=str(folder),
                          hint="copy the complete checkpoint folder")
    return folder


def import_transformers():
    """``transformers`` with downloads switched off, or a ``ConfigError`` saying how to install it."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never a download
    from forgeml.extras import import_optional

    return import_optional("transformers", "pretrained", needed_by="model.text.type: pretrained")


def pretrained_tokenizer(folder: Path):
    """The checkpoint's fast tokenizer (tokenizer.json, or converted by transformers, offline)."""
    from tokenizers import Tokenizer

    if (folder / "tokenizer.json").is_file():
        return Tokenizer.from_file(str(folder / "tokenizer.json"))
    AutoTokenizer = import_transformers().AutoTokenizer
    try:
        auto = AutoTokenizer.from_pretrained(str(folder), local_files_only=True, use_fast=True)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"the checkpoint's tokenizer does not load ({exc.__class__.__name__})", where=str(folder),
                          hint="the folder needs tokenizer.json or vocab.txt/tokenizer_config.json") from None
    return auto.backend_tokenizer


TEXT_KEY = "text."  # arrays["text.<feature>"]: the column's raw strings, for models that read text themselves


def raw_texts(values: list[Any]) -> np.ndarray:
    """A text column's cells as an object array of ``str`` ("" where missing or a NULL marker).

    Beside the token ids, ``FeatureSet`` passes these on as ``text.<feature>``: the n-gram family
    and LightGBM's text features build their own vocabularies (character n-grams of the whole
    text, not the first ``max_length`` tokens of a 20,000-word vocabulary), and normalise as
    they were trained to. Torch models never see them (``torch_estimator.to_tensors``)."""
    out = np.empty(len(values), dtype=object)
    out[:] = ["" if value is None or (isinstance(value, float) and value != value) or value is pd.NA
              or (isinstance(value, str) and value.strip() in NULL_MARKERS) else str(value) for value in values]
    return out


# What databases and spreadsheets write for NULL. A text cell holding only one of these is missing,
# not a word; words that may be a real answer ("none", 无) stay text (``infer.NA_TOKENS`` is wider).
NULL_MARKERS = frozenset({"\\N", "NULL", "null", "NaN", "nan", "#N/A", "N/A", "n/a"})


def missing_texts(column: pd.Series) -> pd.Series:
    """True where the cell is missing or holds only a NULL marker (breaches.csv writes "\\N")."""
    return column.isna() | column.astype("string").str.strip().isin(NULL_MARKERS).fillna(False).astype(bool)


def clean_texts(column: pd.Series, config: Any) -> list[str]:
    """Texts ready for the tokenizer: NULL markers missing, then filled, repaired, URLs removed."""
    texts = column.mask(missing_texts(column)).fillna(config.fill_value).astype(str)
    if config.repair:
        from forgeml.data.repair import repair_text

        texts, _ = repair_text(texts)  # NFKC, control and broken characters
    out = texts.tolist()
    if config.remove_urls:
        out = [URL.sub(" ", text) for text in out]
    return out


@register
class TextFeature(Feature):
    type_name = "text"

    def __init__(self, config: Any, state: dict[str, Any] | None = None):
        super().__init__(config, state)
        self._tokenizer = None

    def fit(self, column: pd.Series, context: FitContext) -> None:
        cfg = self.config
        n_missing = int(missing_texts(column).sum())
        if n_missing:
            context.report.record_missing(self.name, n_missing, "constant", cfg.fill_value)
        texts = clean_texts(column, cfg)
        if not any(text.strip() for text in texts):
            raise DataError(f"text column {self.name!r} is empty in every train row: nothing to learn", where=f"column {self.name!r}",
                            hint=f"fill it in, or leave it out (data.drop: [{self.name}])")
        kind = cfg.tokenizer if cfg.tokenizer != "auto" else ("pretrained" if context.checkpoint else "word")
        pretrained = None
        if kind == "pretrained":
            folder = check_checkpoint(context.checkpoint)
            tokenizer = pretrained_tokenizer(folder)
            pretrained = json.loads((folder / "config.json").read_text(encoding="utf-8"))
            pad_id = _pad_id(tokenizer, pretrained)
            limit = min(512, int(pretrained.get("max_position_embeddings", 512)))
        else:
            tokenizer = train_tokenizer(texts, kind, cfg.vocab_size, cfg.lowercase)
            pad_id, limit = 0, MAX_LENGTH
        tokenizer.no_padding()
        tokenizer.no_truncation()
        max_length = cfg.max_length or _default_length(tokenizer, texts, limit)
        self.state = {
            "tokenizer_kind": kind,
            "tokenizer": json.loads(tokenizer.to_str()),
            "max_length": int(min(max_length, limit)),
            "pad_id": int(pad_id),
            "vocab_size": int(tokenizer.get_vocab_size()),
            "pretrained": pretrained,
        }
        self._tokenizer = None

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_str(json.dumps(self.state["tokenizer"]))
            length = self.state["max_length"]
            tokenizer.enable_truncation(max_length=length)
            tokenizer.enable_padding(pad_id=self.state["pad_id"], pad_token=tokenizer.id_to_token(self.state["pad_id"]) or PAD, length=length)
            self._tokenizer = tokenizer
        return self._tokenizer

    def transform(self, column: pd.Series, *, strict: bool = False) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(clean_texts(column, self.config))
        out = np.asarray([e.ids for e in encodings], dtype=np.int64)
        return out.reshape(len(column), self.state["max_length"])

    def tokens(self, text: str) -> list[str]:
        """The tokens of one text without padding (reports, debugging)."""
        pad = self.state["pad_id"]
        encoding = self.tokenizer.encode(clean_texts(pd.Series([text]), self.config)[0])
        return [token for token, i in zip(encoding.tokens, encoding.ids) if i != pad]

    def output_spec(self) -> OutputSpec:
        return OutputSpec(
            "tokens",
            width=self.state["max_length"],
            cardinality=self.state["vocab_size"],
            embedding_dim=self.config.embedding_dim,
            extra={"pad_id": self.state["pad_id"], "pretrained": self.state.get("pretrained")},
        )


def _pad_id(tokenizer: Any, model_config: dict[str, Any]) -> int:
    if model_config.get("pad_token_id") is not None:
        return int(model_config["pad_token_id"])
    for token in (PAD, "<pad>", "[pad]"):
        token_id = tokenizer.token_to_id(token)
        if token_id is not None:
            return int(token_id)
    return 0


def _default_length(tokenizer: Any, texts: list[str], limit: int) -> int:
    """The 95th percentile of train token counts: few rows are cut, little padding is carried."""
    sample = texts[:: max(1, len(texts) // _SAMPLE)]
    lengths = np.array([len(e.ids) for e in tokenizer.encode_batch(sample)] or [1])
    return int(min(limit, max(4, np.percentile(lengths, 95))))
