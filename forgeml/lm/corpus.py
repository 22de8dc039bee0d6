"""Corpus → tokens, once: find the text files, decode them, train the tokenizer, write the token
streams to memory-mapped files, and reuse all of it when the same corpus comes back.

Each file (or each record of a ``.jsonl`` file) is one document; documents are split between
train and validation whole, so no validation text was half-seen in training. The cache key is a
SHA-256 over every file's path and bytes plus the settings that shape the tokens, so an edited
file, a new file or a different vocabulary builds a fresh cache and nothing stale is reused.

Layout of a cache entry (``<cache>/corpus/<key>/``)::

    tokenizer.json   the trained byte-level BPE
    train.bin        token ids, uint16 when the vocabulary fits, else uint32
    val.bin
    meta.json        counts: files, documents, tokens, bytes, what was skipped and why
"""
from __future__ import annotations

import fnmatch
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from forgeml.errors import DataError
from forgeml.fileio import atomic_directory, atomic_write_json
from forgeml.lm.config import CorpusConfig

CACHE_VERSION = 1
_SNIFF_BYTES = 8192


def default_cache_dir() -> Path:
    return Path(os.environ.get("FORGEML_CACHE_DIR") or Path.home() / ".cache" / "forgeml")


@dataclass
class Discovery:
    files: list[Path] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


def discover(path: str | Path, config: CorpusConfig) -> Discovery:
    """The corpus's text files in a stable order; binary and oversized files are counted, not read."""
    root = Path(path)
    if not root.exists():
        raise DataError("corpus not found", where=str(root), hint="pass a folder of text files or one text file")
    found = Discovery()
    candidates = [root] if root.is_file() else sorted(
        p for p in root.rglob("*") if p.is_file() and any(fnmatch.fnmatch(p.name, g) for g in config.globs)
    )
    limit = int(config.max_file_mb * (1 << 20))
    for file in candidates:
        try:
            size = file.stat().st_size
            if size > limit:
                found.skip(f"larger than {config.max_file_mb:g} MB")
                continue
            with open(file, "rb") as handle:
                head = handle.read(_SNIFF_BYTES)
        except OSError:
            found.skip("unreadable")
            continue
        if b"\x00" in head:  # text never holds NUL; every common binary format does, early
            found.skip("binary")
        elif size == 0:
            found.skip("empty")
        else:
            found.files.append(file)
    return found


def decode(data: bytes, encoding: str, where: str) -> tuple[str, str]:
    """(text, encoding used). 'auto' tries UTF-8 first, then the same cascade tables get."""
    if encoding != "auto":
        try:
            return data.decode(encoding), encoding
        except (UnicodeDecodeError, LookupError) as exc:
            raise DataError(f"cannot decode as {encoding} ({exc.__class__.__name__})", where=where, hint="pass the file's encoding with --encoding, or 'auto'") from None
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    from forgeml.data.load import _sniff_encoding  # the tables' cascade: UTF-16, GB18030, Big5, cp1252, Latin-1

    encoding = _sniff_encoding(data)
    try:
        return data.decode(encoding), encoding
    except UnicodeDecodeError:
        return "", "undecodable"


def _documents_of(file: Path, text: str, config: CorpusConfig) -> Iterator[str]:
    if file.suffix.lower() != ".jsonl":
        yield text
        return
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            yield line  # a line that is not JSON is still text
            continue
        value = record.get(config.jsonl_field) if isinstance(record, dict) else record
        if isinstance(value, str) and value:
            yield value


@dataclass
class Documents:
    texts: list[str]
    meta: dict[str, Any]


def read_documents(path: str | Path, config: CorpusConfig) -> tuple[Documents, str]:
    """All documents, in order, and the cache key of the corpus they came from."""
    found = discover(path, config)
    digest = hashlib.sha256()
    settings = config.model_dump(mode="json")
    settings.pop("path", None)  # the same files elsewhere are the same corpus
    digest.update(json.dumps({"version": CACHE_VERSION, **settings}, sort_keys=True).encode())
    root = Path(path)
    texts: list[str] = []
    encodings: dict[str, int] = {}
    total_bytes = 0
    for file in found.files:
        data = file.read_bytes()
        text, used = decode(data, config.encoding, str(file))
        if used == "undecodable" or not text.strip():
            found.skip("undecodable" if used == "undecodable" else "blank")
            continue
        encodings[used] = encodings.get(used, 0) + 1
        relative = file.name if root.is_file() else str(file.relative_to(root))
        digest.update(relative.encode() + b"\0" + hashlib.sha256(data).digest())
        for document in _documents_of(file, text, config):
            texts.append(document)
            total_bytes += len(document.encode("utf-8"))
    if not texts:
        skipped = ", ".join(f"{n} {reason}" for reason, n in sorted(found.skipped.items())) or "none"
        what = "no text files" if not found.files and not found.skipped else "no usable text"
        raise DataError(
            f"{what} in the corpus (looked for {', '.join(config.globs)}; skipped: {skipped})",
            where=str(path), hint="point at a folder of UTF-8 (or other text) files, or widen --glob",
        )
    meta = {"files": len(found.files) - sum(found.skipped.get(r, 0) for r in ("undecodable", "blank")),
            "documents": len(texts), "bytes": total_bytes, "skipped": found.skipped, "encodings": encodings}
    return Documents(texts, meta), digest.hexdigest()[:24]


@dataclass
class TokenCorpus:
    """A prepared corpus: the tokenizer (JSON text) and the two token streams, memory-mapped."""

    directory: Path
    meta: dict[str, Any]
    reused: bool

    @property
    def tokenizer_json(self) -> str:
        return (self.directory / "tokenizer.json").read_text(encoding="utf-8")

    def tokens(self, split: str) -> np.memmap:
        return np.memmap(self.directory / f"{split}.bin", dtype=np.dtype(self.meta["dtype"]), mode="r")


def prepare_corpus(path: str | Path, config: CorpusConfig, cache_dir: Path | None = None) -> TokenCorpus:
    """Build (or find) the cache entry for this corpus and settings."""
    documents, key = read_documents(path, config)
    directory = (cache_dir or default_cache_dir()) / "corpus" / key
    if (directory / "meta.json").is_file():
        return TokenCorpus(directory, json.loads((directory / "meta.json").read_text(encoding="utf-8")), reused=True)
    from forgeml.lm.tokenizer import encode_documents, train_tokenizer

    tokenizer = train_tokenizer(documents.texts, config.vocab_size)
    dtype = np.uint16 if tokenizer.get_vocab_size() <= np.iinfo(np.uint16).max + 1 else np.uint32
    val_docs = _validation_documents(len(documents.texts), config)
    counts = {"train": 0, "val": 0}
    with atomic_directory(directory) as tmp:  # another process building the same key: last one wins, both whole
        (tmp / "tokenizer.json").write_text(tokenizer.to_str(), encoding="utf-8")
        with open(tmp / "train.bin", "wb") as train, open(tmp / "val.bin", "wb") as val:
            for index, ids in enumerate(encode_documents(tokenizer, documents.texts)):
                split = "val" if index in val_docs else "train"
                np.asarray(ids, dtype=dtype).tofile(val if split == "val" else train)
                counts[split] += len(ids)
        if val_docs == {-1}:  # one document: hold out its tail instead (the only split left)
            counts = _split_tail(tmp, dtype, config.val_fraction or 0.1)
        val_ids = np.fromfile(tmp / "val.bin", dtype=dtype).tolist()
        # bytes the validation tokens stand for: loss per token → bits per byte, comparable across tokenizers
        val_bytes = len(tokenizer.decode(val_ids, skip_special_tokens=True).encode("utf-8")) if val_ids else 0
        meta = {**documents.meta, "key": key, "val_bytes": val_bytes, "dtype": np.dtype(dtype).name, "vocab_size": tokenizer.get_vocab_size(),
                "train_tokens": counts["train"], "val_tokens": counts["val"], "val_documents": len(val_docs - {-1}),
                "split": "document" if val_docs != {-1} else "tail of the only document"}
        atomic_write_json(tmp / "meta.json", meta)
    return TokenCorpus(directory, meta, reused=False)


def _validation_documents(count: int, config: CorpusConfig) -> set[int]:
    """Which documents are held out: a seeded choice, at least one when there are two or more."""
    if count < 2 or config.val_fraction == 0:
        return {-1} if count < 2 and config.val_fraction > 0 else set()
    rng = np.random.default_rng(config.seed)
    size = min(count - 1, max(1, round(count * config.val_fraction)))
    return {int(i) for i in rng.choice(count, size=size, replace=False)}


def _split_tail(directory: Path, dtype: Any, fraction: float) -> dict[str, int]:
    tokens = np.fromfile(directory / "train.bin", dtype=dtype)
    cut = len(tokens) - max(2, int(len(tokens) * fraction))
    tokens[:cut].tofile(directory / "train.bin")
    tokens[cut:].tofile(directory / "val.bin")
    return {"train": int(cut), "val": int(len(tokens) - cut)}
