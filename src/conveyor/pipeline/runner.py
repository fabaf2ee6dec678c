"""The local runner: runs the steps in order, reuses cached ones, records every run.

Each run gets an id and a record (``.conveyor/runs/<id>/record.json``) that says which
steps ran, which were reused from cache, how long each took, and how the run ended. A
step's outputs are indexed in the cache only once complete, so Ctrl-C or a crash never
leaves an output a later run would trust; the next run resumes from the last complete
step. Registration is idempotent on its cache key (see ``registry.versions``), so an
interrupted run never leaves a duplicate model version behind. A run holds the project's
lock (``pipeline.lock``) from its first record to its last, so two runs of one project
never interleave.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from conveyor import __version__
from conveyor.errors import ConveyorError, DataValidationError, PipelineError
from conveyor.pipeline.context import RunContext
from conveyor.pipeline.interrupts import (
    as_interruption,
    check_interrupted,
    watching_interrupts,
)
from conveyor.pipeline.lock import LockHolder, project_lock
from conveyor.pipeline.project import Project
from conveyor.pipeline.side import (
    SIDE_STEPS,
    WAITS_ON_LARGE_TABLE,
    WARM_DURING,
    SideOutcome,
    SideWorker,
    fits_beside,
    worth_warming,
)
from conveyor.pipeline.steps import STEPS, Step, cache_key, step_named
from conveyor.pipeline.store import RunStore, new_run_id, utc_now

__all__ = ["PipelineRunner", "StepEvent", "code_version"]

log = logging.getLogger(__name__)

EventKind = Literal["start", "done", "cached", "failed"]
_LIBRARIES = ("scikit-learn", "lightgbm", "xgboost-cpu", "pandas", "numpy", "pyarrow")


@dataclass(frozen=True)
class StepEvent:
    """Progress of one step, for whoever displays it."""

    kind: EventKind
    step: Step
    seconds: float = 0.0
    summary: dict[str, Any] | None = None
    error: str | None = None


@lru_cache(maxsize=1)
def code_version() -> str:
    """Identity of the code behind step outputs: Conveyor's sources but the CLI and the
    server (neither changes a step's output), the value rules (``conveyor_cleaning``),
    and the key libraries' versions."""
    h = hashlib.sha256(__version__.encode())
    package = Path(__file__).resolve().parent.parent
    for path in sorted(package.rglob("*.py")):
        if path.relative_to(package).parts[0] not in ("cli", "serving"):
            h.update(path.read_bytes())
    import conveyor_cleaning  # the value rules: they shape ingest's and the model's output

    for path in sorted(Path(conveyor_cleaning.__file__).resolve().parent.rglob("*.py")):
        h.update(path.read_bytes())
    for lib in _LIBRARIES:
        try:
            h.update(f"{lib}=={metadata.version(lib)}".encode())
        except metadata.PackageNotFoundError:
            continue
    return h.hexdigest()[:16]


class PipelineRunner:
    """Runs the training pipeline of one project in this process."""

    def __init__(
        self,
        project: Project,
        *,
        on_event: Callable[[StepEvent], None] | None = None,
        on_wait: Callable[[LockHolder], None] | None = None,
        steps: tuple[Step, ...] = STEPS,
        publish_metrics: bool = True,
        side_steps: frozenset[str] = SIDE_STEPS,
    ) -> None:
        """Bind the runner to a project.

        Args:
            project: the project whose steps run and whose state is written.
            on_event: called with each step's progress.
            on_wait: called when another run holds the project's lock and this one waits.
            steps: the pipeline (the training pipeline by default).
            side_steps: steps run in a worker process beside the others when more than
                one step runs (``pipeline.side``); empty runs every step in this process.
        """
        self.project = project
        self.steps = steps
        self.store = RunStore(project.runs_dir, project.cache_dir)
        self.on_event = on_event or (lambda event: None)
        self.publish_metrics = publish_metrics  # off for dry runs (conveyor reproduce)
        self.on_wait = on_wait
        self.side_steps = side_steps
        self.last_run_id: str | None = None

    def run(self, *, force: bool = False) -> dict[str, Any]:
        """Run every step; return the run record.

        Args:
            force: ignore the cache and run every step again.

        Raises:
            ConveyorError: a step failed; the run is recorded as failed first.
        """
        return self._execute(new_run_id(), self.steps, force=force)

    def run_step(self, step_name: str, *, run_id: str, force: bool = False) -> dict[str, Any]:
        """Run one step of an existing (or new) run, reading its upstream outputs.

        This is what an orchestrator task calls: ``conveyor run --step NAME --run-id ID``.
        """
        return self._execute(run_id, (self._step(step_name),), force=force)

    def _step(self, name: str) -> Step:
        return next((s for s in self.steps if s.name == name), None) or step_named(name)

    # -- internals ----------------------------------------------------------
    def _execute(self, run_id: str, steps: Iterable[Step], *, force: bool) -> dict[str, Any]:
        from conveyor.registry.signing import require_signing_key

        self.last_run_id = run_id
        steps = list(steps)
        if any(s.name in ("register", "promote") for s in steps):
            require_signing_key(self.project.tracking_uri)  # not after an hour of training
        with project_lock(
            self.project.state_dir,
            command="run",
            run_id=run_id,
            timeout=self.project.settings.run_lock_timeout,
            on_wait=self.on_wait,
        ):
            return self._execute_locked(run_id, steps, force=force)

    def _execute_locked(self, run_id: str, steps: Iterable[Step], *, force: bool) -> dict[str, Any]:
        record = self._open_record(run_id)
        ctx = self._context(run_id, record)
        record["status"] = "running"
        self.store.write_record(run_id, record)
        steps = list(steps)
        side = self._side_worker(steps)
        try:
            with watching_interrupts():
                for step in steps:
                    self._run_one(step, ctx, record, force=force, side=side)
                    self._collect(side, ctx, record, until=None)
                self._collect(side, ctx, record, until="all")
        except BaseException as raised:
            exc = as_interruption(raised)
            if side is not None and isinstance(exc, KeyboardInterrupt):
                side.interrupt()
            elif side is not None:
                for name in side.pending:  # beside the step that failed: not failed themselves
                    record["steps"][name].update(status="stopped", error="the run failed first")
            self._fail(record, exc)
            if exc is raised:
                raise
            raise exc from raised
        finally:
            if side is not None:
                side.stop()
        finished = all(s.name in record["steps"] for s in self.steps)
        record["status"] = "succeeded" if finished else "partial"
        record["finished_at"] = utc_now()
        if "ingest" in ctx.outputs and "task" in ctx.summaries["ingest"]:
            record["config"] = ctx.config.model_dump(mode="json")
        self._publish_metrics(record)
        self.store.write_record(run_id, record)
        return record

    def _side_worker(self, steps: list[Step]) -> SideWorker | None:
        """The worker for side steps, if more than one step runs; started (and importing
        Great Expectations) right away when validation runs on a small local file."""
        if len(steps) < 2 or not self.side_steps:
            return None
        names = {s.name for s in steps}
        beside = self.side_steps & names
        ahead = {s: x for s, x in WARM_DURING.items() if s in names and x in beside}
        side = SideWorker(warm_during=ahead)
        if "validate" in beside and worth_warming(self.project.config.data.source):
            side.warm("validate", self.project)
        return side

    @staticmethod
    def _prepare(step: Step, ctx: RunContext) -> float:
        """Let a step do what needs none of its upstream steps while they finish beside
        it; a failure there is left for the step itself to report. Returns the seconds
        it took."""
        if step.prepare is None:
            return 0.0
        started = time.perf_counter()
        try:
            step.prepare(ctx)
        except Exception as exc:
            log.debug("preparing step %s failed: %s", step.name, exc)
        return time.perf_counter() - started

    def _free_for(
        self, step: Step, side: SideWorker, ctx: RunContext, record: dict[str, Any]
    ) -> None:
        """Before a step that waits on a large table: collect every side step and stop
        the worker, so that its libraries and its copy of the table are not held beside
        that step's memory."""
        if step.name in WAITS_ON_LARGE_TABLE and not fits_beside(ctx.summaries.get("ingest", {})):
            ctx.forget(keep=step.needs)  # the table itself, once split, is read again later
            self._collect(side, ctx, record, until="all", keep=step.needs)
            side.stop()

    def _open_record(self, run_id: str) -> dict[str, Any]:
        if (self.store.run_dir(run_id) / "record.json").is_file():
            return self.store.read_record(run_id)
        return {
            "run_id": run_id,
            "project": self.project.config.name,
            "project_dir": str(self.project.root),
            "conveyor_version": __version__,
            "started_at": utc_now(),
            "status": "running",
            "steps": {},
        }

    def _context(self, run_id: str, record: dict[str, Any]) -> RunContext:
        ctx = RunContext(project=self.project, run_id=run_id, store=self.store)
        for name, entry in record["steps"].items():
            if entry.get("status") in ("succeeded", "cached"):
                ctx.outputs[name] = Path(entry["outputs"])
                ctx.summaries[name] = entry["summary"]
                ctx.keys[name] = entry["key"]
        return ctx

    def _run_one(
        self,
        step: Step,
        ctx: RunContext,
        record: dict[str, Any],
        *,
        force: bool,
        side: SideWorker | None,
    ) -> None:
        prepared = 0.0  # counted in the step's own time
        if side is not None:
            self._free_for(step, side, ctx, record)
        if side is not None and any(u in side.pending for u in step.needs):
            prepared = self._prepare(step, ctx)
        for upstream in step.needs:
            if side is not None and upstream in side.pending:
                self._collect(side, ctx, record, until=upstream)
            ctx.output(upstream)  # a clear error when an upstream step has not run
        parts = step.key_parts(ctx)
        key = cache_key(step, parts, code_version()) if parts is not None else None
        hit = None if (force or key is None) else self._cached(step, key)
        ctx.keys[step.name] = key or f"uncached-{ctx.run_id}"
        started = time.perf_counter()
        if hit is not None:
            folder, summary = hit
            self._finish(
                step,
                ctx=ctx,
                record=record,
                folder=folder,
                summary=summary,
                status="cached",
                seconds=time.perf_counter() - started,
            )
            return
        folder = self._begin_step(step, ctx, record)
        if side is not None and step.name in self.side_steps and step in STEPS:
            side.submit(step.name, ctx, folder)
            return
        if side is not None:
            side.warm_during(step.name, ctx.project)
        summary = step.execute(ctx, folder)
        check_interrupted()  # the signal may have been swallowed inside the step
        seconds = prepared + time.perf_counter() - started
        self._complete_step(step, ctx, record, folder, summary, seconds=seconds)

    def _collect(
        self,
        side: SideWorker | None,
        ctx: RunContext,
        record: dict[str, Any],
        *,
        until: str | None,
        keep: Iterable[str] = (),
    ) -> None:
        """Record the side steps that are done: without ``until`` only those finished by
        now; with a step name, waiting up to that one; with ``"all"``, waiting for all.
        Before waiting, the outputs held in memory are dropped, but those of ``keep``.

        Raises:
            Exception: what a side step raised, once every other side step has ended.
        """
        if side is None:
            return
        while side.pending:
            block = until == "all" or (until is not None and until in side.pending)
            if block:  # nothing runs here meanwhile: what is held in memory can go
                ctx.forget(keep=keep)
            outcome = side.next_outcome(block=block)
            if outcome is None:
                return
            if outcome.error is not None:
                self._collect_rest(side, ctx, record)
                raise outcome.error
            self._record_side(outcome, ctx, record)

    def _collect_rest(self, side: SideWorker, ctx: RunContext, record: dict[str, Any]) -> None:
        """After one side step failed: record how the others end, then the run fails."""
        while side.pending:
            outcome = side.next_outcome(block=True)
            if outcome is not None and outcome.error is None:
                self._record_side(outcome, ctx, record)

    def _record_side(self, outcome: SideOutcome, ctx: RunContext, record: dict[str, Any]) -> None:
        """Record a side step that succeeded in the worker, as if it had run here."""
        if outcome.summary is None:
            return
        step = self._step(outcome.step)
        folder = ctx.store.run_dir(ctx.run_id) / step.name
        self._complete_step(step, ctx, record, folder, outcome.summary, seconds=outcome.seconds)

    def _cached(self, step: Step, key: str) -> tuple[Path, dict[str, Any]] | None:
        """The outputs and summary of an earlier identical step; None when there are none
        or they cannot be read (the step then runs again)."""
        folder = self.store.cache_lookup(step.name, key)
        if folder is None:
            return None
        try:
            summary = self.store.load_json(folder, "_summary")
        except PipelineError as exc:
            log.warning("cached %s outputs are unusable (%s); running it again", step.name, exc)
            return None
        return (folder, summary) if isinstance(summary, dict) else None

    def _begin_step(self, step: Step, ctx: RunContext, record: dict[str, Any]) -> Path:
        """Record the step as running; its fresh output folder."""
        self.on_event(StepEvent("start", step))
        record["steps"][step.name] = {"status": "running", "started_at": utc_now()}
        self.store.write_record(ctx.run_id, record)
        folder = self.store.step_dir(ctx.run_id, step.name)
        (folder / ".complete").unlink(missing_ok=True)
        return folder

    def _complete_step(
        self,
        step: Step,
        ctx: RunContext,
        record: dict[str, Any],
        folder: Path,
        summary: dict[str, Any],
        *,
        seconds: float,
    ) -> None:
        """Index a step's finished outputs under its key(s) and record it."""
        key = ctx.keys[step.name]
        extra = summary.pop("extra_keys", [])
        self.store.save_json(folder, "_summary", summary)
        keys = [] if key.startswith("uncached-") else [key]
        keys += [cache_key(step, p, code_version()) for p in extra]
        self.store.cache_store(step.name, keys, folder, ctx.run_id)
        self._finish(
            step,
            ctx=ctx,
            record=record,
            folder=folder,
            summary=summary,
            status="succeeded",
            seconds=seconds,
        )

    def _finish(
        self,
        step: Step,
        *,
        ctx: RunContext,
        record: dict[str, Any],
        folder: Path,
        summary: dict[str, Any],
        status: Literal["succeeded", "cached"],
        seconds: float,
    ) -> None:
        ctx.outputs[step.name], ctx.summaries[step.name] = folder, summary
        record["steps"][step.name] = {
            "status": status,
            "key": ctx.keys[step.name],
            "outputs": str(folder),
            "seconds": round(seconds, 4),
            "summary": summary,
        }
        self.store.write_record(ctx.run_id, record)
        self.on_event(StepEvent("cached" if status == "cached" else "done", step, seconds, summary))

    def _fail(self, record: dict[str, Any], exc: BaseException) -> None:
        running = [n for n, s in record["steps"].items() if s.get("status") == "running"]
        message = str(exc) or type(exc).__name__
        if isinstance(exc, KeyboardInterrupt):
            status, message = "interrupted", "interrupted by the user"
        else:
            status = "failed"
        for name in running:
            record["steps"][name]["status"] = status
            record["steps"][name]["error"] = message
            self.on_event(StepEvent("failed", self._step(name), error=message))
        record["status"] = status
        record["error"] = message
        if isinstance(exc, DataValidationError):
            record["validation_failures"] = exc.failures
            record["validation_report"] = exc.report_path
        if not isinstance(exc, ConveyorError | KeyboardInterrupt):
            log.exception("step failed unexpectedly")
        record["finished_at"] = utc_now()
        self._publish_metrics(record)
        try:
            self.store.write_record(record["run_id"], record)
        except PipelineError as write_error:  # e.g. the disk is full: report the first error
            log.warning("the failed run could not be recorded: %s", write_error)

    def _publish_metrics(self, record: dict[str, Any]) -> None:
        """Publish a finished run's gauges (textfile / Pushgateway); never fails the run."""
        if not self.publish_metrics:
            return
        from conveyor.monitoring.pipeline_metrics import publish_pipeline_metrics

        section = publish_pipeline_metrics(
            record, state_dir=self.project.state_dir, settings=self.project.settings
        )
        if section is not None:
            record["metrics"] = section
