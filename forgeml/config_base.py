"""The base of every configuration section: unknown keys are an error.

Its own module because model families declare their options next to their code
(``forgeml.models.*``) and ``forgeml.config`` assembles them: both need this base, and neither
may import the other at module level.
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Unknown keys are an error: a typo in a config must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
