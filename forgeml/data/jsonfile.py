"""JSON tables: an array of records, JSON lines, or any layout pandas' ``to_json`` writes."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from forgeml.data.rawfile import _Options, _decode, _read_bytes
from forgeml.errors import DataError


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

