"""The verdict of a validation run and its failures, as plain frozen dataclasses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["ExpectationFailure", "ValidationReport"]


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
