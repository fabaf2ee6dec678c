"""The SBOM of each lock file lists every pinned package at its pinned version."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
TOOL = REPO / ".venv-audit" / "bin" / "cyclonedx-py"
PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s;#]+)")


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(lock: Path) -> dict[str, str]:
    found = (PIN.match(line) for line in lock.read_text(encoding="utf-8").splitlines())
    return {_normal(m.group(1)): m.group(2) for m in found if m}


@pytest.mark.parametrize("lock", ["requirements.lock", "airflow/requirements.lock"])
def test_the_sbom_lists_every_pin_of_the_lock(lock: str, tmp_path: Path) -> None:
    if not TOOL.is_file():
        pytest.fail(f"no {TOOL}: run `make sbom` (make test does)", pytrace=False)
    out = tmp_path / "sbom.json"
    args = [str(TOOL), "requirements", str(REPO / lock), "--output-format", "JSON", "-o", str(out)]
    subprocess.run(args, check=True, capture_output=True, timeout=120)
    components = json.loads(out.read_text(encoding="utf-8"))["components"]
    listed = {_normal(c["name"]): c["version"] for c in components}
    assert listed == _pins(REPO / lock)
    assert all(c["purl"].startswith("pkg:pypi/") for c in components)
