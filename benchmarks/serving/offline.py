"""In-process prediction on the rows the batched requests carry: the ceiling without HTTP.

The pipeline is the one ``conveyor serve`` runs (every step's ``n_jobs`` at 1); the ONNX
path goes through Conveyor's own model slot (ONNX Runtime, 1 thread).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks.serving.demo import DemoModel, served_pipeline

__all__ = ["InProcess"]


def _rows_per_s(predict: Callable[[], Any], rows: int, seconds: float) -> float:
    predict()  # warm
    calls, started = 0, time.perf_counter()
    while True:
        predict()
        calls += 1
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return calls * rows / elapsed


def _onnx_predictor(model: DemoModel) -> Callable[[Any], Callable[[], Any]]:
    """A maker of ONNX Runtime predict calls through Conveyor's own slot (raises if none)."""
    from conveyor.serving.inputs import coerce_columns
    from conveyor.serving.slot import load_version

    registry = model.registry()
    slot = load_version(registry, registry.get_version(model.name, model.champion), runtime="onnx")

    def make(frame: Any) -> Callable[[], Any]:
        raw = {str(c): frame[c].tolist() for c in frame.columns}
        batch = coerce_columns(slot.schema, raw, max_rows=len(frame) + 1)
        return lambda: slot.predict_batch(batch)

    return make


@dataclass
class InProcess:
    """The loaded models, measured again in every round.

    Attributes:
        model: the model and rows.
        pipeline: the fitted pipeline, one thread per step.
        onnx: a maker of ONNX predict calls, or the reason there is none.
    """

    model: DemoModel
    pipeline: Any
    onnx: Callable[[Any], Callable[[], Any]] | str

    @classmethod
    def load(cls, model: DemoModel) -> InProcess:
        """Load the pipeline and, when the build and the model have one, the ONNX path."""
        pipeline, _ = served_pipeline(model)
        onnx: Callable[[Any], Callable[[], Any]] | str
        try:
            onnx = _onnx_predictor(model)
        except Exception as exc:  # any failure means "no ONNX path here"
            onnx = f"{type(exc).__name__}: {exc}"[:300]
        return cls(model, pipeline, onnx)

    def measure(self, sizes: tuple[int, ...], seconds: float) -> list[dict[str, Any]]:
        """Rows per second of ``pipeline.predict`` and of ONNX Runtime, per size.

        Returns:
            One record per (runtime, size); ONNX is ``not available`` with the reason when
            the build or the model has no ONNX path.
        """
        points: list[dict[str, Any]] = []
        for rows in sizes:
            predict = functools.partial(self.pipeline.predict, self.model.rows.head(rows))
            rate = _rows_per_s(predict, rows, seconds)
            points.append({"runtime": "pipeline.predict", "rows": rows, "rows_per_s": rate})
        for rows in sizes:
            if isinstance(self.onnx, str):
                points.append(
                    {
                        "runtime": "onnx",
                        "rows": rows,
                        "status": "not available",
                        "reason": self.onnx,
                    }
                )
                continue
            rate = _rows_per_s(self.onnx(self.model.rows.head(rows)), rows, seconds)
            points.append({"runtime": "onnx", "rows": rows, "rows_per_s": rate})
        return points
