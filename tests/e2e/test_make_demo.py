"""`make demo`, as the README tells a new user to run it, on a fresh folder: each stage it
claims is checked, in its output and in what it left behind. The retraining alert goes
through a real Prometheus and Alertmanager (installed here by `make system-deps`), never
the demo's stand-in."""

from __future__ import annotations

import ast
import os
import re
import subprocess
from pathlib import Path

import pytest

from conveyor.registry.store import ModelRegistry

ROOT = Path(__file__).resolve().parents[2]
DEMO_TIMEOUT_S = 900

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    folder = tmp_path_factory.mktemp("make-demo") / "demo"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "CONVEYOR_"))}
    result = subprocess.run(
        ["make", "--no-print-directory", "demo", f"DEMO_DIR={folder}"],
        cwd=ROOT, env={**env, "COLUMNS": "200"}, capture_output=True, text=True,
        timeout=DEMO_TIMEOUT_S, check=False,
    )  # fmt: skip
    return result, folder


def line(result: subprocess.CompletedProcess[str], start: str) -> str:
    found = [x for x in result.stdout.splitlines() if x.startswith(start)]
    assert found, f"no line starting {start!r} in:\n{result.stdout[-3000:]}"
    return found[-1]


def test_the_demo_succeeds(demo: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    result, _ = demo
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_both_versions_answered_and_no_request_failed(
    demo: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    answered = line(demo[0], "requests answered by version:")
    match = re.fullmatch(r"requests answered by version: (\{.*\}); failed: (\d+)", answered)
    assert match is not None, answered
    by_version = ast.literal_eval(match[1])
    assert (sorted(by_version), int(match[2])) == (["1", "2"], 0)
    assert min(by_version.values()) > 0


def test_drift_is_detected_on_the_injected_features(
    demo: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    detected = line(demo[0], "drift detected on ")
    features = set(re.findall(r"\w+", detected.removeprefix("drift detected on ").split("(")[0]))
    assert {"age", "monthly_charges", "region"} <= features


def test_the_retrained_version_is_the_champion(
    demo: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    _, folder = demo
    registry = ModelRegistry(f"sqlite:///{folder / '.conveyor' / 'mlflow.db'}")
    champion = registry.get_alias("churn-demo", "champion")
    assert champion is not None and champion.version == "2"


def test_the_swap_is_reported(demo: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    assert line(demo[0], "new champion v2").startswith("new champion v2 swapped in")


def test_prometheus_fires_the_drift_alert(
    demo: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    fired = line(demo[0], "Prometheus fired ")
    assert "ConveyorFeatureDrift" in fired.removeprefix("Prometheus fired ").split(" (")[0]


def test_alertmanager_starts_the_retraining_run(
    demo: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    assert line(demo[0], "Alertmanager notified the retraining receiver: run started")


def test_the_demo_does_not_stand_in_for_alertmanager(
    demo: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    assert "stand-in" not in demo[0].stdout
