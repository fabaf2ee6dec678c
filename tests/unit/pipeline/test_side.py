"""Which runs put their side steps beside the model's steps."""

from __future__ import annotations

from conveyor.pipeline.side import BESIDE_MAX_CELLS, worth_running_beside


def test_a_small_table_runs_its_side_steps_beside() -> None:
    assert worth_running_beside({"rows": 100_000, "columns": 12})


def test_a_table_at_the_limit_runs_its_side_steps_beside() -> None:
    assert worth_running_beside({"rows": BESIDE_MAX_CELLS // 4, "columns": 4})


def test_a_large_table_runs_its_side_steps_in_process() -> None:
    assert not worth_running_beside({"rows": 1_000_000, "columns": 12})
