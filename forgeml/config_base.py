"""What every configuration shares (forgeml's ``Config``, the families' options, ``LMConfig``):
the strict base class (unknown keys are an error), and the one reader of dotted overrides —
``--set train.epochs=20`` on every command, ``Pipeline(overrides=...)``, a tuning trial's options.

Its own module because model families declare their options next to their code
(``forgeml.models.*``) and ``forgeml.config`` assembles them: both need this base, and neither
may import the other at module level.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

from pydantic import BaseModel, ConfigDict

from forgeml.errors import ConfigError


class StrictModel(BaseModel):
    """Unknown keys are an error: a typo in a config must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def parse_settings(items: Iterable[str], option: str = "--set") -> dict[str, Any]:
    """``["train.epochs=20", "model.type=gbm"]`` → ``{"train.epochs": 20, "model.type": "gbm"}``;
    each value is read as YAML, so numbers, booleans and lists arrive typed."""
    import yaml

    settings: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{option} {item!r} is not key=value", hint=f"e.g. {option} train.epochs=20")
        try:
            settings[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise ConfigError(f"{option} {item!r}: the value is not valid YAML", hint="quote it: --set 'key=\"a: b\"'") from None
    return settings


def set_dotted(raw: dict[str, Any], dotted: str, value: Any, *,
               missing: Callable[[str, list[str], str], None] | None = None, where: str = "overrides") -> None:
    """Set ``raw[a][b][c] = value`` for ``dotted`` "a.b.c". A section not yet in ``raw`` is created,
    unless ``missing(dotted, parents, part)`` refuses it by raising (naming the keys valid there)."""
    node = raw
    *parents, leaf = dotted.split(".")
    for depth, part in enumerate(parents):
        if part not in node:
            if missing is not None:
                missing(dotted, parents[:depth], part)
            node[part] = {}
        if not isinstance(node[part], dict):
            raise ConfigError(f"unknown key {dotted}: {'.'.join(parents[:depth + 1])} is a value, not a section", where=where,
                              hint="see the config reference (forgeml init writes every option)")
        node = node[part]
    node[leaf] = value
