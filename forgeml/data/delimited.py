"""Delimited text tables (CSV, TSV, semicolons, pipes): the delimiter sniffed, numbers read as
numbers on a fast path (pyarrow, straight from disk for plain UTF-8), pandas' C parser for ragged
rows and odd quoting, and every way such a file can be unusable turned into one ``DataError``."""
from __future__ import annotations

import codecs
import csv
import io
import itertools
import unicodedata
import warnings
from collections import Counter
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from forgeml.data.rawfile import _BINARY_MAGIC, _SAMPLE_BYTES, _Options, _check_unique, _decode, _read_bytes
from forgeml.errors import DataError

CANDIDATE_DELIMITERS = (",", "\t", ";", "|")
_DELIMITER_NAMES = {"\\t": "\t", "tab": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
_SNIFF_RECORDS = 200


def _read_text(path: Path, options: _Options) -> pd.DataFrame:
    frame = _read_utf8_in_place(path, options)
    if frame is not None:
        return frame
    text = _decode(_read_bytes(path, options.where), options.encoding, options.where, options.fallback_encoding)
    delimiter = _given_delimiter(options) or _sniff_delimiter(text, path, options.where, _fallback_delimiter(options))
    header = next(csv.reader(io.StringIO(text[:_SAMPLE_BYTES]), delimiter=delimiter), [])
    _check_unique([name.strip() for name in header if name.strip()], options.where)
    payload = text.encode("utf-8")
    del text
    try:
        return _to_pandas(_read_with_pyarrow(io.BytesIO(payload), delimiter))
    except _ARROW_ERRORS:
        pass  # ragged rows, odd quoting: the C parser is slower but more forgiving
    try:
        with warnings.catch_warnings():
            # index_col=False: a row with one field too many must not silently become the index;
            # pandas then warns that it would drop fields, and a warning is not enough here
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(io.BytesIO(payload), sep=delimiter, keep_default_na=False, na_values=[""],
                                encoding="utf-8", low_memory=False, index_col=False)
    except (pd.errors.ParserError, pd.errors.ParserWarning, ValueError) as exc:
        if isinstance(exc, pd.errors.ParserWarning):
            detail = "some rows have more fields than the header"
        else:
            detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise DataError(
            f"not a table: {detail}", where=options.where,
            hint="every row needs the same number of fields as the header; quote fields that contain the delimiter",
        ) from None
    for column in frame.columns:  # the C parser turns True/False into bools; keep the text
        if frame[column].dtype == bool or (frame[column].dtype == object and _all_bool(frame[column])):
            frame[column] = frame[column].map({True: "True", False: "False"}).astype("str")
    return frame


def _read_utf8_in_place(path: Path, options: _Options) -> pd.DataFrame | None:
    """The fast path for the common case, a plain UTF-8 file: pyarrow reads it from disk.

    Only a sample is decoded in Python (to sniff the delimiter and check the header), so the
    file is never held as bytes, as text and re-encoded all at once — at 1M rows that was three
    extra copies of the file at the memory peak. Anything unusual returns None and takes the
    careful path: compressed files, another encoding (given, or found as invalid UTF-8 anywhere
    in the file: pyarrow then types the column as binary), ragged rows, odd quoting.
    """
    if options.encoding is not None and options.encoding.lower().replace("_", "-") not in ("utf-8", "utf8", "utf-8-sig"):
        return None
    try:
        with path.open("rb") as handle:
            head = handle.read(_SAMPLE_BYTES)
            whole = not handle.read(1)
    except OSError:
        return None  # the careful path reports it
    if head.startswith(b"\x1f\x8b") or not head.strip() or any(head.startswith(magic) for magic in _BINARY_MAGIC):
        return None
    try:
        sample = codecs.getincrementaldecoder("utf-8")().decode(head, final=whole).lstrip("\ufeff")
    except UnicodeDecodeError:
        return None
    if not whole:
        sample = sample[: sample.rfind("\n") + 1]
    controls = sum(1 for char in sample if unicodedata.category(char) == "Cc" and char not in "\t\r\n")
    if not sample or "\x00" in sample or controls > 0.1 * len(sample):
        return None
    delimiter = _given_delimiter(options) or _sniff_delimiter(sample, path, options.where, _fallback_delimiter(options))
    header = next(csv.reader(io.StringIO(sample), delimiter=delimiter), [])
    _check_unique([name.strip() for name in header if name.strip()], options.where)
    try:
        table = _read_with_pyarrow(str(path), delimiter)
    except (*_ARROW_ERRORS, OSError):
        return None
    if any(pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type) for field in table.schema):
        return None  # not UTF-8 after all
    return _to_pandas(table)


def _all_bool(column: pd.Series) -> bool:
    values = column.dropna()
    return len(values) > 0 and all(isinstance(value, bool) for value in values)


def _given_delimiter(options: _Options) -> str | None:
    return _one_character(options.delimiter, options.where)


def _fallback_delimiter(options: _Options) -> str | None:
    return _one_character(options.fallback_delimiter, options.where)


def _one_character(name: str | None, where: str) -> str | None:
    if name is None:
        return None
    delimiter = _DELIMITER_NAMES.get(name.lower(), name)
    if len(delimiter) != 1:
        raise DataError(f"the delimiter must be one character, got {name!r}", where=where,
                        hint="use one of , ; | or \\t (or leave it unset to sniff it)")
    return delimiter


def _sniff_delimiter(text: str, path: Path, where: str, preferred: str | None = None) -> str:
    """The candidate that splits the header and most sampled rows into the same (≥2) fields.

    ``preferred`` (the training config's delimiter) is tried first, so it wins ties, and is
    returned when no candidate fits: the parser then reports what is wrong with the rows.
    """
    tabs_first = {".tsv", ".tab"} & {suffix.lower() for suffix in path.suffixes}
    order = ("\t",) + tuple(d for d in CANDIDATE_DELIMITERS if d != "\t") if tabs_first else CANDIDATE_DELIMITERS
    if preferred is not None:
        order = (preferred,) + tuple(d for d in order if d != preferred)
    sample = text[:_SAMPLE_BYTES]
    if len(text) > _SAMPLE_BYTES:
        sample = sample[: sample.rfind("\n") + 1] or sample  # no half line at the end
    best, best_score = ",", -1.0
    for delimiter in order:
        reader = csv.reader(io.StringIO(sample), delimiter=delimiter)
        records = [row for row in itertools.islice(reader, _SNIFF_RECORDS) if row]
        if not records or len(records[0]) < 2:
            continue
        counts = Counter(len(row) for row in records)
        score = counts[len(records[0])] / len(records)
        if score > best_score:
            best, best_score = delimiter, score
    if preferred is not None and best_score < 0.5:
        return preferred
    if 0 <= best_score < 0.5 and sample.count("\n") >= 5:
        raise DataError("not a table: rows have different numbers of fields", where=where,
                        hint="check the delimiter (pass delimiter=...) and that fields containing it are quoted")
    return best


def _read_with_pyarrow(source: str | io.BytesIO, delimiter: str) -> pa.Table:
    table = pacsv.read_csv(
        source,
        parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=True,
            true_values=[], false_values=[],  # no bool inference: "True"/"False" stay text, as with the C parser
        ),
    )
    columns = []
    for field, column in zip(table.schema, table.columns):
        if pa.types.is_null(field.type):
            column = column.cast(pa.float64())  # an all-empty column: NaN floats, as pandas reads it
        elif pa.types.is_temporal(field.type):
            column = column.cast(pa.string())  # ISO dates back to their text; inference parses dates
        columns.append(column)
    names = [name if name.strip() else f"Unnamed: {index}" for index, name in enumerate(table.column_names)]
    return pa.table(columns, names=names)


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    """Column by column, freeing each Arrow column once converted: the table and the frame are
    never both whole in memory."""
    frame = table.to_pandas(self_destruct=True, split_blocks=True)
    del table
    # Arrow's allocator keeps freed blocks for reuse; without this the CSV's parse buffers stay
    # resident (≈1.5× the frame at 1M rows) through every later stage.
    pa.default_memory_pool().release_unused()
    return frame


_ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowNotImplementedError)
