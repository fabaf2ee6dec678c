"""``conveyor models list``, ``promote``, ``rollback``, ``lineage`` and ``ui``: the
registered models of a tracking store, their aliases and where each version came from.

Imports stay light at module level (typer only): ``conveyor --help`` must answer at once.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from conveyor.cli.options import DEFAULT_CONFIG, ConfigOpt, StoreOpt

__all__ = ["lineage", "models_app", "promote", "rollback", "ui"]

models_app = typer.Typer(help="Registered models.", no_args_is_help=True)


@models_app.command("list")
def models_list(config: ConfigOpt = DEFAULT_CONFIG, tracking_uri: StoreOpt = None) -> None:
    """List registered models with their champion, challenger and previous versions."""
    from rich.table import Table

    from conveyor.cli import _console, _guarded, _registry

    registry, uri = _guarded(_registry, config, tracking_uri)
    table = Table("model", "versions", "latest", "champion", "challenger", "previous")
    for m in _guarded(registry.list_models):
        cells = [str(m.get(k) or "-") for k in ("latest", "champion", "challenger", "previous")]
        table.add_row(m["name"], str(m.get("versions", "-")), *cells)
    _console().print(table)
    _console().print(f"[dim]store: {uri}[/]")


def promote(
    name: str,
    version: str,
    config: ConfigOpt = DEFAULT_CONFIG,
    tracking_uri: StoreOpt = None,
) -> None:
    """Make VERSION the champion of NAME by hand (the old champion becomes 'previous').

    Waits for a run of the project (-c) in progress to finish first.
    """
    from conveyor.cli import _console, _guarded, _registry, _under_project_lock

    registry, _ = _guarded(_registry, config, tracking_uri)
    info = _guarded(_under_project_lock, config, "promote", registry.promote, name, version)
    _console().print(f"[green]{name} v{info.version} is now champion[/]")


def rollback(name: str, config: ConfigOpt = DEFAULT_CONFIG, tracking_uri: StoreOpt = None) -> None:
    """Move 'champion' of NAME back to its 'previous' version.

    Waits for a run of the project (-c) in progress to finish first.
    """
    from conveyor.cli import _console, _guarded, _registry, _under_project_lock

    registry, _ = _guarded(_registry, config, tracking_uri)
    info = _guarded(_under_project_lock, config, "rollback", registry.rollback, name)
    _console().print(f"[green]{name} rolled back: v{info.version} is champion again[/]")


def lineage(
    name: str, version: str, config: ConfigOpt = DEFAULT_CONFIG, tracking_uri: StoreOpt = None
) -> None:
    """Show where a model version came from: data, validation, config, code, run.

    The key "report" locates the version's HTML model report: a local file path when the
    store keeps artifacts on this machine, else its artifact URI; null when it has none.
    """
    import json

    from conveyor.cli import _guarded, _registry

    registry, _ = _guarded(_registry, config, tracking_uri)
    record = _guarded(registry.lineage, name, version)
    record["report"] = _guarded(registry.report_location, name, version)
    print(json.dumps(record, indent=2, default=str))


def ui(
    config: ConfigOpt = DEFAULT_CONFIG,
    tracking_uri: StoreOpt = None,
    port: Annotated[int, typer.Option(help="Port of the MLflow UI.")] = 5000,
) -> None:
    """Open the MLflow UI on the project's tracking store."""
    import subprocess

    from conveyor.cli import _console, _guarded, _registry

    registry, uri = _guarded(_registry, config, tracking_uri)
    argv = _guarded(registry.ui_command, port=port)
    # One worker and no job consumers: ~13 s and ~0.5 GB instead of ~25 s and ~3 GB.
    env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **os.environ}
    _console().print(f"MLflow UI for {uri} on http://127.0.0.1:{port} (Ctrl-C to stop)")
    try:
        sys.exit(subprocess.call(argv, env=env))
    except KeyboardInterrupt:
        sys.exit(0)
