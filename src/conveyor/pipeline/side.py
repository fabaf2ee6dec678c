"""Steps the model does not wait for, run in a second process beside the run.

Validation and versioning need only the cleaned table, and nothing the model is built
from needs them: split, train and evaluate read the cleaned table too. Their cost is
mostly fixed (importing Great Expectations takes seconds, DVC hashes and copies the
file), so on a fresh run they are a large share of the overhead over a plain script.
The same holds for the export of the trained model (its ONNX graph, its parity check
and the drift reference profile), which only registration reads. A worker process
therefore runs them while the run's own process splits, trains and evaluates; the
runner waits for them before any step that needs them, so the validation gate still
stands before registration, and a failed validation still fails the run.

The worker is started on the first step it takes, or, when the source is a local file,
when the run starts: it then imports Great Expectations while the run reads and cleans
the table, so validation starts as soon as the table is there. Likewise, while training
runs, it imports what the export needs (``WARM_DURING``). It runs its steps one at a
time in the order given, at the lowest priority, and is stopped with the run, or, on a
large table, once its steps are done and before training starts
(``WAITS_ON_LARGE_TABLE``); a fresh one, holding libraries but no table, then imports the
export's libraries while training runs and exports beside evaluation. It is in its own
process group, so a Ctrl-C in the terminal reaches the run only; the run passes it on and
waits for the step to wind down. It dies with the run's process if that is killed
(Linux), so it never works for a run that is gone.

Registration and promotion run in the run's own process, which has the model's libraries
loaded already. While registration waits for the side steps to finish, it imports MLflow
and skops (``Step.prepare``); nothing is written to the registry before the gate.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from stat import S_ISREG
from typing import TYPE_CHECKING, Any

from conveyor.errors import PipelineError
from conveyor.pipeline.interrupts import check_interrupted, watching_interrupts

if TYPE_CHECKING:
    from conveyor.pipeline.context import RunContext
    from conveyor.pipeline.project import Project

__all__ = [
    "BESIDE_MAX_CELLS",
    "SIDE_STEPS",
    "WAITS_ON_LARGE_TABLE",
    "WARM_DURING",
    "WARM_MAX_SOURCE_BYTES",
    "SideOutcome",
    "SideWorker",
    "fits_beside",
    "worth_warming",
]

log = logging.getLogger(__name__)

SIDE_STEPS = frozenset({"validate", "version", "export"})
"""Steps that run beside the model's steps when a whole run is executed."""

BESIDE_MAX_CELLS = 4_000_000
"""The largest cleaned table (rows x columns) whose side steps run beside training too.
The worker holds its own libraries and its own copy of the table. Beside a small table
that is a few hundred MB; beside a large one the copy would sit on top of training's
peak, the run's largest memory. So the side steps of a larger table run beside the
steps before training only (split): training starts once they are done and the worker
has stopped (``WAITS_ON_LARGE_TABLE``)."""

WAITS_ON_LARGE_TABLE = frozenset({"train"})
"""Steps that, on a table above ``BESIDE_MAX_CELLS``, start only after every side step has
finished and the worker has stopped, so that its memory is free for theirs."""

WARM_DURING = {"train": "export"}
"""Side steps whose libraries the worker imports while a step of the run's own process
runs (not from cache): the export's (the model's libraries, the ONNX converter and
runtime) while training runs. On a table above ``BESIDE_MAX_CELLS`` that is a fresh
worker, holding libraries and no table; at its low priority it works mostly while
training's preprocessing leaves a core idle."""

WARM_MAX_SOURCE_BYTES = 2 * 2**30
"""The largest local source file for which the worker starts with the run and imports
Great Expectations while the table is read. Its libraries take a few hundred MB beside
the read, well below what training takes later; a larger file, a folder, a database or
an object store starts the worker on its first step instead."""

_STOP_SECONDS = 5.0
_WIND_DOWN_SECONDS = 60.0


@dataclass(frozen=True)
class SideOutcome:
    """What a step run in the worker returned.

    Attributes:
        step: the step's name.
        summary: its summary (None when it raised).
        seconds: how long it ran in the worker.
        error: the exception it raised, if it did.
    """

    step: str
    summary: dict[str, Any] | None
    seconds: float
    error: BaseException | None = None


@dataclass(frozen=True)
class _Warm:
    """Ask the worker to import what ``step`` needs (its ``Step.warm``) before it arrives."""

    project: Project
    step: str


@dataclass(frozen=True)
class _Task:
    project: Project
    run_id: str
    step: str
    folder: Path
    outputs: dict[str, Path]
    summaries: dict[str, dict[str, Any]]
    keys: dict[str, str]


def fits_beside(ingest: dict[str, Any]) -> bool:
    """Whether the side steps of a run whose ingest step summarised ``ingest`` may run
    beside training too (else the steps in ``WAITS_ON_LARGE_TABLE`` wait for them).

    Args:
        ingest: the ingest step's summary (``rows`` and ``columns`` of the cleaned table).
    """
    cells = int(ingest.get("rows", 0)) * int(ingest.get("columns", 0))
    return cells <= BESIDE_MAX_CELLS


def worth_warming(source: str) -> bool:
    """Whether the worker starts with a run reading ``source``, before the table is read.

    Args:
        source: the config's ``data.source``.
    """
    if "://" in source:
        return False
    try:
        stat = Path(source).stat()
    except OSError:
        return False  # ingest reports it
    return S_ISREG(stat.st_mode) and stat.st_size <= WARM_MAX_SOURCE_BYTES


class SideWorker:
    """One worker process running side steps in order; started by :meth:`warm` or on
    the first step it takes."""

    def __init__(self, *, warm_during: Mapping[str, str] | None = None) -> None:
        """
        Args:
            warm_during: step of the run's own process -> side step to warm up for while
                it runs (``WARM_DURING``, for the side steps of this run).
        """
        self._process: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._pending: deque[str] = deque()
        self._warm_during = dict(warm_during or {})

    @property
    def pending(self) -> tuple[str, ...]:
        """Steps handed to the worker whose outcome has not been collected yet."""
        return tuple(self._pending)

    def warm(self, step: str, project: Project) -> None:
        """Start the worker if needed and have it import what ``step`` needs, after the
        steps handed to it already."""
        with contextlib.suppress(OSError):  # gone already: the next step reports it
            self._connection().send(_Warm(project, step))

    def warm_during(self, step: str, project: Project) -> None:
        """``step`` starts in the run's process: warm up for the side step after it."""
        ahead = self._warm_during.get(step)
        if ahead is not None:
            self.warm(ahead, project)

    def submit(self, step: str, ctx: RunContext, folder: Path) -> None:
        """Hand one step to the worker (it starts the worker if needed)."""
        task = _Task(
            project=ctx.project,
            run_id=ctx.run_id,
            step=step,
            folder=folder,
            outputs=dict(ctx.outputs),
            summaries=dict(ctx.summaries),
            keys=dict(ctx.keys),
        )
        try:
            self._connection().send(task)
        except OSError as exc:  # the worker is gone (killed, out of memory)
            raise self._gone(step) from exc
        self._pending.append(step)

    def next_outcome(self, *, block: bool) -> SideOutcome | None:
        """The outcome of the oldest pending step; None if it is not done and not ``block``.

        Raises:
            PipelineError: the worker died before it answered.
        """
        if not self._pending:
            return None
        conn = self._connection()
        if not block and not conn.poll(0):
            return None
        try:
            outcome: SideOutcome = conn.recv()
        except (EOFError, OSError) as exc:
            raise self._gone(self._pending.popleft()) from exc
        self._pending.popleft()
        return outcome

    def _gone(self, step: str) -> PipelineError:
        process, code = self._process, None
        if process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = process.wait(_STOP_SECONDS)
        return PipelineError(
            f"the worker process running step {step!r} beside the run stopped"
            f" (exit code {code}); run again to resume from the last finished step"
        )

    def interrupt(self) -> None:
        """Pass a Ctrl-C on to the worker and wait (a while) for its step to wind down:
        a registration in progress ends its MLflow run as killed and registers nothing."""
        process = self._process
        if process is None or not self._pending:
            return
        process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + _WIND_DOWN_SECONDS
        while self._pending and self._conn is not None:
            if not self._conn.poll(max(0.0, deadline - time.monotonic())):
                break
            try:
                self.next_outcome(block=True)
            except PipelineError:
                break

    def stop(self) -> None:
        """Stop the worker now (idle or not); its unfinished step leaves no complete output."""
        process, self._process = self._process, None
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._pending.clear()
        if process is None:
            return
        process.terminate()
        try:
            process.wait(_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _connection(self) -> Connection:
        if self._conn is None:
            # A fresh interpreter (no fork of a threaded process), started as a module: unlike
            # multiprocessing's spawn it never re-runs the caller's __main__ script.
            ours, theirs = socket.socketpair()
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
            argv = [sys.executable, "-m", "conveyor.pipeline.side", str(theirs.fileno())]
            process = subprocess.Popen(
                [*argv, str(os.getpid())],
                pass_fds=(theirs.fileno(),),
                env=env,
                process_group=0,  # a Ctrl-C in the terminal reaches the run only
            )
            theirs.close()
            with contextlib.suppress(OSError):  # the model's steps first: a busy core
                os.setpriority(os.PRIO_PROCESS, process.pid, 19)  # slows LightGBM down
            self._process, self._conn = process, Connection(ours.detach())
        return self._conn


def _serve(conn: Connection, parent: int) -> None:
    """The worker's loop: run each task received, send back its outcome."""
    _die_with_parent()
    if os.getppid() != parent:  # the run died before the line above took effect
        return
    _quiet_progress_locks()
    while True:
        try:
            task: _Task | _Warm = conn.recv()
        except (EOFError, OSError):
            return
        if isinstance(task, _Warm):
            if not _warm(task):
                return  # Ctrl-C, passed on by the run: the steps sent meanwhile never start
            continue
        with watching_interrupts():
            conn.send(_run(task))


def _quiet_progress_locks() -> None:
    """tqdm (Great Expectations' and DVC's progress bars) guards its output with a
    process-shared lock by default, which this process would leave to the resource
    tracker when it is stopped; a thread lock does the same job here."""
    import threading

    from tqdm import tqdm  # type: ignore[import-untyped]

    tqdm.set_lock(threading.RLock())


def _warm(task: _Warm) -> bool:
    """Import what a step needs (seconds) while the steps before it run.

    Returns:
        False when a Ctrl-C, passed on by the run, arrived meanwhile.
    """
    from conveyor.pipeline.steps import step_named

    started = time.perf_counter()
    try:
        warm = step_named(task.step).warm
        if warm is not None:
            warm(task.project)
    except Exception as exc:  # the step itself reports what is wrong
        log.debug("warming up for %s failed: %s", task.step, exc)
    except KeyboardInterrupt:
        return False
    log.debug("warmed up for %s in %.1fs", task.step, time.perf_counter() - started)
    return True


def _run(task: _Task) -> SideOutcome:
    from conveyor.pipeline.context import RunContext
    from conveyor.pipeline.steps import step_named
    from conveyor.pipeline.store import RunStore

    project = task.project
    store = RunStore(project.runs_dir, project.cache_dir)
    ctx = RunContext(
        project=project,
        run_id=task.run_id,
        store=store,
        outputs=task.outputs,
        summaries=task.summaries,
        keys=task.keys,
    )
    started = time.perf_counter()
    try:
        summary = step_named(task.step).execute(ctx, task.folder)
        check_interrupted()  # the signal may have been swallowed inside the step
    except KeyboardInterrupt:  # forwarded by the run, which records the interruption
        return SideOutcome(task.step, None, time.perf_counter() - started, KeyboardInterrupt())
    except Exception as exc:  # sent back whole: the run records and raises it
        log.debug("side step %s failed", task.step, exc_info=True)
        return SideOutcome(task.step, None, time.perf_counter() - started, _picklable(exc))
    return SideOutcome(task.step, summary, time.perf_counter() - started)


def _picklable(exc: Exception) -> BaseException:
    """The exception itself when it survives pickling, else a PipelineError saying it."""
    import pickle

    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return PipelineError(f"{type(exc).__name__}: {exc}")
    return exc


def _die_with_parent() -> None:
    """Ask Linux to kill this process when the run's process dies (``PR_SET_PDEATHSIG``)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except OSError:
        log.debug("PR_SET_PDEATHSIG unavailable", exc_info=True)


def main() -> None:
    """``python -m conveyor.pipeline.side FD PARENT_PID``: the worker process."""
    # Through the package, not this __main__ copy: what it sends must unpickle in the run.
    import importlib

    package = importlib.import_module("conveyor.pipeline.side")
    package._serve(Connection(int(sys.argv[1])), int(sys.argv[2]))


if __name__ == "__main__":
    main()
