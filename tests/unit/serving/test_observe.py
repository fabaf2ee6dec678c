"""The feedback store keeps recent predictions by request id, bounded by rows."""

from __future__ import annotations

from conveyor.serving.observe import FeedbackStore, Remembered


def entry(rows: int, version: str = "1") -> Remembered:
    return Remembered(version, list(range(rows)), None)


def test_oldest_requests_are_forgotten_first_when_rows_run_out() -> None:
    store = FeedbackStore(max_rows=10)
    store.remember("a", entry(4))
    store.remember("b", entry(4))
    store.remember("c", entry(4))
    assert store.peek("a") is None and store.rows == 8
    assert store.take("b") == entry(4)
    assert store.take("b") is None  # labels count once
    assert store.rows == 4


def test_a_repeated_id_replaces_its_entry_and_huge_requests_are_not_kept() -> None:
    store = FeedbackStore(max_rows=10)
    store.remember("a", entry(3))
    store.remember("a", entry(5, version="2"))
    assert store.rows == 5 and store.peek("a") == entry(5, version="2")
    store.remember("big", entry(11))
    assert store.peek("big") is None and store.rows == 5


def test_remembered_predictions_do_not_load_the_garbage_collector() -> None:
    import gc

    store = FeedbackStore(max_rows=100_000)
    gc.collect()
    before = len(gc.get_objects())
    for i in range(10_000):
        store.remember(f"r{i}", Remembered("3", ["yes", "no"], [0.9, 0.2]))
    gc.collect()  # plain tuples of atomic values are untracked here
    assert len(gc.get_objects()) - before < 1000  # tracked entries would add 30,000
    assert store.take("r7") == Remembered("3", ["yes", "no"], [0.9, 0.2])
    assert store.peek("r8") == Remembered("3", ["yes", "no"], [0.9, 0.2])
    assert store.take("r7") is None
