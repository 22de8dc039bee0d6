"""What ``/v1/predict/csv`` accepts: CSV text, optionally gzip'd, never more than the cap.

The route says CSV, so it reads CSV: a Parquet or JSON upload (by its name, its part's content
type or its first bytes) is a 415 that names where it belongs, rather than being read by
whatever the bytes happen to be. A gzip'd upload is decompressed as it is copied, chunk by
chunk, and refused (413) as soon as the CSV inside passes ``limit`` bytes: a 1 MiB upload of
zeros is 1 GiB inflated, and inflating it whole first is how a server runs out of memory. The
upload's first decompressed block is checked before the rest is read, so binary data (a bomb of
zeros is NUL bytes) is refused at once. A gzip inside the gzip is refused too: the table loader
would inflate it again, without a cap.

The copy is a plain ``.csv``/``.tsv``/``.txt`` file in a private temporary folder, which the
training loader (``load_table``) then reads by its own rules: sniffed encoding and delimiter,
only empty cells missing.
"""
from __future__ import annotations

import codecs
import gzip
import zlib
from pathlib import Path
from typing import BinaryIO

BLOCK = 1 << 16  # bytes copied per step; also the head checked before anything else is read
GZIP_MAGIC = b"\x1f\x8b"
TEXT_SUFFIXES = (".csv", ".tsv", ".txt")
_JSON_ROUTE = "send JSON rows to POST /v1/predict ({\"rows\": [{column: value, ...}]}), or convert the file to CSV"
# how a refused format is recognised (file suffix, part content type) → what to tell the client
REFUSED_SUFFIXES = {
    ".parquet": "Parquet", ".pq": "Parquet", ".json": "JSON", ".jsonl": "JSON lines", ".ndjson": "JSON lines",
    ".xlsx": "a spreadsheet", ".xls": "a spreadsheet", ".xlsm": "a spreadsheet", ".ods": "a spreadsheet",
    ".zip": "a ZIP archive", ".bz2": "bzip2", ".xz": "xz", ".zst": "zstd",
}
REFUSED_TYPES = {
    "application/json": "JSON", "application/x-ndjson": "JSON lines", "application/jsonl": "JSON lines",
    "application/vnd.apache.parquet": "Parquet", "application/x-parquet": "Parquet", "application/zip": "a ZIP archive",
}


class UploadRefused(Exception):
    """The upload is not what the route reads: ``status`` (413/415/422) and one line saying why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def _refuse_format(kind: str) -> UploadRefused:
    if "JSON" in kind:
        return UploadRefused(415, f"this route reads CSV (optionally gzip'd), not {kind}: {_JSON_ROUTE}")
    return UploadRefused(415, f"this route reads CSV (optionally gzip'd), not {kind}: save it as CSV "
                              "(pandas: read_parquet(...).to_csv(...)) or run `forgeml predict` on the file")


def check_declared(filename: str | None, content_type: str | None) -> str:
    """Refuse by name or part content type before reading a byte; the name to save the CSV under."""
    name = Path(filename or "upload.csv").name or "upload.csv"
    suffixes = [suffix.lower() for suffix in Path(name).suffixes]
    if suffixes and suffixes[-1] in (".gz", ".gzip"):
        suffixes = suffixes[:-1]
    suffix = suffixes[-1] if suffixes else ""
    if suffix in REFUSED_SUFFIXES:
        raise _refuse_format(REFUSED_SUFFIXES[suffix])
    declared = (content_type or "").split(";")[0].strip().lower()
    if declared in REFUSED_TYPES:
        raise _refuse_format(REFUSED_TYPES[declared])
    return "upload" + (suffix if suffix in TEXT_SUFFIXES else ".csv")


def _check_head(head: bytes) -> None:
    """The first decompressed block: a table in another format, or binary data, stops here."""
    if head.startswith(b"PAR1"):
        raise _refuse_format("Parquet")
    if head.startswith(GZIP_MAGIC):
        raise UploadRefused(415, "a gzip inside a gzip: compress the CSV once")
    if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith((b"[", b"{")):
        raise _refuse_format("JSON")
    if not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) and b"\x00" in head:
        raise UploadRefused(422, "not a table: the upload holds binary data, not CSV text")


def copy_csv(handle: BinaryIO, target: Path, limit: int) -> int:
    """Copy the upload to ``target``, inflating gzip on the fly; stops past ``limit`` bytes of CSV.
    Returns the CSV's size. Memory stays at one block whatever the compression ratio."""
    handle.seek(0)
    magic = handle.read(2)
    handle.seek(0)
    source: BinaryIO = gzip.GzipFile(fileobj=handle, mode="rb") if magic == GZIP_MAGIC else handle  # type: ignore[assignment]
    written = 0
    try:
        with open(target, "wb") as out:
            while True:
                block = source.read(BLOCK)
                if not block:
                    break
                if written == 0:
                    _check_head(block)
                written += len(block)
                if written > limit:
                    compressed = " after decompression" if source is not handle else ""
                    raise UploadRefused(413, f"the CSV is over the {limit}-byte limit{compressed}: send it in parts")
                out.write(block)
    except (OSError, EOFError, zlib.error) as exc:
        raise UploadRefused(422, f"a damaged gzip upload ({exc.__class__.__name__}): re-create the archive") from None
    return written
