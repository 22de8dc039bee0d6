"""Time budgets as people write them: ``90s``, ``10m``, ``1.5h`` or plain seconds (``120``)."""
from __future__ import annotations

import re

from forgeml.errors import ConfigError

_UNITS = {"": 1.0, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_duration(text: str, *, where: str = "--time-budget") -> float:
    """Seconds in ``text``; a ``ConfigError`` naming ``where`` for anything else."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*", str(text).lower())
    if not match or match.group(2) not in _UNITS or float(match.group(1)) <= 0:
        raise ConfigError(f"{text!r} is not a time budget", where=where, hint="write seconds or a duration such as 90s, 10m or 1h")
    return float(match.group(1)) * _UNITS[match.group(2)]
