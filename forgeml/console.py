"""The rich console every command prints through.

On a terminal rich wraps to the window. Piped or redirected (``> train.txt``, CI logs, a
subprocess), it would cut tables and wrap every line at 80 columns: run ids lose their tails to
'…' and cannot be copied, and a long ``data: …`` note is split mid-message, so ``grep`` finds
half of it. Then tables print at their natural width and text lines are never wrapped.
"""
from __future__ import annotations

from typing import Any


def console(*, stderr: bool = False, **options: Any) -> Any:
    """A ``rich.console.Console`` (``options`` passed on), terminal-aware as above."""
    from rich.console import Console

    terminal = Console(stderr=stderr, **options)
    return terminal if terminal.is_terminal else Console(stderr=stderr, width=1_000, soft_wrap=True, **options)
