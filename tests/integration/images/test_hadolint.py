"""hadolint, the Dockerfile linter, reports nothing on any of Conveyor's Dockerfiles."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
DOCKERFILES = sorted((ROOT / "deploy").rglob("*Dockerfile"))
HADOLINT = str(Path(sys.executable).with_name("hadolint"))


def test_there_are_dockerfiles() -> None:
    assert [path.name for path in DOCKERFILES if path.name == "Dockerfile"]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_hadolint_reports_nothing(dockerfile: Path) -> None:
    result = subprocess.run(
        [HADOLINT, "--no-color", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
