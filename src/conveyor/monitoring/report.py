"""Write a drift report: ``drift.json`` (the contract) and a self-contained ``drift.html``.

``drift.json`` has at its top level the boolean ``drift_detected``, ``drift_share``,
``drifted_features`` and ``features`` (one entry per feature with its statistics, verdict,
reason and histogram), plus ``model`` and ``data``; orchestrators (the Airflow retraining
DAG) read ``drift_detected``. ``drift.html`` holds a summary table and, per feature and
prediction column, reference-vs-batch bar charts as base64 PNGs: one file, no assets.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conveyor.durable import durable_write_text
from conveyor.errors import DataError
from conveyor.redaction import redact_tree

if TYPE_CHECKING:
    from conveyor.monitoring.drift import DriftReport, FeatureDrift

__all__ = ["JSON_NAME", "HTML_NAME", "render_html", "write_report"]

JSON_NAME = "drift.json"
HTML_NAME = "drift.html"
_SHOWN = ("psi", "ks_pvalue", "wasserstein", "js_distance", "chi2_pvalue", "null_rate_change")


def write_report(
    report: DriftReport, out_dir: Path, *, context: dict[str, Any] | None = None
) -> tuple[Path, Path]:
    """Write ``drift.json`` and ``drift.html`` into ``out_dir`` (created).

    Args:
        report: the analysis.
        out_dir: destination folder.
        context: extra top-level JSON keys (``model``, ``data``, ...), shown in the HTML too.

    Returns:
        The JSON and HTML paths.

    Raises:
        DataError: the folder cannot be written.
    """
    context = redact_tree(context or {})  # a batch URI may carry a password
    payload = {**report.to_dict(), **context}
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        json_path, html_path = out_dir / JSON_NAME, out_dir / HTML_NAME
        durable_write_text(json_path, json.dumps(payload, indent=2, allow_nan=False))
        durable_write_text(html_path, render_html(report, context=context))
    except OSError as exc:
        raise DataError(f"cannot write the drift report to {out_dir}: {exc}") from exc
    return json_path, html_path


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def _row(item: FeatureDrift) -> str:
    verdict = "strong drift" if item.strong else ("drift" if item.drifted else "ok")
    cells = [
        f"<td><a href='#{html.escape(item.feature)}'>{html.escape(item.feature)}</a></td>",
        f"<td>{item.kind}</td>",
        f"<td class='{verdict.rsplit(maxsplit=1)[-1]}'>{verdict}</td>",
        *(f"<td>{_fmt(item.statistics.get(k))}</td>" for k in _SHOWN),
        f"<td>{html.escape(item.reason)}</td>",
    ]
    return "<tr>" + "".join(cells) + "</tr>"


def _plot(item: FeatureDrift) -> str:
    """A reference-vs-batch bar chart as a base64 PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    x = np.arange(len(item.bins))
    fig, ax = plt.subplots(figsize=(7, 2.8), dpi=80)
    try:
        ax.bar(x - 0.2, item.reference, width=0.4, label="reference", color="#4c72b0")
        ax.bar(x + 0.2, item.current, width=0.4, label="batch", color="#dd8452")
        ax.set_xticks(x, item.bins, rotation=30, ha="right", fontsize=7)
        ax.set_ylabel("share of non-null values")
        ax.set_title(item.feature, fontsize=9)
        ax.legend(fontsize=7)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
    finally:
        plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _section(item: FeatureDrift) -> str:
    stats = ", ".join(f"{k} {_fmt(v)}" for k, v in item.statistics.items())
    return (
        f"<h3 id='{html.escape(item.feature)}'>{html.escape(item.feature)}</h3>"
        f"<p>{html.escape(item.reason)}</p><p class='stats'>{html.escape(stats)}</p>"
        f"<img alt='{html.escape(item.feature)}' src='data:image/png;base64,{_plot(item)}'>"
    )


def render_html(report: DriftReport, *, context: dict[str, Any]) -> str:
    """The HTML report: summary, table, one chart per feature and prediction column."""
    head = "".join(f"<th>{h}</th>" for h in ("column", "kind", "verdict", *_SHOWN, "reason"))
    rows = "".join(_row(f) for f in (*report.features, *report.predictions))
    sections = "".join(_section(f) for f in (*report.features, *report.predictions))
    facts = "".join(
        f"<li>{html.escape(str(k))}: {html.escape(str(v))}</li>" for k, v in context.items()
    )
    verdict = "DRIFT DETECTED" if report.drift_detected else "no dataset drift"
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Conveyor drift report</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; font-size: 0.85em; }}
td, th {{ border: 1px solid #ccc; padding: 3px 6px; text-align: left; }}
.drift {{ color: #b35900; font-weight: bold; }} .ok {{ color: #2e7d32; }}
.stats {{ font-size: 0.8em; color: #555; }}
</style></head><body>
<h1>Drift report: {verdict}</h1>
<p>{html.escape(report.reason)}. Drift share {report.drift_share:.2f}
(threshold {report.thresholds.drift_share}); {report.rows} rows.</p>
<ul>{facts}</ul>
<table><tr>{head}</tr>{rows}</table>
<h2>Per column</h2>{sections}
</body></html>
"""
