"""The feedback store keeps recent predictions by request id, bounded by rows."""

from __future__ import annotations

from conveyor.serving.observe import FeedbackStore, Remembered


def entry(rows: int, version: str = "1") -> Remembered:
    return Remembered(version, list(range(rows)), None)


def remember(store: FeedbackStore, request_id: str, kept: Remembered) -> bool:
    return store.remember(request_id, kept.version, kept.predictions, kept.scores)


def test_oldest_requests_are_forgotten_first_when_rows_run_out() -> None:
    store = FeedbackStore(max_rows=10)
    remember(store, "a", entry(4))
    remember(store, "b", entry(4))
    remember(store, "c", entry(4))
    assert store.peek("a") is None and store.rows == 8
    assert store.take("b") == entry(4)
    assert store.take("b") is None  # labels count once
    assert store.rows == 4


def test_a_repeated_id_never_replaces_the_remembered_entry() -> None:
    store = FeedbackStore(max_rows=10)
    assert remember(store, "a", entry(3)) is True
    assert remember(store, "a", entry(5, version="2")) is False
    assert store.rows == 3 and store.peek("a") == entry(3)


def test_a_labelled_id_is_not_taken_again() -> None:
    store = FeedbackStore(max_rows=10)
    remember(store, "a", entry(2))
    assert store.take("a") == entry(2)
    assert remember(store, "a", entry(1)) is False
    assert store.take("a") is None  # feedback for it again: unknown


def test_huge_requests_are_not_kept() -> None:
    store = FeedbackStore(max_rows=10)
    remember(store, "a", entry(5))
    assert remember(store, "big", entry(11)) is True
    assert store.peek("big") is None and store.rows == 5


def test_remembered_predictions_do_not_load_the_garbage_collector() -> None:
    import gc

    store = FeedbackStore(max_rows=100_000)
    gc.collect()
    before = len(gc.get_objects())
    for i in range(10_000):
        remember(store, f"r{i}", Remembered("3", ["yes", "no"], [0.9, 0.2]))
    gc.collect()  # plain tuples of atomic values are untracked here
    assert len(gc.get_objects()) - before < 1000  # tracked entries would add 30,000
    assert store.take("r7") == Remembered("3", ["yes", "no"], [0.9, 0.2])
    assert store.peek("r8") == Remembered("3", ["yes", "no"], [0.9, 0.2])
    assert store.take("r7") is None


def test_a_regression_label_too_large_for_a_float_is_refused_not_a_crash() -> None:
    from conveyor.serving.inputs import InputSchema
    from conveyor.serving.metrics import ServingMetrics
    from conveyor.serving.observe import VersionMonitor
    from conveyor.serving.slot import ModelSlot

    regressor = ModelSlot(None, "m", "1", "run", InputSchema(()))
    monitor = VersionMonitor(regressor, ServingMetrics(), window_rows=0, online_rows=10)
    assert monitor.check_label(10**400) == "expected a finite number"
    assert monitor.check_label(2.5) is None
