"""``model.type: auto``, the default: the family is chosen from the data when the config is resolved.

Why a choice and not one default family: for tables (numbers, categories, dates, text columns)
the AutoML ensemble wins — bagged GBMs, CatBoost, a linear model and forgeml's MLP, weighted on
out-of-fold predictions — and that is what AutoGluon users expect from one command. For images
the ensemble's tree and linear members read nothing, and a bagged CNN costs its folds over in
time, so an image input keeps the single network (the MLP family with an image encoder per
picture column), as does a run under torchrun, which the ensemble's members do not use, and a
differentially private run (``train.privacy``), since only a network trains with DP-SGD.

``choose_family`` is the whole rule; ``forgeml.workflow.resolve_config`` calls it, and the
resolved ``config.yaml`` in the bundle names the family chosen, never ``auto``. This module
provides the options class only (no ``build``/``load``): nothing is ever built as ``auto``.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from pydantic import Field

from forgeml.config_base import StrictModel as _Strict
from forgeml.train.ranks import distributed

TABLE_FAMILY = "ensemble"
NETWORK_FAMILY = "mlp"


class AutoConfig(_Strict):
    """Choose the family from the data: the AutoML ensemble (``preset``) for tables, the MLP
    network when an input is an image or the run is distributed."""

    type: Literal["auto"] = Field("auto", description="auto (the default): the family is chosen from the data when the run starts: ensemble for tables (with text or date columns too), mlp when an input is an image or under torchrun; the bundle's config.yaml names the one chosen.")
    preset: Literal["fast", "medium", "best"] = Field("medium", description="The ensemble's preset when the ensemble is chosen (see model.type: ensemble).")


def choose_family(feature_types: Iterable[str], *, private: bool = False) -> tuple[str, str]:
    """(family, why) for inputs of these feature types; ``private``: ``train.privacy.epsilon`` is set."""
    if private:
        return NETWORK_FAMILY, "differentially private training: one network trained with DP-SGD (trees and the ensemble have no DP guarantee)"
    if "image" in set(feature_types):
        return NETWORK_FAMILY, "an input is an image: one network (the ensemble's trees and linear model cannot read pictures)"
    if distributed():
        return NETWORK_FAMILY, "training under torchrun: one network across the ranks (the ensemble fits on one machine)"
    return TABLE_FAMILY, "a table: the AutoML ensemble of the portfolio (forgeml/models/portfolio.yaml)"


def resolve(model: dict, feature_types: Iterable[str], *, private: bool = False) -> tuple[dict, str]:
    """The resolved ``model:`` section for an ``auto`` one, and why it was chosen."""
    family, why = choose_family(feature_types, private=private)
    resolved = {"type": family, "preset": model.get("preset", "medium")} if family == TABLE_FAMILY else {"type": family}
    return resolved, why
