"""The compression methods: one line each, naming the function that makes the smaller model.

A method is a function ``compress(source, data, options) -> Pipeline``:

- ``source``: the bundle to compress, loaded (``forgeml.api.Pipeline.load``; ``source.predictor_``
  holds config, featureset, task and estimator). It must not be changed: build a new Pipeline
  (or a deep copy) and leave ``source`` as it was — the trade-off table measures it afterwards.
- ``data``: the rows the bundle was trained and tested on, transformed by the bundle's own
  FeatureSet (``forgeml.compress.data.PreparedData``: ``frames``/``arrays``/``targets`` per split
  "train", "validation", "test"), or None when the bundle names no readable data and the user
  gave no ``--data``. A method that needs rows (pruning's fine-tune, distillation) raises
  ``CompressError`` when it is None; quantisation does not need them.
- ``options``: the command's options as a dict (``{"amount": 0.5, "structured": True}``,
  ``{"dtype": "int8"}``, distillation's own), already checked for type by the CLI; the method
  checks their meaning and raises ``CompressError`` (one line, ``where=`` the option, ``hint=``).

It returns a fitted Pipeline whose ``predictor_`` scores like the source (same FeatureSet and
task) and whose ``save`` writes everything the new model needs without pickle; ``run`` evaluates
it on the test split, measures both, and writes the new bundle atomically. A method refuses a
bundle it cannot compress (a GBM for quantisation) with the family named and what works instead.

Adding a method is a module with that function plus one line here (and its CLI flag in ``cli``).
"""
from __future__ import annotations

import importlib
from typing import Any, Callable

# method → "module:function"
METHODS: dict[str, str] = {
    "quantize": "forgeml.compress.quantize:compress",
    "prune": "forgeml.compress.prune:compress",
    "distill": "forgeml.compress.distill:compress",  # written by the distill branch
}


def method_function(name: str) -> Callable[..., Any]:
    """The function registered for ``name`` (imported now: methods import torch)."""
    from forgeml.compress.errors import CompressError

    target = METHODS.get(name)
    if target is None:
        raise CompressError(f"unknown compression method {name!r}", where="forgeml compress", hint=f"one of: {', '.join(METHODS)}")
    module, _, function = target.partition(":")
    try:
        return getattr(importlib.import_module(module), function)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        raise CompressError(f"the {name} method is not installed in this forgeml", where=f"--{name}",
                            hint=f"update forgeml (its module {module} is missing)") from None
