"""The whole training pipeline through the CLI, on the demo data, as a user runs it."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

Cli = Callable[..., subprocess.CompletedProcess[str]]

pytestmark = pytest.mark.e2e


def _lineage(cli: Cli, project: Path, version: str) -> dict[str, Any]:
    done = cli("lineage", "churn-demo", version, "-c", str(project / "conveyor.yaml"))
    assert done.returncode == 0, done.stderr
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def test_demo_run_registers_promotes_and_reuses_cache(cli: Cli, tmp_path: Path) -> None:
    project = tmp_path / "demo"
    made = cli("demo", "--dir", str(project), "--rows", "3000")
    assert made.returncode == 0, made.stderr
    config = str(project / "conveyor.yaml")

    first = cli("run", "-c", config)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "churn-demo v1 -> champion" in first.stdout
    assert "roc_auc" in first.stdout

    lineage = json.dumps(_lineage(cli, project, "1"))
    for tag in ("conveyor.data_md5", "conveyor.config_hash", "conveyor.validation"):
        assert tag in lineage
    assert (project / "gx" / "expectations" / "churn-demo.json").is_file()
    assert any((project / ".conveyor" / "dvc-remote").rglob("*")), "DVC remote is empty"

    started = time.perf_counter()
    second = cli("run", "-c", config)
    elapsed = time.perf_counter() - started
    assert second.returncode == 0, second.stderr
    assert second.stdout.count("cached") >= 8, second.stdout
    assert "churn-demo v1 -> champion" in second.stdout, "a cached re-run made a new version"
    # A margin for a loaded machine: the cached count and the unchanged version prove caching.
    assert elapsed < 120, f"cached re-run took {elapsed:.1f}s"

    listing = cli("models", "list", "-c", config)
    assert listing.returncode == 0, listing.stderr
    assert "churn-demo" in listing.stdout


def _train_v1_then_new_data(cli: Cli, project: Path, *, min_improvement: float) -> str:
    """v1 on the demo data, then new rows from another seed (same schema, a new dataset
    version) and a gate requiring ``min_improvement`` over the champion's metric; returns
    the config path."""
    assert cli("demo", "--dir", str(project), "--rows", "2000").returncode == 0
    config = project / "conveyor.yaml"
    first = cli("run", "-c", str(config))
    assert first.returncode == 0, first.stdout + first.stderr
    assert cli("demo", "--dir", str(project), "--rows", "2500", "--seed", "7").returncode == 0
    settings = yaml.safe_load(config.read_text(encoding="utf-8"))  # `demo` rewrote it
    settings["promotion"]["min_improvement"] = min_improvement
    config.write_text(yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")
    return str(config)


def _champion(cli: Cli, project: Path, version: str) -> bool:
    return "champion" in _lineage(cli, project, version)["version"]["aliases"]


def test_new_data_that_passes_the_gate_becomes_champion_and_rollback_restores(
    cli: Cli, tmp_path: Path
) -> None:
    project = tmp_path / "demo"
    # Any roc_auc is at most 1.0 below another: the margin -1.0 always passes.
    config = _train_v1_then_new_data(cli, project, min_improvement=-1.0)
    second = cli("run", "-c", config)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "churn-demo v2 -> champion" in second.stdout, second.stdout
    back = cli("rollback", "churn-demo", "-c", config)
    assert back.returncode == 0, back.stderr
    assert "v1 is champion again" in back.stdout
    assert (_champion(cli, project, "1"), _champion(cli, project, "2")) == (True, False)
    versions = cli("data", "versions", "-c", config)
    assert versions.returncode == 0, versions.stderr
    assert versions.stdout.count(".parquet") >= 2

    # The first model's dataset comes back from the DVC remote, even with no local copy.
    md5 = _lineage(cli, project, "1")["version"]["tags"]["conveyor.data_md5"]
    shutil.rmtree(project / ".dvc" / "cache")
    (project / "datasets" / "churn-demo.parquet").unlink()
    restored = tmp_path / "restored.parquet"
    pulled = cli("data", "pull", md5, "-c", config, "--dest", str(restored))
    assert pulled.returncode == 0, pulled.stderr
    assert hashlib.md5(restored.read_bytes()).hexdigest() == md5


def test_new_data_that_fails_the_gate_is_a_challenger_until_promoted(
    cli: Cli, tmp_path: Path
) -> None:
    project = tmp_path / "demo"
    # roc_auc is at most 1.0: no model improves on another by 1.0, the gate always fails.
    config = _train_v1_then_new_data(cli, project, min_improvement=1.0)
    second = cli("run", "-c", config)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "churn-demo v2 -> challenger" in second.stdout, second.stdout
    assert (_champion(cli, project, "1"), _champion(cli, project, "2")) == (True, False)
    promoted = cli("promote", "churn-demo", "2", "-c", config)
    assert promoted.returncode == 0, promoted.stderr
    assert "churn-demo v2 is now champion" in promoted.stdout
    assert (_champion(cli, project, "1"), _champion(cli, project, "2")) == (False, True)


def test_schema_drift_fails_validation_and_registers_nothing(cli: Cli, tmp_path: Path) -> None:
    project = tmp_path / "demo"
    assert cli("demo", "--dir", str(project), "--rows", "2000").returncode == 0
    config = str(project / "conveyor.yaml")
    assert cli("run", "-c", config).returncode == 0
    data = project / "data" / "churn.csv"
    lines = data.read_text().splitlines()
    header = [h.strip() for h in lines[0].split(",")]
    drop = header.index("plan")
    data.write_text(
        "\n".join(",".join(c for i, c in enumerate(line.split(",")) if i != drop) for line in lines)
    )
    failed = cli("run", "-c", config)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "plan" in failed.stdout + failed.stderr
    assert "Traceback" not in failed.stderr
    lineage_v2 = cli("lineage", "churn-demo", "2", "-c", config)
    assert lineage_v2.returncode == 1, "a failed validation registered a version"
    assert "has no version '2'" in lineage_v2.stderr
    assert "champion" in json.dumps(_lineage(cli, project, "1")), "the champion alias moved"


def test_step_by_step_run_matches_orchestrator_use(cli: Cli, tmp_path: Path) -> None:
    project = tmp_path / "demo"
    assert cli("demo", "--dir", str(project), "--rows", "1500").returncode == 0
    config = str(project / "conveyor.yaml")
    before_register = ("ingest", "validate", "version", "split", "train", "export", "evaluate")
    for step in before_register:
        done = cli("run", "-c", config, "--step", step, "--run-id", "manual-1")
        assert done.returncode == 0, f"{step}: {done.stdout}{done.stderr}"
    record = json.loads(cli("runs", "show", "manual-1", "-c", config).stdout)
    assert record["status"] == "partial"
    assert set(record["steps"]) == set(before_register)
    orphan = cli("run", "-c", config, "--step", "train", "--run-id", "no-such-run")
    assert orphan.returncode == 1
    assert "split" in orphan.stderr
