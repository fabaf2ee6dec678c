"""Prometheus metrics of one serving app, and the ASGI middleware that records every request.

Each app owns its own ``CollectorRegistry`` (nothing is registered at import time, and two
apps in one process do not collide). Label values are bounded: ``route`` is the route
template (``/v2/models/{name}/infer``), never the raw path; unmatched paths count as
``unmatched``.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from conveyor.monitoring.drift import DriftReport
    from conveyor.serving.slot import ModelSlot

__all__ = [
    "ANSWERED_BY",
    "CLIENT_CLOSED_REQUEST",
    "CLIENT_GONE",
    "CHECK_RESULTS",
    "REQUEST_ID_HEADER",
    "SWAP_RESULTS",
    "RequestIds",
    "RequestTelemetry",
    "ServingMetrics",
    "new_request_id",
    "request_id_of",
]

REQUEST_ID_HEADER = "x-request-id"
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
SCORE_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)
DRIFT_STATISTICS = ("psi", "wasserstein", "ks_pvalue", "js_distance", "chi2_pvalue")
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 4096, 16384)
SWAP_RESULTS = ("success", "failure", "refused")
CHECK_RESULTS = ("unchanged", "changed", "error")
ANSWERED_BY = "answered_by"
"""Key in a request's ASGI state of the ``(name, version)`` that answered it."""
CLIENT_GONE = "client_gone"
"""Key in a request's ASGI state: the client went away before its answer (not a 5xx)."""
CLIENT_CLOSED_REQUEST = 499
"""The status a request is counted with when its client went away (nginx's convention)."""
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
_REQUEST_ID_KEY = REQUEST_ID_HEADER.encode()


class ServingMetrics:
    """The serving metrics, on a registry of their own.

    Metrics:
        ``conveyor_requests_total{model,version,route,status}``: requests answered.
        ``conveyor_request_duration_seconds{model,version,route}``: latency histogram.
        ``conveyor_prediction_rows_total{model,version,route}``: rows scored.
        ``conveyor_model_info{name,version,run_id,runtime}``: 1 for the version serving.
        ``conveyor_model_swaps_total{result}``: attempts to load a new version and swap it
        in (``success`` or ``failure``; on failure the old version keeps serving).
        ``conveyor_model_alias_checks_total{result}``: registry checks of the followed
        alias (``unchanged``, ``changed`` or ``error`` when the registry did not answer).
        ``conveyor_requests_in_flight``: prediction requests and shadow copies in progress.
        ``conveyor_requests_refused_total{reason}``: prediction requests refused before
        any work (``concurrency``: over ``max_concurrency``).
        ``conveyor_routed_requests_total{variant,version}``: prediction requests by the
        route that answered (``primary``, ``challenger``) and shadow copies (``shadow``).
        ``conveyor_shadow_rows_total{version,outcome}``: rows the shadow model scored,
        by whether its answer was the ``same`` as the primary's, ``different``, or an
        ``error``.
        ``conveyor_shadow_dropped_total{version}``: shadow copies dropped because every
        place of the concurrency budget was taken.
        ``conveyor_batch_size_rows{model,version}``: rows per predict call (histogram).
        ``conveyor_unknown_category_values_total{model,version,column}``: category values
        the model never saw in training, accepted (``unknown_categories: accept``).
        ``conveyor_predict_duration_seconds{model,version}``: the predict call alone.
        ``conveyor_predicted_class_total{model,version,class}``: predicted labels.
        ``conveyor_prediction_score{model,version}``: positive-class (binary) or predicted-
        class (multiclass) probability, when probabilities were computed.
        ``conveyor_prediction_value{model,version}``: regression outputs (count, sum).
        ``conveyor_feature_drift{model,version,feature,statistic}``: drift statistics of
        the drift window against the training profile (``psi``, ``wasserstein``,
        ``ks_pvalue``, ``js_distance``, ``chi2_pvalue``, ``null_rate_change``).
        ``conveyor_feature_drifted{model,version,feature}``: 1 when over its threshold.
        ``conveyor_drift_share{model,version}``, ``conveyor_drift_detected{model,version}``,
        ``conveyor_drift_window_rows{model,version}``, ``conveyor_drift_window_bytes``.
        ``conveyor_feedback_total{model,version,result}``: ground-truth labels received
        (``matched``, ``unknown_id``, ``invalid``).
        ``conveyor_online_metric{model,version,metric}``: accuracy / roc_auc or rmse / mae
        over the last labelled rows; ``conveyor_online_labelled_rows{model,version}``.
    """

    def __init__(self) -> None:
        """Create the registry and the metrics on it."""
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary

        self.registry = CollectorRegistry()
        labels = ["model", "version", "route"]
        self.requests = Counter(
            "conveyor_requests",
            "HTTP requests answered, by route and status code.",
            [*labels, "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "conveyor_request_duration_seconds",
            "Time from request start to the end of the response.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.rows = Counter(
            "conveyor_prediction_rows", "Rows scored.", labels, registry=self.registry
        )
        self.model_info = Gauge(
            "conveyor_model_info",
            "The model version loaded (value 1).",
            ["name", "version", "run_id", "runtime"],
            registry=self.registry,
        )
        self.swaps = Counter(
            "conveyor_model_swaps",
            "Attempts to load a new model version and swap it in, by result.",
            ["result"],
            registry=self.registry,
        )
        self.alias_checks = Counter(
            "conveyor_model_alias_checks",
            "Registry checks of the followed alias, by result.",
            ["result"],
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "conveyor_requests_in_flight",
            "Prediction requests and shadow copies in progress.",
            registry=self.registry,
        )
        self.refused = Counter(
            "conveyor_requests_refused",
            "Prediction requests refused before any work, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.routed = Counter(
            "conveyor_routed_requests",
            "Prediction requests by the route that answered, and shadow copies.",
            ["variant", "version"],
            registry=self.registry,
        )
        self.shadow_rows = Counter(
            "conveyor_shadow_rows",
            "Rows scored by the shadow model, by agreement with the primary's answer.",
            ["version", "outcome"],
            registry=self.registry,
        )
        self.shadow_dropped = Counter(
            "conveyor_shadow_dropped",
            "Shadow copies dropped because every place of the concurrency budget was taken.",
            ["version"],
            registry=self.registry,
        )
        self.batch_rows = Histogram(
            "conveyor_batch_size_rows",
            "Rows per predict call (requests batched together).",
            ["model", "version"],
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.unknown = Counter(
            "conveyor_unknown_category_values",
            "Accepted category values the model never saw in training, by column.",
            ["model", "version", "column"],
            registry=self.registry,
        )
        self._per_version: dict[tuple[str, ...], set[tuple[Any, tuple[str, ...]]]] = {}
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        model = ["model", "version"]
        self.predict_duration = Histogram(
            "conveyor_predict_duration_seconds",
            "Time of one predict call (a micro-batch), without parsing and HTTP.",
            model,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.predicted_class = Counter(
            "conveyor_predicted_class",
            "Predicted labels, by class.",
            [*model, "class"],
            registry=self.registry,
        )
        self.prediction_score = Histogram(
            "conveyor_prediction_score",
            "Positive-class (binary) or predicted-class (multiclass) probability.",
            model,
            buckets=SCORE_BUCKETS,
            registry=self.registry,
        )
        self.prediction_value = Summary(
            "conveyor_prediction_value", "Regression outputs.", model, registry=self.registry
        )
        self.feature_drift = Gauge(
            "conveyor_feature_drift",
            "Drift statistic of a feature's recent inputs against the training profile.",
            [*model, "feature", "statistic"],
            registry=self.registry,
        )
        self.feature_drifted = Gauge(
            "conveyor_feature_drifted",
            "1 when a feature's drift is over its threshold.",
            [*model, "feature"],
            registry=self.registry,
        )
        self.drift_share = Gauge(
            "conveyor_drift_share", "Share of features drifted.", model, registry=self.registry
        )
        self.drift_detected = Gauge(
            "conveyor_drift_detected",
            "1 when the dataset-level drift verdict is positive.",
            model,
            registry=self.registry,
        )
        self.window_rows = Gauge(
            "conveyor_drift_window_rows",
            "Rows in the drift window.",
            model,
            registry=self.registry,
        )
        self.window_bytes = Gauge(
            "conveyor_drift_window_bytes",
            "Memory held by the drift window.",
            model,
            registry=self.registry,
        )
        self.feedback = Counter(
            "conveyor_feedback",
            "Ground-truth labels received, by result.",
            [*model, "result"],
            registry=self.registry,
        )
        self.online_metric = Gauge(
            "conveyor_online_metric",
            "Metric over the most recent labelled predictions.",
            [*model, "metric"],
            registry=self.registry,
        )
        self.online_rows = Gauge(
            "conveyor_online_labelled_rows",
            "Labelled rows behind conveyor_online_metric.",
            model,
            registry=self.registry,
        )
        self.refused.labels("concurrency")
        for result in SWAP_RESULTS:
            self.swaps.labels(result)
        for result in CHECK_RESULTS:
            self.alias_checks.labels(result)

    def set_models(self, *slots: ModelSlot | None) -> None:
        """Publish the loaded models (primary, then challenger) in ``conveyor_model_info``."""
        self.model_info.clear()
        for slot in slots:
            if slot is not None:
                self.model_info.labels(slot.name, slot.version, slot.run_id, slot.runtime).set(1)

    def count_routed(self, variant: str, version: str) -> None:
        """Count one request answered by (or copied to, ``shadow``) a route."""
        self.child(self.routed, variant, version).inc()

    def count_shadow_rows(self, version: str, outcome: str, rows: int) -> None:
        """Count rows the shadow model scored (``same``, ``different`` or ``error``)."""
        if rows:
            self.shadow_rows.labels(version, outcome).inc(rows)

    def count_shadow_dropped(self, version: str) -> None:
        """Count one shadow copy dropped for want of a free place."""
        self.child(self.shadow_dropped, version).inc()

    def publish_drift(
        self, model: tuple[str, str], report: DriftReport, rows: int, window_bytes: int
    ) -> None:
        """Set the drift gauges of one version from a drift report."""
        for feature in report.features:
            for statistic in (*DRIFT_STATISTICS, "null_rate_change"):
                value = feature.statistics.get(statistic)
                if value is not None and math.isfinite(value):
                    self._set(self.feature_drift, (*model, feature.feature, statistic), value)
            self._set(self.feature_drifted, (*model, feature.feature), int(feature.drifted))
        self._set(self.drift_share, model, report.drift_share)
        self._set(self.drift_detected, model, int(report.drift_detected))
        self._set(self.window_rows, model, rows)
        self._set(self.window_bytes, model, window_bytes)

    def _set(self, gauge: Any, labels: tuple[str, ...], value: float) -> None:
        gauge.labels(*labels).set(value)
        self._per_version.setdefault(labels[:2], set()).add((gauge, labels))

    def publish_online(self, model: tuple[str, str], metrics: dict[str, float], rows: int) -> None:
        """Set the online-metric gauges of one version."""
        for metric, value in metrics.items():
            self._set(self.online_metric, (*model, metric), value)
        self._set(self.online_rows, model, rows)

    def forget(self, model: tuple[str, str]) -> None:
        """Drop the per-version gauges of a version that is no longer loaded."""
        for gauge, labels in self._per_version.pop(model, set()):
            gauge.remove(*labels)

    def count_unknown(self, model: tuple[str, str], column: str, values: int) -> None:
        """Count accepted category values the model never saw in training."""
        self.child(self.unknown, *model, column).inc(values)

    def child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, remembered: the request path records ~8 samples per
        request, and ``labels()`` checks and locks each time. Only for counters and
        histograms (never removed; per-version gauges go through ``_set``)."""
        key = (id(metric), labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def observe_batch(self, model: tuple[str, str], rows: int) -> None:
        """Record the size of one predict call."""
        self.child(self.batch_rows, *model).observe(rows)

    def observe(self, *, model: tuple[str, str], route: str, status: int, seconds: float) -> None:
        """Count one answered request and its duration."""
        name, version = model
        self.child(self.requests, name, version, route, str(status)).inc()
        self.child(self.duration, name, version, route).observe(seconds)

    def count_rows(self, *, model: tuple[str, str], route: str, rows: int) -> None:
        """Count rows scored by a successful prediction."""
        self.child(self.rows, *model, route).inc(rows)

    def count_swap(self, result: str) -> None:
        """Count one swap attempt (``success`` or ``failure``)."""
        self.swaps.labels(result).inc()

    def count_alias_check(self, result: str) -> None:
        """Count one registry check of the alias (``unchanged``, ``changed``, ``error``)."""
        self.alias_checks.labels(result).inc()

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def new_request_id() -> str:
    """A fresh request id: 128 random bits from the operating system, as 32 hex
    characters (unguessable, so nobody can send feedback for another's request)."""
    return os.urandom(16).hex()


class RequestIds:
    """New request ids (see :func:`new_request_id`)."""

    def new(self) -> str:
        """A fresh id."""
        return new_request_id()


def request_id_of(header: str | None, ids: RequestIds) -> str:
    """The caller's request id when it is a safe token, else a new one from ``ids``."""
    if header and _SAFE_REQUEST_ID.fullmatch(header):
        return header
    return ids.new()


class RequestTelemetry:
    """ASGI middleware: assigns the request id (``X-Request-Id`` in and out) and records
    the request in :class:`ServingMetrics`. The id answered is the one in the request's
    state when the answer starts (a handler may replace the caller's).

    Args:
        app: the wrapped ASGI app.
        metrics: where to record.
        model: returns the (name, version) labels of the model currently loaded; used
            when the handler did not record which version answered (a hot swap may have
            happened since the request started).
    """

    def __init__(
        self, app: ASGIApp, *, metrics: ServingMetrics, model: Callable[[], tuple[str, str]]
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.model = model
        self.ids = RequestIds()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        incoming = next((v for k, v in scope["headers"] if k == _REQUEST_ID_KEY), None)
        request_id = request_id_of(incoming.decode("latin-1") if incoming else None, self.ids)
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                answered = str(state.get("request_id", request_id)).encode()
                headers = [*message.get("headers", ()), (_REQUEST_ID_KEY, answered)]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            answered = scope["state"].get(ANSWERED_BY)
            if scope["state"].get(CLIENT_GONE):
                status = CLIENT_CLOSED_REQUEST
            self.metrics.observe(
                model=answered if answered is not None else self.model(),
                route=route,
                status=status,
                seconds=time.perf_counter() - started,
            )
