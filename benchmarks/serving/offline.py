"""In-process prediction on the rows the batched requests carry: the ceiling without HTTP."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

from benchmarks.serving.demo import DemoModel

__all__ = ["offline_points"]


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


def offline_points(
    model: DemoModel, sizes: tuple[int, ...], seconds: float
) -> list[dict[str, Any]]:
    """Rows per second of ``pipeline.predict`` (and ONNX Runtime when available) per size.

    Args:
        model: the model and rows.
        sizes: rows per call.
        seconds: how long to repeat each measure.

    Returns:
        One record per (runtime, size); ONNX is ``not available`` with the reason when the
        build or the model has no ONNX path.
    """
    pipeline = model.registry().load_pipeline(f"models:/{model.name}/{model.champion}")
    points: list[dict[str, Any]] = []
    for rows in sizes:
        frame = model.rows.head(rows)
        rate = _rows_per_s(functools.partial(pipeline.predict, frame), rows, seconds)
        points.append({"runtime": "pipeline.predict", "rows": rows, "rows_per_s": rate})
    try:
        make = _onnx_predictor(model)
    except Exception as exc:  # any failure means "no ONNX path here"
        reason = f"{type(exc).__name__}: {exc}"[:300]
        points += [
            {"runtime": "onnx", "rows": n, "status": "not available", "reason": reason}
            for n in sizes
        ]
        return points
    for rows in sizes:
        rate = _rows_per_s(make(model.rows.head(rows)), rows, seconds)
        points.append({"runtime": "onnx", "rows": rows, "rows_per_s": rate})
    return points
