"""``conveyor predict``: batch scoring of a table with a registered model version.

Imports stay light at module level (typer only): ``conveyor --help`` must answer at once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from conveyor.cli.options import OptionalConfigOpt, RuntimeOpt, StoreOpt

if TYPE_CHECKING:
    from conveyor.pipeline.scoring import ScoringReport

__all__ = ["predict"]

_RUNTIMES = ("auto", "onnx", "pyfunc")


def predict(
    *,
    input: Annotated[
        str,
        typer.Option(
            "--input", "-i", help="Rows to score: .csv, .parquet, s3://..., postgresql://..."
        ),
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Answers: a .parquet or .csv file.")
    ],
    model: Annotated[
        str | None,
        typer.Option(help="NAME@ALIAS or NAME/VERSION (default: the project's champion)."),
    ] = None,
    config: OptionalConfigOpt = Path("conveyor.yaml"),
    tracking_uri: StoreOpt = None,
    probabilities: Annotated[
        bool, typer.Option(help="Add a probability_<class> column per class (classifiers).")
    ] = False,
    id_column: Annotated[
        str | None, typer.Option(help="An input column copied beside each prediction.")
    ] = None,
    rejects: Annotated[
        Path | None, typer.Option(help="A .csv file for bad rows (row, id, reason).")
    ] = None,
    table: Annotated[str | None, typer.Option(help="SQL input: the table to read.")] = None,
    query: Annotated[str | None, typer.Option(help="SQL input: the query to run.")] = None,
    chunk_rows: Annotated[int, typer.Option(help="Rows read and scored at a time.", min=1)] = (
        50_000
    ),
    runtime: RuntimeOpt = "auto",
    report: Annotated[
        Path | None, typer.Option(help="Write the run's counts and timing to this JSON file.")
    ] = None,
) -> None:
    """Score a table with a registered model; write predictions, its name and version.

    The rows are cleaned by the model's own value rules (as training and the server
    clean them) and checked as the server checks a request. Bad rows are counted (and
    written to --rejects), never fatal. Memory holds one chunk of --chunk-rows rows.
    Exit 0 when the run finished (even with bad rows), 1 when it could not, 2 for a usage
    or config error.
    """
    from conveyor.cli import _guarded

    result = _guarded(
        _score,
        source=input,
        output=output,
        model=model,
        config=config,
        tracking_uri=tracking_uri,
        probabilities=probabilities,
        id_column=id_column,
        rejects=rejects,
        table=table,
        query=query,
        chunk_rows=chunk_rows,
        runtime=runtime,
    )
    if report is not None:
        _guarded(_write_report, report, result)
    _print(result)


def _write_report(path: Path, result: ScoringReport) -> None:
    from conveyor.errors import DataError

    try:
        path.write_text(json.dumps(result.to_dict(), indent=2), encoding="utf-8")
    except OSError as exc:
        raise DataError(f"--report {path}: cannot write it ({exc.strerror or exc})") from exc


def _score(
    *,
    source: str,
    output: Path,
    model: str | None,
    config: Path,
    tracking_uri: str | None,
    probabilities: bool,
    id_column: str | None,
    rejects: Path | None,
    table: str | None,
    query: str | None,
    chunk_rows: int,
    runtime: str,
) -> ScoringReport:
    from conveyor.cli.monitor import resolve_model_ref
    from conveyor.config import DataConfig
    from conveyor.data.batches import open_chunks
    from conveyor.errors import ConfigError
    from conveyor.pipeline.scoring import score_chunks
    from conveyor.serving.slot import load_version

    if runtime not in _RUNTIMES:
        raise ConfigError(f"--runtime: use one of {', '.join(_RUNTIMES)} (got {runtime!r})")
    registry, info = resolve_model_ref(model, config, tracking_uri)
    data = DataConfig(source=_local(source), target="-", table=table, query=query)
    opened = open_chunks(data, chunk_rows=chunk_rows)
    slot = load_version(registry, info, runtime=runtime)  # type: ignore[arg-type]
    with _progress(opened.total_rows, f"{info.name} v{info.version} ({slot.runtime})") as tick:
        return score_chunks(
            slot,
            opened.chunks,
            output=output,
            probabilities=probabilities,
            id_column=id_column,
            rejects=rejects,
            progress=tick,
        )


def _local(source: str) -> str:
    return source if "://" in source else str(Path(source).expanduser().resolve())


class _progress:  # noqa: N801 (used as a context manager, like a function)
    """A rich progress bar over rows (a total when the input's row count is known)."""

    def __init__(self, total: int | None, title: str) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("rows, {task.fields[rejected]} rejected"),
            TimeElapsedColumn(),
            transient=True,
        )
        self.task = self.bar.add_task(f"scoring with {title}", total=total, rejected=0)

    def __enter__(self) -> Any:
        self.bar.start()

        def tick(rows: int, rejected: int) -> None:
            self.bar.update(self.task, completed=rows, rejected=rejected)

        return tick

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()


def _print(report: ScoringReport) -> None:
    from rich.console import Console
    from rich.markup import escape

    console = Console(highlight=False)
    rate = f"{report.rows / report.seconds:,.0f} rows/s" if report.seconds else ""
    console.print(
        f"scored {report.scored:,} of {report.rows:,} rows with {escape(report.model)} "
        f"v{report.version} ({report.runtime}) in {report.seconds:.1f}s {rate}"
    )
    if report.rejected:
        where = f"; details in {escape(report.rejects)}" if report.rejects else ""
        console.print(f"[yellow]{report.rejected:,} bad row(s) not scored{where}[/]")
        for reason in report.reasons[:5]:
            console.print(f"  - {escape(reason)}")
    if report.ignored_columns:
        shown = ", ".join(report.ignored_columns[:8])
        console.print(f"ignored input column(s) the model does not take: {escape(shown)}")
    console.print(f"answers: {escape(report.output)}")
