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


# -- describing results ------------------------------------------------------------
@dataclass(frozen=True)
class _Outcome:
    check: str
    success: bool
    failure: ExpectationFailure


def _outcome(result: Any, df: pd.DataFrame) -> _Outcome:
    config = result.expectation_config
    meta = dict(config.meta or {})
    check = str(meta.get("conveyor_check", ""))
    column = config.kwargs.get("column")
    stats = dict(result.result or {})
    error = (result.exception_info or {}).get("exception_message")
    if error:
        detail, examples = f"could not be evaluated: {error}", ()
    else:
        detail = _detail(check, meta, stats)
        examples = _examples(check, stats, df, column)
    return _Outcome(
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
        return f"{_pct(share)} null (max {_pct(float(limit or 0))})"
    if check == "baseline_nulls":
        return (
            f"{_pct(share)} null (max {_pct(float(limit or 0))}: baseline "
            f"{_pct(float(meta.get('baseline') or 0))} + tolerance)"
        )
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
        return f"{_pct(share)} of values outside {bounds} (max {_pct(float(limit or 0))})"
    if check == "categories":
        return f"{_pct(share)} of values not in the baseline set (max {_pct(float(limit or 0))})"
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


def _pct(share: float) -> str:
    return f"{share * 100:.3g}%"


def _num(value: float) -> str:
    return f"{value:.6g}"


# -- reports -----------------------------------------------------------------------
def _baseline_note(*, created: bool, checked: bool) -> str:
    if created:
        return "created from this batch"
    return "checked against" if checked else "not created: the batch failed the config checks"


def _write_reports(
    report_dir: Path,
    result: Any,
    outcomes: list[_Outcome],
    success: bool,
    rows: int,
    baseline_path: Path,
    note: str,
) -> str:
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
            baseline_note=note,
            extra_links=links,
        )
        path = report_dir / REPORT_HTML
        path.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise DataError(f"cannot write the validation report under {report_dir}: {exc}") from exc
    return str(path)


def _write_gx_docs(path: Path, result: Any) -> bool:
    """GX's own Data Docs rendering of the result; best effort, it is a secondary view."""
    from great_expectations.render.renderer import ValidationResultsPageRenderer
    from great_expectations.render.view import DefaultJinjaPageView

    try:
        document = ValidationResultsPageRenderer().render(result)
        path.write_text(DefaultJinjaPageView().render(document), encoding="utf-8")
    except Exception as exc:  # noqa: BLE001  # GX renderers vary; the main report stands alone
        log.warning("GX data docs page not written: %s", exc)
        return False
    return True
