"""``conveyor data``: the dataset versions DVC tracks for a project.

Imports stay light at module level (typer only): ``conveyor --help`` must answer at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from conveyor.cli.options import DEFAULT_CONFIG, ConfigOpt

__all__ = ["data_app"]

data_app = typer.Typer(help="Dataset versions tracked by DVC.", no_args_is_help=True)


@data_app.command("versions")
def data_versions(config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """List the dataset versions recorded for this project."""
    from rich.table import Table

    from conveyor.cli import _console, _guarded, _project
    from conveyor.data.versioning import DatasetVersioner

    project = _guarded(_project, config)
    versioner = DatasetVersioner(project.root, remote=project.dvc_remote)
    table = Table("md5", "path", "size", "recorded", "remote")
    for v in _guarded(versioner.versions):
        table.add_row(v.md5, v.path, f"{v.size:,}", v.created_at, v.remote)
    _console().print(table)


@data_app.command("pull")
def data_pull(
    md5: Annotated[str | None, typer.Argument(help="Version to restore (default: newest).")] = None,
    config: ConfigOpt = DEFAULT_CONFIG,
    dest: Annotated[Path | None, typer.Option(help="Write it here instead.")] = None,
) -> None:
    """Restore a recorded dataset version from the DVC remote."""
    from conveyor.cli import _console, _fail, _guarded, _project
    from conveyor.data.versioning import DatasetVersioner

    project = _guarded(_project, config)
    versioner = DatasetVersioner(project.root, remote=project.dvc_remote)
    if md5 is None:
        versions = _guarded(versioner.versions)
        if not versions:
            _fail("no dataset version recorded yet; run `conveyor run` first", 1)
        md5 = versions[0].md5
    path = _guarded(versioner.pull, md5, dest=dest)
    _console().print(f"[green]restored[/] {md5} -> {path}")
