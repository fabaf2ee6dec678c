"""What one serving app holds at run time: settings, metrics, the loaded models, routing.

``slot`` (the served model, route ``primary``) and ``challenger`` (the second model of
``split`` and ``shadow`` routing) are swapped by rebinding the attribute (one assignment on
the event loop), never mutated: a handler takes its slot once at its start and finishes on
that object, so a request that was running during a hot swap answers with the version it
started on. Each loaded version gets its own :class:`~conveyor.serving.batching.MicroBatcher`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request

from conveyor.config import RoutingConfig
from conveyor.serving.batching import MicroBatcher
from conveyor.serving.inputs import Batch, RawColumns, RequestError, coerce_columns
from conveyor.serving.metrics import ANSWERED_BY, ServingMetrics, new_request_id
from conveyor.serving.observe import FeedbackStore, VersionMonitor
from conveyor.serving.routing import CHALLENGER, PRIMARY, Route, choose_route
from conveyor.serving.settings import ServingSettings
from conveyor.serving.slot import ModelSlot, Prediction

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "ROUTE_HEADER",
    "Admission",
    "ServingState",
    "StateDep",
    "answered_by",
    "get_state",
    "model_headers",
    "prepare",
]

logger = logging.getLogger(__name__)

ROUTE_HEADER = "X-Conveyor-Route"
INLINE_ONNX_ROWS = 256
"""ONNX Runtime batches up to this size are scored on the event loop (~0.1-1 ms)."""
SMALL_BODY_BYTES = 16 * 1024
"""Bodies up to this size are parsed on the event loop (cheaper than a thread hop)."""


@dataclass
class ServingState:
    """The app's run-time state.

    Attributes:
        settings: the serving settings.
        metrics: the app's Prometheus metrics.
        slot: the served model, route ``primary`` (None until startup has loaded it).
        challenger: the second model of ``split``/``shadow`` routing, when loaded.
        routing: the routing in force (starts as ``settings.routing``; the admin endpoint
            replaces it).
        ready: the model is loaded and warmed (and the app has not shut down).
        draining: SIGTERM arrived: readiness probes fail while requests are still served.
        in_flight: prediction requests and shadow copies in progress (the places of
            the ``max_concurrency`` budget taken).
    """

    settings: ServingSettings
    metrics: ServingMetrics = field(default_factory=ServingMetrics)
    slot: ModelSlot | None = None
    challenger: ModelSlot | None = None
    routing: RoutingConfig = field(default_factory=RoutingConfig)
    ready: bool = False
    draining: bool = False
    in_flight: int = 0
    feedback: FeedbackStore = field(init=False)
    _batchers: dict[int, tuple[ModelSlot, MicroBatcher]] = field(default_factory=dict)
    _monitors: dict[int, tuple[ModelSlot, VersionMonitor]] = field(default_factory=dict)
    _shadows: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.feedback = FeedbackStore(self.settings.feedback_rows)

    def is_ready(self) -> bool:
        """Whether readiness probes should pass: loaded, warmed and not draining."""
        return self.ready and not self.draining and self.slot is not None

    def model_labels(self) -> tuple[str, str]:
        """``(name, version)`` of the loaded model for metric labels; empty before loading."""
        return (self.slot.name, self.slot.version) if self.slot else ("", "")

    def require_slot(self) -> ModelSlot:
        """The loaded model.

        Raises:
            RequestError: (503) no model is loaded yet.
        """
        if self.slot is None or not self.ready:
            raise RequestError("the model is not loaded yet; retry shortly", status=503)
        return self.slot

    def loaded(self) -> list[ModelSlot]:
        """The loaded models: the primary, then the challenger if it is another version."""
        slots = [s for s in (self.slot, self.challenger) if s is not None]
        return slots[:1] if len(slots) == 2 and slots[0] is slots[1] else slots

    def publish_models(self) -> None:
        """Show the loaded models in ``conveyor_model_info``."""
        self.metrics.set_models(*self.loaded())

    def route(self, request: Request) -> tuple[ModelSlot, Route]:
        """Pick the model that answers a request, by the routing in force.

        Raises:
            RequestError: (503) no model is loaded yet.
        """
        primary = self.require_slot()
        key = request.headers.get(self.routing.sticky_header)
        route = choose_route(self.routing, key=key, has_challenger=self.challenger is not None)
        if route.answer == CHALLENGER and self.challenger is not None:
            return self.challenger, route
        return primary, route

    def admission(self) -> Admission:
        """Hold one of ``max_concurrency`` places for a prediction request, as
        ``async with state.admission():``.

        Raises:
            RequestError: (503, ``Retry-After: 1``) on entry, when every place is taken.
        """
        return Admission(self)

    def take_place(self) -> bool:
        """Take one place of the ``max_concurrency`` budget, if one is free (never waits).

        Returns:
            Whether a place was taken (give it back with :meth:`release_place`).
        """
        if self.in_flight >= self.settings.max_concurrency:
            return False
        self.in_flight += 1
        self.metrics.in_flight.inc()
        return True

    def release_place(self) -> None:
        """Give back a place taken by :meth:`take_place`."""
        self.in_flight -= 1
        self.metrics.in_flight.dec()

    def monitor(self, slot: ModelSlot) -> VersionMonitor | None:
        """The monitor of one loaded version (None when monitoring is off)."""
        if not self.settings.monitoring:
            return None
        found = self._monitors.get(id(slot))
        if found is not None and found[0] is slot:
            return found[1]
        settings = self.settings
        monitor = VersionMonitor(
            slot,
            self.metrics,
            window_rows=settings.drift_window_rows,
            online_rows=settings.online_rows,
        )
        self._monitors[id(slot)] = (slot, monitor)
        return monitor

    def monitors(self) -> list[tuple[str, VersionMonitor]]:
        """``(route, monitor)`` of every loaded version (primary first)."""
        found: list[tuple[str, VersionMonitor]] = []
        for slot in self.loaded():
            monitor = self.monitor(slot)
            if monitor is not None:
                found.append((PRIMARY if slot is self.slot else CHALLENGER, monitor))
        return found

    def _prune(self) -> None:
        """Forget batchers, monitors and gauges of versions no longer loaded."""
        live = {id(s) for s in self.loaded()}
        for key in [k for k in self._batchers if k not in live]:
            del self._batchers[key]
        for key in [k for k in self._monitors if k not in live]:
            gone = self._monitors.pop(key)[0]
            if all(s.version != gone.version for s in self.loaded()):
                self.metrics.forget((gone.name, gone.version))

    def batcher(self, slot: ModelSlot) -> MicroBatcher:
        """The micro-batcher of one loaded version (made on first use; those of versions
        no longer loaded are dropped once idle)."""
        found = self._batchers.get(id(slot))
        if found is not None and found[0] is slot:
            return found[1]
        self._prune()
        labels = (slot.name, slot.version)
        metrics = self.metrics
        monitor = self.monitor(slot)
        duration = metrics.predict_duration.labels(*labels)

        def predict(batch: Batch, probabilities: bool) -> Prediction:
            metrics.observe_batch(labels, batch.rows)
            started = time.perf_counter()
            prediction = slot.predict_batch(batch, probabilities=probabilities)
            duration.observe(time.perf_counter() - started)
            if monitor is not None:
                try:
                    monitor.observe(batch, prediction)
                except Exception:  # watching must never fail a prediction
                    logger.exception("monitoring version %s failed", slot.version)
            return prediction

        settings = self.settings
        batcher = MicroBatcher(
            predict,
            max_rows=settings.batch_max_rows,
            max_wait=settings.batch_max_wait_ms / 1000,
            inline_rows=INLINE_ONNX_ROWS if slot.runtime == "onnx" else 0,
        )
        self._batchers[id(slot)] = (slot, batcher)
        return batcher

    async def predict(self, slot: ModelSlot, batch: Batch, *, probabilities: bool) -> Prediction:
        """Score coerced rows on ``slot``, batched with concurrent requests.

        Raises:
            RequestError: (422) the model refused the values.
        """
        try:
            return await self.batcher(slot).predict(batch, probabilities=probabilities)
        except (ValueError, TypeError) as exc:
            logger.info("model refused the input: %s", _first_line(exc))
            raise RequestError(f"the model could not score the input: {_first_line(exc)}") from exc

    def remember(self, request: Request, slot: ModelSlot, prediction: Prediction) -> None:
        """Keep a request's predictions for the ground truth ``POST /feedback`` may bring,
        under its request id. A caller's id already in use (remembered or labelled) is
        never reused: the request gets a new id, which its ``X-Request-Id`` answers."""
        monitor = self.monitor(slot)
        if monitor is None:
            return
        version, predictions = slot.version, prediction.predictions
        scores = monitor.scores(prediction)
        state = request.scope.setdefault("state", {})  # request.state, without its wrapper
        request_id = str(state.get("request_id", ""))
        if not self.feedback.remember(request_id, version, predictions, scores):
            state["request_id"] = request_id = new_request_id()
            self.feedback.remember(request_id, version, predictions, scores)

    def _monitor_of(self, version: str) -> VersionMonitor | None:
        return next((m for _, m in self.monitors() if m.slot.version == version), None)

    def check_feedback(self, request_id: str, labels: list[Any]) -> str | None:
        """Why labels cannot be joined to a remembered request (None: they can, or the
        request is unknown, which is not an error)."""
        entry = self.feedback.peek(request_id)
        monitor = self._monitor_of(entry.version) if entry is not None else None
        if entry is None or monitor is None:
            return None
        if len(labels) != len(entry.predictions):
            return f"{len(labels)} labels for {len(entry.predictions)} predicted rows"
        for index, value in enumerate(labels):
            problem = monitor.check_label(value)
            if problem is not None:
                return f"label {index}: {problem}"
        return None

    def learn(self, items: list[tuple[str, list[Any]]]) -> dict[str, list[str]]:
        """Join ground-truth labels (checked by :meth:`check_feedback`) to remembered
        requests and publish the online metrics (blocking: call off the event loop).

        Returns:
            Request ids ``matched``, and ``unknown`` ones (never seen, already labelled,
            or forgotten).
        """
        done: dict[str, list[str]] = {"matched": [], "unknown": []}
        touched: dict[str, VersionMonitor] = {}
        for request_id, labels in items:
            entry = self.feedback.take(request_id)
            monitor = self._monitor_of(entry.version) if entry is not None else None
            if entry is None or monitor is None:
                self.metrics.feedback.labels(*self.model_labels(), "unknown_id").inc()
                done["unknown"].append(request_id)
                continue
            monitor.learn(labels, entry)
            touched[monitor.slot.version] = monitor
            self.metrics.feedback.labels(*monitor.labels, "matched").inc()
            done["matched"].append(request_id)
        for monitor in touched.values():
            monitor.publish_online()
        return done

    def evaluate_drift(self) -> None:
        """Evaluate every loaded version's drift window (blocking: call off the loop)."""
        for _, monitor in self.monitors():
            try:
                monitor.evaluate_drift()
            except Exception:  # a bad window must not stop the others or the server
                logger.exception("drift evaluation of version %s failed", monitor.slot.version)

    def shadow(self, raw: RawColumns, answered: Prediction, *, text: bool = False) -> None:
        """Score a copy of a request on the challenger in the background; record only.

        The copy takes a place in the ``max_concurrency`` budget until it is scored, and
        never waits for one: when none is free it is dropped and counted
        (``conveyor_shadow_dropped_total``), so shadow traffic cannot crowd out answers.

        Args:
            raw: the request's raw columns (coerced again for the challenger's schema).
            answered: what the primary answered, to count agreement.
            text: the raw values are CSV text.
        """
        challenger = self.challenger
        if challenger is None:
            return
        loop = asyncio.get_running_loop()
        if not self.take_place():
            self.metrics.count_shadow_dropped(challenger.version)
            return
        self.metrics.count_routed("shadow", challenger.version)
        task = loop.create_task(
            self._shadow(challenger, raw, answered, text), name="conveyor-shadow"
        )
        self._shadows.add(task)
        task.add_done_callback(self._shadows.discard)

    async def _shadow(
        self, challenger: ModelSlot, raw: RawColumns, answered: Prediction, text: bool
    ) -> None:
        rows = len(answered.predictions)
        try:
            batch = coerce_columns(challenger.schema, raw, max_rows=rows, text=text)
            copy = await self.batcher(challenger).predict(batch, probabilities=False)
        except Exception as exc:  # the shadow never affects the answer; count and move on
            logger.debug("shadow version %s failed: %s", challenger.version, _first_line(exc))
            self.metrics.count_shadow_rows(challenger.version, "error", rows)
            return
        finally:
            self.release_place()
        same = sum(_same(a, b) for a, b in zip(answered.predictions, copy.predictions, strict=True))
        self.metrics.count_shadow_rows(challenger.version, "same", same)
        self.metrics.count_shadow_rows(challenger.version, "different", rows - same)


class Admission:
    """The async context of one admitted prediction request (see
    :meth:`ServingState.admission`); a plain class, cheaper per request than a generator."""

    __slots__ = ("state",)

    def __init__(self, state: ServingState) -> None:
        self.state = state

    async def __aenter__(self) -> None:
        state = self.state
        if not state.take_place():
            state.metrics.refused.labels("concurrency").inc()
            limit = state.settings.max_concurrency
            raise RequestError(
                f"server busy: {limit} prediction requests in progress (max_concurrency); "
                "retry shortly",
                status=503,
                headers={"Retry-After": "1"},
            )

    async def __aexit__(self, *exc_info: object) -> None:
        self.state.release_place()


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return bool(abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(a))))
    return bool(a == b)


async def get_state(request: Request) -> ServingState:
    """FastAPI dependency: the app's :class:`ServingState` (async: FastAPI runs a plain
    function dependency in a worker thread, a thread hop per request)."""
    state: ServingState = request.app.state.serving
    return state


StateDep = Annotated[ServingState, Depends(get_state)]


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


async def prepare(
    schema_slot: ModelSlot,
    parse: Callable[[], RawColumns],
    *,
    body_bytes: int,
    max_rows: int,
    text: bool = False,
    reject_unknown: bool = False,
) -> tuple[RawColumns, Batch]:
    """Parse a request body and coerce its rows for a model (small bodies on the event
    loop, large ones in a worker thread so health checks never wait behind them).

    Args:
        schema_slot: the model whose input schema the rows must match.
        parse: turns the request body into raw columns.
        body_bytes: the body's size.
        max_rows: the batch row limit.
        text: the raw values are CSV text.
        reject_unknown: refuse category values the model never saw.

    Returns:
        The raw columns (for a shadow copy) and the coerced batch.

    Raises:
        RequestError: bad input.
    """

    def work() -> tuple[RawColumns, Batch]:
        raw = parse()
        batch = coerce_columns(
            schema_slot.schema, raw, max_rows=max_rows, text=text, reject_unknown=reject_unknown
        )
        return raw, batch

    if body_bytes <= SMALL_BODY_BYTES:
        return work()
    return await asyncio.to_thread(work)


def answered_by(request: Request, slot: ModelSlot) -> None:
    """Record on the request which version answers it (for its metric labels)."""
    setattr(request.state, ANSWERED_BY, (slot.name, slot.version))


def model_headers(slot: ModelSlot, route: Route | None = None) -> dict[str, str]:
    """Headers naming the model that answered (and the route it took)."""
    headers = {"X-Model-Name": slot.name, "X-Model-Version": slot.version}
    headers[ROUTE_HEADER] = route.answer if route is not None else PRIMARY
    return headers
