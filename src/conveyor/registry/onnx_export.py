"""ONNX export of a fitted pipeline before registration, verified for parity on held-out rows.

The exported graph takes one input per feature column, named as the column, shaped
``[None, 1]``: ``double`` (or ``float`` where a converter needs it) for numbers, ``string``
for categories. A server can then feed raw validated columns without pandas
(``registry.onnx_scoring``). A missing category is fed as the value its imputer fills in
(recorded in the model's metadata ``conveyor.missing_strings``), which is exactly what
the pipeline does with it; a missing number is fed as NaN and imputed in the graph.

Converters: scikit-learn's come with skl2onnx; LightGBM and XGBoost come from
onnxmltools; Conveyor adds converters for the one-hot encoder with infrequent levels
(rare and unseen levels share one column), the string imputer on NaN and the
label-encoding classifier wrapper. Registration happens once, on first export.

An export never raises for a converter problem: ``unsupported`` (with a one-line reason)
when no graph could be built, ``failed`` when the graph disagrees with the pipeline
beyond the tolerance (the bytes are kept for inspection and never served), ``verified``
otherwise.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from conveyor.registry.onnx_converters import opsets, register_converters
from conveyor.registry.onnx_scoring import (
    CLASSES_KEY,
    CLEANING_KEY,
    COLUMNS_KEY,
    MISSING_KEY,
    OnnxScorer,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["OnnxExport", "OnnxStatus", "export_onnx", "frame_columns", "load_converter"]

logger = logging.getLogger(__name__)

OnnxStatus = Literal["verified", "failed", "unsupported"]

UNSEEN_LEVEL = "__conveyor_unseen__"
_PRECISIONS = ("double", "float")


@dataclass(frozen=True)
class OnnxExport:
    """The outcome of one ONNX export and its parity check.

    Attributes:
        status: ``verified`` (may be served), ``failed`` (parity beyond tolerance) or
            ``unsupported`` (no converter could build a graph).
        reason: why it is not verified, one line; None when verified.
        model: the serialised ONNX model (also when failed, for inspection).
        max_abs_diff: largest probability difference (classifiers) or largest value
            difference relative to the predictions' spread (regressors).
        label_agreement: share of rows with the same label (classifiers).
        rows: rows compared (held-out rows plus synthetic missing/unseen ones).
        export_seconds: conversion plus parity check.
        precision: numeric input type of the graph (``float64`` or ``float32``).
        tolerance: the parity bound applied.
    """

    status: OnnxStatus
    reason: str | None = None
    model: bytes | None = field(default=None, repr=False)
    max_abs_diff: float | None = None
    label_agreement: float | None = None
    rows: int = 0
    export_seconds: float = 0.0
    precision: str | None = None
    tolerance: float | None = None

    @property
    def verified(self) -> bool:
        """Whether the graph matched the pipeline and may be served."""
        return self.status == "verified" and self.model is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (without the model bytes)."""
        return {
            "status": self.status,
            "reason": self.reason,
            "max_abs_diff": self.max_abs_diff,
            "label_agreement": self.label_agreement,
            "rows": self.rows,
            "export_seconds": round(self.export_seconds, 3),
            "precision": self.precision,
            "tolerance": self.tolerance,
            "model_bytes": len(self.model) if self.model is not None else 0,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, model: bytes | None) -> OnnxExport:
        """The export :meth:`to_dict` described, with its serialised model."""
        return cls(
            status=data["status"],
            reason=data.get("reason"),
            model=model,
            max_abs_diff=data.get("max_abs_diff"),
            label_agreement=data.get("label_agreement"),
            rows=int(data.get("rows", 0)),
            export_seconds=float(data.get("export_seconds", 0.0)),
            precision=data.get("precision"),
            tolerance=data.get("tolerance"),
        )


def export_onnx(
    pipeline: Any, sample: pd.DataFrame, *, tolerance: float, parity_rows: int
) -> OnnxExport:
    """Convert a fitted pipeline to ONNX and check it against the pipeline.

    Args:
        pipeline: the fitted scikit-learn pipeline (fitted on a DataFrame).
        sample: held-out feature rows; up to ``parity_rows`` are compared, plus synthetic
            rows with missing values and unseen categories built from them.
        tolerance: parity bound (see ``OnnxConfig.tolerance``).
        parity_rows: held-out rows to compare.

    Returns:
        The export; never raises for a converter or runtime problem.
    """
    from conveyor_cleaning.cleaner import split_cleaner

    started = time.perf_counter()
    cleaner, graph_part = split_cleaner(pipeline)
    try:
        columns = [str(c) for c in pipeline.feature_names_in_]
        clean = cleaner.transform(sample[columns]) if cleaner is not None else sample[columns]
        frame = _parity_frame(pipeline, clean.head(parity_rows))
    except Exception as exc:  # a pipeline we cannot even describe: no ONNX for it
        return OnnxExport("unsupported", _one_line(exc), export_seconds=_since(started))
    first: OnnxExport | None = None
    for precision in _precisions(pipeline):
        try:
            model = _convert(graph_part, frame, precision=precision, cleaner=cleaner)
        except Exception as exc:
            logger.debug("ONNX conversion (%s) failed", precision, exc_info=True)
            reason = f"cannot convert {_final_name(pipeline)}: {_root_cause(exc)}"
            first = first or OnnxExport("unsupported", reason, tolerance=tolerance)
            continue
        result = _check_parity(pipeline, frame, model, tolerance=tolerance)
        if result.verified:
            return _timed(result, started)
        first = result if first is None or first.status == "unsupported" else first
    assert first is not None  # there is always a precision to try
    return _timed(first, started)


def load_converter() -> None:
    """Import the ONNX converter and runtime now (most of a second), ahead of an export."""
    import onnxruntime  # noqa: F401
    import skl2onnx  # noqa: F401


def _precisions(pipeline: Any) -> tuple[str, ...]:
    """float64 first for scikit-learn's non-tree models (exact there); float32 for trees:
    ONNX Runtime's tree ensembles answer in float32, and converting a forest twice is slow."""
    final = pipeline.steps[-1][1] if hasattr(pipeline, "steps") else pipeline
    trees = hasattr(final, "estimators_") or hasattr(final, "tree_")
    sklearn = type(final).__module__.startswith("sklearn.")
    return _PRECISIONS if sklearn and not trees else _PRECISIONS[1:]


def _since(started: float) -> float:
    return time.perf_counter() - started


def _timed(result: OnnxExport, started: float) -> OnnxExport:
    return replace(result, export_seconds=_since(started))


def _final_name(pipeline: Any) -> str:
    final = pipeline.steps[-1][1] if hasattr(pipeline, "steps") else pipeline
    return type(final).__name__


def _root_cause(exc: BaseException) -> str:
    """The innermost cause of a converter error (its outer messages dump whole nodes)."""
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return f"{type(exc).__name__}: {_one_line(exc)}"


def _one_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


# ---------------------------------------------------------------- conversion
def _string_columns(frame: pd.DataFrame) -> set[str]:
    import pandas as pd

    return {str(c) for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])}


def _convert(pipeline: Any, frame: pd.DataFrame, *, precision: str, cleaner: Any) -> bytes:
    """The pipeline (after its value cleaning) as a serialised ONNX model with one graph
    input per column; the cleaning rules go into the model's metadata."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, StringTensorType

    register_converters(type(pipeline.steps[-1][1]))
    number = DoubleTensorType if precision == "double" else FloatTensorType
    strings = _string_columns(frame)
    initial = [
        (str(c), StringTensorType([None, 1]) if c in strings else number([None, 1]))
        for c in frame.columns
    ]
    options = {id(pipeline.steps[-1][1]): {"zipmap": False}} if _is_classifier(pipeline) else None
    onx = convert_sklearn(pipeline, initial_types=initial, options=options, target_opset=opsets())
    meta = {
        MISSING_KEY: json.dumps(_missing_strings(pipeline, strings)),
        COLUMNS_KEY: json.dumps([str(c) for c in frame.columns]),
    }
    if cleaner is not None:
        meta[CLEANING_KEY] = json.dumps(cleaner.describe())
    if _is_classifier(pipeline):
        meta[CLASSES_KEY] = json.dumps(pipeline.classes_.tolist())
    for key, value in meta.items():
        entry = onx.metadata_props.add()
        entry.key, entry.value = key, value
    data: bytes = onx.SerializeToString()
    return data


def _is_classifier(pipeline: Any) -> bool:
    return hasattr(pipeline, "classes_") and hasattr(pipeline, "predict_proba")


def _missing_strings(pipeline: Any, strings: set[str]) -> dict[str, str]:
    """Column -> the category its imputer fills in for a missing value (string columns)."""
    from sklearn.impute import SimpleImputer

    found: dict[str, str] = {}
    for step in _column_transformers(pipeline):
        for _, fitted, columns in step.transformers_:
            parts = [s for _, s in getattr(fitted, "steps", [])] or [fitted]
            imputer = parts[0]
            if not isinstance(imputer, SimpleImputer) or isinstance(imputer.missing_values, str):
                continue
            for index, column in enumerate(columns):
                if str(column) in strings:
                    found[str(column)] = str(imputer.statistics_[index])
    return found


def _column_transformers(pipeline: Any) -> list[Any]:
    return [s for _, s in getattr(pipeline, "steps", []) if hasattr(s, "transformers_")]


# ---------------------------------------------------------------- parity
def _parity_frame(pipeline: Any, held_out: pd.DataFrame) -> pd.DataFrame:
    """Held-out rows plus rows with every value missing and with unseen categories.

    Synthetic rows the pipeline itself cannot score (an encoder that refuses unseen
    levels, a column without an imputer) are left out: the server refuses those too.
    """
    import numpy as np
    import pandas as pd

    if len(held_out) == 0:
        raise ValueError("no held-out rows to check parity on")
    base = held_out.reset_index(drop=True)
    strings = _string_columns(base)
    numbers = [c for c in base.columns if c not in strings]
    extras = []
    # Row 0: everything missing; row 1: numbers missing; row 2: categories missing.
    for index, blank in enumerate([list(base.columns), numbers, sorted(strings)][: len(base)]):
        missing = base.iloc[[index]].copy()
        for column in blank:
            missing[column] = np.nan if column not in strings else None
        unseen = base.iloc[[index]].copy()
        for column in strings:
            unseen[column] = f"{UNSEEN_LEVEL}{index}"
        extras += [missing, unseen]
    rows = pd.concat([_as_dtypes(e, base) for e in extras], ignore_index=True)
    if not _scores(pipeline, rows):  # find the ones it can score
        rows = pd.concat(
            [rows.iloc[[i]] for i in range(len(rows)) if _scores(pipeline, rows.iloc[[i]])]
            or [rows.head(0)]
        )
    return pd.concat([base, rows], ignore_index=True)


def _as_dtypes(rows: pd.DataFrame, like: pd.DataFrame) -> pd.DataFrame:
    return rows.astype(like.dtypes.to_dict())


def _scores(pipeline: Any, rows: pd.DataFrame) -> bool:
    try:
        pipeline.predict(rows)
    except Exception:  # the pipeline refuses such rows; so does the server
        return False
    return True


def frame_columns(frame: pd.DataFrame) -> dict[str, list[Any]]:
    """A frame as the server's raw columns: floats (NaN for missing), str or None."""
    import pandas as pd

    strings = _string_columns(frame)
    columns: dict[str, list[Any]] = {}
    for column in frame.columns:
        series = frame[column]
        if column in strings:
            columns[str(column)] = [None if pd.isna(v) else str(v) for v in series.tolist()]
        else:
            columns[str(column)] = series.to_numpy(dtype="float64", na_value=math.nan).tolist()
    return columns


def _check_parity(
    pipeline: Any, frame: pd.DataFrame, model: bytes, *, tolerance: float
) -> OnnxExport:
    try:
        scorer = OnnxScorer.from_bytes(model)
        labels, proba = scorer.score(frame_columns(frame))
    except Exception as exc:
        reason = f"ONNX Runtime cannot run the graph: {type(exc).__name__}: {_one_line(exc)}"
        return OnnxExport("unsupported", reason, tolerance=tolerance)
    if proba is not None:
        result = _classifier_parity(pipeline, frame, labels, proba, tolerance=tolerance)
    else:
        result = _regressor_parity(pipeline, frame, labels, tolerance=tolerance)
    precision = "float64" if any(i.dtype == "float64" for i in scorer.inputs) else "float32"
    return replace(result, model=model, rows=len(frame), precision=precision, tolerance=tolerance)


def _classifier_parity(
    pipeline: Any, frame: pd.DataFrame, labels: list[Any], proba: np.ndarray, *, tolerance: float
) -> OnnxExport:
    import numpy as np

    expected = np.asarray(pipeline.predict_proba(frame), dtype=np.float64)
    diff = float(np.max(np.abs(expected - proba))) if expected.shape == proba.shape else math.inf
    wanted = np.asarray(pipeline.predict(frame)).tolist()
    same = np.array([a == b for a, b in zip(wanted, labels, strict=True)], dtype=bool)
    ordered = np.sort(expected, axis=1)
    gap = ordered[:, -1] - ordered[:, -2]
    clear_mismatches = int(np.sum(~same & (gap >= tolerance)))
    result = OnnxExport("verified", max_abs_diff=diff, label_agreement=float(np.mean(same)))
    if not diff <= tolerance:
        return _failed(result, f"class probabilities differ by up to {diff:.3g} > {tolerance:g}")
    if clear_mismatches:
        return _failed(result, f"{clear_mismatches} row(s) get another label from the ONNX model")
    return result


def _regressor_parity(
    pipeline: Any, frame: pd.DataFrame, values: list[Any], *, tolerance: float
) -> OnnxExport:
    import numpy as np

    expected = np.asarray(pipeline.predict(frame), dtype=np.float64).ravel()
    spread = float(np.std(expected)) or 1.0
    diff = float(np.max(np.abs(expected - np.asarray(values, dtype=np.float64)))) / spread
    result = OnnxExport("verified", max_abs_diff=diff)
    if not diff <= tolerance:
        return _failed(
            result, f"predictions differ by up to {diff:.3g} of their spread > {tolerance:g}"
        )
    return result


def _failed(result: OnnxExport, reason: str) -> OnnxExport:
    return replace(result, status="failed", reason=reason)
