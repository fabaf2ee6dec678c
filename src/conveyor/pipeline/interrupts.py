"""Ctrl-C that no library can swallow.

Python turns SIGINT into ``KeyboardInterrupt`` wherever the main thread happens to be.
When that is inside a library's ``except BaseException`` or bare ``except`` (optional
imports do this), the exception is lost and the step would finish as if nothing happened.
While the runner works, SIGINT also sets a flag; the runner checks it when a step returns
and the register step checks it before it registers, so an interrupted run is recorded as
interrupted and registers nothing, wherever the signal landed.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types import FrameType

__all__ = ["as_interruption", "check_interrupted", "watching_interrupts"]

_interrupted = threading.Event()


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    _interrupted.set()
    raise KeyboardInterrupt


@contextmanager
def watching_interrupts() -> Iterator[None]:
    """Record SIGINT for the block (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    _interrupted.clear()
    signal.signal(signal.SIGINT, _on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def check_interrupted() -> None:
    """Raise ``KeyboardInterrupt`` if SIGINT arrived, even if its exception was swallowed.

    Raises:
        KeyboardInterrupt: the user interrupted the run.
    """
    if _interrupted.is_set():
        raise KeyboardInterrupt


def as_interruption(exc: BaseException) -> BaseException:
    """``exc``, or a ``KeyboardInterrupt`` caused by it when SIGINT arrived first.

    A Ctrl-C raised inside a library can come out as another error: a database driver
    that fails to roll back the statement the interrupt broke, a file closed under a copy.
    The run is still interrupted, not failed.
    """
    if isinstance(exc, KeyboardInterrupt) or not _interrupted.is_set():
        return exc
    interruption = KeyboardInterrupt()
    interruption.__cause__ = exc
    return interruption
