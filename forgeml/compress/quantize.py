"""int8 quantisation (placeholder until the ONNX Runtime path lands in the next commit)."""
from __future__ import annotations

from typing import Any

from forgeml.compress.errors import CompressError
from forgeml.compress.networks import require_network

DTYPES = ("int8",)


def check(source: Any, options: dict[str, Any]) -> None:
    """Refuse a dtype other than int8 and a bundle without a torch network, before data is read."""
    dtype = str(options.get("dtype", "")).lower()
    if dtype not in DTYPES:
        raise CompressError(f"--quantize {options.get('dtype')!r} is not supported", where="--quantize", hint="use --quantize int8")
    require_network(source, "int8 quantisation", "--quantize")


def compress(source: Any, data: Any, options: dict[str, Any]) -> Any:
    check(source, options)
    raise CompressError("int8 quantisation is not written yet", where="--quantize", hint="update forgeml")
