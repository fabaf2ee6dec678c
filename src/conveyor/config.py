"""Pipeline config: the YAML a user keeps in their repo, validated by pydantic.

The smallest valid config is a name, a source and a target; everything else has a
default or is inferred from the data (see ``conveyor.pipeline.resolve``). Secrets never
live here: they come from the environment (``conveyor.settings``).

Example:
    >>> cfg = ConveyorConfig.model_validate(
    ...     {"name": "adult-income", "data": {"source": "adult.csv", "target": "class"}}
    ... )
    >>> cfg.split.test_size
    0.2
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from conveyor.errors import ConfigError

__all__ = [
    "AlertingConfig",
    "ConveyorConfig",
    "DataConfig",
    "ModelSpec",
    "OnnxConfig",
    "PromotionConfig",
    "RegistryConfig",
    "RoutingConfig",
    "ServingConfig",
    "SplitConfig",
    "TrainingConfig",
    "ValidationConfig",
    "VersioningConfig",
    "config_hash",
    "format_validation_error",
    "load_config",
]


DEFAULT_NA_VALUES = ["", "?", "NA", "N/A", "n/a", "NaN", "nan", "null", "NULL", "None", "-"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class DataConfig(_Strict):
    """Where the table comes from and how to clean it."""

    source: str = Field(
        description="Local path or URL of the table: .csv, .parquet, s3://..., postgresql://..."
    )
    target: str = Field(description="Name of the column to predict.")
    format: Literal["auto", "csv", "parquet", "sql"] = Field(
        "auto", description="Reader to use; 'auto' picks it from the source's scheme and suffix."
    )
    table: str | None = Field(None, description="SQL source: table to read.")
    query: str | None = Field(None, description="SQL source: query to run instead of a table.")
    na_values: list[str] = Field(
        default_factory=lambda: list(DEFAULT_NA_VALUES),
        description="String values read as missing (after stripping spaces).",
    )
    strip_whitespace: bool = Field(
        True, description="Strip spaces from header names and string values."
    )
    drop_columns: list[str] = Field(
        default_factory=list, description="Columns to drop before anything else."
    )
    drop_id_columns: bool = Field(
        True, description="Drop ID-like columns (unique per row) and constant columns."
    )
    categorical_columns: list[str] | None = Field(
        None, description="Force these columns categorical (default: inferred)."
    )
    numeric_columns: list[str] | None = Field(
        None, description="Force these columns numeric (default: inferred)."
    )
    datetime_columns: list[str] | None = Field(
        None, description="Parse these columns as date/time (default: inferred)."
    )
    max_rows: int | None = Field(
        None,
        gt=0,
        description=(
            "Read a seeded uniform sample of at most this many rows of the whole table,"
            " streaming the source (rows keep their order; the same rows on every run)."
        ),
    )
    memory_check: bool = Field(
        True,
        description=(
            "Refuse, before reading, a file whose estimated working set exceeds the memory"
            " available, naming a data.max_rows that would fit; false reads it anyway."
        ),
    )


class ValidationConfig(_Strict):
    """Great Expectations checks: the config's own plus the saved baseline."""

    enabled: bool = True
    max_null_fraction: float = Field(
        0.95, ge=0, le=1, description="Fail a column whose null fraction exceeds this."
    )
    null_fraction_tolerance: float = Field(
        0.10,
        ge=0,
        le=1,
        description="Allowed rise of a column's null fraction over the baseline's.",
    )
    max_unseen_category_fraction: float = Field(
        0.05,
        ge=0,
        le=1,
        description="Allowed fraction of rows whose category the baseline never saw.",
    )
    range_tolerance: float = Field(
        0.5,
        ge=0,
        description="Allowed widening of a numeric column's baseline range, as a fraction of it.",
    )
    out_of_range_fraction: float = Field(
        0.01, ge=0, le=1, description="Allowed fraction of values outside the widened range."
    )
    min_rows: int = Field(50, ge=1, description="Fail a batch with fewer rows.")
    update_baseline: bool = Field(
        False, description="Replace the saved baseline with this batch's profile."
    )


class VersioningConfig(_Strict):
    """DVC: where validated datasets are tracked and pushed."""

    enabled: bool = True
    remote: str | None = Field(
        None,
        description="DVC remote URL (local dir or s3://...); default .conveyor/dvc-remote.",
    )


class SplitConfig(_Strict):
    """How the held-out set is chosen."""

    strategy: Literal["auto", "stratified", "random", "time"] = Field(
        "auto", description="'auto': stratified for classification, random for regression."
    )
    test_size: float = Field(0.2, gt=0, lt=1)
    time_column: str | None = Field(None, description="Required for strategy 'time'.")
    seed: int = 42


class ModelSpec(_Strict):
    """One candidate model."""

    type: str = Field(
        description=(
            "xgboost, lightgbm, torch_mlp, random_forest, logistic_regression, ridge,"
            " hist_gradient_boosting, or an import path such as"
            " sklearn.ensemble.ExtraTreesClassifier."
        )
    )
    params: dict[str, Any] = Field(default_factory=dict, description="Estimator keyword args.")


class TrainingConfig(_Strict):
    """Task, candidate models and the metric that picks between them."""

    task: Literal["auto", "binary", "multiclass", "regression"] = "auto"
    models: list[ModelSpec] = Field(
        default_factory=list, description="Candidates; default: one per task (see docs)."
    )
    metric: str | None = Field(
        None, description="Primary metric; default roc_auc / f1_macro / rmse by task."
    )
    seed: int = 42


class PromotionConfig(_Strict):
    """Quality gates a challenger must pass to become champion."""

    thresholds: dict[str, float] = Field(
        default_factory=dict,
        description=(
            "Absolute bounds by metric: a floor for higher-is-better metrics (roc_auc: 0.8),"
            " a ceiling for lower-is-better ones (rmse: 10)."
        ),
    )
    min_improvement: float = Field(
        0.0, description="Margin by which the challenger must beat the champion's primary metric."
    )
    auto_promote: bool = Field(True, description="Move 'champion' when the gates pass.")


class OnnxConfig(_Strict):
    """ONNX export (the export step, before registration): the serving fast path, used only
    where it matches."""

    enabled: bool = Field(
        True, description="Export the model to ONNX before registration when converters exist."
    )
    tolerance: float = Field(
        1e-4,
        gt=0,
        description=(
            "Parity bound on held-out rows: largest absolute difference of class "
            "probabilities, or of predicted values relative to the target's spread."
        ),
    )
    parity_rows: int = Field(1000, ge=1, description="Held-out rows the parity check compares.")


class RoutingConfig(_Strict):
    """How ``conveyor serve`` shares traffic between the champion and a second model."""

    mode: Literal["single", "split", "shadow"] = Field(
        "single",
        description=(
            "single: only the served model answers; split: A/B or canary by weight; "
            "shadow: the second model gets a copy, its answer is recorded, never returned."
        ),
    )
    challenger: str = Field(
        "challenger",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$",
        description="Alias or version number of the second model.",
    )
    weight: float = Field(
        0.1, ge=0, le=1, description="split: share of requests the second model answers."
    )
    sticky_header: str = Field(
        "X-Conveyor-Caller",
        pattern=r"^[A-Za-z0-9-]{1,64}$",
        description="split: requests with the same value of this header take the same route.",
    )


class RegistryConfig(_Strict):
    """How models are persisted in the registry (they are signed and verified either way)."""

    allow_pickle: bool = Field(
        False,
        description=(
            "Accept cloudpickle for models skops cannot persist (torch). Loading a pickle"
            " runs code from the artifact; the version records the risk."
        ),
    )
    trusted_types: list[str] = Field(
        default_factory=list,
        description=(
            "Exact types (module.QualName) skops may trust beyond Conveyor's own list,"
            " for estimators that hold them."
        ),
    )

    @field_validator("trusted_types")
    @classmethod
    def _qualified_names(cls, names: list[str]) -> list[str]:
        for name in names:
            if not re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)+", name):
                raise ValueError(f"{name!r} is not a module.QualName (e.g. lightgbm.basic.Booster)")
        return names


class ServingConfig(_Strict):
    """What the model server does with this project's models."""

    onnx: OnnxConfig = Field(default_factory=OnnxConfig)
    routing: RoutingConfig = Field(default_factory=RoutingConfig)


PROMETHEUS_DURATION = re.compile(r"(?=\d)(\d+y)?(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?(\d+ms)?")
"""A Prometheus duration: units from years down to milliseconds, largest first (``1h30m``)."""


def _duration(value: str, where: str = "") -> str:
    if not PROMETHEUS_DURATION.fullmatch(value):
        raise ValueError(
            f"{where}{value!r} is not a Prometheus duration (e.g. 30s, 5m, 1h30m: an integer"
            " per unit, largest unit first)"
        )
    return value


class AlertingConfig(_Strict):
    """Timing of the monitoring loop: how often Prometheus scrapes and evaluates the rules,
    how long an alert's condition must hold before it fires, how soon Alertmanager tells the
    retraining trigger. The defaults are those of the shipped files in ``deploy/``;
    ``conveyor monitor alerting`` renders those files with these values."""

    scrape_interval: str = Field("15s", description="Prometheus scrape interval.")
    evaluation_interval: str = Field("15s", description="Prometheus rule evaluation interval.")
    pending: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Alert name -> how long its condition must hold before it fires (the rule's "
            "`for:`, e.g. ConveyorFeatureDrift: 5m); alerts not named keep the shipped value."
        ),
    )
    notify_wait: str = Field(
        "1m",
        description=(
            "How long Alertmanager gathers retraining alerts before it notifies the trigger "
            "(the retraining route's group_wait)."
        ),
    )

    @field_validator("scrape_interval", "evaluation_interval", "notify_wait")
    @classmethod
    def _is_duration(cls, value: str) -> str:
        return _duration(value)

    @field_validator("pending")
    @classmethod
    def _durations(cls, pending: dict[str, str]) -> dict[str, str]:
        for alert, duration in pending.items():
            _duration(duration, f"{alert}: ")
        return pending


class ConveyorConfig(_Strict):
    """A Conveyor project: one dataset, one task, one registered model."""

    name: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$",
        description="Project name; also the registered model and experiment name.",
    )
    data: DataConfig
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    versioning: VersioningConfig = Field(default_factory=VersioningConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    promotion: PromotionConfig = Field(default_factory=PromotionConfig)
    serving: ServingConfig = Field(default_factory=ServingConfig)
    registry: RegistryConfig = Field(default_factory=RegistryConfig)
    alerting: AlertingConfig = Field(default_factory=AlertingConfig)
    tracking_uri: str | None = Field(
        None,
        description=(
            "MLflow tracking URI; default sqlite under .conveyor/. MLFLOW_TRACKING_URI wins."
        ),
    )

    @field_validator("data")
    @classmethod
    def _sql_needs_table_or_query(cls, data: DataConfig) -> DataConfig:
        if data.table and data.query:
            raise ValueError("set either data.table or data.query, not both")
        return data


def format_validation_error(exc: ValidationError, *, source: str = "config") -> str:
    """Turn a pydantic error into lines naming the key path and the bad value."""
    lines = []
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; `conveyor config schema` lists keys)"
        value = err.get("input")
        shown = "" if err["type"] == "missing" else f" (got {value!r:.80})"
        lines.append(f"{source}: {path}: {msg}{shown}")
    return "\n".join(lines)


def load_config(path: str | Path) -> ConveyorConfig:
    """Read and validate a YAML pipeline config.

    Relative ``data.source`` paths resolve against the config file's folder.

    Raises:
        ConfigError: the file is missing, not YAML, or fails validation.
    """
    import yaml

    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"config file not found: {file}")
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: not valid YAML: {_yaml_problem(exc)}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        config = ConveyorConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source=str(file))) from exc
    source = config.data.source
    if "://" not in source and not Path(source).is_absolute():
        resolved = str((file.parent / source).resolve())
        config = config.model_copy(
            update={"data": config.data.model_copy(update={"source": resolved})}
        )
    return config


def _yaml_problem(exc: Exception) -> str:
    """Where and what the YAML error is, without quoting the file (it may not be ours)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or "cannot be parsed"
    if mark is None:
        return str(problem)
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"


def config_hash(config: BaseModel) -> str:
    """Stable sha256 of a config (or of one of its sections)."""
    payload = json.dumps(config.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]
