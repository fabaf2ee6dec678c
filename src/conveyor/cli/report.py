"""What a person sees of a run: live step progress and the closing summary table."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.table import Table

from conveyor.redaction import redact

if TYPE_CHECKING:
    from types import TracebackType

    from rich.console import Console
    from rich.status import Status

    from conveyor.pipeline.project import Project
    from conveyor.pipeline.runner import StepEvent

__all__ = ["StepProgress", "print_failure", "print_runs", "print_summary"]


def _validation_brief(summary: dict[str, Any]) -> str:
    if summary.get("skipped"):
        return "skipped (validation.enabled: false)"
    made = ", baseline created" if summary.get("baseline_created") else ""
    return f"{summary['evaluated']} expectations passed{made}"


def _export_brief(summary: dict[str, Any]) -> str:
    profile = f"profile of {summary['profile_rows']:,} rows"
    onnx = summary.get("onnx")
    if onnx is None:
        return f"{profile}; ONNX export off"
    diff = onnx.get("max_abs_diff")
    return f"{profile}; ONNX {onnx['status']}" + (
        f" (max diff {diff:.3g})" if diff is not None else ""
    )


_BRIEFS: dict[str, Callable[[dict[str, Any]], str]] = {
    "ingest": lambda s: f"{s['rows']:,} rows, {s['columns']} columns, task {s['task']}",
    "validate": _validation_brief,
    "version": lambda s: "skipped" if s.get("skipped") else f"md5 {s['md5'][:12]}",
    "split": lambda s: f"{s['train_rows']:,} train / {s['test_rows']:,} held out",
    "train": lambda s: f"{s['model']} in {s['fit_seconds']:.1f}s",
    "export": _export_brief,
    "evaluate": lambda s: ", ".join(f"{k} {v:.4f}" for k, v in list(s["metrics"].items())[:3]),
    "register": lambda s: f"{s['name']} v{s['version']}",
    "promote": lambda s: f"-> {s['alias']}",
}


class StepProgress:
    """Shows a spinner on the running steps and one line per finished step."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._status: Status | None = None
        self._running: dict[str, str] = {}

    def __enter__(self) -> StepProgress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """Remove the spinner."""
        if self._status is not None:
            self._status.stop()
            self._status = None

    def update(self, event: StepEvent) -> None:
        """Render one progress event."""
        name = f"{event.step.name:<9}"
        self.stop()
        if event.kind == "start":
            self._running[event.step.name] = f"{name} {event.step.title}..."
        else:
            self._running.pop(event.step.name, None)
            if event.kind == "failed":
                self.console.print(f"[red]✘ {name}[/] {escape(redact(event.error or ''))}")
            else:
                tag = "[dim]cached[/]" if event.kind == "cached" else f"{event.seconds:6.2f}s"
                brief = _BRIEFS[event.step.name](event.summary or {})
                self.console.print(f"[green]✔[/] {name} {tag}  {brief}")
        if self._running:  # steps beside each other share the spinner, newest last
            self._status = self.console.status("\n".join(self._running.values()))
            self._status.start()


def _metric_rows(run: dict[str, Any]) -> list[tuple[str, str, str]]:
    metrics = run["steps"]["evaluate"]["summary"]["metrics"]
    champion = (run["steps"].get("promote", {}).get("summary") or {}).get("champion_metrics") or {}
    return [
        (k, f"{v:.4f}", f"{champion[k]:.4f}" if k in champion else "-") for k, v in metrics.items()
    ]


def print_summary(
    console: Console, project: Project, run: dict[str, Any], *, config_path: Path
) -> None:
    """The closing table: data, validation, metrics vs champion, model, where to look."""
    steps = run["steps"]
    if "promote" not in steps:
        console.print(f"run {run['run_id']}: {run['status']} ({', '.join(steps)})")
        return
    ingest, version = steps["ingest"]["summary"], steps["version"]["summary"]
    validate, register = steps["validate"]["summary"], steps["register"]["summary"]
    promote = steps["promote"]["summary"]
    total = sum(s.get("seconds", 0.0) for s in steps.values())
    info = Table.grid(padding=(0, 2))
    # Step seconds, not wall time: steps beside each other overlap, cached ones took none.
    info.add_row("run", f"{run['run_id']} ({total:.1f}s of step time)")
    info.add_row("data", f"md5 {version['md5']} ({ingest['rows']:,} rows)")
    check = "skipped" if validate.get("skipped") else f"passed ({validate['evaluated']} checks)"
    info.add_row("validation", check)
    alias_style = "green" if promote["alias"] == "champion" else "yellow"
    info.add_row(
        "model",
        f"{register['name']} v{register['version']} -> [{alias_style}]{promote['alias']}[/]",
    )
    info.add_row("gate", "; ".join(promote.get("reasons", [])))
    info.add_row("serving", _serving_line(register.get("tags", {})))
    metrics = Table("metric", "challenger", "champion (same held-out)", title="held-out metrics")
    for row in _metric_rows(run):
        metrics.add_row(*row)
    console.print(info)
    console.print(metrics)
    _where_to_look(console, project, run, config_path)


def _serving_line(tags: dict[str, str]) -> str:
    """How ``conveyor serve`` will score this version: the ONNX fast path, or why not."""
    status = tags.get("conveyor.onnx")
    if status is None:
        return "pipeline runtime (ONNX export off: serving.onnx.enabled)"
    if status == "verified":
        diff = tags.get("conveyor.onnx_max_abs_diff", "n/a")
        return f"[green]ONNX Runtime fast path[/] (parity verified, max diff {diff})"
    reason = tags.get("conveyor.onnx_reason", "no reason recorded")
    return (
        f"[bold yellow]pipeline runtime only: ONNX export {status}[/] ({reason}); "
        "`conveyor serve` answers many times slower than on the fast path"
    )


def _where_to_look(
    console: Console, project: Project, run: dict[str, Any], config_path: Path
) -> None:
    console.print("[bold]where to look[/]")
    console.print(f"  MLflow UI     conveyor ui -c {config_path}   (store: {project.tracking_uri})")
    console.print(f"  plots         {run['steps']['evaluate']['outputs']}/plots/")
    report = run["steps"]["validate"]["summary"].get("report")
    if report:
        console.print(f"  GX report     {report}")
    console.print(f"  run record    {project.runs_dir / run['run_id'] / 'record.json'}")


def print_failure(console: Console, project: Project, run_id: str | None) -> None:
    """After a failed run: the validation failures and where the report is."""
    from conveyor.errors import PipelineError
    from conveyor.pipeline.store import RunStore

    if run_id is None:
        return
    try:
        record = RunStore(project.runs_dir, project.cache_dir).read_record(run_id)
    except PipelineError:  # no record, or one the error line already called unreadable
        return
    for line in record.get("validation_failures", [])[:20]:
        console.print(f"  [red]-[/] {line}", soft_wrap=True)
    if record.get("validation_report"):
        console.print(f"  GX report: {record['validation_report']}")
    left = _registry_state(record)
    console.print(f"  run {record['run_id']} recorded as {record['status']}; {left}")


def _registry_state(record: dict[str, Any]) -> str:
    """What a failed run left in the registry: nothing, or a version it did not promote."""
    register = record.get("steps", {}).get("register", {})
    if register.get("status") not in ("succeeded", "cached"):
        return "nothing registered, no alias moved"
    version = (register.get("summary") or {}).get("version", "?")
    return f"version {version} registered; the promote step did not finish"


def print_runs(console: Console, project: Project) -> None:
    """Table of recorded runs, newest first."""
    from conveyor.errors import PipelineError
    from conveyor.pipeline.store import RunStore

    store = RunStore(project.runs_dir, project.cache_dir)
    table = Table("run", "status", "started", "steps (cached)", "model")
    for path in sorted(project.runs_dir.glob("*/record.json"), reverse=True)[:30]:
        try:
            run = store.read_record(path.parent.name)
        except PipelineError:  # a record cut short by a crash or edited by hand
            table.add_row(escape(path.parent.name), "[red]unreadable record[/]", "-", "-", "-")
            continue
        steps = run.get("steps", {})
        cached = sum(1 for s in steps.values() if s.get("status") == "cached")
        reg = steps.get("register", {}).get("summary") or {}
        model = f"v{reg['version']}" if reg.get("version") else "-"
        table.add_row(
            run["run_id"], run["status"], run["started_at"], f"{len(steps)} ({cached})", model
        )
    console.print(table)
