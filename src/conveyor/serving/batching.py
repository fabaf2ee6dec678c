"""Adaptive micro-batching: concurrent requests to one model version share one predict call.

Requests queue their coerced rows; one drain task per batcher takes what is queued, up to
``max_rows`` rows, and scores it (in a worker thread, or on the event loop for small ONNX
batches) while new requests queue behind it.

How long a batch waits for company adapts to the load and to the model:

- The batcher tracks how many requests it serves at once (its recent peak concurrency).
  Under steady load from N clients that is N: a batch that holds fewer queued requests
  than that waits for the rest, which are on their way back from their previous answers.
  Without this, N clients split into two cohorts that alternate (one predicting while the
  other queues), and every predict call serves half of them.
- The wait ends when the expected requests are queued, ``max_rows`` rows are queued, or
  the wait budget is spent: half the recent predict time, at most ``max_wait``. Waiting
  is worth it only when a predict call costs much more than a request's handling (a 15 ms
  scikit-learn pipeline); a 0.1 ms ONNX graph never waits (``MIN_WAIT_S``).
- A lone client is never delayed (its expected company is zero), and a wait that times
  out lowers the expectation to what came.

A request whose rows the model refuses (``ValueError``/``TypeError``) must not fail the
requests batched with it: a failed batch of several requests is retried one request at a
time, and only the bad one gets the error.

The drain task runs only while requests are queued, so a batcher needs no start or stop:
after a hot swap the old version's batcher finishes what it holds and goes quiet.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from conveyor.serving.inputs import Batch
from conveyor.serving.slot import Prediction

__all__ = ["MicroBatcher", "PredictFn", "split_prediction"]

logger = logging.getLogger(__name__)


MIN_WAIT_S = 0.001
"""Wait budgets below this are not worth it: the batch runs at once. A predict call of less
than twice this (ONNX Runtime: ~0.1 ms) costs about what a request's own handling costs,
so holding the event loop's attention for company gains nothing (measured: waiting on the
ONNX path cost a quarter of its throughput)."""
WAIT_SHARE = 0.5
"""The wait budget: this share of the recent predict time (at most ``max_wait``)."""
PEAK_DECAY = 0.9
"""After each batch the expected concurrency decays toward the current one."""

PredictFn = Callable[[Batch, bool], Prediction]
"""Scores a batch (``probabilities`` flag); blocking; raises ValueError/TypeError on bad rows."""


@dataclass
class _Pending:
    batch: Batch
    probabilities: bool
    future: asyncio.Future[Prediction]


def split_prediction(whole: Prediction, sizes: list[int], wants: list[bool]) -> list[Prediction]:
    """Cut a batch's predictions back into one part per request.

    Args:
        whole: predictions for the concatenated rows.
        sizes: rows of each request, in order.
        wants: whether each request asked for probabilities.

    Returns:
        One prediction per request.

    Example:
        >>> parts = split_prediction(Prediction([1, 0, 1]), [2, 1], [False, False])
        >>> [p.predictions for p in parts]
        [[1, 0], [1]]
    """
    parts, start = [], 0
    for size, want in zip(sizes, wants, strict=True):
        stop = start + size
        proba = whole.probabilities[start:stop] if want and whole.probabilities else None
        parts.append(Prediction(whole.predictions[start:stop], proba))
        start = stop
    return parts


class MicroBatcher:
    """Collects concurrent requests for one model version and predicts them together.

    Args:
        predict: scores a batch (called in a worker thread).
        max_rows: most rows in one predict call (a single larger request runs alone).
        max_wait: the most seconds a batch waits for the company it expects (0: never
            wait; the budget is also capped at half the recent predict time).
        inline_rows: batches of at most this many rows are scored on the event loop
            instead of a worker thread (0: never). For a predict of ~0.1 ms (ONNX Runtime)
            the hop to a thread and back costs more than the predict, and a thread that
            holds the GIL makes the event loop wait up to the interpreter's switch
            interval (5 ms) before it can answer anyone.
    """

    def __init__(
        self, predict: PredictFn, *, max_rows: int, max_wait: float, inline_rows: int = 0
    ) -> None:
        self._predict = predict
        self.max_rows = max_rows
        self.max_wait = max_wait
        self.inline_rows = inline_rows
        self._queue: deque[_Pending] = deque()
        self._queued_rows = 0
        self._task: asyncio.Task[None] | None = None
        self._company = asyncio.Event()
        self._active = 0  # requests inside predict(): queued, being scored or answered
        self._peak = 0.0  # the recent peak of _active: the company a batch expects
        self._predict_s = 0.0  # moving average of a predict call's duration
        self.batches = 0
        self.batched_requests = 0

    async def predict(self, batch: Batch, *, probabilities: bool) -> Prediction:
        """Queue a request's rows and wait for its predictions.

        Args:
            batch: the request's coerced rows.
            probabilities: also return class probabilities.

        Returns:
            This request's predictions.

        Raises:
            ValueError, TypeError: the model refused this request's rows.
        """
        loop = asyncio.get_running_loop()
        pending = _Pending(batch, probabilities, loop.create_future())
        self._queue.append(pending)
        self._queued_rows += batch.rows
        self._active += 1
        self._peak = max(self._peak, float(self._active))
        if self._queued_rows >= self.max_rows or len(self._queue) >= self._expected():
            self._company.set()
        if self._task is None:
            self._task = loop.create_task(self._drain(), name="conveyor-batch-drain")
        try:
            return await pending.future
        finally:
            self._active -= 1

    def _expected(self) -> int:
        return int(self._peak)

    async def _drain(self) -> None:
        try:
            while self._queue:
                await self._wait_for_company()
                taken = self._take()
                await self._run(taken)
                self._peak = max(float(self._active), self._peak * PEAK_DECAY)
        finally:
            self._task = None

    async def _wait_for_company(self) -> None:
        """Hold the batch until the expected requests are queued, ``max_rows`` rows are,
        or the wait budget is spent (see the module docstring)."""
        if self._queued_rows >= self.max_rows or len(self._queue) >= self._expected():
            return
        budget = min(self.max_wait, WAIT_SHARE * self._predict_s)
        if budget < MIN_WAIT_S:
            return
        self._company.clear()
        try:
            await asyncio.wait_for(self._company.wait(), timeout=budget)
        except TimeoutError:
            self._peak = float(len(self._queue))  # fewer came than expected: expect fewer

    def _learn_predict_time(self, elapsed: float) -> None:
        """Update the moving average of predict time; one slow call (a garbage collection,
        a busy machine) moves it by at most a fifth, so it cannot open long waits."""
        if not self._predict_s:
            self._predict_s = elapsed
            return
        self._predict_s = 0.8 * self._predict_s + 0.2 * min(elapsed, 2 * self._predict_s)

    def _take(self) -> list[_Pending]:
        taken = [self._queue.popleft()]
        rows = taken[0].batch.rows
        while self._queue and rows + self._queue[0].batch.rows <= self.max_rows:
            item = self._queue.popleft()
            taken.append(item)
            rows += item.batch.rows
        self._queued_rows -= rows
        return taken

    async def _run(self, taken: list[_Pending]) -> None:
        live = [p for p in taken if not p.future.done()]  # a cancelled caller drops out
        if not live:
            return
        self.batches += 1
        self.batched_requests += len(live)
        wants = [p.probabilities for p in live]
        batch = Batch.concat([p.batch for p in live])
        started = time.perf_counter()
        try:
            if batch.rows <= self.inline_rows:
                whole = self._predict(batch, any(wants))
            else:
                whole = await asyncio.to_thread(self._predict, batch, any(wants))
        except (ValueError, TypeError) as exc:
            if len(live) == 1:
                _resolve(live[0], exc)
                return
            logger.debug("batch of %d requests refused; scoring them one by one", len(live))
            for pending in live:
                await self._run([pending])
            return
        except Exception as exc:  # unexpected: every request of the batch gets it
            for pending in live:
                _resolve(pending, exc)
            return
        self._learn_predict_time(time.perf_counter() - started)
        for pending, part in zip(
            live, split_prediction(whole, [p.batch.rows for p in live], wants), strict=True
        ):
            _resolve(pending, part)


def _resolve(pending: _Pending, outcome: Prediction | BaseException) -> None:
    if pending.future.done():
        return
    if isinstance(outcome, BaseException):
        pending.future.set_exception(outcome)
    else:
        pending.future.set_result(outcome)
