"""Search spaces as data: each family's options class declares ``search_space`` (a ClassVar of
dotted config keys → dimensions), next to the fields it tunes, so the options, their defaults and
the ranges worth searching are read in one place (Ludwig's habit: one description per field).

This module imports only the standard library: the family modules import it at their top level,
and they are imported whenever a config is read. Optuna meets these dimensions only in
``sample``, which receives the trial.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping


@dataclass(frozen=True)
class Int:
    """An integer in [low, high]; ``log``: sampled on a log scale (leaves, rows per leaf)."""

    low: int
    high: int
    log: bool = False
    when: str | None = None  # an input kind ("text", "image") the data must have for this to matter

    def suggest(self, trial: Any, name: str) -> int:
        return trial.suggest_int(name, self.low, self.high, log=self.log)


@dataclass(frozen=True)
class Float:
    """A float in [low, high]; ``log`` for rates and penalties that matter by their order of magnitude."""

    low: float
    high: float
    log: bool = False
    when: str | None = None

    def suggest(self, trial: Any, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, log=self.log)


@dataclass(frozen=True)
class Choice:
    """One of ``values`` (widths, encoder types, on/off)."""

    values: tuple[Any, ...]
    when: str | None = None

    def suggest(self, trial: Any, name: str) -> Any:
        return trial.suggest_categorical(name, list(self.values))


Dimension = Int | Float | Choice
Space = Mapping[str, Dimension]


def search_space(family: str) -> Space | None:
    """The family's declared space (``search_space`` on its options class), or None when it has
    none (the ensemble: its members are tuned instead)."""
    from forgeml.models.families import config_class

    return getattr(config_class(family), "search_space", None)


def active(space: Space, input_kinds: set[str]) -> dict[str, Dimension]:
    """The dimensions that matter for this data: a text encoder's type is no dimension of a
    table without text."""
    return {key: dim for key, dim in space.items() if dim.when is None or dim.when in input_kinds}


def sample(trial: Any, space: Space) -> dict[str, Any]:
    """One point of ``space`` drawn by ``trial``: config overrides, ``{"model.num_leaves": 63, …}``."""
    return {key: dim.suggest(trial, key) for key, dim in space.items()}


def signature(space: Space) -> str:
    """The space as text, stored with the study: a study resumed with another space (another
    forgeml version, other data kinds) is refused instead of mixing incomparable trials."""
    return json.dumps({key: repr(dim) for key, dim in sorted(space.items())}, sort_keys=True)
