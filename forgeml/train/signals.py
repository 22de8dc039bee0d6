"""SIGTERM/SIGINT as a flag, shared by every training loop: the loop checkpoints at its next step
and stops cleanly instead of dying mid-write (a scheduler's kill, Ctrl-C, torchrun ending a job)."""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Callable, Iterator


@contextlib.contextmanager
def stop_on_signals(on_signal: Callable[[int], None]) -> Iterator[None]:
    """Call ``on_signal(signum)`` instead of dying, while inside; handlers restored on exit."""
    if threading.current_thread() is not threading.main_thread():  # signals can only be caught there
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    for sig in previous:
        signal.signal(sig, lambda signum, frame: on_signal(signum))
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
