"""The compress command's one error type: a ``ForgeError``, so the CLI prints one line."""
from __future__ import annotations

from forgeml.errors import ForgeError


class CompressError(ForgeError):
    """A bundle or option ``forgeml compress`` cannot work with (wrong family, bad amount, no data)."""
