"""State cut short by a crash or edited by hand: a cache miss or one clear line, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.integration.faults.conftest import conveyor, lean_project

pytestmark = pytest.mark.integration

RUN_ID = "20261204T000000-c0ffee"


@pytest.fixture
def ingested(tmp_path: Path) -> Path:
    """A lean project whose run RUN_ID has done its ingest step; returns the project."""
    config = lean_project(tmp_path / "demo")
    done = conveyor("run", "-c", str(config), "--step", "ingest", "--run-id", RUN_ID, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    return config.parent


def test_an_unreadable_run_record_is_one_clear_line_everywhere(ingested: Path) -> None:
    record = ingested / ".conveyor" / "runs" / RUN_ID / "record.json"
    record.write_text('{"run_id": "' + RUN_ID + '", "steps": {', encoding="utf-8")
    config = str(ingested / "conveyor.yaml")

    show = conveyor("runs", "show", RUN_ID, "-c", config, cwd=ingested)
    step = conveyor("run", "-c", config, "--step", "split", "--run-id", RUN_ID, cwd=ingested)
    listing = conveyor("runs", "list", "-c", config, cwd=ingested)

    for done in (show, step):
        assert done.returncode == 1, done.stdout + done.stderr
        assert f"run record {record} is unreadable" in done.stderr
        assert "Traceback" not in done.stdout + done.stderr
    assert listing.returncode == 0, listing.stderr
    assert "unreadable record" in listing.stdout


def test_an_unreadable_cache_entry_runs_the_step_again(ingested: Path) -> None:
    (entry,) = (ingested / ".conveyor" / "cache").glob("ingest-*.json")
    entry.write_text("", encoding="utf-8")
    config = str(ingested / "conveyor.yaml")

    again = conveyor("run", "-c", config, "--step", "ingest", "--run-id", "r2", cwd=ingested)

    assert again.returncode == 0, again.stdout + again.stderr
    assert "cached" not in again.stdout
    assert entry.read_text(encoding="utf-8").startswith("{")
