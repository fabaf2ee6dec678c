"""ModelSlot: one loaded, warmed model version with its input schema, and how it is loaded.

Models come only from the configured MLflow registry (``ModelRegistry.load_pipeline``,
which re-checks the skops allowlist), or from a bundle exported from it (``bundle:/path``,
what a baked image holds); nothing a request sends is ever deserialised. The
alias in the model URI is resolved to a version first and that exact version is loaded,
so the name and version the slot reports are the ones that answer.

The input schema is read from the fitted pipeline: ``feature_names_in_`` gives the
columns and their order; a column fed to an encoder with string categories is a
``string`` column, every other one a ``number``; a column whose branch has an imputer
accepts missing values.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conveyor.errors import RegistryError
from conveyor.registry.bundle import ModelBundle
from conveyor.registry.source import ModelSource, is_bundle_uri, open_source
from conveyor.registry.store import ModelVersionInfo
from conveyor.serving.inputs import Batch, ColumnKind, InputColumn, InputSchema, frame_of

if TYPE_CHECKING:
    import pandas as pd

    from conveyor.serving.settings import Runtime, ServingSettings

__all__ = [
    "ModelSlot",
    "Prediction",
    "load_slot",
    "load_version",
    "open_registry",
    "resolve_model",
    "resolve_version",
    "schema_from_pipeline",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prediction:
    """A batch's predictions as JSON-ready lists.

    Attributes:
        predictions: one label (classifier) or value (regressor) per row.
        probabilities: one row of class probabilities per row, columns in ``classes`` order,
            when they were asked for.
    """

    predictions: list[Any]
    probabilities: list[list[float]] | None = None


@dataclass(frozen=True)
class ModelSlot:
    """A loaded model version ready to predict.

    Attributes:
        pipeline: the fitted scikit-learn pipeline.
        name: registered model name.
        version: registered version number.
        run_id: the MLflow run that logged it.
        schema: its input columns.
        classes: class labels for a classifier (order of the probability columns), else ().
        onnx: the parity-verified ONNX Runtime model, when this slot serves with it.
        profile: the training data's reference profile (drift monitoring), when stored.
    """

    pipeline: Any = field(repr=False)
    name: str
    version: str
    run_id: str
    schema: InputSchema
    classes: tuple[Any, ...] = ()
    onnx: Any | None = field(default=None, repr=False)
    profile: Any | None = field(default=None, repr=False)

    @property
    def runtime(self) -> str:
        """What computes predictions: ``"onnx"`` (ONNX Runtime) or ``"pyfunc"`` (the pipeline)."""
        return "pyfunc" if self.onnx is None else "onnx"

    @property
    def is_classifier(self) -> bool:
        """Whether the model predicts classes and can give their probabilities."""
        return bool(self.classes)

    @functools.cached_property
    def _scorer(self) -> Any:
        """The pipeline after its value cleaning: batches arrive cleaned by the same rules."""
        from conveyor_cleaning.cleaner import split_cleaner

        return split_cleaner(self.pipeline)[1]

    def predict(self, frame: pd.DataFrame, *, probabilities: bool = False) -> Prediction:
        """Score a frame built by ``inputs.build_frame`` (values already cleaned).

        Args:
            frame: the rows, in the schema's columns.
            probabilities: also return class probabilities (classifiers only).

        Returns:
            The predictions (and probabilities) as plain Python lists.
        """
        import numpy as np

        scorer = self._scorer
        labels = np.asarray(scorer.predict(frame)).tolist()
        if not (probabilities and self.is_classifier):
            return Prediction(labels)
        proba = np.asarray(scorer.predict_proba(frame), dtype=np.float64).tolist()
        return Prediction(labels, proba)

    def predict_batch(self, batch: Batch, *, probabilities: bool = False) -> Prediction:
        """Score coerced rows with this slot's runtime (blocking).

        Args:
            batch: rows from ``inputs.coerce_columns``.
            probabilities: also return class probabilities (classifiers only).

        Returns:
            The predictions (and probabilities) as plain Python lists.

        Raises:
            ValueError, TypeError: the model refused the values.
        """
        if self.onnx is not None:
            result: Prediction = self.onnx.predict_columns(
                batch.columns, probabilities=probabilities and self.is_classifier
            )
            return result
        return self.predict(frame_of(self.schema, batch), probabilities=probabilities)

    def warm(self) -> None:
        """Predict once on a typical row so the first request pays no one-off costs.

        Raises:
            RegistryError: the model cannot predict on a row of its own schema.
        """
        columns: dict[str, list[Any]] = {}
        for column in self.schema.columns:
            seen = _first_category(self.pipeline, column.name)  # encoders may refuse others
            if column.kind == "number":
                columns[column.name] = [0.0 if seen is None else float(seen)]
            else:
                columns[column.name] = ["" if seen is None else str(seen)]
        try:
            self.predict_batch(Batch(columns, 1), probabilities=self.is_classifier)
        except Exception as exc:
            raise RegistryError(
                f"model {self.name!r} version {self.version} failed its warm-up prediction: "
                f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            ) from exc

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly description (no pipeline)."""
        return {
            "name": self.name,
            "version": self.version,
            "run_id": self.run_id,
            "runtime": self.runtime,
            "classes": list(self.classes),
            "inputs": self.schema.to_dict()["columns"],
        }


def _column_transformer(pipeline: Any) -> Any | None:
    if hasattr(pipeline, "transformers_"):
        return pipeline
    for _, step in getattr(pipeline, "steps", []):
        if hasattr(step, "transformers_"):
            return step
    return None


def _parts(transformer: Any) -> list[Any]:
    steps = getattr(transformer, "steps", None)
    return [step for _, step in steps] if steps else [transformer]


def _branches(pipeline: Any, names: list[str]) -> list[tuple[list[Any], list[str]]]:
    """``(steps, column names)`` for each fitted branch of the pipeline's ColumnTransformer."""
    transformer = _column_transformer(pipeline)
    if transformer is None:
        return []
    found = []
    for branch, fitted, columns in transformer.transformers_:
        if branch == "remainder" or isinstance(fitted, str):
            continue
        selected = [names[c] if isinstance(c, int) else str(c) for c in list(columns)]
        found.append((_parts(fitted), selected))
    return found


def _encoder_categories(parts: list[Any], index: int) -> Any | None:
    for part in parts:
        categories = getattr(part, "categories_", None)
        if categories is not None and index < len(categories):
            return categories[index]
    return None


def schema_from_pipeline(pipeline: Any) -> InputSchema:
    """The input columns of a fitted pipeline (see the module docstring).

    A pipeline that starts with Conveyor's value cleaning gives its columns, value rules
    and ignored columns; its numeric features are ``number`` columns.

    Args:
        pipeline: a fitted scikit-learn estimator or Pipeline.

    Returns:
        The schema, in ``feature_names_in_`` order.

    Raises:
        RegistryError: the model was not fitted on named columns.
    """
    from conveyor_cleaning.cleaner import split_cleaner

    cleaner, rest = split_cleaner(pipeline)
    names = [str(n) for n in getattr(pipeline, "feature_names_in_", [])]
    if not names:
        raise RegistryError("the model does not record its input columns (fit it on a DataFrame)")
    roles: dict[str, tuple[ColumnKind, bool, frozenset[str] | None]] = {}
    for parts, columns in _branches(rest, names):
        imputes = any(type(p).__name__.endswith("Imputer") for p in parts)
        for index, name in enumerate(columns):
            categories = _encoder_categories(parts, index)
            text = categories is not None and categories.dtype.kind in "OUST"
            known = (
                frozenset(str(c) for c in categories) if categories is not None and text else None
            )
            roles[name] = ("string" if text else "number", imputes, known)
    if cleaner is not None:  # the cleaner says what each column is; the branches what
        for name in cleaner.numeric:  # they impute and which levels they know
            roles[name] = ("number", roles.get(name, ("number", False, None))[1], None)
        for name in cleaner.categorical:
            _, nullable, known = roles.get(name, ("string", False, None))
            roles[name] = ("string", nullable, known)
    inputs = tuple(InputColumn(n, *roles.get(n, ("number", False, None))) for n in names)
    if cleaner is None:
        return InputSchema(inputs)
    return InputSchema(inputs, rules=cleaner.rules, ignored=frozenset(cleaner.ignored))


def _first_category(pipeline: Any, column: str) -> Any | None:
    """A value the pipeline's encoder saw for ``column`` in training, or None."""
    names = [str(n) for n in getattr(pipeline, "feature_names_in_", [])]
    for parts, columns in _branches(pipeline, names):
        if column in columns:
            categories = _encoder_categories(parts, columns.index(column))
            if categories is not None and len(categories):
                return categories[0]
    return None


def resolve_version(registry: ModelSource, model_uri: str) -> ModelVersionInfo:
    """The registered version a ``models:/name@alias`` or ``models:/name/version`` URI
    means (a ``bundle:/path`` URI: the bundled version).

    Raises:
        RegistryError: unknown model, alias or version (the message lists what exists).
    """
    if is_bundle_uri(model_uri):
        return ModelBundle.from_uri(model_uri).info
    ref = model_uri.removeprefix("models:/")
    if "@" in ref:
        name, alias = ref.split("@", 1)
        info = registry.get_alias(name, alias)
        if info is None:
            versions = registry.list_versions(name)  # raises for an unknown model
            aliases = sorted({a for v in versions for a in v.aliases}) or ["none"]
            raise RegistryError(
                f"model {name!r} has no alias {alias!r} (aliases: {', '.join(aliases)})"
            )
        return info
    name, _, version = ref.rpartition("/")
    if not name or not version.isdigit():
        raise RegistryError(
            f"{model_uri!r}: use models:/<name>@<alias> or models:/<name>/<version>"
        )
    return registry.get_version(name, version)


def _check_store(tracking_uri: str) -> None:
    if tracking_uri.startswith("sqlite:///"):
        db = Path(tracking_uri.removeprefix("sqlite:///").split("?", 1)[0]).expanduser()
        if not db.is_file():
            raise RegistryError(f"no MLflow store at {db} (tracking URI {tracking_uri})")


def open_registry(settings: ServingSettings) -> ModelSource:
    """The configured registry (or the bundle a ``bundle:/path`` model URI names).

    Raises:
        RegistryError: a SQLite tracking URI names a file that does not exist, or there is
            no readable bundle at the path.
    """
    if not is_bundle_uri(settings.model_uri):
        _check_store(settings.tracking_uri)
    return open_source(settings.tracking_uri, settings.model_uri)


def resolve_model(settings: ServingSettings) -> tuple[ModelSource, ModelVersionInfo]:
    """Open the configured registry and resolve the configured model URI to a version.

    Args:
        settings: the model URI and the registry.

    Returns:
        The registry and the version the URI means now.

    Raises:
        RegistryError: no store at a SQLite URI, or an unknown model, alias or version.
    """
    registry = open_registry(settings)
    return registry, resolve_version(registry, settings.model_uri)


def load_version(
    registry: ModelSource, info: ModelVersionInfo, *, runtime: Runtime = "auto"
) -> ModelSlot:
    """Load and warm one exact registered version (blocking: call it off the event loop).

    Args:
        registry: the registry holding it.
        info: the version, as resolved by :func:`resolve_version`.
        runtime: ``auto`` serves with ONNX Runtime when the version has a parity-verified
            ONNX model and with the pipeline otherwise; ``onnx`` requires the ONNX model;
            ``pyfunc`` always uses the pipeline.

    Returns:
        The warmed slot.

    Raises:
        RegistryError: the model cannot be loaded, has no named input columns, fails its
            warm-up, or (``runtime="onnx"``) has no parity-verified ONNX model.
    """
    logger.info("loading %s (version %s, run %s)", info.name, info.version, info.run_id)
    pipeline = _one_thread(registry.load_pipeline(info.uri))
    classes: tuple[Any, ...] = ()
    if hasattr(pipeline, "predict_proba") and hasattr(pipeline, "classes_"):
        classes = tuple(pipeline.classes_.tolist())
    schema = schema_from_pipeline(pipeline)
    onnx = None
    if runtime != "pyfunc":
        from conveyor.serving.onnx_model import load_onnx_model

        onnx = load_onnx_model(registry, info, schema, classes)
        if onnx is None and runtime == "auto":
            logger.warning(
                "model %s version %s has no verified ONNX model (ONNX export %s: %s); serving"
                " the pipeline runtime, many times slower than the ONNX fast path",
                info.name,
                info.version,
                info.tags.get("conveyor.onnx", "off"),
                info.tags.get("conveyor.onnx_reason", "no reason recorded"),
            )
        if onnx is None and runtime == "onnx":
            raise RegistryError(
                f"model {info.name!r} version {info.version} has no parity-verified ONNX model "
                f"(tag conveyor.onnx: {info.tags.get('conveyor.onnx', 'absent')}); serve it with "
                "--runtime auto or pyfunc"
            )
    slot = ModelSlot(
        pipeline=pipeline,
        name=info.name,
        version=info.version,
        run_id=info.run_id,
        schema=schema,
        classes=classes,
        onnx=onnx,
        profile=_reference_profile(registry, info),
    )
    slot.warm()
    logger.info(
        "model %s version %s loaded and warmed (runtime %s)", slot.name, slot.version, slot.runtime
    )
    return slot


def _one_thread(pipeline: Any) -> Any:
    """The pipeline with every step's ``n_jobs`` set to 1 (same predictions).

    A server scales by processes and batches: a model predicting with an OpenMP or joblib
    thread pool on a busy machine spins threads that compete with the server's own work
    (measured on the demo's LightGBM, 8 rows, 2 cores: 1.3 ms with n_jobs=2, 1.0 ms with
    1; with both cores busy 1.2-1.8 ms against 1.0-1.1 ms).
    """
    steps = [step for _, step in getattr(pipeline, "steps", [])] or [pipeline]
    for step in steps:
        params = step.get_params(deep=False) if hasattr(step, "get_params") else {}
        if params.get("n_jobs") not in (None, 1):
            step.set_params(n_jobs=1)
    return pipeline


def _reference_profile(registry: ModelSource, info: ModelVersionInfo) -> Any | None:
    """The version's training profile, or None (drift is then not watched) when it has
    none or it cannot be read."""
    from conveyor.errors import DataError
    from conveyor.monitoring.profile import ReferenceProfile

    try:
        return ReferenceProfile.from_dict(registry.load_reference_profile(info))
    except (RegistryError, DataError) as exc:
        logger.info("drift of version %s is not watched: %s", info.version, exc)
        return None


def load_slot(settings: ServingSettings) -> ModelSlot:
    """Resolve, load and warm the configured model.

    Args:
        settings: the model URI and the registry to load it from.

    Returns:
        The warmed slot.

    Raises:
        RegistryError: the store is unreachable, the model/alias/version is unknown, the
            model cannot be loaded, has no named input columns, or fails its warm-up.
    """
    registry, info = resolve_model(settings)
    return load_version(registry, info, runtime=settings.runtime)
