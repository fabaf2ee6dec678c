"""``conveyor monitor``: offline drift analysis of a batch against a model's reference profile.

Imports stay light at module level (typer only): ``conveyor --help`` must answer at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from conveyor.monitoring.drift import DriftReport

__all__ = ["monitor_app", "parse_model_ref"]

monitor_app = typer.Typer(
    help="Model monitoring: drift of new data against the training reference.",
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


def _analyze(
    model: str,
    data: str,
    out: Path,
    config: Path,
    tracking_uri: str | None,
    *,
    with_predictions: bool = True,
) -> tuple[DriftReport, Path, Path]:
    from conveyor.cli import _project, _registry
    from conveyor.errors import PromotionError, RegistryError
    from conveyor.monitoring.batch import read_batch
    from conveyor.monitoring.drift import analyze
    from conveyor.monitoring.profile import ReferenceProfile, prediction_columns
    from conveyor.monitoring.report import write_report
    from conveyor.registry.profiles import load_reference_profile

    name, alias, version = parse_model_ref(model)
    registry, uri = _registry(config, tracking_uri)
    if alias is not None:
        info = registry.get_alias(name, alias)
        if info is None:
            raise PromotionError(f"model {name!r} has no alias {alias!r} in {uri}")
    else:
        info = registry.get_version(name, str(version))
    profile = ReferenceProfile.from_dict(load_reference_profile(registry, info))
    data_config = _project(config).config.data if config.is_file() else None
    batch = read_batch(data, profile, data=data_config)
    predictions: dict[str, Any] | None = None
    if profile.predictions and with_predictions:
        try:
            pipeline = registry.load_pipeline(info.uri)
        except RegistryError as exc:
            raise RegistryError(f"{info.uri}: cannot score the batch: {exc}") from exc
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
    config: Annotated[
        Path, typer.Option("--config", "-c", help="Pipeline config (YAML), if any.")
    ] = Path("conveyor.yaml"),
    tracking_uri: Annotated[
        str | None, typer.Option(help="MLflow tracking URI (default: the project's store).")
    ] = None,
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
