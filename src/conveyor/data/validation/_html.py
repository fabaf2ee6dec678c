"""Self-contained HTML page of one validation run: verdict, failures, every expectation."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["ReportRow", "render_report_html"]

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#1f2328}
h1{font-size:1.4rem;margin:0 0 .3rem} .meta{color:#57606a;margin:.2rem 0}
.verdict{display:inline-block;padding:.2rem .7rem;border-radius:1rem;font-weight:600}
.pass{background:#dafbe1;color:#116329} .fail{background:#ffebe9;color:#a40e26}
table{border-collapse:collapse;width:100%;margin-top:1rem;font-size:.92rem}
th,td{border:1px solid #d0d7de;padding:.35rem .6rem;text-align:left;vertical-align:top}
th{background:#f6f8fa} tr.failed td{background:#fff5f5} code{font-size:.85rem}
"""


@dataclass(frozen=True)
class ReportRow:
    """One evaluated expectation as the page shows it."""

    success: bool
    column: str | None
    expectation: str
    detail: str
    examples: tuple[str, ...]


def render_report_html(
    *,
    success: bool,
    rows: Sequence[ReportRow],
    batch_rows: int,
    baseline_path: str,
    baseline_note: str,
    extra_links: Sequence[tuple[str, str]] = (),
) -> str:
    """Render the report page; failures first, then every expectation.

    Args:
        success: the batch's verdict.
        rows: every evaluated expectation.
        batch_rows: the batch's row count.
        baseline_path: where the baseline suite lives.
        baseline_note: one line on what happened to the baseline in this run.
        extra_links: (label, relative href) pairs shown under the header.

    Returns:
        A complete HTML document with inline CSS and no external resources.
    """
    failed = [row for row in rows if not row.success]
    verdict = "passed" if success else "failed"
    links = "".join(
        f'<p class="meta"><a href="{escape(href)}">{escape(label)}</a></p>'
        for label, href in extra_links
    )
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Conveyor data validation: {verdict}</title><style>{_STYLE}</style></head><body>",
        "<h1>Data validation "
        f"<span class='verdict {'pass' if success else 'fail'}'>{verdict}</span></h1>",
        f"<p class='meta'>{batch_rows:,} rows; {len(rows)} expectations evaluated, "
        f"{len(failed)} failed.</p>",
        f"<p class='meta'>Baseline: <code>{escape(baseline_path)}</code> "
        f"({escape(baseline_note)})</p>",
        links,
    ]
    if failed:
        parts += ["<h2>Failures</h2>", _table(failed)]
    parts += ["<h2>All expectations</h2>", _table(rows), "</body></html>"]
    return "\n".join(parts)


def _table(rows: Sequence[ReportRow]) -> str:
    head = (
        "<table><thead><tr><th>Status</th><th>Column</th><th>Expectation</th>"
        "<th>Result</th><th>Examples</th></tr></thead><tbody>"
    )
    body = "".join(_row(row) for row in rows)
    return f"{head}{body}</tbody></table>"


def _row(row: ReportRow) -> str:
    status = "pass" if row.success else "FAIL"
    column = "(table)" if row.column is None else row.column
    examples = ", ".join(row.examples)
    return (
        f"<tr class='{'passed' if row.success else 'failed'}'><td>{status}</td>"
        f"<td>{escape(column)}</td><td><code>{escape(row.expectation)}</code></td>"
        f"<td>{escape(row.detail)}</td><td><code>{escape(examples)}</code></td></tr>"
    )
