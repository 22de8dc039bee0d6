"""forgeml: raw data to a trained, evaluated, reported and served PyTorch model.

``import forgeml`` is cheap: ``Pipeline`` and friends are imported on first use, so the CLI's
``--help`` and ``runs list`` never pay for torch.
"""
from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["Pipeline", "Predictor", "Config", "ForgeError", "__version__"]

_LAZY = {
    "Pipeline": ("forgeml.api", "Pipeline"),
    "Predictor": ("forgeml.predict", "Predictor"),
    "Config": ("forgeml.config", "Config"),
    "ForgeError": ("forgeml.errors", "ForgeError"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attribute = _LAZY[name]
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module 'forgeml' has no attribute {name!r}")
