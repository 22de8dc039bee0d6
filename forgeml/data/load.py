"""Read a table from disk (or take a DataFrame) without surprising the user.

Real files arrive as UTF-8 with or without a BOM, as GBK or Big5 from Chinese spreadsheets or as
Latin-1/cp1252 from older Western ones, separated by commas, semicolons, tabs or pipes. This
module sniffs all of that, reads numbers as numbers on a fast path (pyarrow, falling back to
pandas' C parser), and turns every way a file can be unusable into one ``DataError`` that names
the file and says what to do — never a parser traceback.

Only *empty* fields are missing here. Strings such as "NA" or "None" stay strings: whether they
mean "missing" (in a number or date column) or are a real category is decided by inference.

Dtypes returned for text formats: integer columns ``int64`` (``float64`` when they have
missing values), decimal columns ``float64``, everything else pandas' ``str`` dtype with NaN for
missing (dates and "True"/"False" included: inference decides what they are); a column with no
values at all is ``float64`` NaN. Parquet and JSON keep the types stored in the file.
"""
from __future__ import annotations

import codecs
import csv
import difflib
import gzip
import io
import itertools
import json
import unicodedata
import warnings
from collections import Counter
from pathlib import Path
from typing import BinaryIO, Callable, NamedTuple

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from forgeml.errors import DataError

CANDIDATE_DELIMITERS = (",", "\t", ";", "|")
_DELIMITER_NAMES = {"\\t": "\t", "tab": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
_SAMPLE_BYTES = 1 << 16  # enough lines to sniff the delimiter and spot binary data, still instant
_SNIFF_RECORDS = 200
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


def describe_source(source: object) -> str:
    """A short name for messages and reports: the file name, or "DataFrame" (the name of the file
    ``load_table`` read it from, if it did: ``forgeml predict --keep`` reads first, then predicts)."""
    if isinstance(source, pd.DataFrame):
        return str(source.attrs.get("source", "DataFrame"))
    return Path(str(source)).name or str(source)


def load_table(
    source: str | Path | pd.DataFrame, *, encoding: str | None = None, delimiter: str | None = None,
    fallback_encoding: str | None = None, fallback_delimiter: str | None = None, name: str | None = None,
) -> pd.DataFrame:
    """Load ``source`` (a path, a DataFrame, or an image folder) as a DataFrame with clean, unique column names.

    A folder is read as an ImageFolder (``data.images``): one sub-folder per class.

    A DataFrame is copied, never modified. Files are read by extension (.csv .tsv .txt
    .parquet .pq .jsonl .ndjson .json, optionally .gz); unknown extensions are sniffed.
    ``encoding`` and ``delimiter`` override sniffing. ``fallback_encoding`` keeps the sniffing
    but tries that encoding right after UTF-8: for files other than the one a configured
    ``data.encoding`` was written for (data to predict, a separate test file), which may well be
    UTF-8 although the training file was GBK. ``fallback_delimiter`` does the same for a
    configured ``data.delimiter``: each file is sniffed, and that delimiter wins ties and is used
    when sniffing finds nothing (a one-column file, rows that disagree), so a comma-separated file
    to predict is read by commas although the training file used semicolons. ``name`` is what
    messages call the file (default: its path), e.g. an upload's own name rather than the
    temporary file holding it.

    Raises:
        DataError: missing file, folder, empty file, header without rows, not a table,
            undecodable text, unreadable Parquet, duplicate column names.
    """
    if isinstance(source, pd.DataFrame):
        return _tidy(source.copy(), where="DataFrame")
    if Path(source).expanduser().is_dir():
        from forgeml.data.images import image_folder_frame

        return image_folder_frame(Path(source).expanduser())
    path = _existing_file(source, name)
    options = _Options(encoding, delimiter, name or str(path), fallback_encoding, fallback_delimiter)
    frame = _READERS[_format_of(path, options.where)](path, options)
    frame = _tidy(frame, options.where)
    if len(frame) == 0:
        raise DataError("the file has column names but no rows", where=options.where,
                        hint="add data rows below the header")
    frame.attrs["base_dir"] = str(path.resolve().parent)  # relative image paths are read from here
    frame.attrs["source"] = describe_source(options.where)  # messages about this frame name its file
    return frame


# ----------------------------------------------------------------------------- paths
def load_upload(handle: BinaryIO, name: str, *, encoding: str | None = None, delimiter: str | None = None,
                fallback_encoding: str | None = None, fallback_delimiter: str | None = None) -> pd.DataFrame:
    """An uploaded file (say, a CSV posted to the server) read by exactly ``load_table``'s rules.

    Why not ``pd.read_csv`` on the stream: an upload comes from the same spreadsheets as training
    data (GBK, a BOM, semicolons, "NA" as a category), and reading it by other rules would score
    other values than the model was trained on. The bytes are spooled to a temporary file named
    like the upload (its extension picks the format, as on disk); messages name the upload.
    """
    import re
    import shutil
    import tempfile

    shown = Path(name or "upload").name or "upload"
    safe = re.sub(r"[^\w.-]", "_", shown, flags=re.ASCII).lstrip(".") or "upload"
    with tempfile.TemporaryDirectory(prefix="forgeml-upload-") as folder:
        path = Path(folder) / safe
        with open(path, "wb") as out:
            shutil.copyfileobj(handle, out, 1 << 20)
        frame = load_table(path, encoding=encoding, delimiter=delimiter, fallback_encoding=fallback_encoding,
                           fallback_delimiter=fallback_delimiter, name=shown)
    frame.attrs.pop("base_dir", None)  # the temporary folder is gone
    return frame


def _existing_file(source: str | Path, name: str | None = None) -> Path:
    path = Path(source).expanduser()
    where = name or str(path)
    if path.is_dir():
        raise DataError("this is a folder, not a file", where=where,
                        hint="give the path of a data file inside it")
    if not path.is_file():
        folder = path.parent
        if not folder.is_dir():
            raise DataError("file not found (its folder does not exist either)", where=where,
                            hint="check the path")
        names = [entry.name for entry in folder.iterdir() if entry.is_file()]
        close = difflib.get_close_matches(path.name, names, n=3, cutoff=0.6)
        hint = ("did you mean " + " or ".join(repr(name) for name in close) + "?") if close else "check the path"
        raise DataError("file not found", where=where, hint=hint)
    if path.stat().st_size == 0:
        raise DataError("the file is empty (0 bytes)", where=where, hint=_TEXT_HINT)
    return path


def _format_of(path: Path, where: str) -> str:
    suffixes = [suffix.lower() for suffix in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    suffix = suffixes[-1] if suffixes else ""
    if suffix in (".xlsx", ".xls", ".xlsm", ".ods"):
        raise DataError("spreadsheet files are not read directly", where=where,
                        hint="save the sheet as CSV (UTF-8) and use that file")
    if suffix in _FORMAT_BY_SUFFIX:
        return _FORMAT_BY_SUFFIX[suffix]
    with path.open("rb") as handle:
        head = handle.read(64)
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith((b"[", b"{")):
        return "json"
    return "text"


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


# ----------------------------------------------------------------------------- text tables
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


# ----------------------------------------------------------------------------- parquet, json
def _read_parquet(path: Path, options: _Options) -> pd.DataFrame:
    try:
        return pq.read_table(path).to_pandas()
    except (OSError, *_ARROW_ERRORS) as exc:
        raise DataError(f"not a readable Parquet file ({exc})", where=options.where,
                        hint="re-export the file, or check it is really Parquet") from None


def _read_json(path: Path, options: _Options) -> pd.DataFrame:
    text = _decode(_read_bytes(path, options.where), options.encoding, options.where, options.fallback_encoding)
    return _frame_from_json(text, options.where)


_JSON_HINT = 'expected an array of records, [{"column": value, ...}, ...], or JSON lines: one such object per line'


def _frame_from_json(text: str, where: str) -> pd.DataFrame:
    """A JSON array of records, an object (of column lists; pandas' default ``to_json`` layout
    {column: {row: value}}; its "split" and "table" layouts; or a single record), or JSON lines
    (one record per line). Anything else is a ``DataError`` saying which layout is expected."""
    stripped = text.strip()
    try:
        whole, error = json.loads(stripped), None
    except json.JSONDecodeError as exc:
        whole, error = None, exc  # JSON lines, or a document with a syntax error: told apart below
    if isinstance(whole, list):
        return _frame_from_records(whole, where)
    if isinstance(whole, dict):
        return _frame_from_object(whole, where)
    if error is not None and stripped.startswith("["):  # an array: its error, not line 1's
        raise _json_error(error, where)
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                if not records and error is not None:  # not JSON lines: a pretty-printed object
                    raise _json_error(error, where) from None
                raise DataError(f"not valid JSON on line {number} ({exc.msg})", where=where, hint=_JSON_HINT) from None
    return _frame_from_records(records, where)


def _json_error(error: json.JSONDecodeError, where: str) -> DataError:
    return DataError(f"not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})", where=where, hint=_JSON_HINT)


def _frame_from_object(whole: dict, where: str) -> pd.DataFrame:
    """The table a top-level JSON object holds, by layout (see ``_frame_from_json``)."""
    values = list(whole.values())
    if {"columns", "data"} <= set(whole) <= {"columns", "data", "index"} and isinstance(whole["data"], list):
        return pd.DataFrame(whole["data"], columns=whole["columns"])  # pandas' orient="split"
    if set(whole) == {"schema", "data"} and isinstance(whole["data"], list):  # pandas' orient="table"
        frame = _frame_from_records(whole["data"], where)
        keys = whole["schema"].get("primaryKey") if isinstance(whole["schema"], dict) else None
        return frame.drop(columns=[key for key in keys or [] if key == "index" and key in frame.columns])
    if values and all(isinstance(value, list) for value in values):
        if len({len(value) for value in values}) > 1:
            lengths = ", ".join(f"{key!r}: {len(value)}" for key, value in list(whole.items())[:5])
            raise DataError(f"not a table: an object of columns whose lists differ in length ({lengths})", where=where,
                            hint=_JSON_HINT)
        lists = [key for key, value in whole.items() if value and all(isinstance(item, dict) for item in value)]
        if len(whole) == 1 and lists:  # {"data": [{...}, ...]}: records wrapped in an object
            raise DataError(f"not a table: the records are inside the key {lists[0]!r}", where=where,
                            hint="save that array on its own as the file's content; " + _JSON_HINT)
        return pd.DataFrame(whole)
    if values and all(isinstance(value, dict) for value in values):  # pandas' default: {column: {row: value}}
        rows_outside = all(str(key).isdigit() for key in whole) and not all(str(key).isdigit() for key in values[0])
        orient = "index" if rows_outside else "columns"  # {row: {column: value}}: pandas' orient="index"
        return pd.DataFrame.from_dict(whole, orient=orient).reset_index(drop=True).infer_objects()
    return _frame_from_records([whole], where)  # one record


def _frame_from_records(records: list, where: str) -> pd.DataFrame:
    if not records:
        raise DataError("the file holds no records", where=where, hint="add at least one record")
    if not all(isinstance(record, dict) for record in records):
        raise DataError("not a table: expected JSON objects (one per row)", where=where,
                        hint='each record should look like {"column": value, ...}')
    nested = any(isinstance(value, dict) for record in records[:1000] for value in record.values())
    return pd.json_normalize(records) if nested else pd.DataFrame.from_records(records)


_READERS: dict[str, Callable[[Path, _Options], pd.DataFrame]] = {
    "text": _read_text,
    "parquet": _read_parquet,
    "json": _read_json,
    "jsonl": _read_json,  # the JSON reader tells an array from lines by content
}
_FORMAT_BY_SUFFIX = {
    ".csv": "text", ".tsv": "text", ".txt": "text", ".tab": "text", ".dat": "text",
    ".parquet": "parquet", ".pq": "parquet",
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json",
}


# ----------------------------------------------------------------------------- tidy
def _tidy(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    """String column names without surrounding spaces, unique; categoricals as plain values."""
    frame.columns = [str(name).strip() for name in frame.columns]
    _check_unique(list(frame.columns), where)
    if len(frame.columns) == 0:
        raise DataError("the table has no columns", where=where, hint=_TEXT_HINT)
    for column, dtype in frame.dtypes.items():  # one dtypes lookup, not a Series per column
        if isinstance(dtype, pd.CategoricalDtype):
            frame[column] = frame[column].astype(dtype.categories.dtype)
    return frame


def _check_unique(names: list[str], where: str) -> None:
    duplicates = sorted(name for name, count in Counter(names).items() if count > 1)
    if duplicates:
        raise DataError("duplicate column names: " + ", ".join(repr(name) for name in duplicates), where=where,
                        hint="rename the columns so that each name appears once")
