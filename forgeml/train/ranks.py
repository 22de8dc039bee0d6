"""Whether this process is one of several torchrun ranks, read from the environment torchrun sets
and without importing torch: the ``auto`` family (read with every config) and the privacy checks
ask it before anything heavy is loaded."""
from __future__ import annotations

import os
import sys
from typing import NoReturn


def distributed() -> bool:
    """One of several ranks: the ensemble and DP-SGD train in one process, so they are refused."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def watch_for_aborts() -> None:
    """Under torchrun, a rank that dies of a signal (SIGABRT from a C++ ``std::terminate``,
    SIGSEGV) prints the Python stack of every thread first, so that the launcher's "rank N was
    killed by signal 6" comes with where it happened."""
    if distributed():
        import faulthandler

        faulthandler.enable(all_threads=True)


def leave(code: int) -> NoReturn:
    """End the process with ``code``. A torchrun rank whose run is finished and written skips the
    interpreter's teardown (``os._exit`` after flushing): torch's C++ distributed state (gloo's
    pairs and worker threads, DDP's reducer, the store client) torn down there aborted a finished
    rank now and then ("terminate called without an active exception", SIGABRT: once in CI in a
    resumed two-rank LM run, after ``rank_session`` had made it rare), and torchrun then reported a
    finished job as failed. The
    process group itself was already destroyed by ``rank_session``; nothing of forgeml's runs at
    exit (no atexit handlers), and logging is shut down (flushed) here first."""
    if not distributed():
        sys.exit(code)
    import logging

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed or broken pipe: nothing more can be said on it
            pass
    os._exit(code)
