"""Content-addressed sentence vectors: each distinct text is encoded once per encoder.

A frozen encoder is a fixed function of (encoder, truncation length, text), so its vector for a
text can be kept under that key and reused. In the ensemble the embed member is fitted K times
(folds), refitted once on all rows, and again by every ``forgeml tune`` trial and every re-run on
the same data; without the cache each of those would run the transformer over the same texts —
the member's whole cost (the head is a linear model that fits in a second).

Keys: the encoder's ``identity`` (``embed_encoder._identity``: config, file names and sizes,
pooling, ``max_length``) and a 16-byte BLAKE2b digest of the text's UTF-8 bytes. Two levels:

- **memory**, for the life of the process, shared by every estimator with the same encoder
  (capped at ``MEMORY_BYTES``; the oldest vectors go first);
- **disk** (``model.cache: disk``), under ``$FORGEML_CACHE_DIR`` (default ``~/.cache/forgeml``,
  as the language-model corpus cache) ``/embeddings/<identity>/``: one safetensors shard per fit
  that encoded something new, named by the hash of its keys and written atomically (temp file,
  rename), so concurrent processes never read half a shard; a shard that does not read is
  ignored (the vectors are recomputed). Shards are read when a lookup misses.

Predicting reads the fit cache (the bag's out-of-fold predictions are of texts it just encoded)
and keeps what it encodes in a second, small memory-only cache (``RECENT``, ``RECENT_BYTES``):
the report's permutation importance and a bagged member's K fold models predict the same texts
again and again, but a server must not grow memory or disk with every request, nor fill the fit
cache. ``timing_cold`` switches both off while the leaderboard times a member's predict, so its
ms/row is what a new row costs, not a cache look-up.
"""
from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import numpy as np

from forgeml.models.embed_encoder import LoadedEncoder

Store = Literal["disk", "memory", "off"]
MEMORY_BYTES = 512 * 2**20  # ~350,000 MiniLM vectors: more than any table this laptop tool trains on
RECENT_BYTES = 32 * 2**20  # the predict cache: ~20,000 MiniLM vectors
SHARD_PREFIX = "shard-"


def cache_root() -> Path:
    return Path(os.environ.get("FORGEML_CACHE_DIR") or Path.home() / ".cache" / "forgeml") / "embeddings"


def text_digests(texts: list[str]) -> list[bytes]:
    """The content half of each key (surrogatepass: a lone surrogate from a mis-decoded file still hashes)."""
    return [hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest() for text in texts]


class VectorCache:
    """Vectors by (encoder identity, text digest), in memory and optionally on disk."""

    def __init__(self, max_bytes: int = MEMORY_BYTES) -> None:
        self.max_bytes = max_bytes
        self._vectors: dict[str, OrderedDict[bytes, np.ndarray]] = {}
        self._shards_read: dict[str, set[str]] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._vectors, self._shards_read, self._bytes = {}, {}, 0

    def vectors(self, encoder: LoadedEncoder, texts: list[str], store: Store = "disk", also: "VectorCache | None" = None) -> np.ndarray:
        """(N, width) vectors of ``texts``; only the distinct texts found in neither level (nor in
        the memory of ``also``, read-only: the predict cache reads the fit cache) are encoded."""
        if store == "off":
            unique, inverse = np.unique(np.asarray(texts, dtype=object), return_inverse=True)
            return encoder.encode([str(t) for t in unique])[inverse]
        identity = encoder.ref.identity
        digests = text_digests(texts)
        missing, fresh = self.missing(identity, digests, store), {}
        if missing and also is not None:
            fresh = also.known(identity, missing)
            missing -= set(fresh)
        if missing:
            first = {}
            for digest, text in zip(digests, texts):
                if digest in missing and digest not in first:
                    first[digest] = text
            keys = list(first)
            encoded = encoder.encode([first[k] for k in keys])
            fresh.update(zip(keys, encoded))  # kept apart: a batch larger than MEMORY_BYTES evicts its own first rows
            self._remember(identity, keys, encoded)
            if store == "disk":
                _write_shard(cache_root() / identity, keys, encoded)
        with self._lock:
            table = self._vectors[identity]
            return np.stack([fresh[d] if d in fresh else table[d] for d in digests]) if digests else np.zeros((0, encoder.ref.width), np.float32)

    def known(self, identity: str, digests: set[bytes]) -> dict[bytes, np.ndarray]:
        """The vectors of ``digests`` this cache holds in memory."""
        with self._lock:
            table = self._vectors.get(identity, {})
            return {d: table[d] for d in digests if d in table}

    def missing(self, identity: str, digests: list[bytes], store: Store = "disk") -> set[bytes]:
        """The digests in neither level (after reading any disk shards not read yet)."""
        with self._lock:
            table = self._vectors.setdefault(identity, OrderedDict())
            missing = {d for d in digests if d not in table}
        if missing and store == "disk":
            self._read_shards(identity)
            with self._lock:
                missing = {d for d in missing if d not in table}
        return missing

    def _remember(self, identity: str, keys: list[bytes], encoded: np.ndarray) -> None:
        with self._lock:
            table = self._vectors.setdefault(identity, OrderedDict())
            for key, vector in zip(keys, encoded):
                if key not in table:
                    table[key] = vector
                    self._bytes += vector.nbytes
            while self._bytes > self.max_bytes and any(self._vectors.values()):
                oldest = next(t for t in self._vectors.values() if t)  # the first encoder's oldest vector
                self._bytes -= oldest.popitem(last=False)[1].nbytes

    def _read_shards(self, identity: str) -> None:
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        folder = cache_root() / identity
        if not folder.is_dir():
            return
        read = self._shards_read.setdefault(identity, set())
        for path in sorted(folder.glob(f"{SHARD_PREFIX}*.safetensors")):
            if path.name in read:
                continue
            read.add(path.name)
            try:
                arrays = load_file(str(path))
                keys, encoded = arrays["digests"], arrays["vectors"]
            except (OSError, SafetensorError, KeyError):
                continue  # a damaged shard costs a recomputation, never a failed fit
            self._remember(identity, [bytes(k) for k in keys], encoded)


def _write_shard(folder: Path, keys: list[bytes], encoded: np.ndarray) -> None:
    """One shard, named by its keys' hash, written atomically; a cache that cannot be written
    (read-only home, full disk) only means the next process encodes again."""
    from safetensors.numpy import save

    from forgeml.fileio import atomic_write_bytes

    name = hashlib.blake2b(b"".join(keys), digest_size=12).hexdigest()
    data = save({"digests": np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), 16),
                 "vectors": np.ascontiguousarray(encoded, dtype=np.float32)})
    try:
        atomic_write_bytes(folder / f"{SHARD_PREFIX}{name}.safetensors", data)
    except OSError:
        pass


CACHE = VectorCache()  # the process's fit cache: every embed estimator, fold, refit and tuning trial shares it
RECENT = VectorCache(RECENT_BYTES)  # the process's predict cache (memory only)


_COLD = threading.local()


@contextmanager
def timing_cold():
    """Within it, predicting encodes every row (no cache is read or written)."""
    _COLD.on = True
    try:
        yield
    finally:
        _COLD.on = False


def is_cold() -> bool:
    return getattr(_COLD, "on", False)


def clear() -> None:
    """Forget every vector held in memory (the disk shards stay): benches time cold encoding with it."""
    CACHE.clear()
    RECENT.clear()
