"""Is a "running" run still running? A training process holds an advisory lock on
``runs/<id>/.lock`` for its whole life; the kernel drops it when the process ends, however it
ends (kill -9, out of memory, a closed laptop lid that never woke). A "running" run whose lock
is free died without a word: ``mark_dead_runs`` marks it "interrupted" when a checkpoint lets
``--resume`` continue it, else "failed", and says so in its train.log.

The lock file is locked under a temporary name and then renamed into place, so a ``.lock`` that
exists is already held: ``runs list`` in another terminal never sees a just-started run as dead.
The lock file names its host: a run of another host sharing the runs folder is never guessed
dead (network file systems may not show its lock). Where ``fcntl`` is missing (Windows) nothing
is locked and runs are never guessed dead.
"""
from __future__ import annotations

import os
import socket
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

LOCK_NAME = ".lock"


class RunLock:
    """Held by the training process (rank 0) while it trains; ``release`` or process exit frees it."""

    def __init__(self, run_dir: Path):
        self.handle: IO[bytes] | None = None
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            return
        temporary = run_dir / f"{LOCK_NAME}.{os.getpid()}"
        handle = open(temporary, "wb")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            handle.write(f"{os.getpid()} {socket.gethostname()}\n".encode())
            handle.flush()
            os.replace(temporary, run_dir / LOCK_NAME)  # the lock follows the open file across the rename
        except OSError:
            handle.close()
            temporary.unlink(missing_ok=True)
            return  # a file system without locks: the run is simply never guessed dead
        self.handle = handle

    def release(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None


def is_dead(run_dir: Path) -> bool:
    """True only when the run's lock file exists, was written on this host, and nobody holds it."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return False
    try:
        handle = open(run_dir / LOCK_NAME, "rb")
    except OSError:
        return False  # no lock file: a run from before locks, or another host's folder
    with handle:
        owner = handle.read(200).decode("utf-8", "replace").split()
        if len(owner) < 2 or owner[1] != socket.gethostname():
            return False  # another host's run on a shared disk: its lock may not be visible from here
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return False  # held: the training process is alive
        return True


def mark_dead_runs(registry: Any) -> list[Any]:
    """Finish every "running" run whose process is gone; returns the records it changed."""
    changed = []
    for record in registry.list(limit=1_000_000):
        if record.status != "running" or not is_dead(record.dir):
            continue
        status = "interrupted" if record.has_checkpoint else "failed"
        registry.finish(record.id, status)
        _note(record.log_path, f"{status}: the training process stopped without a word (killed, out of memory, "
                               "or the machine went down)" + ("; continue it with --resume" if status == "interrupted" else ""))
        changed.append(registry.get(record.id))
    return changed


def _note(log: Path, message: str) -> None:
    """One line in train.log in its own format, so a later reader knows what happened."""
    stamp = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S,%f")[:-3]
    try:
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(f"{stamp} ERROR {message}\n")
    except OSError:
        pass  # the status in the index says it anyway
