"""Atomic writes: nothing half-written is ever left where a reader would find it.

Every artifact is written to a temporary sibling and moved into place with ``os.replace``,
which is atomic on POSIX within one file system. A full disk or a kill mid-write leaves the
previous version (or nothing), never a truncated file.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same folder, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_csv(path: str | os.PathLike, text: str) -> None:
    """CSV text for people as much as for programs: Excel opens a file without a BOM in the
    local ANSI code page, so Chinese or accented text turns to mojibake; with a UTF-8 BOM it
    reads UTF-8. An all-ASCII file is written without one (no stray bytes, nothing to decode)."""
    atomic_write_bytes(path, text.encode("utf-8" if text.isascii() else "utf-8-sig"))


def json_text(obj: Any, *, indent: int | None = 2) -> str:
    """The one way forgeml writes a JSON file: UTF-8 text as written (no \\u escapes: column names
    in any script stay readable), numpy values as plain numbers, a final newline; ``indent=None``
    for large machine-read files (vocabularies), which indenting would double."""
    return json.dumps(obj, indent=indent, ensure_ascii=False, default=_json_default) + "\n"


def atomic_write_json(path: str | os.PathLike, obj: Any, *, indent: int | None = 2) -> None:
    atomic_write_text(path, json_text(obj, indent=indent))


def to_plain(value: Any) -> Any:
    """Recursively turn numpy values into JSON types and NaN/inf into None (JSON has neither)."""
    import math

    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if hasattr(value, "item") and not hasattr(value, "__len__"):  # numpy scalar
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _json_default(value: Any) -> Any:
    """numpy scalars and arrays appear in metrics; JSON has no type for them."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder; on success it replaces ``path`` whole, on failure it vanishes.

    Used for bundles: a reader sees the old bundle or the new one, never a mix.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700; a bundle should be as readable as its run
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            try:
                os.replace(tmp, path)
            except BaseException:
                os.replace(old, path)  # put the previous version back: never leave nothing
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
