"""API keys: read from a file, kept only as SHA-256 digests, compared in constant time.

The file holds one key per line (``#`` comments and blank lines ignored); a line
``sha256:<64 hex>`` is a key already hashed, so the file itself need not hold secrets.
Clients send ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``; a browser opening ``/docs``
sends HTTP Basic (``Authorization: Basic base64(user:key)``, the user name ignored), which it asks
for once and then attaches to every request of the page, "Try it out" included.
"""
from __future__ import annotations

import hashlib
import hmac
import re
from pathlib import Path

from forgeml.errors import ConfigError

_HASHED = re.compile(r"^sha256:([0-9a-fA-F]{64})$")


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def load_key_digests(path: Path) -> tuple[bytes, ...]:
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the API key file ({exc.__class__.__name__})", where=str(path), hint="one key per line, UTF-8") from None
    digests = []
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        hashed = _HASHED.match(line)
        digests.append(bytes.fromhex(hashed.group(1)) if hashed else digest(line))
    if not digests:
        raise ConfigError("the API key file holds no keys", where=str(path), hint="one key per line (or sha256:<hex>)")
    return tuple(digests)


def presented_key(headers: dict[bytes, bytes]) -> str | None:
    value = headers.get(b"x-api-key")
    if value is None:
        auth = headers.get(b"authorization", b"")
        scheme, _, token = auth.partition(b" ")
        scheme = scheme.lower()
        value = token.strip() if scheme == b"bearer" else _basic_password(token.strip()) if scheme == b"basic" else None
    return value.decode("latin-1") if value else None


def _basic_password(token: bytes) -> bytes | None:
    import base64
    import binascii

    try:
        decoded = base64.b64decode(token, validate=True)
    except (binascii.Error, ValueError):
        return None
    _, colon, password = decoded.partition(b":")
    return password if colon else None


def is_authorized(key: str | None, digests: tuple[bytes, ...]) -> bool:
    """Checks every stored digest (no early exit), so timing does not tell which key nearly matched."""
    candidate = digest(key or "")
    matched = False
    for stored in digests:
        matched |= hmac.compare_digest(candidate, stored)
    return matched and key is not None
