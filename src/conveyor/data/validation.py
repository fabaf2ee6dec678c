"""Validate a cleaned batch with Great Expectations: config checks plus a saved baseline.

The config's own checks (row count, target present and complete, null fractions) always
run. The first batch that passes them is profiled into a baseline, saved as a GX
``ExpectationSuite`` JSON whose ``meta`` keeps the raw facts; later batches are checked
against it with the thresholds of the config in force at that time.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conveyor.data._baseline_profile import (
    ColumnProfile,
    allowed_null_fraction,
    mostly,
    profile_frame,
    widened_range,
)
from conveyor.data._validation_html import ReportRow, render_report_html
from conveyor.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

    from conveyor.config import ValidationConfig
    from conveyor.data.schema import TableSchema

__all__ = ["ExpectationFailure", "ValidationReport", "validate_batch"]

log = logging.getLogger(__name__)

MAX_EXAMPLES = 5
REPORT_HTML = "validation-report.html"
GX_RESULT_JSON = "gx-validation-result.json"
GX_DOCS_HTML = "gx-data-docs.html"
SUITE_NAME = "conveyor-baseline"
PROFILE_KEY = "conveyor_profile"
PROFILE_VERSION = 1


@dataclass(frozen=True)
class ExpectationFailure:
    """One failed expectation, phrased for a person.

    Attributes:
        column: the column it concerns; None for table-level checks.
        expectation: the GX expectation type (``expect_column_values_to_be_in_set``).
        detail: what was found against what was allowed.
        examples: up to five offending values, already formatted (strings quoted).
    """

    column: str | None
    expectation: str
    detail: str
    examples: tuple[str, ...] = ()

    def line(self) -> str:
        """One human line, e.g. ``column 'plan': 12.5% of values not in ...; e.g. 'gold '``."""
        where = "table" if self.column is None else f"column {self.column!r}"
        text = f"{where}: {self.detail}"
        return f"{text}; e.g. {', '.join(self.examples)}" if self.examples else text

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "column": self.column,
            "expectation": self.expectation,
            "detail": self.detail,
            "examples": list(self.examples),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExpectationFailure:
        """Inverse of ``to_dict``."""
        return cls(
            column=data.get("column"),
            expectation=data["expectation"],
            detail=data["detail"],
            examples=tuple(data.get("examples", ())),
        )


@dataclass(frozen=True)
class ValidationReport:
    """The verdict on one batch.

    Attributes:
        success: every expectation passed.
        evaluated: number of expectations evaluated.
        failures: the failed ones, in suite order.
        baseline_created: this run wrote (or rewrote) the baseline suite.
        baseline_path: where the baseline suite lives.
        report_path: the HTML report of this run.
        rows: the batch's row count.
    """

    success: bool
    evaluated: int
    failures: tuple[ExpectationFailure, ...]
    baseline_created: bool
    baseline_path: str
    report_path: str | None
    rows: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "success": self.success,
            "evaluated": self.evaluated,
            "failures": [f.to_dict() for f in self.failures],
            "baseline_created": self.baseline_created,
            "baseline_path": self.baseline_path,
            "report_path": self.report_path,
            "rows": self.rows,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ValidationReport:
        """Inverse of ``to_dict``."""
        return cls(
            success=bool(data["success"]),
            evaluated=int(data["evaluated"]),
            failures=tuple(ExpectationFailure.from_dict(f) for f in data.get("failures", ())),
            baseline_created=bool(data["baseline_created"]),
            baseline_path=str(data["baseline_path"]),
            report_path=data.get("report_path"),
            rows=int(data["rows"]),
        )


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
    and the batch passes the config-level checks.

    Args:
        df: the cleaned batch.
        schema: its column roles.
        config: thresholds in force.
        baseline_path: the baseline suite JSON (read if present, written when created).
        report_dir: where this run's HTML report (and GX's result JSON) go.

    Returns:
        The verdict, with one failure per failed expectation.

    Raises:
        DataError: the baseline file is corrupt, or the report cannot be written.

    Example:
        >>> report = validate_batch(df, schema, ValidationConfig(), baseline_path=p, report_dir=d)
        >>> [f.line() for f in report.failures]
    """
    from conveyor.data import _gx_suite as gxs

    baseline = None
    if baseline_path.is_file() and not config.update_baseline:
        baseline = load_baseline(baseline_path)
    plans = gxs.config_expectations(df, schema, config)
    if baseline is not None:
        plans += gxs.baseline_expectations(df, baseline, config)
    result = gxs.run_suite(df, plans)
    outcomes = [gxs.describe(r, df) for r in result.results]
    config_ok = all(ok for ok, outcome in outcomes if outcome.expectation in gxs.CONFIG_LEVEL)
    config_ok = config_ok and all(
        ok for ok, o in outcomes if (o.column, o.expectation) not in gxs.baseline_keys(baseline)
    )
    created = False
    if baseline is None and config_ok:
        save_baseline(baseline_path, profile_frame(df, schema), config, rows=len(df))
        created = True
    success = all(ok for ok, _ in outcomes)
    report_path = _write_reports(
        report_dir, result, outcomes, success=success, rows=len(df),
        baseline_path=baseline_path, baseline_note=_baseline_note(created, baseline),
    )  # fmt: skip
    failures = tuple(o for ok, o in outcomes if not ok)
    log.info("validation %s: %d/%d expectations failed", "passed" if success else "failed",
             len(failures), len(outcomes))  # fmt: skip
    return ValidationReport(
        success=success,
        evaluated=len(outcomes),
        failures=failures,
        baseline_created=created,
        baseline_path=str(baseline_path),
        report_path=report_path,
        rows=len(df),
    )
