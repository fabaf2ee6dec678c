"""``conveyor monitor``: offline drift analysis of a batch, and the retraining trigger.

Imports stay light at module level (typer only): ``conveyor --help`` must answer at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from conveyor.cli.options import OptionalConfigOpt, StoreOpt

if TYPE_CHECKING:
    from conveyor.monitoring.drift import DriftReport
    from conveyor.monitoring.trigger import RetrainTrigger
    from conveyor.registry.store import ModelRegistry, ModelVersionInfo

__all__ = ["monitor_app", "parse_model_ref", "resolve_model_ref", "serve_webhook", "watch_alerts"]

monitor_app = typer.Typer(
    help="Model monitoring: drift of new data against the training reference, and the "
    "retraining trigger (Alertmanager webhook receiver or Prometheus watch loop).",
    no_args_is_help=True,
)


def parse_model_ref(ref: str) -> tuple[str, str | None, str | None]:
    """``NAME@ALIAS`` or ``NAME/VERSION`` (``models:/`` prefix allowed) -> (name, alias, version).

    Raises:
        ConfigError: neither form.
    """
    from conveyor.errors import ConfigError

    text = ref.removeprefix("models:/")
    if "@" in text:
        name, alias = text.split("@", 1)
        if name and alias:
            return name, alias, None
    elif "/" in text:
        name, version = text.rsplit("/", 1)
        if name and version.isdigit():
            return name, None, version
    raise ConfigError(f"--model {ref!r}: expected NAME@ALIAS (e.g. churn@champion) or NAME/VERSION")


def resolve_model_ref(
    model: str | None, config: Path, tracking_uri: str | None
) -> tuple[ModelRegistry, ModelVersionInfo]:
    """The registry and the version ``NAME@ALIAS`` or ``NAME/VERSION`` means now
    (``None``: the project's champion).

    Raises:
        ConfigError: no model named and no config, or a malformed reference.
        PromotionError: an unknown alias.
        RegistryError: the store cannot be read.
    """
    from conveyor.cli import _project, _registry
    from conveyor.errors import ConfigError, PromotionError

    if model is None:
        if not config.is_file():
            raise ConfigError(f"no config at {config}; pass --model NAME@ALIAS or -c conveyor.yaml")
        model = f"{_project(config).config.name}@champion"
    name, alias, version = parse_model_ref(model)
    registry, uri = _registry(config, tracking_uri)
    if alias is None:
        return registry, registry.get_version(name, str(version))
    info = registry.get_alias(name, alias)
    if info is None:
        raise PromotionError(f"model {name!r} has no alias {alias!r} in {uri}")
    return registry, info


def _analyze(
    model: str,
    data: str,
    out: Path,
    config: Path,
    tracking_uri: str | None,
    *,
    with_predictions: bool = True,
) -> tuple[DriftReport, Path, Path]:
    from conveyor.cli import _project
    from conveyor.errors import RegistryError, ServiceUnavailableError
    from conveyor.monitoring.batch import read_batch
    from conveyor.monitoring.drift import analyze
    from conveyor.monitoring.profile import ReferenceProfile, prediction_columns
    from conveyor.monitoring.report import write_report
    from conveyor.registry.profiles import load_reference_profile
    from conveyor_cleaning.cleaner import split_cleaner

    registry, info = resolve_model_ref(model, config, tracking_uri)
    profile = ReferenceProfile.from_dict(load_reference_profile(registry, info))
    data_config = _project(config).config.data if config.is_file() else None
    pipeline = None
    try:
        pipeline = registry.load_pipeline(info.uri)
    except RegistryError as exc:
        if isinstance(exc, ServiceUnavailableError):
            raise
        if profile.predictions and with_predictions:
            raise RegistryError(f"{info.uri}: cannot score the batch: {exc}") from exc
    cleaner = split_cleaner(pipeline)[0] if pipeline is not None else None
    batch = read_batch(data, profile, data=data_config, cleaner=cleaner)
    predictions: dict[str, Any] | None = None
    if profile.predictions and with_predictions and pipeline is not None:
        predictions = prediction_columns(pipeline, batch, task=profile.task)
    report = analyze(profile, batch, predictions=predictions)
    context = {"model": {"name": info.name, "version": info.version, "ref": model}, "data": data}
    json_path, html_path = write_report(report, out, context=context)
    return report, json_path, html_path


def _print(report: DriftReport, json_path: Path, html_path: Path) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table("column", "verdict", "psi", "wasserstein / js", "null Δ", "reason")
    for item in (*report.features, *report.predictions):
        stats = item.statistics
        distance = stats.get("wasserstein", stats.get("js_distance"))
        verdict = "[red]strong[/]" if item.strong else "[yellow]drift[/]" if item.drifted else "ok"
        table.add_row(
            escape(item.feature),
            verdict,
            *(f"{v:.3f}" if v is not None else "-" for v in (stats.get("psi"), distance)),
            f"{stats['null_rate_change']:+.3f}"
            if stats.get("null_rate_change") is not None
            else "-",
            escape(item.reason),
        )
    console = Console(highlight=False)
    console.print(table)
    headline = "[bold red]drift detected[/]" if report.drift_detected else "[green]no drift[/]"
    console.print(f"{headline}: {escape(report.reason)} (share {report.drift_share:.2f})")
    console.print(f"report: {escape(str(html_path))}  json: {escape(str(json_path))}")


@monitor_app.command("drift")
def drift(
    *,
    model: Annotated[
        str, typer.Option(help="NAME@ALIAS (e.g. churn-demo@champion) or NAME/VERSION.")
    ],
    data: Annotated[
        str, typer.Option(help="The batch: .csv, .parquet, s3://..., postgresql://...")
    ],
    out: Annotated[Path, typer.Option(help="Folder for drift.json and drift.html.")] = Path(
        "drift-report"
    ),
    config: OptionalConfigOpt = Path("conveyor.yaml"),
    tracking_uri: StoreOpt = None,
    predictions: Annotated[
        bool,
        typer.Option(help="Score the batch with the model and report prediction drift too."),
    ] = True,
) -> None:
    """Compare a batch with the model version's training reference; write JSON + HTML.

    Exit 0 whether or not drift is found (drift.json's "drift_detected" tells).
    Exit 2 for a usage or config error, 1 when the analysis cannot run.
    """
    from conveyor.cli import _guarded

    report, json_path, html_path = _guarded(
        _analyze, model, data, out, config, tracking_uri, with_predictions=predictions
    )
    _print(report, json_path, html_path)


# -- retraining trigger -------------------------------------------------------
CooldownOpt = Annotated[
    float, typer.Option(min=0, help="Seconds after a triggered run during which none starts.")
]
StateOpt = Annotated[
    Path | None,
    typer.Option(help="Trigger state file (default: <project>/.conveyor/trigger/state.json)."),
]
LauncherOpt = Annotated[
    str,
    typer.Option(
        help="local: `conveyor run` here; airflow: the conveyor_training DAG via "
        "CONVEYOR_AIRFLOW_URL/_USERNAME/_PASSWORD."
    ),
]
DagConfigOpt = Annotated[
    str | None,
    typer.Option(help="The DAG's `config` param for --launcher airflow (default: --config)."),
]


def _trigger(
    config: Path, launcher: str, cooldown: float, state: Path | None, dag_config: str | None
) -> RetrainTrigger:
    from conveyor.cli import _project
    from conveyor.errors import ConfigError
    from conveyor.monitoring.launchers import AirflowLauncher, LocalLauncher
    from conveyor.monitoring.trigger import RetrainTrigger, TriggerStateFile

    project = _project(config)
    folder = project.state_dir / "trigger"
    chosen: LocalLauncher | AirflowLauncher
    if launcher == "local":
        chosen = LocalLauncher(config, runs_dir=project.runs_dir, log_dir=folder / "logs")
    elif launcher == "airflow":
        chosen = AirflowLauncher.from_settings(dag_config=dag_config or str(config.resolve()))
    else:
        raise ConfigError(f"--launcher {launcher!r}: expected local or airflow")
    state_file = TriggerStateFile(state or folder / "state.json")
    state_file.load()  # an unreadable state file is a startup error, not a runtime one
    return RetrainTrigger(chosen, state_file, cooldown=cooldown)


def _webhook_token(host: str) -> str | None:
    """The bearer token of ``POST /alerts``: ``CONVEYOR_WEBHOOK_TOKEN``, else
    ``CONVEYOR_ADMIN_TOKEN``; required beyond loopback.

    Raises:
        ConfigError: a token shorter than 16 characters, or none on a non-loopback host.
    """
    from conveyor.http_guard import check_token, require_token_beyond_loopback
    from conveyor.settings import get_settings

    settings = get_settings()
    variable = "CONVEYOR_WEBHOOK_TOKEN" if settings.webhook_token else "CONVEYOR_ADMIN_TOKEN"
    token = settings.webhook_token or settings.admin_token
    check_token(token, variable=variable)
    require_token_beyond_loopback(
        host, token, variable="CONVEYOR_WEBHOOK_TOKEN", endpoint="POST /alerts"
    )
    return token


@monitor_app.command("serve-webhook")
def serve_webhook(
    *,
    config: Annotated[
        Path, typer.Option("--config", "-c", help="Pipeline config (YAML) of the project.")
    ] = Path("conveyor.yaml"),
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 9095,
    launcher: LauncherOpt = "local",
    cooldown: CooldownOpt = 3600.0,
    state: StateOpt = None,
    dag_config: DagConfigOpt = None,
    max_body_bytes: Annotated[
        int, typer.Option(help="Largest notification body accepted (bytes; more: 413).", min=1)
    ] = 1024 * 1024,
    body_timeout: Annotated[
        float,
        typer.Option(help="Seconds a notification body may take to arrive (then 408).", min=0.1),
    ] = 10.0,
) -> None:
    """Receive Alertmanager webhooks; firing alerts labelled retrain="true" start a run.

    POST /alerts (Alertmanager webhook, version 4), GET /healthz, GET /metrics. One run per
    incident, none within the cooldown of the last, at most one in flight. With
    CONVEYOR_WEBHOOK_TOKEN (or CONVEYOR_ADMIN_TOKEN) set, POST /alerts needs
    `Authorization: Bearer <token>`; a --host beyond loopback requires one.
    """
    import logging

    import uvicorn

    from conveyor.cli import _guarded

    token = _guarded(_webhook_token, host)
    trigger = _guarded(_trigger, config, launcher, cooldown, state, dag_config)
    from conveyor.monitoring.webhook import create_webhook_app

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    app = create_webhook_app(
        trigger, token=token, max_body_bytes=max_body_bytes, body_timeout=body_timeout
    )
    uvicorn.run(app, host=host, port=port, log_level="info", server_header=False)


@monitor_app.command("watch")
def watch_alerts(
    *,
    config: Annotated[
        Path, typer.Option("--config", "-c", help="Pipeline config (YAML) of the project.")
    ] = Path("conveyor.yaml"),
    prometheus_url: Annotated[
        str, typer.Option(help="Prometheus base URL, e.g. http://localhost:9090.")
    ],
    interval: Annotated[float, typer.Option(min=1, help="Seconds between polls.")] = 60.0,
    once: Annotated[bool, typer.Option(help="Poll once, print the decision, exit.")] = False,
    launcher: LauncherOpt = "local",
    cooldown: CooldownOpt = 3600.0,
    state: StateOpt = None,
    dag_config: DagConfigOpt = None,
) -> None:
    """Poll Prometheus' firing alerts (no Alertmanager needed) and trigger retraining.

    Same rules as serve-webhook: alerts labelled retrain="true", one run per incident,
    cooldown, at most one run in flight. Stop with Ctrl-C.
    """
    import json
    import logging

    from conveyor.cli import _fail, _guarded
    from conveyor.monitoring.watch import watch

    trigger = _guarded(_trigger, config, launcher, cooldown, state, dag_config)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    ticks = 1 if once else None
    outcomes = _guarded(watch, trigger, prometheus_url, interval=interval, ticks=ticks)
    if once:
        if not outcomes:
            _fail(f"Prometheus at {prometheus_url} did not answer with alerts", 75)
        print(json.dumps(outcomes[0].to_dict(), indent=2))


@monitor_app.command("alerting")
def render_alerting(
    *,
    config: Annotated[
        Path, typer.Option("--config", "-c", help="Pipeline config (YAML): its `alerting:` timing.")
    ] = Path("conveyor.yaml"),
    out: Annotated[Path, typer.Option(help="Folder to write the configuration into.")] = Path(
        "alerting"
    ),
    serve: Annotated[
        list[str] | None,
        typer.Option(help="host:port of a `conveyor serve` to scrape (repeatable)."),
    ] = None,
    webhook_url: Annotated[
        str, typer.Option(help="The retraining trigger's POST /alerts URL.")
    ] = "http://127.0.0.1:9095/alerts",
    alertmanager: Annotated[
        str, typer.Option(help="host:port of the Alertmanager Prometheus alerts.")
    ] = "127.0.0.1:9093",
    pushgateway: Annotated[
        str | None, typer.Option(help="host:port of a Pushgateway holding pipeline runs.")
    ] = None,
    token_file: Annotated[
        Path | None,
        typer.Option(help="File with the trigger's bearer token (Alertmanager sends it)."),
    ] = None,
    deploy: Annotated[
        Path | None,
        typer.Option(help="Folder with prometheus/rules and alertmanager/ (default: shipped)."),
    ] = None,
    check: Annotated[bool, typer.Option(help="Check the result with promtool and amtool.")] = True,
) -> None:
    """Render the shipped Prometheus rules and Alertmanager routing with the project's timing.

    Writes OUT/prometheus.yml, OUT/rules/*.yml and OUT/alertmanager.yml: the shipped rules
    with `alerting.pending` as their `for:`, scrape and evaluation intervals from
    `alerting`, and the retraining route's group_wait from `alerting.notify_wait`.
    """
    from conveyor.cli import _console, _fail, _guarded, _project
    from conveyor.monitoring.alerting import (
        AlertingTargets,
        check_alerting,
        shipped_deploy_dir,
        write_alerting,
    )

    source = deploy or shipped_deploy_dir()
    if source is None:
        _fail("no deploy/ folder with the shipped rules here; pass --deploy DIR", 2)
    project = _guarded(_project, config)
    targets = AlertingTargets(
        serve=tuple(serve or ("127.0.0.1:8080",)),
        webhook_url=webhook_url,
        alertmanager=alertmanager,
        pushgateway=pushgateway,
        token_file=token_file.resolve() if token_file else None,
    )
    files = _guarded(write_alerting, out, project.config.alerting, targets, deploy=source)
    if check:
        _guarded(check_alerting, files)
    _console().print(
        f"[green]wrote[/] {files.prometheus}, {files.rules}/, {files.alertmanager}"
        + (" (checked by promtool and amtool)" if check else "")
    )
