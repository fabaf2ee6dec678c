"""Micro-batching: concurrent requests share predict calls, get their own rows back, and a
bad request fails alone."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from conveyor.serving.batching import MicroBatcher, PredictFn, split_prediction
from conveyor.serving.inputs import Batch
from conveyor.serving.slot import Prediction


def rows(*values: float) -> Batch:
    return Batch({"x": list(values)}, len(values))


class Doubler:
    """Predicts 2x; refuses negative values; records the size of every call. Each call
    takes ``delay`` seconds, and sets ``started`` then waits for ``gate`` when one is given."""

    def __init__(self, delay: float = 0.0, gate: threading.Event | None = None) -> None:
        self.calls: list[int] = []
        self.delay = delay
        self.gate = gate
        self.started = threading.Event()
        self.lock = threading.Lock()

    def __call__(self, batch: Batch, probabilities: bool) -> Prediction:
        with self.lock:
            self.calls.append(batch.rows)
        self.started.set()
        if self.gate is not None:
            assert self.gate.wait(timeout=30)
        time.sleep(self.delay)
        values = batch.columns["x"]
        if any(v < 0 for v in values):
            raise ValueError("x: negative values are not allowed")
        proba = [[1 - v / 100, v / 100] for v in values] if probabilities else None
        return Prediction([2 * v for v in values], proba)


def test_split_prediction_gives_each_request_its_rows() -> None:
    whole = Prediction([1, 2, 3, 4], [[0.1], [0.2], [0.3], [0.4]])
    parts = split_prediction(whole, [1, 3], [True, False])
    assert parts[0] == Prediction([1], [[0.1]])
    assert parts[1] == Prediction([2, 3, 4], None)


def test_concurrent_requests_share_predict_calls_and_get_their_own_answers() -> None:
    model = Doubler(delay=0.02)

    async def main() -> list[Prediction]:
        batcher = MicroBatcher(model, max_rows=64, max_wait=0.005)
        requests = [batcher.predict(rows(i, i + 0.5), probabilities=i % 2 == 0) for i in range(40)]
        return await asyncio.gather(*requests)

    answers = asyncio.run(main())
    for i, answer in enumerate(answers):
        assert answer.predictions == [2 * i, 2 * i + 1]
        assert (answer.probabilities is not None) is (i % 2 == 0)
    assert sum(model.calls) == 80
    assert len(model.calls) < 10  # 40 requests, a handful of predict calls


def test_a_batch_never_exceeds_max_rows_unless_one_request_is_larger() -> None:
    model = Doubler(delay=0.01)

    async def main() -> None:
        batcher = MicroBatcher(model, max_rows=5, max_wait=0.01)
        await asyncio.gather(
            *(batcher.predict(rows(1, 2), probabilities=False) for _ in range(6)),
            batcher.predict(rows(*range(9)), probabilities=False),
        )

    asyncio.run(main())
    assert sum(model.calls) == 21
    assert all(size <= 5 or size == 9 for size in model.calls)


def test_a_bad_request_fails_alone() -> None:
    model = Doubler(delay=0.01)

    async def main() -> list[Prediction | BaseException]:
        batcher = MicroBatcher(model, max_rows=64, max_wait=0.01)
        requests = [batcher.predict(rows(v), probabilities=False) for v in (1, -1, 3)]
        return await asyncio.gather(*requests, return_exceptions=True)

    good, bad, other = asyncio.run(main())
    assert good == Prediction([2])
    assert other == Prediction([6])
    assert isinstance(bad, ValueError) and "negative" in str(bad)


PREDICT_S = 0.1
WAIT_S = PREDICT_S / 2  # the wait budget: half the predict time (max_wait is larger)


class WatchedBatcher(MicroBatcher):
    """Records how long each batch waited for company (timing the wait alone keeps the
    noise of a busy machine's predict calls out of it)."""

    def __init__(self, predict: PredictFn) -> None:
        super().__init__(predict, max_rows=64, max_wait=1.0)
        self.waits: list[float] = []

    async def _wait_for_company(self) -> None:
        started = time.perf_counter()
        await super()._wait_for_company()
        self.waits.append(time.perf_counter() - started)


def test_a_lone_client_never_waits() -> None:
    batcher = WatchedBatcher(Doubler(delay=PREDICT_S))

    async def main() -> None:
        for _ in range(4):  # the first call teaches the batcher the predict time
            await batcher.predict(rows(1), probabilities=False)

    asyncio.run(main())
    assert len(batcher.waits) == 4  # one per batch
    assert max(batcher.waits) < WAIT_S / 2  # none waited for company


async def _clients(batcher: MicroBatcher, clients: int, calls: int, trip: float) -> None:
    """``clients`` callers in a loop: predict, then a round trip before the next request.
    They start a few milliseconds apart, as connections do."""

    async def client(index: int) -> None:
        await asyncio.sleep(0.003 * index)
        for _ in range(calls):
            await batcher.predict(rows(1), probabilities=False)
            await asyncio.sleep(trip)

    await asyncio.gather(*(client(i) for i in range(clients)))


def test_steady_clients_share_full_batches_instead_of_alternating_cohorts() -> None:
    waiting, eager = Doubler(delay=0.1), Doubler(delay=0.1)
    asyncio.run(_clients(MicroBatcher(waiting, max_rows=64, max_wait=0.05), 8, 6, 0.002))
    asyncio.run(_clients(MicroBatcher(eager, max_rows=64, max_wait=0), 8, 6, 0.002))
    assert sum(waiting.calls) == sum(eager.calls) == 48
    # without waiting, 8 clients split into cohorts that alternate: about twice the calls
    assert len(waiting.calls) <= 0.75 * len(eager.calls)
    assert sorted(waiting.calls)[len(waiting.calls) // 2] == 8  # the median batch is everyone


def test_when_clients_leave_the_batch_stops_waiting_for_them() -> None:
    batcher = WatchedBatcher(Doubler(delay=PREDICT_S))

    async def main() -> list[float]:
        await _clients(batcher, 8, 3, 0.002)  # the batcher expects 8
        crowd = len(batcher.waits)
        for _ in range(5):  # now one client alone
            await batcher.predict(rows(1), probabilities=False)
        return batcher.waits[crowd:]

    lone = asyncio.run(main())
    assert len(lone) == 5  # one batch per request
    assert max(lone[1:]) < WAIT_S / 2  # the first may wait once; the others never


def test_without_wait_requests_queued_behind_a_predict_are_batched() -> None:
    gate = threading.Event()
    model = Doubler(gate=gate)

    async def main() -> None:
        batcher = MicroBatcher(model, max_rows=64, max_wait=0)
        first = asyncio.ensure_future(batcher.predict(rows(1), probabilities=False))
        assert await asyncio.to_thread(model.started.wait, 30)  # the first predict is running
        queued = [
            asyncio.ensure_future(batcher.predict(rows(2), probabilities=False)) for _ in range(5)
        ]
        await asyncio.sleep(0)  # each queues its rows
        gate.set()
        await asyncio.gather(first, *queued)

    asyncio.run(main())
    assert model.calls == [1, 5]


def test_an_unexpected_error_reaches_every_request_of_the_batch() -> None:
    def broken(batch: Batch, probabilities: bool) -> Prediction:
        raise RuntimeError("onnxruntime crashed")

    async def main() -> list[Prediction | BaseException]:
        batcher = MicroBatcher(broken, max_rows=8, max_wait=0.01)
        return await asyncio.gather(
            *(batcher.predict(rows(1), probabilities=False) for _ in range(3)),
            return_exceptions=True,
        )

    assert all(isinstance(r, RuntimeError) for r in asyncio.run(main()))


@pytest.mark.parametrize("max_rows", [1, 3])
def test_batch_concat_keeps_row_order(max_rows: int) -> None:
    joined = Batch.concat([rows(1, 2), rows(3)])
    assert joined == Batch({"x": [1, 2, 3]}, 3)
    assert Batch.concat([rows(max_rows)]) == rows(max_rows)
