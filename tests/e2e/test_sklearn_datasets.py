"""The same CLI on datasets that ship with scikit-learn: the pipeline is config-driven."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

Cli = Callable[..., subprocess.CompletedProcess[str]]

pytestmark = pytest.mark.e2e


def write_dataset(tmp_path: Path, loader: str, target: str) -> Path:
    from sklearn import datasets

    frame = getattr(datasets, loader)(as_frame=True).frame
    frame = frame.rename(columns={"target": target})
    path = tmp_path / "data" / f"{loader}.parquet"
    path.parent.mkdir()
    frame.to_parquet(path)
    return path


def run_project(cli: Cli, tmp_path: Path, name: str, source: Path, target: str) -> dict[str, float]:
    config = tmp_path / "conveyor.yaml"
    config.write_text(f"name: {name}\ndata:\n  source: {source}\n  target: {target}\n")
    done = cli("run", "-c", str(config))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{name} v1 -> champion" in done.stdout
    lineage = json.loads(cli("lineage", name, "1", "-c", str(config)).stdout)
    metrics: dict[str, float] = lineage["metrics"]
    return metrics


def test_breast_cancer_binary(cli: Cli, tmp_path: Path) -> None:
    source = write_dataset(tmp_path, "load_breast_cancer", "malignant")
    metrics = run_project(cli, tmp_path, "breast-cancer", source, "malignant")
    assert metrics["roc_auc"] > 0.95


def test_wine_multiclass(cli: Cli, tmp_path: Path) -> None:
    source = write_dataset(tmp_path, "load_wine", "cultivar")
    metrics = run_project(cli, tmp_path, "wine", source, "cultivar")
    assert metrics["f1_macro"] > 0.85


def test_diabetes_regression(cli: Cli, tmp_path: Path) -> None:
    source = write_dataset(tmp_path, "load_diabetes", "progression")
    metrics = run_project(cli, tmp_path, "diabetes", source, "progression")
    assert metrics["r2"] > 0.2
    assert metrics["rmse"] < 70
