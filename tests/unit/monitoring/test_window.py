"""The sliding window: eviction keeps counts equal to a recount of the last N rows."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd

from conveyor.data.schema import TableSchema
from conveyor.monitoring.counting import count_frame
from conveyor.monitoring.drift import analyze
from conveyor.monitoring.profile import build_profile
from conveyor.monitoring.window import DriftWindow


def _raw_columns(frame: pd.DataFrame) -> dict[str, list[object]]:
    """What the server holds: floats with NaN, strings or None."""
    out: dict[str, list[object]] = {}
    for name in frame.columns:
        values = frame[name].astype(object).tolist()
        out[name] = [
            None if isinstance(v, float) and np.isnan(v) and frame[name].dtype == "str" else v
            for v in values
        ]
    return out


def test_window_counts_equal_a_recount_of_the_last_rows(
    churn: tuple[pd.DataFrame, TableSchema],
) -> None:
    frame, schema = churn
    profile = build_profile(frame.iloc[:5000], schema, task="binary")
    stream = frame.iloc[5000:9000][list(schema.features)]
    window = DriftWindow(profile, size=1000)
    for start in range(0, len(stream), 373):  # uneven batches wrap the ring many times
        window.add_columns(_raw_columns(stream.iloc[start : start + 373]))
    snapshot = window.snapshot()
    expected = count_frame(profile, stream.iloc[-1000:])
    assert snapshot.rows == 1000 and snapshot.total_rows == len(stream)
    for name, counts in expected.items():
        got = snapshot.columns[name]
        assert list(got.counts) == list(counts.counts), name
        assert got.nulls == counts.nulls, name
        if counts.values is not None:
            np.testing.assert_array_equal(got.values, counts.values)
    window_report = analyze(profile, snapshot.columns).to_dict()
    assert window_report == analyze(profile, stream.iloc[-1000:]).to_dict()


def test_a_batch_larger_than_the_window_keeps_its_last_rows(
    churn: tuple[pd.DataFrame, TableSchema],
) -> None:
    frame, schema = churn
    profile = build_profile(frame.iloc[:5000], schema, task="binary")
    window = DriftWindow(profile, size=100)
    window.add_columns(_raw_columns(frame.iloc[:250][list(schema.features)]))
    expected = count_frame(profile, frame.iloc[150:250])
    assert list(window.snapshot().columns["plan"].counts) == list(expected["plan"].counts)


def test_memory_is_bounded_and_reported(churn: tuple[pd.DataFrame, TableSchema]) -> None:
    frame, schema = churn
    profile = build_profile(frame.iloc[:5000], schema, task="binary")
    window = DriftWindow(profile, size=5000)
    before = window.memory_bytes()
    window.add_columns(_raw_columns(frame.iloc[:8000][list(schema.features)]))
    assert window.memory_bytes() == before < 400_000


def test_concurrent_adds_lose_no_rows(churn: tuple[pd.DataFrame, TableSchema]) -> None:
    frame, schema = churn
    profile = build_profile(frame.iloc[:5000], schema, task="binary")
    window = DriftWindow(profile, size=10_000)
    chunk = _raw_columns(frame.iloc[:50][list(schema.features)])

    def worker() -> None:
        for _ in range(20):
            window.add_columns(chunk)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    snapshot = window.snapshot()
    assert snapshot.rows == snapshot.total_rows == 4 * 20 * 50
    assert int(snapshot.columns["age"].counts.sum()) + snapshot.columns["age"].nulls == 4000
