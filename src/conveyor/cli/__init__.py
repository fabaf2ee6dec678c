"""The ``conveyor`` command line: thin commands over the pipeline, with lazy imports.

Only this module prints and maps errors to exit codes: 0 success, 1 pipeline or runtime
failure, 2 usage or config error, 75 a transient failure (a service did not answer, the
champion moved, another run held the project's lock too long): retry it. Heavy libraries
load inside the command that needs them, so ``conveyor --help`` answers at once.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from conveyor.cli.backup import backup, reproduce, restore
from conveyor.cli.image import image_app
from conveyor.cli.monitor import monitor_app
from conveyor.cli.options import RuntimeOpt
from conveyor.cli.predict import predict

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
data_app = typer.Typer(help="Dataset versions tracked by DVC.", no_args_is_help=True)
models_app = typer.Typer(help="Registered models.", no_args_is_help=True)
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


ConfigOpt = Annotated[
    Path, typer.Option("--config", "-c", help="Pipeline config (YAML).", show_default=True)
]
DEFAULT_CONFIG = Path("conveyor.yaml")


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
    """Run the training pipeline: ingest, validate, version, train, evaluate, register, promote."""
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


# -- data ---------------------------------------------------------------------
@data_app.command("versions")
def data_versions(config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """List the dataset versions recorded for this project."""
    from rich.table import Table

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


# -- models -------------------------------------------------------------------
TrackingOpt = Annotated[
    str | None, typer.Option(help="MLflow tracking URI (default: the project's store).")
]


@models_app.command("list")
def models_list(config: ConfigOpt = DEFAULT_CONFIG, tracking_uri: TrackingOpt = None) -> None:
    """List registered models with their champion, challenger and previous versions."""
    from rich.table import Table

    registry, uri = _guarded(_registry, config, tracking_uri)
    table = Table("model", "versions", "latest", "champion", "challenger", "previous")
    for m in _guarded(registry.list_models):
        cells = [str(m.get(k) or "-") for k in ("latest", "champion", "challenger", "previous")]
        table.add_row(m["name"], str(m.get("versions", "-")), *cells)
    _console().print(table)
    _console().print(f"[dim]store: {uri}[/]")


@app.command()
def promote(
    name: str,
    version: str,
    config: ConfigOpt = DEFAULT_CONFIG,
    tracking_uri: TrackingOpt = None,
) -> None:
    """Make VERSION the champion of NAME by hand (the old champion becomes 'previous').

    Waits for a run of the project (-c) in progress to finish first.
    """
    registry, _ = _guarded(_registry, config, tracking_uri)
    info = _guarded(_under_project_lock, config, "promote", registry.promote, name, version)
    _console().print(f"[green]{name} v{info.version} is now champion[/]")


@app.command()
def rollback(
    name: str, config: ConfigOpt = DEFAULT_CONFIG, tracking_uri: TrackingOpt = None
) -> None:
    """Move 'champion' of NAME back to its 'previous' version.

    Waits for a run of the project (-c) in progress to finish first.
    """
    registry, _ = _guarded(_registry, config, tracking_uri)
    info = _guarded(_under_project_lock, config, "rollback", registry.rollback, name)
    _console().print(f"[green]{name} rolled back: v{info.version} is champion again[/]")


@app.command()
def lineage(
    name: str, version: str, config: ConfigOpt = DEFAULT_CONFIG, tracking_uri: TrackingOpt = None
) -> None:
    """Show where a model version came from: data, validation, config, code, run.

    The key "report" locates the version's HTML model report: a local file path when the
    store keeps artifacts on this machine, else its artifact URI; null when it has none.
    """
    import json

    registry, _ = _guarded(_registry, config, tracking_uri)
    record = _guarded(registry.lineage, name, version)
    record["report"] = _guarded(registry.report_location, name, version)
    print(json.dumps(record, indent=2, default=str))


@app.command()
def ui(
    config: ConfigOpt = DEFAULT_CONFIG,
    tracking_uri: TrackingOpt = None,
    port: Annotated[int, typer.Option(help="Port of the MLflow UI.")] = 5000,
) -> None:
    """Open the MLflow UI on the project's tracking store."""
    import subprocess

    registry, uri = _guarded(_registry, config, tracking_uri)
    argv = _guarded(registry.ui_command, port=port)
    # One worker and no job consumers: ~13 s and ~0.5 GB instead of ~25 s and ~3 GB.
    env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **os.environ}
    _console().print(f"MLflow UI for {uri} on http://127.0.0.1:{port} (Ctrl-C to stop)")
    try:
        sys.exit(subprocess.call(argv, env=env))
    except KeyboardInterrupt:
        sys.exit(0)


# -- serve --------------------------------------------------------------------
def _serving_settings(
    config_path: Path, model_uri: str | None, tracking_uri: str | None, **options: Any
) -> Any:
    from pydantic import ValidationError

    from conveyor.errors import ConfigError
    from conveyor.serving.settings import ServingSettings
    from conveyor.settings import get_settings, quiet_dependencies

    quiet_dependencies()
    project = _project(config_path) if config_path.is_file() else None
    if model_uri is None:
        if project is None:
            raise ConfigError(f"no config at {config_path}; pass --model-uri or -c conveyor.yaml")
        model_uri = f"models:/{project.config.name}@champion"
    if project is not None:
        options["routing"] = project.config.serving.routing
    if tracking_uri is None:
        settings = get_settings()
        tracking_uri = project.tracking_uri if project else settings.tracking_uri(Path.cwd())
    try:
        # The admin token comes from CONVEYOR_ADMIN_TOKEN only: a secret is no CLI option.
        return ServingSettings(model_uri=model_uri, tracking_uri=tracking_uri, **options)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        where = field if field.startswith("CONVEYOR_") else "--" + field.replace("_", "-")
        raise ConfigError(f"{where}: {first['msg']}") from exc


@app.command()
def serve(
    config: ConfigOpt = DEFAULT_CONFIG,
    *,
    model_uri: Annotated[
        str | None,
        typer.Option(
            help="models:/<name>@<alias>, models:/<name>/<version> or bundle:/<path>.",
            envvar="CONVEYOR_SERVE_MODEL_URI",
            show_default=False,
        ),
    ] = None,
    tracking_uri: TrackingOpt = None,
    host: Annotated[
        str, typer.Option(help="Interface to listen on.", envvar="CONVEYOR_SERVE_HOST")
    ] = "127.0.0.1",
    port: Annotated[
        int,
        typer.Option(help="Port to listen on.", min=1, max=65535, envvar="CONVEYOR_SERVE_PORT"),
    ] = 8080,
    workers: Annotated[int, typer.Option(help="Worker processes.", min=1)] = 1,
    max_body_bytes: Annotated[int, typer.Option(help="Request body limit.", min=1)] = 8388608,
    max_batch_rows: Annotated[int, typer.Option(help="Rows per request limit.", min=1)] = 10000,
    feedback_max_body_bytes: Annotated[
        int, typer.Option(help="POST /feedback body limit (bytes).", min=1)
    ] = 1048576,
    body_timeout: Annotated[
        float,
        typer.Option(help="Seconds a request body may take to arrive (then 408).", min=0.1),
    ] = 10.0,
    poll_interval: Annotated[
        float,
        typer.Option(
            help="Seconds between checks of the model alias; 0 turns following off.",
            min=0,
            envvar="CONVEYOR_SERVE_POLL_INTERVAL",
        ),
    ] = 30.0,
    drain_seconds: Annotated[
        float,
        typer.Option(
            help="After SIGTERM: seconds of serving with /readyz at 503.",
            min=0,
            envvar="CONVEYOR_SERVE_DRAIN_SECONDS",
        ),
    ] = 5.0,
    graceful_timeout: Annotated[
        int,
        typer.Option(
            help="After the drain: seconds in-flight requests get to finish.",
            min=0,
            envvar="CONVEYOR_SERVE_GRACEFUL_TIMEOUT",
        ),
    ] = 20,
    runtime: RuntimeOpt = "auto",
    batch_max_rows: Annotated[
        int, typer.Option(help="Rows concurrent requests share in one predict (1: off).", min=1)
    ] = 256,
    batch_max_wait_ms: Annotated[
        float,
        typer.Option(help="Most a batch waits for concurrent requests (ms; 0: never).", min=0),
    ] = 10.0,
    max_concurrency: Annotated[
        int, typer.Option(help="Prediction requests in progress at once; more get 503.", min=1)
    ] = 256,
    unknown_categories: Annotated[
        str,
        typer.Option(
            help="accept (and count) category values unseen in training, or reject them (422)."
        ),
    ] = "accept",
    monitoring: Annotated[
        bool,
        typer.Option(
            help="Watch drift against the training profile, prediction distributions and "
            "POST /feedback outcomes."
        ),
    ] = True,
    drift_interval: Annotated[
        float, typer.Option(help="Seconds between drift evaluations.", min=0.1)
    ] = 10.0,
    drift_window_rows: Annotated[
        int, typer.Option(help="Recent rows per version compared with the profile.", min=1)
    ] = 5000,
    feedback_rows: Annotated[
        int, typer.Option(help="Rows of recent predictions kept for POST /feedback.", min=1)
    ] = 100_000,
    access_log: Annotated[
        bool, typer.Option(help="Log every request (off: /metrics counts them).")
    ] = False,
) -> None:
    """Serve a registered model over HTTP (default: models:/<config name>@champion).

    MLflow /invocations and Open Inference Protocol v2; /healthz, /readyz, /metrics, /docs.
    An alias is followed: the new version is loaded beside the old one, then swapped in.
    POST /admin/reload checks the alias now (bearer token from CONVEYOR_ADMIN_TOKEN).
    POST /feedback takes a bearer token from CONVEYOR_FEEDBACK_TOKEN; a --host beyond
    loopback requires one (or --no-monitoring).
    SIGTERM: /readyz turns 503, requests are served for --drain-seconds, then it stops.
    Routing between champion and challenger: serving.routing in the config (-c).
    """
    options = {
        "runtime": runtime,
        "batch_max_rows": batch_max_rows,
        "batch_max_wait_ms": batch_max_wait_ms,
        "max_concurrency": max_concurrency,
        "unknown_categories": unknown_categories,
        "monitoring": monitoring,
        "drift_interval": drift_interval,
        "drift_window_rows": drift_window_rows,
        "feedback_rows": feedback_rows,
        "max_body_bytes": max_body_bytes,
        "max_batch_rows": max_batch_rows,
        "feedback_max_body_bytes": feedback_max_body_bytes,
        "body_timeout": body_timeout,
        "poll_interval": poll_interval,
        "drain_seconds": drain_seconds,
        "graceful_timeout": graceful_timeout,
    }
    settings = _guarded(_serving_settings, config, model_uri, tracking_uri, **options)
    _guarded(settings.check_binding, host)
    if workers == 1:
        from conveyor.serving.app import create_app
        from conveyor.serving.shutdown import run_server
        from conveyor.serving.slot import load_slot

        slot = _guarded(load_slot, settings)
        _console().print(
            f"serving {slot.name} v{slot.version} ({settings.model_uri}, runtime {slot.runtime}) "
            f"on http://{host}:{port}"
        )
        run_server(
            create_app(settings, slot=slot),
            host=host,
            port=port,
            drain_seconds=drain_seconds,
            graceful_timeout=graceful_timeout,
            access_log=access_log,
        )
        return
    _serve_workers(settings, host=host, port=port, workers=workers, access_log=access_log)


def _serve_workers(settings: Any, *, host: str, port: int, workers: int, access_log: bool) -> None:
    from conveyor.registry.source import is_bundle_uri
    from conveyor.serving.follow import follows_alias
    from conveyor.serving.shutdown import run_workers
    from conveyor.serving.slot import resolve_model

    _, info = _guarded(resolve_model, settings)
    # Without polling every worker loads the same version: the alias is resolved once,
    # here. With polling each worker follows the alias on its own.
    following = settings.poll_interval > 0 and follows_alias(settings.model_uri)
    fixed = is_bundle_uri(settings.model_uri)  # a bundle holds one version
    # the tokens reach the workers through their own variables, never as masked text
    fields = settings.model_dump(
        mode="json", exclude={"admin_token", "feedback_token", "model_uri"}
    )
    os.environ.update(
        {
            f"CONVEYOR_SERVE_{name.upper()}": json.dumps(v) if isinstance(v, dict) else str(v)
            for name, v in fields.items()
        }
    )
    os.environ["CONVEYOR_SERVE_MODEL_URI"] = settings.model_uri if following or fixed else info.uri
    _console().print(
        f"serving {info.name} v{info.version} on http://{host}:{port} ({workers} workers)"
    )
    run_workers(
        "conveyor.serving.app:app_from_env",
        host=host,
        port=port,
        workers=workers,
        graceful_timeout=settings.graceful_timeout,
        access_log=access_log,
    )


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
