"""A Ctrl-C inside a critical section is held until the section ends."""

from __future__ import annotations

import os
import signal

import pytest

from conveyor.registry.creation import uninterrupted


def test_sigint_is_held_until_the_section_ends() -> None:
    finished = []
    with pytest.raises(KeyboardInterrupt), uninterrupted():
        os.kill(os.getpid(), signal.SIGINT)
        finished.append(True)  # reached: the signal did not cut the section
    assert finished == [True]


def test_the_previous_handler_gets_the_held_signal() -> None:
    seen: list[int] = []

    def handler(signum: int, frame: object) -> None:
        seen.append(signum)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        with uninterrupted():
            os.kill(os.getpid(), signal.SIGINT)
            assert seen == []  # held
    finally:
        signal.signal(signal.SIGINT, previous)
    assert seen == [signal.SIGINT]


def test_a_quiet_section_raises_nothing() -> None:
    with uninterrupted():
        pass
