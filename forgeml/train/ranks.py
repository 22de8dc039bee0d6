"""Whether this process is one of several torchrun ranks, read from the environment torchrun sets
and without importing torch: the ``auto`` family (read with every config) and the privacy checks
ask it before anything heavy is loaded."""
from __future__ import annotations

import os


def distributed() -> bool:
    """One of several ranks: the ensemble and DP-SGD train in one process, so they are refused."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1
