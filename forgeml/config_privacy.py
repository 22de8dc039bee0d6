"""``train.privacy``: the options of differentially private training (DP-SGD through Opacus).

Its own module beside ``config_base`` so that ``forgeml.config`` gains one field line and reading
a config never imports torch or Opacus; what the options do is in ``forgeml.train.privacy``.
Privacy is off unless ``epsilon`` is set, so ``--set train.privacy.delta=1e-6`` works on any
config without first creating the section.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from forgeml.config_base import StrictModel as _Strict


class PrivacyConfig(_Strict):
    """(ε, δ)-differential privacy of the training rows, spent by DP-SGD (Abadi et al. 2016):
    each row's gradient is clipped to ``max_grad_norm``, Gaussian noise is added to each batch's
    sum, batches are Poisson samples, and an accountant adds up the privacy spent per step."""

    epsilon: float | None = Field(
        None, gt=0, description="Privacy budget ε of the whole training run (CLI: --privacy-epsilon); null: no differential privacy. "
        "The noise is calibrated so that train.epochs epochs spend at most this; stopping early spends less. Networks only.")
    delta: float | None = Field(
        None, gt=0, lt=1, description="δ, the chance that the ε guarantee fails; must be below 1/(training rows). "
        "Default: 1e-5, or 1/(10 × training rows) when that is smaller.")
    max_grad_norm: float = Field(1.0, gt=0, description="Each training row's gradient is clipped to this L2 norm before the noise (replaces train.grad_clip).")
    accountant: Literal["prv", "rdp"] = Field(
        "prv", description="How spent privacy is counted: prv (privacy random variables, Opacus's default, tighter) or rdp (Rényi DP, the classic moments accountant).")

    @property
    def enabled(self) -> bool:
        return self.epsilon is not None
