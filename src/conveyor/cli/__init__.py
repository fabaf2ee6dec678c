"""The ``conveyor`` command line: thin commands over the pipeline, with lazy imports.

Only this module prints and maps errors to exit codes: 0 success, 1 pipeline or runtime
failure, 2 usage or config error, 75 a transient failure (a service did not answer, the
champion moved, another run held the project's lock too long): retry it. Heavy libraries
load inside the command that needs them, so ``conveyor --help`` answers at once.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from conveyor.cli.backup import backup, reproduce, restore
from conveyor.cli.data import data_app
from conveyor.cli.image import image_app
from conveyor.cli.models import lineage, models_app, promote, rollback, ui
from conveyor.cli.monitor import monitor_app
from conveyor.cli.options import DEFAULT_CONFIG, ConfigOpt
from conveyor.cli.predict import predict
from conveyor.cli.serve import serve

if TYPE_CHECKING:
    from collections.abc import Callable

    from rich.console import Console

    from conveyor.pipeline.lock import LockHolder
    from conveyor.pipeline.project import Project
    from conveyor.registry.store import ModelRegistry

__all__ = ["app", "main"]

app = typer.Typer(
    name="conveyor",
    help="Conveyor: from a raw table to a validated, versioned, registered and gated model.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Inspect the pipeline config.", no_args_is_help=True)
runs_app = typer.Typer(help="Pipeline runs recorded under .conveyor/runs.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(data_app, name="data")
app.add_typer(models_app, name="models")
app.add_typer(runs_app, name="runs")
app.add_typer(monitor_app, name="monitor")
app.add_typer(image_app, name="image")
app.command("predict")(predict)


def _print_version(value: bool) -> None:
    if value:
        from conveyor import __version__

        typer.echo(f"conveyor {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Conveyor: from a raw table to a validated, versioned, registered and gated model."""


def _console() -> Console:
    from rich.console import Console

    return Console(highlight=False)


def _fail(message: str, code: int) -> NoReturn:
    from rich.console import Console
    from rich.markup import escape

    from conveyor.redaction import redact

    line = f"[bold red]error:[/] {escape(redact(message))}"
    Console(stderr=True, highlight=False).print(line, soft_wrap=True)
    raise typer.Exit(code)


# Top-level modules of the optional extras: the serving image and a plain
# `pip install conveyor-mlops` hold only what `conveyor serve` needs.
_EXTRA_MODULES = {
    "pipeline": (
        "great_expectations", "dvc", "dvc_s3", "pyarrow", "s3fs", "fsspec", "sqlalchemy",
        "psycopg", "matplotlib", "skl2onnx", "onnxmltools", "alembic", "flask",
    ),
    "torch": ("torch",),
}  # fmt: skip


def _missing_extra(exc: ModuleNotFoundError) -> str | None:
    """What to install when the missing module comes with one of Conveyor's extras."""
    top = (exc.name or "").partition(".")[0]
    extra = next((extra for extra, tops in _EXTRA_MODULES.items() if top in tops), None)
    if extra is None:
        return None
    return (
        f"this command needs {exc.name}, which comes with Conveyor's '{extra}' extra: "
        f"pip install 'conveyor-mlops[{extra}]' (this installation serves models only)"
    )


def _guarded(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call ``fn`` mapping Conveyor errors to one clear line and an exit code."""
    from conveyor.errors import ConveyorError

    try:
        return fn(*args, **kwargs)
    except ConveyorError as exc:
        _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted; nothing was registered by the unfinished step", 130)
    except typer.Exit:
        raise
    except Exception as exc:
        if os.environ.get("CONVEYOR_DEBUG"):
            raise
        if isinstance(exc, ModuleNotFoundError) and (hint := _missing_extra(exc)):
            _fail(hint, 2)
        _fail(f"unexpected {type(exc).__name__}: {exc} (set CONVEYOR_DEBUG=1 for a traceback)", 1)


def _project(config_path: Path, *, source: str | None = None) -> Project:
    from conveyor.config import load_config
    from conveyor.pipeline.project import Project
    from conveyor.settings import get_settings, quiet_dependencies

    quiet_dependencies()
    config = load_config(config_path)
    if source:  # a relative path on the command line means relative to where it was typed
        local = "://" not in source and not Path(source).is_absolute()
        data = config.data.model_copy(
            update={"source": str(Path(source).resolve()) if local else source}
        )
        config = config.model_copy(update={"data": data})
    return Project.open(config, config_dir=config_path.resolve().parent, settings=get_settings())


def _registry(config_path: Path, tracking_uri: str | None) -> tuple[ModelRegistry, str]:
    from conveyor.registry.store import ModelRegistry
    from conveyor.settings import get_settings, quiet_dependencies

    quiet_dependencies()
    settings = get_settings()
    if tracking_uri:
        uri = tracking_uri
    elif config_path.is_file():
        uri = _project(config_path).tracking_uri
    else:
        uri = settings.tracking_uri(Path.cwd())
    return ModelRegistry(uri), uri


def _announce_wait(holder: LockHolder) -> None:
    """Say whom a command waits for (stderr: stdout stays the command's own output)."""
    from rich.console import Console

    from conveyor.settings import get_settings

    limit = get_settings().run_lock_timeout
    Console(stderr=True, highlight=False).print(
        f"[yellow]waiting for {holder.describe()} to finish[/] (project lock .conveyor/run.lock;"
        f" gives up after {limit:g} s, CONVEYOR_RUN_LOCK_TIMEOUT)",
        soft_wrap=True,
    )


def _under_project_lock(config_path: Path, command: str, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` holding the project's lock, when there is a project (a config file)."""
    if not config_path.is_file():
        return fn(*args)
    from conveyor.pipeline.lock import project_lock

    project = _project(config_path)
    with project_lock(
        project.state_dir,
        command=command,
        timeout=project.settings.run_lock_timeout,
        on_wait=_announce_wait,
    ):
        return fn(*args)


# -- run ----------------------------------------------------------------------
@app.command()
def run(
    config: ConfigOpt = DEFAULT_CONFIG,
    step: Annotated[str | None, typer.Option(help="Run only this step (needs --run-id).")] = None,
    run_id: Annotated[str | None, typer.Option(help="Run id to add the step to.")] = None,
    force: Annotated[bool, typer.Option(help="Ignore the step cache.")] = False,
    source: Annotated[
        str | None,
        typer.Option(help="Read this data source instead of the config's data.source."),
    ] = None,
) -> None:
    """Run the training pipeline: ingest, validate, version, split, train, export, evaluate,
    register, promote."""
    from conveyor.cli.report import StepProgress, print_failure, print_summary

    if step and not run_id:
        _fail("--step needs --run-id (the run whose earlier outputs it reads)", 2)
    project = _guarded(_project, config, source=source)
    console = _console()
    from conveyor.pipeline.runner import PipelineRunner

    with StepProgress(console) as progress:
        runner = PipelineRunner(project, on_event=progress.update, on_wait=_announce_wait)
        try:
            if step:
                record = _guarded(runner.run_step, step, run_id=run_id, force=force)
            else:
                record = _guarded(runner.run, force=force)
        except typer.Exit:
            progress.stop()
            print_failure(console, project, runner.last_run_id)
            raise
    print_summary(console, project, record, config_path=config)


# -- config -------------------------------------------------------------------
@config_app.command("schema")
def config_schema() -> None:
    """Print the JSON Schema of the pipeline config."""
    import json

    from conveyor.config import ConveyorConfig

    print(json.dumps(ConveyorConfig.model_json_schema(), indent=2))


@config_app.command("show")
def config_show(config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """Print the fully resolved config: every inferred value and default made explicit."""
    import yaml

    from conveyor.pipeline.inspect import resolved_config

    project = _guarded(_project, config)
    resolved = _guarded(resolved_config, project)
    print(yaml.safe_dump(resolved.model_dump(mode="json"), sort_keys=False), end="")


@config_app.command("validate")
def config_validate(config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """Check a config file without reading any data."""
    project = _guarded(_project, config)
    _console().print(f"[green]ok[/] {config}: project {project.config.name!r}")


# -- models and serve ---------------------------------------------------------
app.command()(promote)
app.command()(rollback)
app.command()(lineage)
app.command()(ui)
app.command()(serve)


# -- runs ---------------------------------------------------------------------
@runs_app.command("list")
def runs_list(config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """List recorded pipeline runs, newest first."""
    from conveyor.cli.report import print_runs

    print_runs(_console(), _guarded(_project, config))


@runs_app.command("show")
def runs_show(run_id: str, config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """Print a run record (JSON)."""
    import json

    from conveyor.pipeline.store import RunStore

    project = _guarded(_project, config)
    store = RunStore(project.runs_dir, project.cache_dir)
    print(json.dumps(_guarded(store.read_record, run_id), indent=2))


# -- demo ---------------------------------------------------------------------
@app.command()
def demo(
    directory: Annotated[Path, typer.Option("--dir", help="Where to create the demo.")] = Path(
        "demo"
    ),
    rows: Annotated[int, typer.Option(help="Rows of demo data.", min=100)] = 20000,
    seed: Annotated[int, typer.Option(help="Seed of the demo data.")] = 0,
    drift: Annotated[float, typer.Option(help="Shift the data by this much (0 = none).")] = 0.0,
    loop: Annotated[
        bool,
        typer.Option(
            "--loop",
            help="Run the whole loop: train if needed, serve, send traffic, inject drift, "
            "retrain through the gates, swap the new champion in.",
        ),
    ] = False,
) -> None:
    """Create a demo project (seeded churn data + config) and print how to run it."""
    from conveyor.pipeline.inspect import write_demo_project

    config_path = directory / "conveyor.yaml"
    if not (loop and config_path.is_file()):
        config_path = _guarded(write_demo_project, directory, rows=rows, seed=seed, drift=drift)
        _console().print(
            f"[green]demo project[/] {config_path} (run: conveyor run -c {config_path})"
        )
    if loop:
        _demo_loop(config_path)


def _demo_loop(config_path: Path) -> None:
    import subprocess

    from conveyor.pipeline.demo_loop import run_demo_loop

    registry, _ = _registry(config_path, None)
    name = _guarded(_project, config_path).config.name
    if _guarded(registry.get_alias, name, "champion") is None:
        _console().print("training the first champion: conveyor run")
        argv = [str(Path(sys.executable).with_name("conveyor")), "run", "-c", str(config_path)]
        if subprocess.call(argv) != 0:
            _fail("demo: the first training run failed (see above)", 1)
    result = _guarded(run_demo_loop, config_path, say=_console().print)
    if result.failures:
        _fail(f"demo: {len(result.failures)} requests failed: {result.failures[0]}", 1)


# -- disaster recovery ----------------------------------------------------------
app.command("backup")(backup)
app.command("restore")(restore)
app.command("reproduce")(reproduce)


def main() -> None:
    """Console-script entry point.

    Exits with ``os._exit`` once output is flushed and ``atexit`` handlers have run:
    tearing down the module graph of MLflow, scikit-learn and friends costs ~2.5 s of
    interpreter shutdown and does nothing for the user.
    """
    import atexit

    from conveyor.redaction import redact_logs

    redact_logs()
    code: int | str | None = 0
    try:
        app()
    except SystemExit as exc:
        code = exc.code
    sys.stdout.flush()
    sys.stderr.flush()
    atexit._run_exitfuncs()
    os._exit(code if isinstance(code, int) else (0 if code is None else 1))


if __name__ == "__main__":
    main()
