"""OnnxModel: the serving fast path, a parity-verified ONNX graph scored with numpy only.

Built from the verified ONNX model of a registered version (``ModelRegistry.load_onnx``);
it scores the validated raw columns of a request (``inputs.coerce_column`` output: floats
with NaN for missing, str or None) without building a pandas frame. Labels come back as
the pipeline's ``predict`` gives them (the same Python types after ``.tolist()``) and
probabilities in the order of ``classes``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from conveyor.errors import RegistryError
from conveyor.registry.onnx_scoring import OnnxScorer
from conveyor.serving.slot import Prediction

if TYPE_CHECKING:
    from conveyor.registry.source import ModelSource
    from conveyor.registry.store import ModelVersionInfo
    from conveyor.serving.inputs import InputSchema

__all__ = ["OnnxModel", "load_onnx_model"]

logger = logging.getLogger(__name__)


_KINDS = {"float64": "number", "float32": "number", "str": "string"}


@dataclass(frozen=True)
class OnnxModel:
    """A loaded ONNX model answering for one registered version.

    Attributes:
        scorer: the ONNX Runtime session and how columns are fed to it.
        schema: the model's input columns.
        classes: class labels (order of the probability columns), () for a regressor.
    """

    scorer: OnnxScorer = field(repr=False)
    schema: InputSchema
    classes: tuple[Any, ...] = ()

    @classmethod
    def load(
        cls,
        data: bytes,
        schema: InputSchema,
        classes: tuple[Any, ...],
        *,
        threads: int = 1,
        sequential: bool = True,
    ) -> OnnxModel:
        """Open an exported model and check it fits the pipeline it stands in for.

        Args:
            data: the serialised ONNX model (from ``ModelRegistry.load_onnx``).
            schema: the pipeline's input columns.
            classes: the pipeline's ``classes_`` as a tuple, () for a regressor.
            threads: ONNX Runtime intra- and inter-op threads (1: the server scales by
                processes and batches, not threads per request).
            sequential: run the graph's nodes sequentially.

        Returns:
            The model.

        Raises:
            RegistryError: the bytes do not load, or the graph's inputs or classes differ
                from the pipeline's.
        """
        try:
            scorer = OnnxScorer.from_bytes(data, threads=threads, sequential=sequential)
        except ValueError as exc:
            raise RegistryError(f"the ONNX model does not load: {exc}") from exc
        _check_inputs(scorer, schema)
        if list(scorer.classes) != list(classes):
            raise RegistryError(
                f"the ONNX model's classes {list(scorer.classes)!r} differ from the "
                f"pipeline's {list(classes)!r}"
            )
        return cls(scorer=_with_classes(scorer, classes), schema=schema, classes=tuple(classes))

    @property
    def is_classifier(self) -> bool:
        """Whether the model predicts classes and can give their probabilities."""
        return bool(self.classes)

    def predict_columns(
        self, columns: Mapping[str, Sequence[Any]], *, probabilities: bool
    ) -> Prediction:
        """Score validated raw columns.

        Args:
            columns: column name -> values, as ``inputs.coerce_column`` returns them
                (floats with NaN for missing; str or None).
            probabilities: also return class probabilities (classifiers only).

        Returns:
            The predictions (and probabilities) as plain Python lists.
        """
        labels, proba = self.scorer.score(columns)
        if not (probabilities and proba is not None):
            return Prediction(labels)
        return Prediction(labels, proba.tolist())


def _with_classes(scorer: OnnxScorer, classes: tuple[Any, ...]) -> OnnxScorer:
    """The scorer answering with the pipeline's own class objects (equal to the stored ones)."""
    from dataclasses import replace

    return replace(scorer, classes=tuple(classes))


def _check_inputs(scorer: OnnxScorer, schema: InputSchema) -> None:
    graph = {i.name: _KINDS[i.dtype] for i in scorer.inputs}
    wanted = {c.name: c.kind for c in schema.columns}
    if graph != wanted:
        differ = sorted(set(graph.items()) ^ set(wanted.items()))
        raise RegistryError(
            f"the ONNX model's inputs differ from the pipeline's at {differ[0][0]!r} "
            f"(graph: {graph.get(differ[0][0])}, pipeline: {wanted.get(differ[0][0])})"
        )


def load_onnx_model(
    registry: ModelSource, info: ModelVersionInfo, schema: InputSchema, classes: tuple[Any, ...]
) -> OnnxModel | None:
    """The ONNX fast path of a registered version, if it has a parity-verified ONNX model.

    Args:
        registry: the configured registry (the only place models come from).
        info: the version.
        schema: its pipeline's input columns.
        classes: its pipeline's classes, () for a regressor.

    Returns:
        The loaded model, or None when the version has no verified ONNX model.

    Raises:
        RegistryError: the registry cannot be read, or the stored model does not load or
            does not fit the pipeline.
    """
    data = registry.load_onnx(info)
    if data is None:
        return None
    try:
        model = OnnxModel.load(data, schema, classes)
    except RegistryError as exc:
        raise RegistryError(f"model {info.name!r} version {info.version}: {exc}") from exc
    logger.info("model %s version %s: ONNX Runtime fast path loaded", info.name, info.version)
    return model
