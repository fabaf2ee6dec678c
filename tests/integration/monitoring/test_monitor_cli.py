"""`conveyor monitor drift` on a trained demo project, as a user runs it."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.integration

Cli = Callable[..., subprocess.CompletedProcess[str]]


def _batch(cli: Cli, workdir: Path, name: str, *, seed: int, drift: float) -> Path:
    made = cli("demo", "--dir", name, "--rows", "1500", "--seed", str(seed), "--drift", str(drift))
    assert made.returncode == 0, made.stderr
    return workdir / name / "data" / "churn.csv"


def _drift(
    cli: Cli, config: Path, data: Path, out: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    return cli(
        "monitor", "drift", "--model", "churn-demo@champion", "--data", str(data),
        "--out", str(out), "-c", str(config), *extra,
    )  # fmt: skip


def test_a_drifted_batch_is_detected_and_names_its_features(
    cli: Cli, trained_demo: Path, workdir: Path
) -> None:
    data = _batch(cli, workdir, "drifted", seed=11, drift=1.0)
    done = _drift(cli, trained_demo, data, workdir / "out-drifted")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((workdir / "out-drifted" / "drift.json").read_text())
    assert report["drift_detected"] is True
    assert {"support_calls", "region", "age"} <= set(report["drifted_features"])
    assert "tenure_months" not in report["drifted_features"]  # the demo's drift leaves it be
    assert report["model"]["version"] == "1"
    assert report["prediction_drift"] is True
    html = (workdir / "out-drifted" / "drift.html").read_text()
    assert html.count("data:image/png;base64,") == len(report["features"]) + len(
        report["predictions"]
    )
    assert "drift detected" in done.stdout and "support_calls" in done.stdout


def test_a_clean_batch_is_not_drifted(cli: Cli, trained_demo: Path, workdir: Path) -> None:
    data = _batch(cli, workdir, "clean", seed=12, drift=0.0)
    # Features only: loading the model costs seconds (skops), the drifted test scores it.
    done = _drift(cli, trained_demo, data, workdir / "out-clean", "--no-predictions")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((workdir / "out-clean" / "drift.json").read_text())
    assert report["drift_detected"] is False
    assert report["drifted_features"] == []
    assert {f["feature"] for f in report["features"]} >= {"age", "plan", "region"}
    assert report["predictions"] == []


def test_a_batch_missing_a_column_is_one_clear_line(
    cli: Cli, trained_demo: Path, workdir: Path
) -> None:
    source = workdir / "demo" / "data" / "churn.csv"
    broken = workdir / "no-income.csv"
    pd.read_csv(source).drop(columns=["income "]).to_csv(broken, index=False)
    done = _drift(cli, trained_demo, broken, workdir / "out-broken")
    assert done.returncode == 1, done.stderr  # DataError: the analysis cannot run
    assert "'income'" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_bad_model_reference_is_a_usage_error(cli: Cli, trained_demo: Path) -> None:
    done = cli(
        "monitor", "drift", "--model", "churn-demo", "--data", "x.csv", "-c", str(trained_demo)
    )
    assert done.returncode == 2
    assert "NAME@ALIAS" in done.stderr
