"""Which numbers each ensemble member reads. Under ``clean.outliers: auto`` the features of an
ensemble clip outlying numbers for its networks and linear models and keep an unclipped copy of
those columns (``features.featureset.UNCLIPPED_KEY``) for its trees, which split on order and lose
nothing to a long tail; a family says which it reads with ``NUMBERS`` in its module
(``models.families.reads_numbers``). Apart from ``ensemble.py`` so that the refit and the
explanations hand a member the same arrays without importing the ensemble.
"""
from __future__ import annotations

import numpy as np


def member_inputs(arrays: dict[str, np.ndarray], family: str) -> dict[str, np.ndarray]:
    """The arrays member ``family`` reads: with numbers kept unclipped (``clean.outliers: auto``,
    ``features.featureset.UNCLIPPED_KEY``), a family that reads them so (``NUMBERS = "unclipped"``:
    the trees) gets them as its "dense" and the rest the clipped ones; else the arrays as they are."""
    from forgeml.features.featureset import UNCLIPPED_KEY
    from forgeml.models.families import reads_numbers

    unclipped = arrays.get(UNCLIPPED_KEY)
    if unclipped is None:
        return arrays
    inputs = {key: value for key, value in arrays.items() if key != UNCLIPPED_KEY}
    if reads_numbers(family) == "unclipped":
        inputs["dense"] = unclipped
    return inputs
