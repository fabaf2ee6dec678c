"""Scoring raw columns with an exported ONNX graph, and the metadata the graph carries.

The export (``onnx_export``) writes into the model's metadata what feeding the graph
needs: the column each input stands for, the value fed for a missing category, the
class labels, the value rules applied before the graph. This module reads them back and
scores columns of values (floats with NaN for missing, strings or None) without pandas:
the parity check at export and the server's fast path use the same code.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "CLASSES_KEY",
    "CLEANING_KEY",
    "COLUMNS_KEY",
    "MISSING_KEY",
    "OnnxInput",
    "OnnxScorer",
    "build_feeds",
    "model_inputs",
]

MISSING_KEY = "conveyor.missing_strings"
"""Model metadata: JSON ``{column: value fed for a missing category}``."""
CLASSES_KEY = "conveyor.classes"
"""Model metadata: JSON list of class labels in probability-column order (classifiers)."""
COLUMNS_KEY = "conveyor.input_columns"
"""Model metadata: JSON list of the column each graph input stands for, in input order
(converters rename inputs to identifiers: ``education-num`` becomes ``education_num``)."""
CLEANING_KEY = "conveyor.cleaning"
"""Model metadata: JSON of the value rules to apply to raw values before the graph
(``ValueCleaner.describe``): the graph itself takes cleaned values."""
_ONNX_TYPES = {"tensor(double)": "float64", "tensor(float)": "float32"}


@dataclass(frozen=True)
class OnnxInput:
    """How one column is fed to the graph.

    Attributes:
        name: the column.
        dtype: ``float64``, ``float32`` or ``str``.
        missing: the value fed for a missing category (string inputs), if any.
        feed: the graph input's name (the column's name unless a converter renamed it).
    """

    name: str
    dtype: str
    missing: str | None = None
    feed: str = ""

    def __post_init__(self) -> None:
        if not self.feed:
            object.__setattr__(self, "feed", self.name)


def model_inputs(session: Any) -> tuple[OnnxInput, ...]:
    """The inputs of an ONNX Runtime session, with the missing-category values it records.

    Args:
        session: an ``onnxruntime.InferenceSession`` on an exported model.

    Returns:
        One entry per graph input, in graph order.

    Raises:
        ValueError: an input type this module does not feed.
    """
    meta = session.get_modelmeta().custom_metadata_map
    missing: dict[str, str] = json.loads(meta.get(MISSING_KEY, "{}"))
    nodes = session.get_inputs()
    names: list[str] = json.loads(meta.get(COLUMNS_KEY, "null")) or [n.name for n in nodes]
    if len(names) != len(nodes):
        raise ValueError(f"the graph has {len(nodes)} inputs but names {len(names)} columns")
    found = []
    for node, column in zip(nodes, names, strict=True):
        if node.type == "tensor(string)":
            found.append(OnnxInput(column, "str", missing.get(column), feed=node.name))
        elif node.type in _ONNX_TYPES:
            found.append(OnnxInput(column, _ONNX_TYPES[node.type], feed=node.name))
        else:
            raise ValueError(f"graph input {node.name!r} has type {node.type}")
    return tuple(found)


def build_feeds(
    inputs: Sequence[OnnxInput], columns: Mapping[str, Sequence[Any]]
) -> dict[str, np.ndarray]:
    """Per-column arrays for ``session.run``: numbers as floats, categories as strings.

    Args:
        inputs: the graph's inputs (see :func:`model_inputs`).
        columns: column name -> values (floats with NaN for missing; str or None).

    Returns:
        Graph input name -> ``[rows, 1]`` array.

    Raises:
        KeyError: a graph input has no column.
    """
    import numpy as np

    feeds: dict[str, np.ndarray] = {}
    for spec in inputs:
        values = columns[spec.name]
        if spec.dtype == "str":
            fill = spec.missing if spec.missing is not None else ""
            text = [v if isinstance(v, str) else fill for v in values]  # None, NaN: missing
            feeds[spec.feed] = np.array(text, dtype=object).reshape(-1, 1)
        else:
            feeds[spec.feed] = np.asarray(values, dtype=spec.dtype).reshape(-1, 1)
    return feeds


@dataclass(frozen=True)
class OnnxScorer:
    """An ONNX Runtime session on an exported model, scoring raw columns (no pandas).

    A classifier's label is its most probable class (the first one on ties), as
    scikit-learn's ``predict`` decides; the parity check holds the graph to that.

    Attributes:
        session: the ``onnxruntime.InferenceSession``.
        inputs: how each column is fed.
        output: the graph output read: probabilities (classifiers) or values.
        classes: class labels in probability-column order; empty for a regressor.
    """

    session: Any = field(repr=False)
    inputs: tuple[OnnxInput, ...]
    output: str
    classes: tuple[Any, ...] = ()

    @classmethod
    def from_bytes(cls, data: bytes, *, threads: int = 1, sequential: bool = True) -> OnnxScorer:
        """Open a session on a model made by :func:`export_onnx`.

        Args:
            data: the serialised ONNX model.
            threads: intra- and inter-op threads of the session.
            sequential: run the graph's nodes one after another.

        Returns:
            The scorer.

        Raises:
            ValueError: the bytes are not such a model (ONNX Runtime's errors included).
        """
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = threads
        options.execution_mode = (
            ort.ExecutionMode.ORT_SEQUENTIAL if sequential else ort.ExecutionMode.ORT_PARALLEL
        )
        try:
            session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT raises its own exception types
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            raise ValueError(f"not an ONNX model ONNX Runtime can run: {first}") from exc
        meta = session.get_modelmeta().custom_metadata_map
        classes = tuple(json.loads(meta[CLASSES_KEY])) if CLASSES_KEY in meta else ()
        outputs = session.get_outputs()
        if classes and len(outputs) < 2:
            raise ValueError("the classifier graph has no probability output")
        output = outputs[1].name if classes else outputs[0].name
        return cls(session, model_inputs(session), output, classes)

    def score(self, columns: Mapping[str, Sequence[Any]]) -> tuple[list[Any], np.ndarray | None]:
        """Labels or values of the rows, and class probabilities for a classifier.

        Args:
            columns: column name -> values (floats with NaN for missing; str or None).

        Returns:
            One label (classifier) or value (regressor) per row, and the ``[rows, classes]``
            float64 probabilities (None for a regressor).
        """
        import numpy as np

        result = self.session.run([self.output], build_feeds(self.inputs, columns))[0]
        if not self.classes:
            return np.asarray(result, dtype=np.float64).ravel().tolist(), None
        proba = np.asarray(result, dtype=np.float64).reshape(len(result), -1)
        if proba.shape[1] == 1 and len(self.classes) == 2:  # positive class only
            proba = np.hstack([1.0 - proba, proba])
        classes = self.classes
        return [classes[i] for i in proba.argmax(axis=1).tolist()], proba
