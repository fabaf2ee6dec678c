"""``conveyor backup``, ``restore`` and ``reproduce``: disaster recovery from the command line.

Imports stay light at module level (typer only): ``conveyor --help`` must answer at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from conveyor.cli.options import OptionalConfigOpt

if TYPE_CHECKING:
    from rich.console import Console

    from conveyor.pipeline.archive import Progress
    from conveyor.pipeline.reproduce import Reproduction

__all__ = ["backup", "reproduce", "restore"]


def _console() -> Console:
    from rich.console import Console

    return Console(highlight=False)


@contextmanager
def _progress() -> Iterator[Progress]:
    """A byte progress bar per stage of long work, on stderr (stdout stays clean)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description:<11}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
    )
    tasks: dict[str, Any] = {}
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield update


def backup(
    *,
    to: Annotated[
        str,
        typer.Option(
            "--to",
            help="Archive path or s3://bucket/key (.tar.gz, .tgz or .tar), or a folder or "
            "s3:// prefix to write a timestamped .tar.gz into.",
        ),
    ],
    config: OptionalConfigOpt = Path("conveyor.yaml"),
) -> None:
    """Write one archive holding a consistent snapshot of the project.

    It holds the tracking and registry store (SQLite online copy, or pg_dump), the model
    artifacts, the DVC remote and dataset records, the GX suites, the run records and the
    config, with a manifest of every member's sha256. Safe while a run or server is busy.
    """
    from conveyor.cli import _guarded, _project
    from conveyor.pipeline.backup import create_backup

    project = _guarded(_project, config)
    with _progress() as progress:
        report = _guarded(
            create_backup, project, config_path=config, target=to, on_progress=progress
        )
    console = _console()
    console.print(
        f"[green]backup written[/] {report.target} ({report.members} files, "
        f"{report.size / 1e6:,.1f} MB before compression)"
    )
    for location in report.external:
        console.print(f"[yellow]not in the archive[/] (kept by its own storage): {location}")


def restore(
    *,
    source: Annotated[str, typer.Option("--from", help="The archive: a path or s3://bucket/key.")],
    into: Annotated[
        Path, typer.Option("--into", help="An empty or new folder for the restored project.")
    ],
    tracking_uri: Annotated[
        str | None,
        typer.Option(help="PostgreSQL archive: the empty database to restore the store into."),
    ] = None,
) -> None:
    """Restore a backup archive into an empty folder, after checking every checksum.

    A tampered or truncated archive is refused before anything is written. Artifact
    locations and the DVC remote are moved to the new folder; then `conveyor serve` and
    `conveyor data pull` work there as they did on the old machine.
    """
    from conveyor.cli import _guarded
    from conveyor.pipeline.restore import restore_backup

    with _progress() as progress:
        report = _guarded(
            restore_backup, source, into=into, tracking_uri=tracking_uri, on_progress=progress
        )
    console = _console()
    counts = report.counts
    console.print(
        f"[green]restored[/] {report.into}: {counts['models']} registered models, "
        f"{counts['versions']} versions, {counts['aliases']} aliases, {counts['runs']} MLflow "
        f"runs, {report.run_records} pipeline runs, {report.datasets} dataset versions"
    )
    console.print(f"store   {report.store}")
    for note in report.notes:
        console.print(f"[yellow]note[/] {note}")
    console.print(f"next    conveyor serve -c {report.config}")


def reproduce(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    version: Annotated[str, typer.Argument(help="Version to rebuild.")],
    config: OptionalConfigOpt = Path("conveyor.yaml"),
    tolerance: Annotated[
        float,
        typer.Option(help="Largest absolute difference of a metric that still matches.", min=0),
    ] = 1e-6,
) -> None:
    """Rebuild a registered version from its lineage and compare its metrics.

    The same dataset version (DVC md5), the config snapshot logged with it and this
    code train and evaluate again in a temporary run: nothing is registered, no alias
    moves. Exit 0 when every metric matches within --tolerance, 1 otherwise.
    """
    from conveyor.cli import _guarded, _project
    from conveyor.pipeline.reproduce import reproduce_version

    project = _guarded(_project, config)
    console = _console()
    with console.status(f"rebuilding {name} v{version} in a temporary run"):
        result = _guarded(reproduce_version, project, name, version, tolerance=tolerance)
    _print_reproduction(console, result)
    if not result.matches:
        raise typer.Exit(1)


def _print_reproduction(console: Console, result: Reproduction) -> None:
    from rich.table import Table

    table = Table("metric", "registered", "reproduced", "difference", title="held-out metrics")
    for row in result.rows:
        style = "" if row.matches else "red"
        table.add_row(
            row.metric,
            _number(row.registered),
            _number(row.reproduced),
            _number(row.difference),
            style=style,
        )
    console.print(f"dataset  md5 {result.data_md5} (pulled from the DVC remote)")
    console.print(f"config   {result.config_source}")
    for line in result.code_notes:
        console.print(f"code     {line}")
    console.print(table)
    if result.matches:
        console.print(f"[green]reproduced[/]: every metric within {result.tolerance:g}")
    else:
        console.print(f"[red]not reproduced[/]: a metric differs by more than {result.tolerance:g}")


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"
