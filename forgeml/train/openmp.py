"""OpenMP's wait policy for forgeml's fits: passive (idle threads sleep) unless the user chose one.

Why: torch and LightGBM share one OpenMP runtime (libgomp), whose idle threads by default spin
for a while before they sleep. With as many threads as cores and another busy process on the
machine, the spinning thread takes the core the working one needs, and every parallel region
waits for a thread that is not running. Measured on the 2-core bench machine with ≈1.7 other
cores busy (December 2026): a LightGBM fit on 3,500 rows took 17–90 s on 2 threads against
1.3–3.9 s on one, a 300-step MLP 17–49 s against 0.6–3 s; with ``OMP_WAIT_POLICY=PASSIVE`` the
same 2-thread fits took 2.2 s and 1.1–8 s. A quiet machine loses little (a sleeping thread
wakes in microseconds), a laptop with a browser open gains a lot.

libgomp reads the variable once, when it is loaded (the first ``import torch`` or ``import
lightgbm``), so ``prefer_passive_wait`` runs before forgeml builds or loads a model, and changes
nothing in a process that had loaded either already (a notebook that imported torch first: set
``OMP_WAIT_POLICY=PASSIVE`` in the environment instead). An ``OMP_WAIT_POLICY`` the user set is kept.
"""
from __future__ import annotations

import os

WAIT_POLICY = "OMP_WAIT_POLICY"


def prefer_passive_wait() -> None:
    """``OMP_WAIT_POLICY=PASSIVE`` unless set: idle OpenMP threads sleep instead of spinning."""
    os.environ.setdefault(WAIT_POLICY, "PASSIVE")
