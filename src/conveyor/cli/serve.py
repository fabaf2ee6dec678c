"""``conveyor serve``: its options, the serving settings they make, and the server's start
(one process, or several workers that each load the model).

Imports stay light at module level (typer only): ``conveyor --help`` must answer at once.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from conveyor.cli.options import DEFAULT_CONFIG, ConfigOpt, RuntimeOpt, StoreOpt

__all__ = ["serve"]


def _serving_settings(
    config_path: Path, model_uri: str | None, tracking_uri: str | None, **options: Any
) -> Any:
    from pydantic import ValidationError

    from conveyor.cli import _project
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
    tracking_uri: StoreOpt = None,
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
    from conveyor.cli import _console, _guarded

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
    from conveyor.cli import _console, _guarded
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
