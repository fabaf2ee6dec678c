"""A password in the source URI reaches neither the terminal nor the run record."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

Cli = Callable[..., subprocess.CompletedProcess[str]]

pytestmark = pytest.mark.e2e

PASSWORD = "hunter2-S3cr%40t!$"


def test_a_failed_run_leaves_no_password_behind(cli: Cli, tmp_path: Path) -> None:
    config = tmp_path / "conveyor.yaml"
    source = f"postgresql://app:{PASSWORD}@127.0.0.1:1/crm"  # nothing listens on port 1
    config.write_text(
        f"name: secret\ndata:\n  source: '{source}'\n  target: y\n  table: t\n",
        encoding="utf-8",
    )
    done = cli("run", "-c", str(config))
    # A refused connection is SourceUnavailableError: exit 75, a retry may succeed.
    assert done.returncode == 75, done.stdout + done.stderr
    assert "app:***@127.0.0.1" in done.stderr
    written = [p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file()]
    assert PASSWORD not in done.stdout + done.stderr
    assert not [text for text in written if PASSWORD in text and text != config.read_text()]


def test_a_shared_store_without_a_signing_key_is_refused_before_any_work(
    cli: Cli, tmp_path: Path
) -> None:
    data = tmp_path / "data.csv"
    data.write_text("x,y\n1,a\n2,b\n", encoding="utf-8")
    config = tmp_path / "conveyor.yaml"
    config.write_text(
        "name: unsigned\ndata:\n  source: data.csv\n  target: y\n"
        "tracking_uri: http://127.0.0.1:1\n",
        encoding="utf-8",
    )
    done = cli("run", "-c", str(config))
    assert (done.returncode, done.stdout) == (2, ""), done.stdout + done.stderr
    assert "set CONVEYOR_SIGNING_KEY" in done.stderr
