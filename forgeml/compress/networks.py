"""What quantisation and pruning share: only the torch network families can be compressed by
them, and the refusal for any other family says what works instead."""
from __future__ import annotations

from typing import Any

from forgeml.compress.errors import CompressError


def require_network(source: Any, doing: str, flag: str) -> None:
    """Refuse a bundle whose model is not one torch network (or a bag of them) for ``doing``."""
    from forgeml.models.families import network_types

    family = source.predictor_.config.model.type
    estimator = source.predictor_.estimator
    members = getattr(estimator, "members", None) or [estimator]
    if family in network_types() and all(hasattr(member, "model") for member in members):
        return
    if getattr(estimator, "quantized", False):
        raise CompressError(f"this bundle is already int8-quantised; {doing} works on the float network", where=flag,
                            hint="compress the bundle it was made from (its compression.json names it)")
    raise CompressError(f"{doing} is for the network families ({', '.join(network_types())}); this bundle's model is {family}",
                        where=flag, hint="distil it into a network first (forgeml compress BUNDLE --distill), then compress that bundle")
