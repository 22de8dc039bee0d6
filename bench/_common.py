"""Small helpers shared by the bench scripts (thread pinning, machine description, load check)."""
from __future__ import annotations

import os
import platform
import statistics
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
OUT_DIR = BENCH_DIR / "out"
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"

_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def pin_threads(threads: int) -> None:
    """Set the thread env vars; call before importing numpy/torch (child processes inherit them)."""
    for var in _THREAD_VARS:
        os.environ[var] = str(threads)


def thread_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update({var: str(threads) for var in _THREAD_VARS})
    return env


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_line() -> str:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    mem = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 2**20:.0f} GiB"
    except OSError:
        pass
    return f"{cores} cores ({cpu_model()}), {mem} RAM, python {sys.version.split()[0]}"


def median(values: list[float]) -> float:
    return statistics.median(values)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


class ForeignLoad:
    """CPU time other processes used while a bench ran (machine busy time minus our own).

    Reads /proc/stat (all CPUs) and our getrusage (self + waited children). Linux only; on other
    systems ``report()`` says it is unknown.
    """

    def __init__(self) -> None:
        self._start = self._sample()

    @staticmethod
    def _sample():
        import resource
        import time

        try:
            fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        except OSError:
            return None
        values = [int(v) for v in fields]
        idle = values[3] + (values[4] if len(values) > 4 else 0)
        hz = os.sysconf("SC_CLK_TCK")
        own = 0.0
        for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
            usage = resource.getrusage(who)
            own += usage.ru_utime + usage.ru_stime
        return (sum(values) - idle) / hz, own, time.perf_counter()

    def report(self) -> tuple[float | None, str]:
        end = self._sample()
        if self._start is None or end is None:
            return None, "other processes' CPU use unknown"
        busy = end[0] - self._start[0]
        own = end[1] - self._start[1]
        wall = end[2] - self._start[2]
        foreign = max(0.0, busy - own)
        share = foreign / wall if wall > 0 else 0.0
        flag = " — OTHER PROCESSES WERE RUNNING; re-run alone for trustworthy timings" if share > 0.1 else ""
        return share, f"other processes used {foreign:.1f} CPU-s during {wall:.1f} s wall (≈{share:.2f} cores){flag}"


def shared_data_missing(path: Path) -> bool:
    """True (after saying so) when a bench's data file from ../shared/data is absent: a user's
    clone has no shared folder, and such a bench skips cleanly instead of failing."""
    if Path(path).is_file():
        return False
    print(f"skipped: {path} not found (the shared data folder is not on this machine)")
    return True
