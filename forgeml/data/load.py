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

import difflib
from pathlib import Path
from typing import BinaryIO, Callable

import pandas as pd
import pyarrow.parquet as pq

from forgeml.data.delimited import _ARROW_ERRORS, _read_text
from forgeml.data.jsonfile import _read_json
from forgeml.data.rawfile import _TEXT_HINT, _Options, _check_unique, _sniff_encoding  # noqa: F401  (lm.corpus uses it)
from forgeml.errors import DataError


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
    if path.exists() and not path.is_file():  # a FIFO, socket or device: reading it could wait forever
        raise DataError("not a regular file (a pipe, socket or device)", where=where,
                        hint="save the data to a file and give that file's path")
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




def _read_parquet(path: Path, options: _Options) -> pd.DataFrame:
    try:
        return pq.read_table(path).to_pandas()
    except (OSError, *_ARROW_ERRORS) as exc:
        raise DataError(f"not a readable Parquet file ({exc})", where=options.where,
                        hint="re-export the file, or check it is really Parquet") from None



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

