"""Which runs keep their side steps beside training, and which warm the worker early."""

from __future__ import annotations

from pathlib import Path

from conveyor.pipeline.side import (
    BESIDE_MAX_CELLS,
    WARM_MAX_SOURCE_BYTES,
    fits_beside,
    worth_warming,
)


def test_a_small_table_runs_its_side_steps_beside_training() -> None:
    assert fits_beside({"rows": 100_000, "columns": 12})


def test_a_table_at_the_limit_runs_its_side_steps_beside_training() -> None:
    assert fits_beside({"rows": BESIDE_MAX_CELLS // 4, "columns": 4})


def test_a_large_table_trains_after_its_side_steps() -> None:
    assert not fits_beside({"rows": 1_000_000, "columns": 12})


def test_a_small_local_file_warms_the_worker_before_ingest(tmp_path: Path) -> None:
    source = tmp_path / "small.csv"
    source.write_text("a,b\n1,2\n")
    assert worth_warming(str(source))


def test_a_file_above_the_warm_limit_starts_the_worker_on_its_first_step(tmp_path: Path) -> None:
    source = tmp_path / "large.csv"
    with source.open("wb") as f:
        f.truncate(WARM_MAX_SOURCE_BYTES + 1)  # sparse: no disk used
    assert not worth_warming(str(source))


def test_a_folder_source_does_not_warm_the_worker(tmp_path: Path) -> None:
    assert not worth_warming(str(tmp_path))


def test_a_remote_source_does_not_warm_the_worker() -> None:
    assert not worth_warming("s3://bucket/table.parquet")


def test_a_missing_source_does_not_warm_the_worker(tmp_path: Path) -> None:
    assert not worth_warming(str(tmp_path / "absent.csv"))
