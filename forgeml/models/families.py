"""The model families: one line each, naming the module that holds the family's options and code.

A family module provides:
- its options, a pydantic class whose ``type`` literal is the family's name (the class named
  on its line below; ``forgeml.config`` builds ``model:``'s union from these),
- ``build(config, task, spec)`` and ``load(directory, config, task, spec)``, returning an
  ``Estimator`` (``forgeml.models.estimator``),
- ``describe(model_config, inputs) -> str``: the model card's one line,
- optionally ``STEP_NAME`` (what one step of its learning curve is: "epoch", "boosting round") and
  ``STEP_LIMIT`` (the dotted option bounding the steps, "train.epochs"),
- optionally ``FOLDS_SIDE_BY_SIDE = True``: a bag fits its folds in threads, one core each
  (``models/fold_threads.py``; for a family that releases the GIL and is thread-safe),
- optionally ``search_space`` on its options class (``forgeml.tune.space``): what ``forgeml tune`` searches,
- optionally ``NUMBERS = "unclipped"``: it reads numbers without outlier clipping under
  ``clean.outliers: auto`` (trees split on order, so clipping only merges a tail's values; the
  networks and the linear model keep the clipped ones: a z-scored tail reaching 100 swamps their
  weights). ``"both"``: its parts differ (the ensemble gets both and hands each member its own).

A family may instead be a choice among the others (``auto``, the default): its module provides
``resolve(model_section, feature_types) -> (model_section, why)``, which
``forgeml.workflow.resolve_config`` calls, so nothing is ever built under its name.

The module is imported whenever a config is read, so its top level imports only pydantic and
the standard library; torch, LightGBM and the rest are imported inside ``build``/``load``.
Adding a family (CatBoost, say) is that module plus one line here.
"""
from __future__ import annotations

import importlib
from functools import lru_cache
from types import ModuleType
from typing import Annotated, Any, Union

# family → "module:OptionsClass", in the order the config reference lists them
FAMILIES: dict[str, str] = {
    "mlp": "forgeml.models.networks:MLPConfig",
    "cnn": "forgeml.models.networks:CNNConfig",
    "rnn": "forgeml.models.networks:RNNConfig",
    "transformer": "forgeml.models.networks:TransformerConfig",
    "pretrained": "forgeml.models.networks:PretrainedConfig",
    "gbm": "forgeml.models.gbm:GBMConfig",
    "catboost": "forgeml.models.catboost_family:CatBoostConfig",
    "linear": "forgeml.models.linear:LinearConfig",
    "ngram": "forgeml.models.ngram:NgramConfig",
    "embed": "forgeml.models.embed:EmbedConfig",
    "ensemble": "forgeml.models.ensemble:EnsembleConfig",
    "auto": "forgeml.models.auto:AutoConfig",  # a choice among the others, made when the config is resolved
}
NETWORK_MODULE = "forgeml.models.networks"
DEFAULT_FAMILY = "auto"  # model.type when a config does not say: the ensemble for tables, a network for images


def family_module(name: str) -> ModuleType:
    """The module of family ``name`` (a KeyError for an unknown one: the config was validated)."""
    return importlib.import_module(FAMILIES[name].partition(":")[0])


@lru_cache(maxsize=None)
def config_class(name: str) -> type:
    module, _, attribute = FAMILIES[name].partition(":")
    return getattr(importlib.import_module(module), attribute)


def model_config_union() -> Any:
    """``model:``'s type: a union of every family's options, told apart by ``type``."""
    from pydantic import Field  # here, not at the top: the CLI reads FAMILIES for its --help without pydantic

    classes = tuple(config_class(name) for name in FAMILIES)
    return Annotated[Union[classes], Field(discriminator="type")]  # type: ignore[valid-type]


def network_types() -> tuple[str, ...]:
    """The families that are torch networks (they share the network options and the Trainer)."""
    return tuple(name for name, target in FAMILIES.items() if target.partition(":")[0] == NETWORK_MODULE)


def reads_numbers(name: str) -> str:
    """"clipped", "unclipped" or "both": how family ``name`` reads numbers under ``clean.outliers: auto``."""
    return getattr(family_module(name), "NUMBERS", "clipped") if name in FAMILIES else "clipped"


def step_name(name: str) -> str:
    return getattr(family_module(name), "STEP_NAME", "epoch") if name in FAMILIES else "epoch"
