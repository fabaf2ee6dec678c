"""A full disk while a run record is written: one clear line, the previous record intact.

The runs folder sits on a 1 MiB tmpfs that is filled up before the write; needs root and
permission to mount (skipped with the reason otherwise).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.faults.conftest import conveyor, lean_project

pytestmark = pytest.mark.integration

RUN_ID = "20261204T000000-d15c0f"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB filesystem mounted at ``<project>/.conveyor/runs``."""
    runs = tmp_path / "demo" / ".conveyor" / "runs"
    runs.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(runs)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip()}")
    try:
        yield runs
    finally:
        subprocess.run(["umount", "-l", str(runs)], check=False)


def _fill(folder: Path) -> None:
    """Write until the filesystem has no space left."""
    with (folder / "filler").open("wb") as sink:
        try:
            for _ in range(1024):
                sink.write(b"\0" * 65536)
                sink.flush()
        except OSError:
            return
    pytest.fail("the small filesystem never filled up")


def test_a_full_disk_during_a_record_write_is_one_clear_error(
    tmp_path: Path, small_disk: Path
) -> None:
    config = str(lean_project(tmp_path / "demo"))
    first = conveyor("run", "-c", config, "--step", "ingest", "--run-id", RUN_ID, cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    record = small_disk / RUN_ID / "record.json"
    before = record.read_bytes()
    _fill(small_disk)

    done = conveyor("run", "-c", config, "--step", "split", "--run-id", RUN_ID, cwd=tmp_path)

    assert done.returncode == 1, done.stdout + done.stderr
    assert f"cannot write {record}: No space left on device" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert record.read_bytes() == before
    assert json.loads(before)["steps"]["ingest"]["status"] == "succeeded"
    assert sorted(p.name for p in record.parent.iterdir()) == ["ingest", "record.json"]
