"""The HTML model report: both models' metrics, escaped values, embedded images, no URL."""

from __future__ import annotations

import base64
import re
from dataclasses import replace
from pathlib import Path

import pytest

from conveyor.pipeline.model_report import ModelReport, render_model_report, write_model_report
from conveyor.training.importance import PermutationImportance

HOSTILE = "<script>alert(1)</script>"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))


@pytest.fixture
def report(tmp_path: Path) -> ModelReport:
    plots = []
    for name in ("roc_curve.png", "feature_importance.png"):
        (tmp_path / name).write_bytes(PNG + name.encode())
        plots.append(tmp_path / name)
    return ModelReport(
        name="adult-income",
        pipeline_run="20240101-000000-abcd",
        model_type="lightgbm",
        task="binary",
        metric="roc_auc",
        metrics={"roc_auc": 0.8765, "accuracy": 0.8312},
        champion_metrics={"roc_auc": 0.8123, "accuracy": 0.8401},
        champion_version="3",
        heldout_rows=250,
        plots=plots[:1],
        ingest={
            "rows": 1000,
            "columns": 4,
            "task": "binary",
            "schema": {
                "target": "income",
                "numeric": ["age"],
                "categorical": [HOSTILE],
                "dropped": {"row id": "id-like"},
            },
            "cleaning": {
                "rows_in": 1003,
                "rows_without_target": 3,
                "missing_markers": {HOSTILE: 12},
                "coerced_numeric": ["age"],
                "dropped": {"row id": "id-like"},
            },
        },
        validation={"success": True, "evaluated": 17},
        tags={"conveyor.data_md5": "0123abcd", "conveyor.parent_champion": "3"},
        importance=PermutationImportance(
            mean={"age": 0.05, HOSTILE: 0.01},
            std={"age": 0.004, HOSTILE: 0.002},
            metric="roc_auc",
            rows=250,
            repeats=5,
        ),
        importance_plot=plots[1],
        generated_at="2024-01-01T00:00:00+00:00",
    )


def _row(page: str, first_cell: str) -> list[str]:
    """The cells of the table row whose first cell is ``first_cell``."""
    match = re.search(rf"<tr[^>]*><td>{re.escape(first_cell)}</td>(.*?)</tr>", page)
    assert match is not None, f"no row {first_cell!r}"
    return re.findall(r"<td[^>]*>(.*?)</td>", match.group(1))


def test_the_metrics_of_both_models_sit_side_by_side(report: ModelReport) -> None:
    page = render_model_report(report)
    assert "<th>Champion v3</th>" in page
    assert _row(page, "roc_auc (primary)") == ["0.8765", "0.8123", "+0.0642 (better)"]
    assert _row(page, "accuracy") == ["0.8312", "0.8401", "-0.0089 (worse)"]


def test_without_a_champion_its_column_is_a_dash(report: ModelReport) -> None:
    page = render_model_report(replace(report, champion_metrics=None, champion_version=None))
    assert _row(page, "roc_auc (primary)") == ["0.8765", "-", "-"]
    assert "no champion" in page


def test_a_hostile_column_name_is_escaped(report: ModelReport) -> None:
    page = render_model_report(report)
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_plots_are_embedded_as_base64_png(report: ModelReport) -> None:
    page = render_model_report(report)
    for path in (report.plots[0], report.importance_plot):
        assert path is not None
        encoded = base64.b64encode(path.read_bytes()).decode()
        assert f'src="data:image/png;base64,{encoded}"' in page


def test_the_page_references_no_external_resource(report: ModelReport) -> None:
    page = render_model_report(report)
    sources = re.findall(r"""\b(?:src|href|action|srcset)\s*=\s*["']?([^"'\s>]*)""", page)
    assert sources, "the page embeds no image at all"
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert not re.search(r"https?:|url\(|@import|<link|<script|<iframe", page, re.IGNORECASE)


def test_the_importance_method_and_every_feature_are_shown(report: ModelReport) -> None:
    page = render_model_report(report)
    assert "permutation importance: drop in roc_auc on 250 held-out rows, 5 repeats" in page
    importance = page.split("<h2>Feature importance</h2>")[1]
    assert _row(importance, "age") == ["0.05", "0.004"]
    assert _row(importance, "&lt;script&gt;alert(1)&lt;/script&gt;") == ["0.01", "0.002"]


def test_the_file_written_is_the_page(report: ModelReport, tmp_path: Path) -> None:
    path = write_model_report(report, tmp_path / "out" / "model_report.html")
    assert path.read_text(encoding="utf-8") == render_model_report(report)
