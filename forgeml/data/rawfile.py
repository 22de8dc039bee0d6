"""A data file's bytes and text: read (gunzipped), refused when binary, decoded in a sniffed encoding.

Real files arrive as UTF-8 with or without a BOM, as GBK or Big5 from Chinese spreadsheets or as
Latin-1/cp1252 from older Western ones. Every reader (``forgeml.data.delimited``,
``forgeml.data.jsonfile``) starts here, so all of them refuse the same things with the same message.
"""
from __future__ import annotations

import codecs
import gzip
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Callable, NamedTuple

from forgeml.errors import DataError

_SAMPLE_BYTES = 1 << 16  # enough lines to sniff the delimiter and spot binary data, still instant
_BINARY_MAGIC = {
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"%PDF": "a PDF document",
    b"PK\x03\x04": "a ZIP archive (an Excel .xlsx file is one)",
    b"\xd0\xcf\x11\xe0": "an old Office document (.xls)",
}
_TEXT_HINT = "expected a CSV/TSV, Parquet or JSON-lines table with a header row"


class _Options(NamedTuple):
    encoding: str | None
    delimiter: str | None
    where: str
    fallback_encoding: str | None = None
    fallback_delimiter: str | None = None


def _read_bytes(path: Path, where: str) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:  # permissions, a vanished network drive
        raise DataError(f"cannot read the file ({exc.strerror or exc})", where=where,
                        hint="check its permissions") from None
    if data.startswith(b"\x1f\x8b"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise DataError(f"a damaged gzip file ({exc})", where=where, hint="re-create the archive") from None
    if not data.strip():
        raise DataError("the file is empty (only whitespace)", where=where, hint=_TEXT_HINT)
    for magic, kind in _BINARY_MAGIC.items():
        if data.startswith(magic):
            raise DataError(f"not a table: this is {kind}", where=where, hint=_TEXT_HINT)
    return data


# ----------------------------------------------------------------------------- encoding
def _decode(data: bytes, encoding: str | None, where: str, fallback: str | None = None) -> str:
    """Bytes to text with the given or sniffed encoding; binary content is refused here."""
    if encoding is None:
        encoding = _sniff_encoding(data, fallback, where)
    elif encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
        encoding = "utf-8-sig"  # a BOM is never part of the first column name
    try:
        text = data.decode(encoding)
    except LookupError:
        raise DataError(f"unknown encoding {encoding!r}", where=where,
                        hint="use a Python codec name such as utf-8, gb18030 or latin-1") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"cannot be decoded as {encoding} (byte {exc.start})", where=where,
                        hint="leave the encoding unset to sniff it, or give the right one") from None
    text = text.lstrip("\ufeff")
    sample = text[:_SAMPLE_BYTES]
    controls = sum(1 for char in sample if unicodedata.category(char) == "Cc" and char not in "\t\r\n")
    if "\x00" in sample or controls > 0.1 * len(sample):
        raise DataError("not a table: the file holds binary data, not text", where=where, hint=_TEXT_HINT)
    return text


def _sniff_encoding(data: bytes, fallback: str | None = None, where: str = "") -> str:
    """Strict-decode cascade; more reliable on short files than statistical detectors.

    GB18030 decodes many Latin-1 byte pairs as rare characters, so it is accepted only when
    the non-ASCII text is mostly common (GB2312) Chinese, as in real GBK exports; then Big5
    (Traditional Chinese) likewise, when mostly its frequently used characters. ``fallback``
    (the configured encoding of the training data) is tried right after UTF-8: a file that is
    valid UTF-8 is UTF-8, whatever the training file was.
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if _decodes(data, "utf-8"):
        return "utf-8-sig"
    if fallback is not None:
        try:
            if _decodes(data, fallback):
                return fallback
        except LookupError:
            raise DataError(f"unknown encoding {fallback!r}", where=where,
                            hint="use a Python codec name such as utf-8, gb18030 or latin-1") from None
    if _decodes(data, "gb18030") and _common_share(data, "gb18030", _common_gb) >= 0.9:
        return "gb18030"
    for big5 in _BIG5_CODECS:
        if _decodes(data, big5) and _common_share(data, big5, _common_big5) >= 0.8:
            return big5
    return "cp1252" if _decodes(data, "cp1252") else "latin-1"


# Traditional Chinese (Taiwan, Hong Kong): Windows' Big5 first, then the Hong Kong extension.
_BIG5_CODECS = ("cp950", "big5hkscs")


def _common_share(data: bytes, encoding: str, common: Callable[[str], bool]) -> float:
    """The share of the non-ASCII characters decoded from (the first MB of) ``data`` that are
    common in text written in ``encoding``: the two Chinese double-byte encodings overlap so much
    that each decodes the other's files, but into rare characters (and kana, Greek, box drawing)."""
    wide = [char for char in data[: 1 << 20].decode(encoding, errors="ignore") if ord(char) > 127]
    return sum(1 for char in wide if common(char)) / len(wide) if wide else 0.0


def _common_gb(char: str) -> bool:
    """A GB2312 character (the 6,763 common simplified ones, punctuation, symbols), as in real GBK exports."""
    return _encodes(char, "gb2312")


def _common_big5(char: str) -> bool:
    """Big5 punctuation and symbols (A140-A3BF) or one of its 5,401 frequently used characters
    (A440-C67E); GBK text read as Big5 lands largely among the 7,652 less frequent ones."""
    try:
        code = char.encode("cp950")
    except UnicodeEncodeError:
        return False
    return len(code) == 2 and (0xA140 <= int.from_bytes(code, "big") <= 0xA3BF
                               or 0xA440 <= int.from_bytes(code, "big") <= 0xC67E)


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)  # the whole file: a Latin-1 byte may first appear on line 100,000
    except UnicodeDecodeError:
        return False
    return True


def _encodes(char: str, encoding: str) -> bool:
    try:
        char.encode(encoding)
    except UnicodeEncodeError:
        return False
    return True



def _check_unique(names: list[str], where: str) -> None:
    duplicates = sorted(name for name, count in Counter(names).items() if count > 1)
    if duplicates:
        raise DataError("duplicate column names: " + ", ".join(repr(name) for name in duplicates), where=where,
                        hint="rename the columns so that each name appears once")
