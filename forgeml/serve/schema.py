"""Request and response models generated from a bundle's input features.

One pydantic field per input column, named exactly as in the training data (an alias, since a
column may be called "carat weight" or "class"), so ``/docs`` and ``/openapi.json`` show the real
names and JSON types, and a wrong type or a missing column is a 422 naming the field. Every field
is required but may be ``null`` (a missing value is filled like at training time); numbers must
be finite (NaN and Infinity are rejected: send ``null`` for "unknown"). Fields the model does not
use (an id, the label, a timestamp) are accepted and ignored, as ``forgeml predict`` and the CSV
route ignore extra columns; ``"keep": ["order_id"]`` echoes them back with each prediction
(``inputs``), as ``forgeml predict --keep`` does.
"""
from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, StrictStr, WithJsonSchema, create_model, model_validator

Number = Annotated[Union[float, None], Field(strict=True, allow_inf_nan=False)]


def _one_of(kinds: tuple[type, ...], words: str, schema: list[dict[str, str]]) -> Any:
    """A strict union with ONE error naming the field (pydantic would report one per member)."""

    def check(value: Any) -> Any:
        if value is None or (isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)):
            return value
        raise ValueError(f"should be {words} (or null)")

    return Annotated[Any, PlainValidator(check), WithJsonSchema({"anyOf": [*schema, {"type": "null"}]})]


def _image_value(value: Any) -> Any:
    """Base64 text → the image's bytes; ``{"path": ...}`` → an ``ImagePath`` read later under
    ``--image-root`` (refused there when the server has none)."""
    from forgeml.serve.images import ImagePath, decode_base64

    if value is None:
        return None
    if isinstance(value, str):
        return decode_base64(value)
    if isinstance(value, dict) and set(value) == {"path"} and isinstance(value["path"], str):
        return ImagePath(value["path"])
    raise ValueError('should be the image\'s bytes in base64 (or a data: URL), {"path": "<file under --image-root>"} or null')


ImageInput = Annotated[Any, PlainValidator(_image_value), WithJsonSchema({"anyOf": [
    {"type": "string", "contentEncoding": "base64"},
    {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"], "additionalProperties": False},
    {"type": "null"}]})]

Label = _one_of((str, int), "text or an integer", [{"type": "string"}, {"type": "integer"}])  # 3 and "3" are the same category
Flag = _one_of((bool, str, int), "true/false, text or an integer", [{"type": "boolean"}, {"type": "string"}, {"type": "integer"}])
Text = Union[StrictStr, None]

# feature type → (field type, how /docs describes it); a new feature type adds one line.
FIELD_TYPES: dict[str, tuple[Any, str]] = {
    "number": (Number, "a number (null = missing)"),
    "category": (Label, "one of the training values; unseen values count as <other>"),
    "binary": (Flag, "yes/no value: true/false, 1/0 or the training labels"),
    "text": (Text, "free text"),
    "date": (Text, "date or timestamp as text"),
    "image": (ImageInput, "the image's bytes in base64 (PNG, JPEG, GIF, BMP, WebP, TIFF; a data: URL too), "
                          "or {\"path\": ...} of a file under the server's --image-root"),
}
FALLBACK = (Text, "value as text")


def _example(feature: Any) -> Any:
    state = feature.state or {}
    if feature.type_name == "number":
        return round(float(state.get("fill", 0.0)), 4)
    if feature.type_name == "category":
        vocabulary = state.get("vocabulary", [])
        return vocabulary[1] if len(vocabulary) > 1 else "value"
    if feature.type_name == "binary":
        return state.get("true_value", "yes")
    if feature.type_name == "date":
        return str(state.get("fill", "2020-01-01"))[:10]
    if feature.type_name == "image":
        return _tiny_png()
    return "some text"


def _tiny_png() -> str:
    """An 8×8 grey PNG in base64: a valid image for /docs' example and the warm-up request."""
    import base64
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("L", (8, 8), 128).save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode("ascii")


# Categories listed in a field's description; a longer vocabulary is cut with "and N more".
MAX_LISTED_CATEGORIES = 20


def _number_detail(feature: Any, state: dict[str, Any]) -> str:
    low, high = state.get("low"), state.get("high")
    strategy = getattr(feature.config, "missing", None)
    parts = [f"missing → {_short(state['fill'])}" + (f" (missing: {strategy})" if strategy else "") if "fill" in state else ""]
    if low is not None or high is not None:
        parts.append(f"values outside [{_short(low) if low is not None else '-∞'}, {_short(high) if high is not None else '∞'}] "
                     "(learned on the train split) are clipped to it" + (" for the networks and linear models (the trees read them as they are)"
                                                                         if state.get("unclipped_copy") else ""))
    return "; ".join(p for p in parts if p)


def _category_detail(feature: Any, state: dict[str, Any]) -> str:
    known = [v for v in state.get("vocabulary", []) if v != "<other>"]
    listed = ", ".join(repr(v) for v in known[:MAX_LISTED_CATEGORIES])
    more = f" and {len(known) - MAX_LISTED_CATEGORIES} more" if len(known) > MAX_LISTED_CATEGORIES else ""
    return f"training values: {listed}{more}" if known else ""


def _binary_detail(feature: Any, state: dict[str, Any]) -> str:
    values = state.get("values") or []
    return f"training values: {', '.join(repr(v) for v in values)}; {state['true_value']!r} counts as true" if values and "true_value" in state else ""


def _date_detail(feature: Any, state: dict[str, Any]) -> str:
    fmt = state.get("format") or getattr(feature.config, "format", None)
    return f"format {fmt}" if fmt else "ISO 8601 (YYYY-MM-DD) or any format pandas reads"


def _short(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


# feature type → what /docs adds from the fitted state (categories, clip range, date format)
FIELD_DETAILS: dict[str, Any] = {
    "number": _number_detail,
    "category": _category_detail,
    "binary": _binary_detail,
    "date": _date_detail,
}


def describe_field(feature: Any) -> str:
    """The description /docs and /v1/model show for one input: its type, what is accepted and,
    from the bundle's fitted features, the allowed categories or the clipping range."""
    _, words = FIELD_TYPES.get(feature.type_name, FALLBACK)
    detail = FIELD_DETAILS.get(feature.type_name, lambda *_: "")(feature, feature.state or {})
    return f"{feature.type_name}: {words}" + (f". {detail}" if detail else "")


def example_row(featureset: Any) -> dict[str, Any]:
    """A valid row built from fitted state (fills, vocabularies): shown in /docs, used to warm up."""
    return {feature.name: _example(feature) for feature in featureset.features}


def row_model(featureset: Any) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for position, feature in enumerate(featureset.features):
        kind, _ = FIELD_TYPES.get(feature.type_name, FALLBACK)
        fields[f"field_{position}"] = (kind, Field(..., alias=feature.name, description=describe_field(feature),
                                                   examples=[_example(feature)]))
    return create_model(
        "Row",
        # extra fields (an id to echo with "keep", the label) are kept unvalidated, not refused
        __config__=ConfigDict(extra="allow", populate_by_name=False, json_schema_extra={"example": example_row(featureset)}),
        **fields,
    )


# Names one request may ask to echo: enough for ids and keys, small enough to bound the answer.
MAX_KEEP = 20


def _kept_names_exist(request: Any) -> Any:
    """Every name in ``keep`` is in at least one row: a typo (``"oder_id"``) is a 422, not a
    column of nulls. A row without it echoes ``null``."""
    present = {name for row in request.rows for name in row.model_dump(by_alias=True)} if request.keep else set()
    absent = [name for name in request.keep if name not in present]
    if absent:
        raise ValueError(f"keep: {absent[0]!r} is not a field of any row (send it in the rows to echo it back)")
    return request


def request_model(featureset: Any, max_rows: int) -> type[BaseModel]:
    row = row_model(featureset)
    return create_model(
        "PredictRequest",
        __config__=ConfigDict(extra="forbid", json_schema_extra={"example": {"rows": [example_row(featureset)]}}),
        __validators__={"kept_names_exist": model_validator(mode="after")(_kept_names_exist)},
        rows=(list[row], Field(..., min_length=1, max_length=max_rows, description=f"1 to {max_rows} rows, one object per row")),
        keep=(list[StrictStr], Field([], max_length=MAX_KEEP, description="fields of each row to echo back in its prediction's "
                                                                           "`inputs` (an id, say), like `forgeml predict --keep`")),
    )


def echo_kept(keep: list[str], rows: list[dict[str, Any]], predictions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each prediction with ``inputs``: the row's values of the ``keep`` names (null where absent)."""
    if not keep:
        return predictions
    return [{**prediction, "inputs": {name: row.get(name) for name in keep}} for row, prediction in zip(rows, predictions)]


class RowPrediction(BaseModel):
    prediction: Union[str, float, dict[str, Union[float, None]], None] = Field(
        description="class label; a number for regression; {target: number} for several targets")
    probabilities: Union[dict[str, Union[float, None]], None] = Field(None, description="class → probability (classification only)")
    inputs: Union[dict[str, Any], None] = Field(None, description="the request's `keep` fields of this row, echoed (only when asked)")


class PredictResponse(BaseModel):
    model_version: str
    predictions: list[RowPrediction]


class ModelInfo(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    kind: str
    model_version: str
    task: str | None = None
    model: str | None = None
    backend: str
    target: list[str] = []
    classes: list[str] | None = None
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    metrics: dict[str, Any] = {}
    limits: dict[str, Any] = {}
