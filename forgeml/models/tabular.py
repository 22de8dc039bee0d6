"""What the tabular families (CatBoost, linear) and the text families (ngram, embed) share about their inputs.

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


def require_text_inputs(spec: Any, family: str) -> None:
    """The text families' twin of ``refuse_unread_inputs``: they refuse images and need a text column."""
    from forgeml.errors import ConfigError

    if getattr(spec, "images", None):
        raise ConfigError(f"the {family} model cannot read image column {spec.images[0].feature!r}", where=f"model.type: {family}",
                          hint="use a neural model (--model cnn or mlp) for images, or the ensemble")
    if not spec.tokens:
        raise ConfigError(f"the {family} model reads text, and this table has no text column", where=f"model.type: {family}",
                          hint="use --model linear for numbers and categories, or mark a column as text (features: type text)")
