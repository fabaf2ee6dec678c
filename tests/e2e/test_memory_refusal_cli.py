"""A table too large for memory is refused by `conveyor run` up front, in one clear line."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

Cli = Callable[..., subprocess.CompletedProcess[str]]

pytestmark = pytest.mark.e2e

ROWS = "x,c,y\n" + "".join(f"{i % 7},{'a' if i % 3 else 'b'},{i % 2}\n" for i in range(5_000))


def test_a_table_beyond_memory_is_refused_with_a_max_rows_that_fits(
    cli: Cli, tmp_path: Path
) -> None:
    with (tmp_path / "data.csv").open("w") as data:
        data.write(ROWS)
        data.truncate(2**40)  # a sparse 1 TiB file: its size is real, its zeros never read
    (tmp_path / "conveyor.yaml").write_text("name: huge\ndata:\n  source: data.csv\n  target: y\n")

    done = cli("run", "-c", "conveyor.yaml", timeout=120)

    assert done.returncode == 1, done.stdout + done.stderr
    assert "does not fit in memory" in done.stderr
    assert "set data.max_rows to about" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
