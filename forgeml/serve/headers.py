"""Response header values: HTTP headers carry Latin-1 only, and run names need not be Latin-1."""
from __future__ import annotations


def header_value(text: str) -> str:
    """``text`` for an HTTP header, which carries Latin-1 only: a run or folder named in Chinese
    (``订单-1a2b@…``) is percent-encoded as UTF-8, as a URL would be; ASCII passes unchanged."""
    from urllib.parse import quote

    return text if text.isascii() else quote(text, safe="@-_.~+:/ ")
