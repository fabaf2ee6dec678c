"""Build and run the GX expectation suite; read and write the baseline suite JSON."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from conveyor.data.validation._profile import (
    ColumnProfile,
    allowed_null_fraction,
    mostly,
    widened_range,
)
from conveyor.durable import durable_write_text
from conveyor.errors import DataError

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd
    from great_expectations.expectations.expectation import Expectation

    from conveyor.config import ValidationConfig
    from conveyor.data.schema import TableSchema

__all__ = [
    "CONFIG_CHECKS",
    "baseline_checks",
    "config_checks",
    "load_baseline",
    "run_suite",
    "save_baseline",
]

log = logging.getLogger(__name__)

SUITE_NAME = "conveyor-baseline"
PROFILE_KEY = "conveyor_profile"
PROFILE_VERSION = 1


def load_baseline(path: Path) -> tuple[ColumnProfile, ...]:
    """Read the column profiles kept in a baseline suite's ``meta``.

    Args:
        path: the baseline suite JSON.

    Returns:
        The baseline's column profiles.

    Raises:
        DataError: the file is unreadable, not a GX suite, or lacks Conveyor's profile.
    """
    import great_expectations as gx

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        suite = gx.ExpectationSuite(**data)
        profile = suite.meta[PROFILE_KEY]
        return tuple(ColumnProfile.from_dict(c) for c in profile["columns"])
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise DataError(
            f"baseline {path} is corrupt ({type(exc).__name__}: {exc}); delete it or run with "
            "validation.update_baseline: true to rebuild it from this batch"
        ) from exc


def save_baseline(
    path: Path, profiles: tuple[ColumnProfile, ...], config: ValidationConfig, *, rows: int
) -> None:
    """Write the baseline as a GX ``ExpectationSuite`` JSON, atomically.

    The suite's expectations use the thresholds of ``config``; its ``meta`` keeps the raw
    profile so later runs can apply their own thresholds.

    Raises:
        DataError: the file cannot be written.
    """
    import great_expectations as gx

    meta = {
        PROFILE_KEY: {
            "version": PROFILE_VERSION,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "rows": rows,
            "columns": [p.to_dict() for p in profiles],
        }
    }
    expectations = baseline_checks(None, profiles, config)
    suite = gx.ExpectationSuite(name=SUITE_NAME, expectations=expectations, meta=meta)
    text = json.dumps(suite.to_json_dict(), indent=2)
    try:
        durable_write_text(path, text)
    except OSError as exc:
        raise DataError(f"cannot write baseline {path}: {exc}") from exc
    log.info("baseline written to %s (%d columns)", path, len(profiles))


# Checks from the config alone; a batch must pass them to become the baseline.
CONFIG_CHECKS = frozenset({"rows", "target_exists", "target_not_null", "nulls"})


def _expectation(cls_name: str, check: str, facts: dict[str, Any], **kwargs: Any) -> Expectation:
    """A GX expectation whose meta carries the facts its failure line needs."""
    import great_expectations.expectations as gxe

    cls = getattr(gxe, cls_name)
    expectation: Expectation = cls(meta={"conveyor_check": check, **facts}, **kwargs)
    return expectation


def config_checks(
    df: pd.DataFrame, schema: TableSchema, config: ValidationConfig
) -> list[Expectation]:
    """The config's own checks: row count, target present and complete, null fractions."""
    target = schema.target
    checks = [
        _expectation(
            "ExpectTableRowCountToBeBetween",
            "rows",
            {"limit": config.min_rows},
            min_value=config.min_rows,
        ),
        _expectation("ExpectColumnToExist", "target_exists", {}, column=target),
    ]
    if target in df.columns:
        checks.append(
            _expectation("ExpectColumnValuesToNotBeNull", "target_not_null", {}, column=target)
        )
    limit = config.max_null_fraction
    for name in df.columns:
        if name != target:
            checks.append(
                _expectation(
                    "ExpectColumnValuesToNotBeNull",
                    "nulls",
                    {"limit": limit},
                    column=str(name),
                    mostly=mostly(limit),
                )
            )
    return checks


def baseline_checks(
    df: pd.DataFrame | None, profiles: tuple[ColumnProfile, ...], config: ValidationConfig
) -> list[Expectation]:
    """Checks against the baseline; with ``df`` given, only those that can run on it."""
    checks: list[Expectation] = []
    for p in profiles:
        checks.append(_expectation("ExpectColumnToExist", "exists", {}, column=p.name))
        if df is not None and p.name not in df.columns:
            continue
        checks.append(
            _expectation(
                "ExpectColumnValuesToBeOfType",
                "type",
                {"expected": p.dtype},
                column=p.name,
                type_=p.dtype,
            )
        )
        allowed = allowed_null_fraction(p.null_fraction, config.null_fraction_tolerance)
        facts = {
            "limit": allowed,
            "baseline": p.null_fraction,
            "tolerance": config.null_fraction_tolerance,
        }
        checks.append(
            _expectation(
                "ExpectColumnValuesToNotBeNull",
                "baseline_nulls",
                facts,
                column=p.name,
                mostly=mostly(allowed),
            )
        )
        if df is not None and df[p.name].dtype.type.__name__ != p.dtype:
            continue  # the type check fails; range and set checks would only add noise
        checks += _distribution_checks(p, config)
    return checks


def _distribution_checks(p: ColumnProfile, config: ValidationConfig) -> list[Expectation]:
    if p.kind == "numeric" and p.minimum is not None and p.maximum is not None:
        low, high = widened_range(p.minimum, p.maximum, config.range_tolerance)
        limit = config.out_of_range_fraction
        facts = {"limit": limit, "low": low, "high": high}
        return [
            _expectation(
                "ExpectColumnValuesToBeBetween",
                "range",
                facts,
                column=p.name,
                min_value=low,
                max_value=high,
                mostly=mostly(limit),
            )
        ]
    if p.kind == "categorical" and p.categories is not None:
        limit = config.max_unseen_category_fraction
        return [
            _expectation(
                "ExpectColumnValuesToBeInSet",
                "categories",
                {"limit": limit},
                column=p.name,
                value_set=list(p.categories),
                mostly=mostly(limit),
            )
        ]
    return []


def run_suite(df: pd.DataFrame, checks: list[Expectation]) -> Any:
    """Run every check in one GX validation (one pass of GX's metric graph)."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    gx_log = logging.getLogger("great_expectations")
    if gx_log.level == logging.NOTSET:  # GX narrates every context at INFO; keep it quiet
        gx_log.setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = (
        context.data_sources.add_pandas("conveyor")
        .add_dataframe_asset("batch")
        .add_batch_definition_whole_dataframe("whole")
    )
    suite = context.suites.add(gx.ExpectationSuite(name="conveyor-batch", expectations=checks))
    definition = gx.ValidationDefinition(name="conveyor-validation", data=batch, suite=suite)
    return definition.run(
        batch_parameters={"dataframe": df},
        result_format={"result_format": "BASIC", "partial_unexpected_count": 20},
    )
