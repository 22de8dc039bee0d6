"""Kept for imports from issue 2: the tabular MLP is now ``network.FusionNet`` with numbers and
categories only (same modules, same order); its blocks live in ``combiners``."""
from forgeml.models.combiners import ACTIVATIONS, NORMS, Block  # noqa: F401
from forgeml.models.network import FusionNet as TabularMLP  # noqa: F401
