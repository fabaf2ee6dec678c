"""RowSample: a seeded uniform sample of a stream of batches, in stream order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from conveyor.data.sampling import ARROW_ROWS, RowSample, sample_batches, sample_frames


def _batches(rows: int, batch: int) -> list[pa.Table]:
    return [
        pa.table({"i": range(start, min(start + batch, rows))}) for start in range(0, rows, batch)
    ]


def _sampled(rows: int, size: int, *, batch: int = 97, seed: int = 0) -> list[int]:
    sample = RowSample(size, rows=ARROW_ROWS, seed=seed)
    for table in _batches(rows, batch):
        sample.add(table)
    result = sample.result()
    assert result is not None
    return [int(v) for v in result["i"].to_pylist()]


def test_sample_has_exactly_size_rows() -> None:
    assert len(_sampled(10_000, 250)) == 250


def test_sample_rows_are_distinct() -> None:
    assert len(set(_sampled(10_000, 250))) == 250


def test_same_seed_gives_the_same_rows() -> None:
    assert _sampled(10_000, 250, seed=3) == _sampled(10_000, 250, seed=3)


def test_another_seed_gives_other_rows() -> None:
    assert _sampled(10_000, 250, seed=3) != _sampled(10_000, 250, seed=4)


def test_sample_does_not_depend_on_where_batches_are_cut() -> None:
    assert _sampled(10_000, 250, batch=97) == _sampled(10_000, 250, batch=4096)


def test_sample_keeps_stream_order() -> None:
    rows = _sampled(10_000, 250)
    assert rows == sorted(rows)


def test_sample_covers_the_end_of_the_stream() -> None:
    # A head of 250 rows would hold 0..249 only.
    assert sum(row >= 9_000 for row in _sampled(10_000, 250)) > 5


def test_sample_is_spread_uniformly() -> None:
    rows = np.array(_sampled(100_000, 5_000))
    counts = np.histogram(rows, bins=10, range=(0, 100_000))[0]
    assert counts.min() > 400  # 500 expected per tenth; binomial sd ~21


def test_a_stream_no_longer_than_size_is_returned_whole() -> None:
    assert _sampled(300, 300) == list(range(300))


def test_an_empty_stream_samples_to_the_empty_schema() -> None:
    schema = pa.schema([("i", pa.int64())])
    table = sample_batches([], 5, schema=schema, source="test")
    assert table.schema == schema


def test_record_batches_are_sampled_like_tables() -> None:
    batches = [b for t in _batches(1_000, 64) for b in t.to_batches()]
    table = sample_batches(batches, 50, schema=batches[0].schema, source="test")
    assert table["i"].to_pylist() == _sampled(1_000, 50, batch=64)


def test_frames_are_sampled_with_a_fresh_index() -> None:
    frames = [
        pd.DataFrame({"i": range(s, s + 100)}, index=range(s, s + 100)) for s in (0, 100, 200)
    ]
    frame = sample_frames(frames, 30, source="test")
    assert list(frame.index) == list(range(30))


def test_frames_sample_the_same_rows_as_tables() -> None:
    frames = [pd.DataFrame({"i": range(s, min(s + 97, 1_000))}) for s in range(0, 1_000, 97)]
    frame = sample_frames(frames, 50, source="test")
    assert frame["i"].tolist() == _sampled(1_000, 50)
