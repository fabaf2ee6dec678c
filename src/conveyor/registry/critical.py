"""Sections a Ctrl-C must not cut in half: it is held until the section ends.

Creating an MLflow store on SQLite or PostgreSQL runs its schema migrations. A
``KeyboardInterrupt`` raised in the middle leaves a half-migrated database that no later
run can open ("duplicate column name: step"). Inside :func:`uninterrupted` a SIGINT is
only remembered; when the section ends, the handler that was in place before (the
runner's, which records the interruption) gets it, or ``KeyboardInterrupt`` is raised.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["uninterrupted"]


@contextmanager
def uninterrupted() -> Iterator[None]:
    """Hold SIGINT for the block (main thread only; elsewhere the block just runs).

    Raises:
        KeyboardInterrupt: after the block, when SIGINT arrived during it (through the
            previous handler when it is a Python function).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        if callable(previous):
            previous(signal.SIGINT, None)
        raise KeyboardInterrupt
