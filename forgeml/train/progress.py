"""The one progress bar of every training loop: the Trainer's per-epoch bar and the LM trainer's
step bar (rich, on stderr, only on a terminal, redrawn at most five times a second).

Why its own module: a loop is about gradients, not redraws; and a log file or pipe gets the
per-epoch lines the loops' callbacks write, never bar redraws.
"""
from __future__ import annotations

import time
from typing import Callable

REDRAW_EVERY_S = 0.2


class ProgressBar:
    """``title`` stands before the bar ("member 2/6 mlp · epoch 3/10"); ``count``, when given,
    shows "<count> done/total" there too ("step 120/500"); ``update`` sets what follows the bar.

    The text is passed as a function so that a loop pays for formatting it only when the bar is
    redrawn, not at every step."""

    def __init__(self, *, enabled: bool, total: int, done: int = 0, title: str = "", count: str | None = None, text: str = ""):
        self.enabled, self.total, self.title, self.count, self.text = enabled, total, title, count, text
        self._done = done  # a resumed epoch or run starts part-way
        self._last = 0.0

    def __enter__(self) -> "ProgressBar":
        if self.enabled:
            from rich.console import Console

            console = Console(stderr=True)
            self.enabled = console.is_terminal  # a log file gets per-epoch lines, not bar redraws
        if self.enabled:
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            columns = [TextColumn(self.title.replace("[", r"\["))] if self.title else []
            columns += [TextColumn(f"{self.count} {{task.completed}}/{{task.total}}")] if self.count else []
            self._progress = Progress(*columns, BarColumn(), TextColumn("{task.fields[text]}"), TimeRemainingColumn(),
                                      transient=True, console=console)
            self._progress.start()
            self._task = self._progress.add_task("train", total=self.total, completed=self._done, text=self.text.replace("[", r"\["))
        return self

    def update(self, done: int, text: Callable[[], str]) -> None:
        """``done`` steps of ``total``; ``text()`` is called only when the bar is redrawn."""
        if not self.enabled:
            return
        self._done = done
        now = time.perf_counter()
        if now - self._last > REDRAW_EVERY_S or done == self.total:
            self._progress.update(self._task, completed=done, text=text().replace("[", r"\["))
            self._last = now

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self._progress.stop()
