"""Broken characters in text and category cells: mojibake (UTF-8 read as cp1252/Latin-1), control
characters, U+FFFD; and full-width punctuation, letters and spacing normalised (NFKC), counted apart.

Cleaning (``forgeml.data.clean.repair_text_columns``) repairs the train split with these, and
category and text features repair the values to predict the same way, so they match.
"""
from __future__ import annotations

import re
import unicodedata

import numpy as np
import pandas as pd

# Only cells matching this can change: anything non-ASCII or a control character, or
# whitespace to collapse or strip. Plain ASCII cells (the vast majority) are never touched.
# Written without \s so pandas hands it to pyarrow's RE2 instead of Python's re cell by cell: every
# whitespace but the ASCII space is already caught by the first class.
_NEEDS_REPAIR = r"[^\x20-\x7e]|  |^ | $"

# cp1252 puts printable characters at bytes 0x80-0x9f; map them back to the byte they came from
# so text decoded as cp1252 or Latin-1 can be re-encoded to the original UTF-8 bytes.
_CP1252_SPECIALS = {
    decoded: chr(byte)
    for byte in range(0x80, 0xA0)
    if (decoded := bytes([byte]).decode("cp1252", errors="ignore"))
}
_TO_BYTES = str.maketrans(_CP1252_SPECIALS)
_CONTINUATION = "[\u0080-\u00bf" + "".join(_CP1252_SPECIALS) + "]"
# One UTF-8 encoded character as it looks after being read as cp1252/Latin-1: a lead byte
# (Â..ß, à..ï, ð..ô) followed by exactly the continuation bytes that lead byte announces.
_MOJIBAKE = re.compile(
    f"[\u00c2-\u00df]{_CONTINUATION}|[\u00e0-\u00ef]{_CONTINUATION}{{2}}|[\u00f0-\u00f4]{_CONTINUATION}{{3}}"
)
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ufffd\ufeff]")
_HORIZONTAL_RUN = re.compile(r"[^\S\n]{2,}")
_LINE_BREAK_RUN = re.compile(r"[^\S\n]*\n\s*")


def _undo_mojibake(match: re.Match[str]) -> str:
    chunk = match.group(0)
    try:
        return chunk.translate(_TO_BYTES).encode("latin-1").decode("utf-8")
    except UnicodeError:
        return chunk  # not a UTF-8 sequence after all: the text was right as it was


def repair_cell(text: str) -> str:
    """Repair one string. Order matters: mojibake first, because NFKC rewrites "™" (part of
    "â€™") and control-character removal would eat the C1 bytes of sequences like "Ã\\x81"."""
    return _repair_cell(text)[0]


def _repair_cell(text: str) -> tuple[str, bool]:
    """``repair_cell``'s text, and whether anything was broken (mojibake, control characters,
    U+FFFD): the rest (NFKC's full-width letters and punctuation, ideographic spaces, spacing and
    line endings) is normalisation, harmless, and reported apart."""
    original = text
    for _ in range(3):  # text mangled twice ("ÃƒÂ©") needs two passes
        fixed = _MOJIBAKE.sub(_undo_mojibake, text)
        if fixed == text:
            break
        text = fixed
    broken = text != original
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    kept = _CONTROL.sub("", text)
    broken = broken or kept != text
    text = unicodedata.normalize("NFKC", kept)
    text = _LINE_BREAK_RUN.sub("\n", text)
    text = _HORIZONTAL_RUN.sub(" ", text)
    return text.strip(), broken


def repair_text(series: pd.Series) -> tuple[pd.Series, int]:
    """Repair every string cell of ``series``; returns the new series and how many cells changed.

    Non-string cells (NaN, numbers in an object column) pass through untouched.
    """
    out, broken, normalized = repair_text_counts(series)
    return out, broken + normalized


def repair_text_counts(series: pd.Series) -> tuple[pd.Series, int, int]:
    """``repair_text``, with the changed cells counted apart: those that had broken characters,
    and those only normalised (full-width punctuation, ideographic spaces, spacing)."""
    if not (series.dtype == object or isinstance(series.dtype, pd.StringDtype)):
        return series.copy(), 0, 0
    try:
        candidates = series.str.contains(_NEEDS_REPAIR, regex=True, na=False).to_numpy(dtype=bool)
    except AttributeError:  # an object column holding no text at all (numbers from JSON rows)
        return series.copy(), 0, 0
    if not candidates.any():
        return series.copy(), 0, 0
    before = series[candidates].to_numpy(dtype=object)
    results = [_repair_cell(cell) if isinstance(cell, str) else (cell, False) for cell in before]
    after = np.empty(len(results), dtype=object)
    after[:] = [text for text, _ in results]
    changed = np.array([isinstance(cell, str) and text != cell for cell, (text, _) in zip(before, results)], dtype=bool)
    broken = int(sum(flag for (_, flag), change in zip(results, changed) if change))
    n_changed = int(changed.sum())
    out = series.copy()
    if n_changed:
        # Positions, not labels: an index with repeated labels must not spread a fix to its twins.
        rows = np.flatnonzero(candidates)[changed]
        out.iloc[rows] = after[changed]
    return out, broken, n_changed - broken
