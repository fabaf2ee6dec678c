"""Sections a Ctrl-C must not cut in half: it is held until the section ends.

Creating an MLflow store on SQLite or PostgreSQL runs its schema migrations. A
``KeyboardInterrupt`` raised in the middle leaves a half-migrated database that no later
run can open ("duplicate column name: step"). Inside :func:`uninterrupted` a SIGINT is
only remembered; when the section ends, the handler that was in place before (the
runner's, which records the interruption) gets it.
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

    After the block, a SIGINT that arrived during it goes to the handler that was in place
    before: a Python handler is called (the runner's records the interruption and raises
    ``KeyboardInterrupt``), the default action raises ``KeyboardInterrupt``, an ignored
    SIGINT stays ignored.

    Raises:
        KeyboardInterrupt: as the previous handler decides.
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
    if not received:
        return
    if callable(previous):  # the runner's handler (records, then raises) or Python's own
        previous(signal.SIGINT, None)
    elif previous != signal.SIG_IGN:
        raise KeyboardInterrupt
