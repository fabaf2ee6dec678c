"""One run at a time per project: ``.conveyor/run.lock``, held while state or aliases change.

``conveyor run`` (each ``--step`` too), ``conveyor promote`` and ``conveyor rollback`` hold
an exclusive ``flock`` on the project's lock file for as long as they work. A second one
waits, saying once whom it waits for (the holder writes its pid, command and run id into
the file), and gives up with :class:`ProjectBusyError` (exit 75: retry later) after
``CONVEYOR_RUN_LOCK_TIMEOUT`` seconds; 0 gives up at once. The kernel drops the lock when
its holder dies, so a crashed run never blocks the next one. The lock is per machine
(or per shared filesystem that honours ``flock``); runs on several machines against one
tracking server are kept apart by the registry guard instead (``registry.guard``).

The lock is re-entrant within a thread, so a command that holds it may run steps that
take it again.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from conveyor.errors import ProjectBusyError

__all__ = ["LOCK_NAME", "LockHolder", "project_lock", "read_holder"]

log = logging.getLogger(__name__)

LOCK_NAME = "run.lock"
POLL_SECONDS = 0.2

_held: dict[tuple[Path, int], int] = {}  # (lock path, thread) -> depth, in this process
_held_guard = threading.Lock()


@dataclass(frozen=True)
class LockHolder:
    """Who holds a project's lock, as its holder wrote it into the lock file.

    Attributes:
        pid: the holder's process id (None when the file does not say).
        command: what it runs: ``run``, ``promote``, ``rollback``.
        run_id: the pipeline run id, for a run.
        since: when it took the lock (ISO-8601 UTC).
    """

    pid: int | None = None
    command: str = ""
    run_id: str | None = None
    since: str = ""

    def describe(self) -> str:
        """``run 20261204T...-3f9a1c (pid 4242)``, ``conveyor promote (pid 77)``, ..."""
        who = f"run {self.run_id}" if self.run_id else f"conveyor {self.command or 'command'}"
        return f"{who} (pid {self.pid})" if self.pid else "another conveyor process"


@contextmanager
def project_lock(
    state_dir: Path,
    *,
    command: str,
    timeout: float,
    run_id: str | None = None,
    on_wait: Callable[[LockHolder], None] | None = None,
) -> Iterator[None]:
    """Hold the project's lock for the block, waiting up to ``timeout`` seconds for it.

    Args:
        state_dir: the project's ``.conveyor/`` folder (created if missing).
        command: what the holder does, shown to whoever waits.
        timeout: seconds to wait for another holder; 0 fails at once.
        run_id: the pipeline run id, shown to whoever waits.
        on_wait: called with the current holder when this process starts waiting (and
            again if another process takes the lock meanwhile).

    Yields:
        Nothing; the lock is released when the block ends, however it ends.

    Raises:
        ProjectBusyError: another process held the lock for ``timeout`` seconds.
    """
    path = (state_dir / LOCK_NAME).resolve()
    mine = (path, threading.get_ident())
    if _enter_held(mine):
        try:
            yield
        finally:
            _leave_held(mine)
        return
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _acquire(fd, path, timeout=timeout, on_wait=on_wait)
        _write_holder(fd, LockHolder(os.getpid(), command, run_id, _now()))
        with _held_guard:
            _held[mine] = 1
        try:
            yield
        finally:
            with _held_guard:
                _held.pop(mine, None)
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def read_holder(path: Path) -> LockHolder:
    """The holder recorded in a lock file (an empty holder if it says nothing readable)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return LockHolder(
            pid=int(data["pid"]),
            command=str(data.get("command", "")),
            run_id=data.get("run_id"),
            since=str(data.get("since", "")),
        )
    except (OSError, ValueError, TypeError, KeyError):
        return LockHolder()


def _acquire(
    fd: int, path: Path, *, timeout: float, on_wait: Callable[[LockHolder], None] | None
) -> None:
    deadline = time.monotonic() + timeout
    announced: LockHolder | None = None
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            holder = read_holder(path)
        if time.monotonic() >= deadline:
            raise ProjectBusyError(
                f"{holder.describe()} holds {path}; gave up after {timeout:g} s of waiting"
                " (CONVEYOR_RUN_LOCK_TIMEOUT); retry when it has finished"
            )
        if holder != announced:
            announced = holder
            log.info("waiting for %s to release %s", holder.describe(), path)
            if on_wait is not None:
                on_wait(holder)
        time.sleep(min(POLL_SECONDS, max(deadline - time.monotonic(), 0.0)))


def _write_holder(fd: int, holder: LockHolder) -> None:
    text = json.dumps(dataclasses.asdict(holder))
    os.ftruncate(fd, 0)
    os.pwrite(fd, text.encode(), 0)


def _enter_held(mine: tuple[Path, int]) -> bool:
    with _held_guard:
        if mine not in _held:
            return False
        _held[mine] += 1
        return True


def _leave_held(mine: tuple[Path, int]) -> None:
    with _held_guard:
        _held[mine] -= 1


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()
