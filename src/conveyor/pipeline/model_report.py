"""The model report: one self-contained HTML page per registered model version.

The page needs nothing but itself: the plots are embedded as base64 PNG, the style is
inline, and it references no URL, so it opens offline from the run's artifacts
(``reports/model_report.html``). Every value from the data (column names, tags, metric
names) is escaped: a column may be called ``<script>``.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from conveyor.training.importance import PermutationImportance

__all__ = ["ModelReport", "render_model_report", "write_model_report"]

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 980px; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.8em 0; }
th, td { border: 1px solid #ddd; padding: 0.3em 0.7em; text-align: left; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.primary td { font-weight: bold; } .note { color: #555; }
figure { display: inline-block; margin: 0.5em; } img { max-width: 100%; }
figcaption { text-align: center; color: #555; font-size: 0.9em; }
"""


@dataclass(frozen=True)
class ModelReport:
    """Everything the report shows, as plain data.

    Attributes:
        name: the registered model's name.
        pipeline_run: the Conveyor run that trained it.
        model_type: the estimator chosen (``lightgbm``, ...).
        task: ``binary``, ``multiclass`` or ``regression``.
        metric: the primary metric (the one the promotion gate compares).
        metrics: the new model's held-out metrics.
        champion_metrics: the champion's metrics on the same held-out rows; None without
            a champion, empty when it could not score them.
        champion_version: the champion's version, if there is one.
        heldout_rows: rows both models were scored on.
        plots: the evaluation plots (PNG files).
        ingest: the ingest summary: ``rows``, ``columns``, ``task``, ``schema``, ``cleaning``.
        validation: the validate summary: ``success``, ``skipped``, ``evaluated``.
        tags: the lineage tags the version is registered with.
        importance: permutation importance of every input feature.
        importance_plot: its bar chart (PNG), if drawn.
        generated_at: when the report was made (ISO 8601).
    """

    name: str
    pipeline_run: str
    model_type: str
    task: str
    metric: str
    metrics: dict[str, float]
    champion_metrics: dict[str, float] | None
    champion_version: str | None
    heldout_rows: int
    plots: Sequence[Path]
    ingest: dict[str, Any]
    validation: dict[str, Any]
    tags: dict[str, str]
    importance: PermutationImportance
    importance_plot: Path | None
    generated_at: str


def write_model_report(report: ModelReport, path: Path) -> Path:
    """Render ``report`` into the HTML file ``path`` (UTF-8; its folder is created).

    Returns:
        ``path``.

    Raises:
        OSError: a plot cannot be read or the file cannot be written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_model_report(report), encoding="utf-8")
    return path


def render_model_report(report: ModelReport) -> str:
    """The report as one self-contained HTML page.

    Example:
        >>> page = render_model_report(report)  # doctest: +SKIP
        >>> page.startswith("<!DOCTYPE html>")  # doctest: +SKIP
        True

    Args:
        report: what to show.

    Returns:
        The HTML text: metrics against the champion, evaluation plots, data profile and
        validation, lineage tags, permutation feature importance.

    Raises:
        OSError: a plot file cannot be read.
    """
    title = f"Model report: {report.name} ({report.model_type})"
    sections = [
        f"<h1>{_e(title)}</h1>",
        _table(
            ["Model", "Task", "Primary metric", "Pipeline run", "Generated"],
            [[report.name, report.task, report.metric, report.pipeline_run, report.generated_at]],
        ),
        _metrics_section(report),
        _plots_section(report.plots),
        _data_section(report.ingest, report.validation),
        "<h2>Lineage</h2>",
        _table(["Tag", "Value"], sorted(report.tags.items())),
        _importance_section(report.importance, report.importance_plot),
    ]
    body = "\n".join(sections)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{_e(title)}</title>\n<style>{_STYLE}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _table(
    header: Sequence[str], rows: Iterable[Sequence[Any]], *, highlight: int | None = None
) -> str:
    """An HTML table of escaped cells; floats right-aligned, row ``highlight`` in bold."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    lines = [f"<table><tr>{head}</tr>"]
    for index, row in enumerate(rows):
        cells = "".join(
            f'<td class="num">{_e(_number(c))}</td>'
            if isinstance(c, float)
            else f"<td>{_e(c)}</td>"
            for c in row
        )
        row_class = ' class="primary"' if index == highlight else ""
        lines.append(f"<tr{row_class}>{cells}</tr>")
    return "\n".join([*lines, "</table>"])


def _number(value: float) -> str:
    return f"{value:.4g}"


def _image(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{_e(path.stem)}">'
        f"<figcaption>{_e(path.name)}</figcaption></figure>"
    )


# -- sections ---------------------------------------------------------------------------------
def _metrics_section(report: ModelReport) -> str:
    from conveyor.training.evaluate import metric_directions

    champion = report.champion_metrics or {}
    directions = metric_directions()
    others = sorted((set(report.metrics) | set(champion)) - {report.metric})
    rows = []
    for name in [report.metric, *others]:
        new, old = report.metrics.get(name), champion.get(name)
        change = "-" if new is None or old is None else _change(new - old, directions.get(name))
        label = f"{name} (primary)" if name == report.metric else name
        rows.append([label, "-" if new is None else new, "-" if old is None else old, change])
    header = f"Champion v{report.champion_version}" if report.champion_version else "Champion"
    return "\n".join(
        [
            "<h2>Held-out metrics</h2>",
            f'<p class="note">{_e(_champion_note(report))}</p>',
            _table(["Metric", "New model", header, "New - champion"], rows, highlight=0),
        ]
    )


def _change(delta: float, higher_is_better: bool | None) -> str:
    if higher_is_better is None or delta == 0:
        return f"{delta:+.4g}"
    better = (delta > 0) == higher_is_better
    return f"{delta:+.4g} ({'better' if better else 'worse'})"


def _champion_note(report: ModelReport) -> str:
    rows = f"{report.heldout_rows} held-out rows"
    if report.champion_metrics is None:
        return f"New model scored on {rows}; there is no champion to compare with."
    if not report.champion_metrics:
        return (
            f"New model scored on {rows}; champion v{report.champion_version} could not"
            " score them (see the run log), so its column is empty."
        )
    return f"Both models scored on the same {rows}."


def _plots_section(plots: Sequence[Path]) -> str:
    images = "\n".join(_image(path) for path in plots)
    return f"<h2>Evaluation plots</h2>\n<div>{images or '<p>No plots.</p>'}</div>"


def _data_section(ingest: dict[str, Any], validation: dict[str, Any]) -> str:
    schema, cleaning = ingest.get("schema", {}), ingest.get("cleaning", {})
    overview = [
        ["Rows (after cleaning)", ingest.get("rows", "-")],
        ["Rows read", cleaning.get("rows_in", "-")],
        ["Rows dropped for a missing target", cleaning.get("rows_without_target", "-")],
        ["Columns", ingest.get("columns", "-")],
        ["Task", ingest.get("task", "-")],
        ["Validation (Great Expectations)", _validation_line(validation)],
    ]
    if validation.get("report"):
        overview.append(["Validation report (run artifact)", Path(validation["report"]).name])
    return "\n".join(
        [
            "<h2>Data profile and validation</h2>",
            _table(["Data", "Value"], overview),
            "<h3>Columns</h3>",
            _table(
                ["Column", "Role", "Missing markers", "Cleaning"], _column_rows(schema, cleaning)
            ),
        ]
    )


def _validation_line(validation: dict[str, Any]) -> str:
    if validation.get("skipped"):
        return "skipped (validation.enabled is false)"
    checks = f"{validation.get('evaluated', 0)} checks"
    baseline = "; baseline created by this run" if validation.get("baseline_created") else ""
    return f"{'passed' if validation.get('success') else 'failed'} ({checks}){baseline}"


def _column_rows(schema: dict[str, Any], cleaning: dict[str, Any]) -> list[list[Any]]:
    """One row per column of the source table: role, markers turned missing, what cleaning did."""
    roles: dict[str, str] = {}
    if "target" in schema:
        roles[schema["target"]] = "target"
    for role in ("numeric", "categorical", "datetime"):
        roles.update(dict.fromkeys(schema.get(role, []), role))
    dropped = {**cleaning.get("dropped", {}), **schema.get("dropped", {})}
    roles.update({column: f"dropped ({reason})" for column, reason in dropped.items()})
    markers = cleaning.get("missing_markers", {})
    renamed = {new: old for old, new in cleaning.get("renamed_columns", {}).items()}
    coerced = set(cleaning.get("coerced_numeric", []))
    parsed = set(cleaning.get("parsed_datetime", []))
    rows = []
    for column in [*roles, *(c for c in markers if c not in roles)]:
        notes = [
            *([f"renamed from {renamed[column]!r}"] if column in renamed else []),
            *(["text coerced to numbers"] if column in coerced else []),
            *(["parsed as date/time"] if column in parsed else []),
        ]
        rows.append(
            [column, roles.get(column, "-"), markers.get(column, 0), "; ".join(notes) or "-"]
        )
    return rows


def _importance_section(importance: PermutationImportance, plot: Path | None) -> str:
    rows = [[name, mean, std] for name, mean, std in importance.ranked()]
    return "\n".join(
        [
            "<h2>Feature importance</h2>",
            f'<p class="note">Method: {_e(importance.method)}.'
            " A feature's importance is how much the held-out score changes when its values"
            " are shuffled (mean and standard deviation over the repeats); near zero or below,"
            " the model does not rely on it.</p>",
            _image(plot) if plot is not None else "",
            _table(["Feature", "Mean", "Std"], rows),
        ]
    )
