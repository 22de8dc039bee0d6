"""A bag's folds fitted (and predicted) side by side in threads, one core each.

Why: LightGBM spends most of a small fit in OpenMP's per-round barriers, not in arithmetic.
On the 2-core bench machine with other processes busy (December 2026), one LightGBM fit on
3,500 rows took 0.8 s on one thread and 2.2 s on two (17–90 s before forgeml set OpenMP's
passive wait policy, see ``forgeml.train.openmp``), and a 34,000-row fit 2 s against 28–45 s.
K folds are K independent fits: two at a time on one thread each use both cores with no
barrier between them, which is what AutoGluon's parallel fold fitting does with processes.
Threads suffice because LightGBM releases the GIL while it trains and predicts (ctypes calls).

A family opts in with ``FOLDS_SIDE_BY_SIDE = True`` in its module (LightGBM). CatBoost does not:
its Python package's logger is not thread-safe across concurrent fits (catboost issue #2620),
and its own thread pool does not stall on a busy machine. Networks keep torch's threads.

What the sequential loop guarantees still holds: out-of-fold predictions and checkpoints of
each finished fold, the run's callbacks (called under one lock, so a metrics file never gets
two rows at once), the time left shared among the folds still to start, and a member given up
when its first fold shows the rest cannot end in time (``MemberOutOfTime``).
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import replace
from typing import Any, Callable

import numpy as np


class _Locked:
    """A run callback called from fold threads: one row at a time."""

    def __init__(self, inner: Any, lock: threading.Lock):
        self.inner, self.lock = inner, lock

    def on_epoch_end(self, row: dict[str, Any]) -> None:
        with self.lock:
            self.inner.on_epoch_end(row)


def fit_side_by_side(count: int, workers: int, deadline: float | None, callbacks: list[Any],
                     fit_fold: Callable[[int, float | None, list[Any]], tuple[Any, bool]],
                     finished: Callable[[int, float, bool, int], None]) -> list[Any]:
    """Fits ``count`` folds, ``workers`` at a time: ``fit_fold(k, deadline, callbacks)`` in a worker
    thread returns (summary, fitted); ``finished(k, seconds, fitted, folds_left)`` runs in the
    caller's thread as each fold ends (out-of-fold predictions, the give-up check). Returns the
    summaries in fold order."""
    lock = threading.Lock()
    locked = [_Locked(callback, lock) for callback in callbacks]
    started = [0]  # folds started so far (under the lock)

    def fit(k: int) -> tuple[Any, bool, float]:
        with lock:
            waiting = count - started[0]  # this fold and the ones not started yet
            started[0] += 1
        fold_deadline = deadline
        if deadline is not None:  # the time left, shared among the folds still to start, ``workers`` at a time
            now = time.monotonic()
            fold_deadline = now + max(0.0, deadline - now) / -(-waiting // workers)
        fold_started = time.monotonic()
        summary, fitted = fit_fold(k, fold_deadline, locked)
        return summary, fitted, time.monotonic() - fold_started

    summaries: list[Any] = [None] * count
    pool = ThreadPoolExecutor(workers, thread_name_prefix="forgeml-fold")
    try:
        pending: dict[Future, int] = {pool.submit(fit, k): k for k in range(count)}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                k = pending.pop(future)
                summary, fitted, seconds = future.result()  # a fold's error is raised here, in the caller's thread
                summaries[k] = summary
                finished(k, seconds, fitted, len(pending))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # folds already running end at their deadline
    return summaries


def scores_side_by_side(members: list[Any], arrays: dict[str, np.ndarray], workers: int) -> list[np.ndarray]:
    """Each member's scores, ``workers`` members at a time (each on one thread)."""
    with ThreadPoolExecutor(workers, thread_name_prefix="forgeml-fold") as pool:
        return list(pool.map(lambda member: member.scores(arrays), members))
