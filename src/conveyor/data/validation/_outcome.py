"""Turn GX results into human failure lines and write the run's reports."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from conveyor.data.validation._html import ReportRow, render_report_html
from conveyor.data.validation._results import ExpectationFailure
from conveyor.errors import DataError

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

__all__ = ["Outcome", "outcome", "write_reports"]

log = logging.getLogger(__name__)

MAX_EXAMPLES = 5
REPORT_HTML = "validation-report.html"
GX_RESULT_JSON = "gx-validation-result.json"
GX_DOCS_HTML = "gx-data-docs.html"


@dataclass(frozen=True)
class Outcome:
    """One evaluated expectation: which Conveyor check, its verdict and its description."""

    check: str
    success: bool
    failure: ExpectationFailure


def outcome(result: Any, df: pd.DataFrame) -> Outcome:
    """Describe one GX ``ExpectationValidationResult`` as a human line with examples."""
    config = result.expectation_config
    meta = dict(config.meta or {})
    check = str(meta.get("conveyor_check", ""))
    column = config.kwargs.get("column")
    stats = dict(result.result or {})
    error = (result.exception_info or {}).get("exception_message")
    examples: tuple[str, ...] = ()
    if error:
        detail = f"could not be evaluated: {error}"
    else:
        detail = _detail(check, meta, stats)
        if result.success and check in ("target_exists", "exists"):
            detail = "present"
        examples = _examples(check, stats, df, column)
    return Outcome(
        check, bool(result.success), ExpectationFailure(column, config.type, detail, examples)
    )


def _detail(check: str, meta: dict[str, Any], stats: dict[str, Any]) -> str:  # noqa: PLR0911
    share = float(stats.get("unexpected_percent") or 0.0) / 100
    limit = meta.get("limit")
    if check == "rows":
        return f"{stats.get('observed_value')} rows (min {limit})"
    if check == "target_exists":
        return "target column is missing"
    if check == "exists":
        return "missing (the baseline has it)"
    if check == "target_not_null":
        return f"{stats.get('unexpected_count', 0)} target values are null (none allowed)"
    if check == "nulls":
        return f"{_pct(share)} null (max {_pct(limit)})"
    if check == "baseline_nulls":
        baseline, tolerance = _pct(meta.get("baseline", 0.0)), _pct(meta.get("tolerance", 0.0))
        return f"{_pct(share)} null (max {_pct(limit)}: baseline {baseline} + {tolerance})"
    if check == "type":
        observed = stats.get("observed_value")
        expected = meta.get("expected")
        return (
            f"type {observed} (baseline {expected})"
            if observed == expected
            else (f"type changed from {expected} to {observed}")
        )
    if check == "range":
        bounds = f"[{_num(meta['low'])}, {_num(meta['high'])}]"
        return f"{_pct(share)} of values outside {bounds} (max {_pct(limit)})"
    if check == "categories":
        return f"{_pct(share)} of values not in the baseline set (max {_pct(limit)})"
    return "see the GX result"


def _examples(
    check: str, stats: dict[str, Any], df: pd.DataFrame, column: str | None
) -> tuple[str, ...]:
    if check in ("range", "categories"):
        values = stats.get("partial_unexpected_list") or []
    elif check == "type" and column is not None and column in df.columns:
        values = list(df[column].dropna().head(1000).unique()[: MAX_EXAMPLES * 4])
    else:
        return ()
    shown: list[str] = []
    for value in values:
        text = _show(value)
        if text not in shown:
            shown.append(text)
        if len(shown) == MAX_EXAMPLES:
            break
    return tuple(shown)


def _show(value: Any) -> str:
    item = value.item() if hasattr(value, "item") else value
    if isinstance(item, str):
        return repr(item)
    return _num(item) if isinstance(item, float) else str(item)


def _pct(share: Any) -> str:
    return f"{float(share or 0.0) * 100:.3g}%"


def _num(value: float) -> str:
    return f"{value:.6g}"


def write_reports(
    report_dir: Path,
    result: Any,
    outcomes: list[Outcome],
    *,
    success: bool,
    rows: int,
    baseline_path: Path,
    baseline_note: str,
) -> str:
    """Write the HTML report, GX's result JSON and GX's Data Docs page; return the report.

    Raises:
        DataError: the report folder cannot be written.
    """
    links: list[tuple[str, str]] = [("GX validation result (JSON)", GX_RESULT_JSON)]
    try:
        report_dir.mkdir(parents=True, exist_ok=True)
        (report_dir / GX_RESULT_JSON).write_text(
            json.dumps(result.to_json_dict(), indent=2, default=str), encoding="utf-8"
        )
        if _write_gx_docs(report_dir / GX_DOCS_HTML, result):
            links.append(("GX Data Docs page (styles load from the internet)", GX_DOCS_HTML))
        page = render_report_html(
            success=success,
            rows=[
                ReportRow(
                    o.success,
                    o.failure.column,
                    o.failure.expectation,
                    o.failure.detail,
                    o.failure.examples,
                )
                for o in outcomes
            ],
            batch_rows=rows,
            baseline_path=str(baseline_path),
            baseline_note=baseline_note,
            extra_links=links,
        )
        path = report_dir / REPORT_HTML
        path.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise DataError(f"cannot write the validation report under {report_dir}: {exc}") from exc
    return str(path)


def _write_gx_docs(path: Path, result: Any) -> bool:
    """GX's own Data Docs rendering of the result; best effort, it is a secondary view."""
    from great_expectations.render.renderer.page_renderer import ValidationResultsPageRenderer
    from great_expectations.render.view.view import DefaultJinjaPageView

    renderer: Any = ValidationResultsPageRenderer()
    view: Any = DefaultJinjaPageView()
    try:
        path.write_text(view.render(renderer.render(result)), encoding="utf-8")
    except Exception as exc:  # GX renderers vary; the main report stands alone
        log.warning("GX data docs page not written: %s", exc)
        return False
    return True
