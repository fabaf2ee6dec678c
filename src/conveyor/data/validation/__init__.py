"""Validate a cleaned batch with Great Expectations: config checks plus a saved baseline.

The config's own checks (row count, target present and complete, null fractions) always
run. The first batch that passes them is profiled into a baseline, saved as a GX
``ExpectationSuite`` JSON whose ``meta`` keeps the raw facts; later batches are checked
against it with the thresholds of the config in force at that time. Great Expectations
is imported lazily, inside the functions that run it (it costs seconds to import).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from conveyor.data.validation._outcome import outcome, write_reports
from conveyor.data.validation._profile import profile_frame
from conveyor.data.validation._results import ExpectationFailure, ValidationReport
from conveyor.data.validation._suite import (
    CONFIG_CHECKS,
    baseline_checks,
    config_checks,
    load_baseline,
    run_suite,
    save_baseline,
)

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

    from conveyor.config import ValidationConfig
    from conveyor.data.schema import TableSchema

__all__ = ["ExpectationFailure", "ValidationReport", "load_great_expectations", "validate_batch"]

log = logging.getLogger(__name__)


def load_great_expectations() -> None:
    """Import Great Expectations now (seconds), ahead of the first validation."""
    import great_expectations  # noqa: F401


def validate_batch(
    df: pd.DataFrame,
    schema: TableSchema,
    config: ValidationConfig,
    *,
    baseline_path: Path,
    report_dir: Path,
) -> ValidationReport:
    """Check a batch against the config's expectations and the saved baseline.

    A failing batch is not an error: the report says ``success=False`` and lists the
    failures. The baseline is written when none exists (or ``config.update_baseline``)
    and the batch passes the config-level checks; with ``update_baseline`` the old
    baseline is not checked.

    Args:
        df: the cleaned batch.
        schema: its column roles.
        config: thresholds in force.
        baseline_path: the baseline suite JSON (read if present, written when created).
        report_dir: where this run's HTML report (and GX's result JSON) go.

    Returns:
        The verdict, with one failure per failed expectation.

    Raises:
        DataError: the baseline file is corrupt, or the baseline or report cannot be written.

    Example:
        >>> report = validate_batch(df, schema, cfg, baseline_path=p, report_dir=d)
        >>> report.success, [f.line() for f in report.failures]
    """
    baseline = None
    if baseline_path.is_file() and not config.update_baseline:
        baseline = load_baseline(baseline_path)
    checks = config_checks(df, schema, config)
    if baseline is not None:
        checks += baseline_checks(df, baseline, config)
    result = run_suite(df, checks)
    outcomes = [outcome(r, df) for r in result.results]
    created = False
    if baseline is None and all(o.success for o in outcomes if o.check in CONFIG_CHECKS):
        save_baseline(baseline_path, profile_frame(df, schema), config, rows=len(df))
        created = True
    success = all(o.success for o in outcomes)
    report_path = write_reports(
        report_dir,
        result,
        outcomes,
        success=success,
        rows=len(df),
        baseline_path=baseline_path,
        baseline_note=_baseline_note(created=created, checked=baseline is not None),
    )
    failures = tuple(o.failure for o in outcomes if not o.success)
    log.info("validation: %d of %d expectations failed", len(failures), len(outcomes))
    return ValidationReport(
        success=success,
        evaluated=len(outcomes),
        failures=failures,
        baseline_created=created,
        baseline_path=str(baseline_path),
        report_path=report_path,
        rows=len(df),
    )


def _baseline_note(*, created: bool, checked: bool) -> str:
    if created:
        return "created from this batch"
    if checked:
        return "checked against"
    return "not created: the batch failed the config checks"
