"""What one serving app holds at run time: its settings, metrics and the loaded model.

``slot`` is swapped by rebinding the attribute (one assignment on the event loop), never
mutated: a handler takes the slot once at its start and finishes on that object, so a
request that was running during a hot swap answers with the version it started on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from conveyor.serving.inputs import RawColumns, RequestError, build_frame
from conveyor.serving.metrics import ANSWERED_BY, ServingMetrics
from conveyor.serving.settings import ServingSettings
from conveyor.serving.slot import ModelSlot, Prediction

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "ServingState",
    "StateDep",
    "answered_by",
    "get_state",
    "model_headers",
    "score",
]

logger = logging.getLogger(__name__)


@dataclass
class ServingState:
    """The app's run-time state.

    Attributes:
        settings: the serving settings.
        metrics: the app's Prometheus metrics.
        slot: the loaded, warmed model (None until startup has loaded it).
        ready: the model is loaded and warmed (and the app has not shut down).
        draining: SIGTERM arrived: readiness probes fail while requests are still served.
    """

    settings: ServingSettings
    metrics: ServingMetrics = field(default_factory=ServingMetrics)
    slot: ModelSlot | None = None
    ready: bool = False
    draining: bool = False

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


def get_state(request: Request) -> ServingState:
    """FastAPI dependency: the app's :class:`ServingState`."""
    state: ServingState = request.app.state.serving
    return state


StateDep = Annotated[ServingState, Depends(get_state)]


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def score(
    slot: ModelSlot,
    parse: Callable[[], RawColumns],
    *,
    max_rows: int,
    text: bool = False,
    probabilities: bool = False,
) -> tuple[Prediction, int]:
    """Parse, check and score one request (runs in a worker thread).

    Args:
        slot: the model.
        parse: turns the request body into raw columns.
        max_rows: the batch row limit.
        text: the raw values are CSV text.
        probabilities: also compute class probabilities.

    Returns:
        The prediction and the number of rows scored.

    Raises:
        RequestError: bad input, or (422) the model refused the values (for example a
            missing value in a column without an imputer).
    """
    frame = build_frame(slot.schema, parse(), max_rows=max_rows, text=text)
    try:
        return slot.predict(frame, probabilities=probabilities), len(frame)
    except (ValueError, TypeError) as exc:
        logger.info("model refused the input: %s", _first_line(exc))
        raise RequestError(f"the model could not score the input: {_first_line(exc)}") from exc


def answered_by(request: Request, slot: ModelSlot) -> None:
    """Record on the request which version answers it (for its metric labels)."""
    setattr(request.state, ANSWERED_BY, (slot.name, slot.version))


def model_headers(slot: ModelSlot) -> dict[str, str]:
    """Headers naming the model that answered."""
    return {"X-Model-Name": slot.name, "X-Model-Version": slot.version}
