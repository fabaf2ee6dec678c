"""What the server watches per model version: inputs against the training profile (drift),
the prediction distribution, and outcomes once ground truth arrives (``POST /feedback``).

Everything is bounded: a :class:`~conveyor.monitoring.window.DriftWindow` of the last
``drift_window_rows`` rows per version, an :class:`~conveyor.monitoring.online.OnlineWindow`
of the last ``online_rows`` labelled rows per version, and a :class:`FeedbackStore` of the
predictions of the last ``feedback_rows`` rows by request id.

Observation happens once per predict call (a micro-batch) and only queues the batch's
columns; binning them into the drift window and computing drift happen periodically in a
worker thread (``ServingState.evaluate_drift``), many batches at once, never on the
request path. The queue holds at most the window's size in rows.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import Counter, OrderedDict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from conveyor.monitoring.online import OnlineWindow

if TYPE_CHECKING:
    from conveyor.monitoring.drift import DriftReport
    from conveyor.monitoring.window import DriftWindow
    from conveyor.serving.inputs import Batch
    from conveyor.serving.metrics import ServingMetrics
    from conveyor.serving.slot import ModelSlot, Prediction

__all__ = ["FeedbackStore", "Remembered", "VersionMonitor"]

logger = logging.getLogger(__name__)


def _positive(slot: ModelSlot) -> Any | None:
    """The class whose score is watched: the greater class of a binary classifier (as in
    the training profile), else None."""
    return max(slot.classes) if len(slot.classes) == 2 else None


class VersionMonitor:
    """Drift window, prediction distribution and online window of one loaded version.

    Args:
        slot: the version.
        metrics: where to record.
        window_rows: rows in the drift window (0: no drift window).
        online_rows: labelled rows in the online window.
    """

    def __init__(
        self, slot: ModelSlot, metrics: ServingMetrics, *, window_rows: int, online_rows: int
    ) -> None:
        self.slot = slot
        self.metrics = metrics
        self.labels = (slot.name, slot.version)
        self.positive = _positive(slot)
        self.window: DriftWindow | None = None
        if slot.profile is not None and window_rows > 0:
            from conveyor.monitoring.window import DriftWindow

            self.window = DriftWindow(slot.profile, size=window_rows)
        self.online = OnlineWindow(
            regression=not slot.is_classifier, positive=self.positive, size=online_rows
        )
        self.last_drift: DriftReport | None = None
        self._pending: deque[tuple[dict[str, Any], list[Any], list[float] | None]] = deque()
        self._pending_rows = 0
        self._lock = threading.Lock()

    def flush(self) -> int:
        """Bin the rows observed since the last flush into the drift window (blocking).

        Returns:
            Rows added.
        """
        if self.window is None:
            return 0
        with self._lock:
            pending, self._pending, self._pending_rows = self._pending, deque(), 0
        if not pending:
            return 0
        batches = [self._columns(*observed) for observed in pending]
        names = {name for columns in batches for name in columns}
        joined: dict[str, list[Any]] = {}
        for name in names:
            if all(name in columns for columns in batches):
                joined[name] = [v for columns in batches for v in columns[name]]
            else:  # a column some batches lack (scores without probabilities): its own rows
                self.window.add_columns({name: [v for c in batches if name in c for v in c[name]]})
        return self.window.add_columns(joined)

    def _columns(
        self, inputs: dict[str, Any], predictions: list[Any], scores: list[float] | None
    ) -> dict[str, Any]:
        """One observed batch as the drift window's columns."""
        columns: dict[str, Any] = dict(inputs)
        columns["prediction"] = predictions
        if scores is not None and self.positive is not None:
            columns[f"score[{self.positive}]"] = scores
        return columns

    def scores(self, prediction: Prediction) -> list[float] | None:
        """The watched score per row: the positive class's probability (binary) or the
        predicted class's (multiclass); None without probabilities."""
        proba = prediction.probabilities
        if proba is None or not self.slot.classes:
            return None
        if self.positive is not None:
            index = self.slot.classes.index(self.positive)
            return [row[index] for row in proba]
        return [max(row) for row in proba]

    def observe(self, batch: Batch, prediction: Prediction) -> None:
        """Record one predict call's inputs and outputs (on the request path: counting
        and queueing only; the drift window takes the rows at the next :meth:`flush`)."""
        predictions = prediction.predictions
        if self.slot.is_classifier:
            name, version = self.labels
            for label, count in _counted(predictions):
                self.metrics.child(self.metrics.predicted_class, name, version, str(label)).inc(
                    count
                )
        else:
            summary = self.metrics.child(self.metrics.prediction_value, *self.labels)
            for value in predictions:
                summary.observe(float(value))
        scores = self.scores(prediction)
        if scores is not None:
            histogram = self.metrics.child(self.metrics.prediction_score, *self.labels)
            for score in scores:
                histogram.observe(score)
        if self.window is not None:
            with self._lock:
                self._pending.append((batch.columns, predictions, scores))
                self._pending_rows += batch.rows
                while self._pending_rows > self.window.size and len(self._pending) > 1:
                    self._pending_rows -= len(self._pending.popleft()[1])

    def evaluate_drift(self) -> DriftReport | None:
        """Compare the window with the training profile and publish the gauges (blocking)."""
        if self.window is None or self.slot.profile is None:
            return None
        from conveyor.monitoring.drift import analyze

        self.flush()
        snapshot = self.window.snapshot()
        report = analyze(self.slot.profile, snapshot.columns)
        self.last_drift = report
        self.metrics.publish_drift(self.labels, report, snapshot.rows, self.window.memory_bytes())
        return report

    def learn(self, truths: list[Any], remembered: Remembered) -> None:
        """Add labelled rows to the online window."""
        none: list[float | None] = [None] * len(truths)
        scores: list[float | None] = list(remembered.scores) if remembered.scores else none
        for truth, predicted, score in zip(truths, remembered.predictions, scores, strict=True):
            self.online.add(truth, predicted, score)

    def publish_online(self) -> None:
        """Publish the online metrics of the window."""
        self.metrics.publish_online(self.labels, self.online.metrics(), len(self.online))

    def check_label(self, value: Any) -> str | None:
        """Why ``value`` cannot be a ground-truth label for this version, or None."""
        if self.slot.is_classifier:
            known = {str(c) for c in self.slot.classes}
            return None if str(value) in known else f"unknown class {_shown(value)}"
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"expected a number, got {_shown(value)}"
        try:
            finite = math.isfinite(value)
        except OverflowError:  # an integer too large for a float
            finite = False
        return None if finite else "expected a finite number"


def _counted(labels: list[Any]) -> Iterable[tuple[Any, int]]:
    """Each predicted label and how often it occurs (one row, the common case, directly)."""
    if len(labels) == 1:
        return ((labels[0], 1),)
    return Counter(labels).items()


def _shown(value: Any) -> str:
    """A client's value for a message, cut short."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(frozen=True)
class Remembered:
    """A request's predictions kept for its ground truth.

    Attributes:
        version: the version that answered.
        predictions: its labels or values.
        scores: the watched score per row, when known.
    """

    version: str
    predictions: list[Any]
    scores: list[float] | None


_Entry = tuple[str, tuple[Any, ...], tuple[float, ...] | None]
"""How the store keeps a :class:`Remembered`: a plain tuple of atomic values, which the
garbage collector stops tracking (100,000 tracked entries made every full collection
~65 ms instead of ~10 ms: a stall of every request in flight)."""


class FeedbackStore:
    """Predictions of recent requests by request id, at most ``max_rows`` rows in all
    (oldest forgotten first). Thread-safe.

    An id is used once: the ids of labelled requests are kept too (the last ``max_rows``
    of them), and :meth:`remember` refuses an id the store holds or has labelled, so a
    caller's ``X-Request-Id`` can never replace another request's predictions.
    """

    def __init__(self, max_rows: int) -> None:
        self.max_rows = max_rows
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._labelled: OrderedDict[str, None] = OrderedDict()
        self._rows = 0
        self._lock = threading.Lock()

    def remember(
        self,
        request_id: str,
        version: str,
        predictions: Sequence[Any],
        scores: Sequence[float] | None,
    ) -> bool:
        """Keep one request's predictions (a request larger than the store is not kept).

        Args:
            request_id: the request's id, once only.
            version: the version that answered.
            predictions: its labels or values.
            scores: the watched score per row, when known.

        Returns:
            False when the id is taken (remembered or already labelled): nothing is
            kept or replaced, and the caller should pick a new id.
        """
        rows = len(predictions)
        kept: _Entry = (version, tuple(predictions), None if scores is None else tuple(scores))
        with self._lock:
            if request_id in self._entries or request_id in self._labelled:
                return False
            if rows > self.max_rows:
                return True
            self._entries[request_id] = kept
            self._rows += rows
            while self._rows > self.max_rows:
                _, dropped = self._entries.popitem(last=False)
                self._rows -= len(dropped[1])
        return True

    def take(self, request_id: str) -> Remembered | None:
        """Remove and return a request's predictions (labels count once), or None."""
        with self._lock:
            entry = self._entries.pop(request_id, None)
            if entry is not None:
                self._rows -= len(entry[1])
                self._labelled[request_id] = None
                if len(self._labelled) > self.max_rows:
                    self._labelled.popitem(last=False)
        return _remembered(entry)

    def peek(self, request_id: str) -> Remembered | None:
        """A request's predictions, left in place, or None."""
        with self._lock:
            entry = self._entries.get(request_id)
        return _remembered(entry)

    @property
    def rows(self) -> int:
        """Rows held."""
        return self._rows


def _remembered(entry: _Entry | None) -> Remembered | None:
    if entry is None:
        return None
    version, predictions, scores = entry
    return Remembered(version, list(predictions), list(scores) if scores is not None else None)
