"""What the tabular families (CatBoost, linear) share about their inputs.

They read the ``dense`` and ``codes`` arrays only. A text or image column they were given is
refused in one line naming it, rather than dropped: a dropped column would still be listed in the
model card and the config while the model never read it (issue 18: "--model gbm drops text
columns without a word").
"""
from __future__ import annotations

from typing import Any


def refuse_unread_inputs(spec: Any, family: str) -> None:
    """One ``ConfigError`` naming the first text or image column ``family`` cannot read."""
    unread = [(token.feature, "text") for token in getattr(spec, "tokens", [])] + [(image.feature, "image") for image in getattr(spec, "images", [])]
    if unread:
        from forgeml.errors import ConfigError

        name, kind = unread[0]
        raise ConfigError(f"the {family} model cannot read {kind} column {name!r}", where=f"model.type: {family}",
                          hint=f"leave it out (--set 'data.drop=[{name}]'), or use a neural model (--model mlp) that reads {kind}")
