"""The progress bar of one training epoch (rich, on stderr, only on a terminal).

Why its own module: the Trainer's loop is about gradients, not redraws; and a log file or pipe
gets the per-epoch lines the Trainer's callbacks write, never bar redraws.
"""
from __future__ import annotations

import time


class EpochProgress:
    """A rich progress bar per epoch with the running loss and the watched validation metric as
    of the previous epoch (``note``); refreshed a few times a second."""

    def __init__(self, *, enabled: bool, total: int, epoch: int, epochs: int, done: int = 0, note: str = "", label: str = ""):
        self.enabled = enabled
        self.total, self.epoch, self.epochs, self.note, self.label = total, epoch, epochs, note, label
        self._last = 0.0
        self._done = done  # a resumed epoch starts part-way

    def __enter__(self) -> "EpochProgress":
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            console = Console(stderr=True)
            self.enabled = console.is_terminal  # a log file gets per-epoch lines, not bar redraws
        if self.enabled:

            self._progress = Progress(
                TextColumn(f"{self.label} · ".replace("[", r"\[") if self.label else ""), TextColumn(f"epoch {self.epoch}/{self.epochs}"),
                BarColumn(), TextColumn("loss {task.fields[loss]}"),
                TextColumn(self.note.replace("[", r"\[")), TimeRemainingColumn(), transient=True, console=console,
            )
            self._progress.start()
            self._task = self._progress.add_task("train", total=self.total, completed=self._done, loss="…")  # no "nan" before the first batch
        return self

    def advance(self, loss: float) -> None:
        if not self.enabled:
            return
        self._done += 1
        now = time.perf_counter()
        if now - self._last > 0.2 or self._done == self.total:
            self._progress.update(self._task, completed=self._done, loss=f"{loss:.4f}")
            self._last = now

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self._progress.stop()
