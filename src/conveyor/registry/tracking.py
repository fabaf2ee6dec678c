"""MLflow tracking: training runs in (params, metrics, files, model, dataset).

Reading them back lives beside it: lineage records in ``registry.lineage``, models in
``registry.model_loading``, the dataset input in ``registry.dataset_inputs``.

MLflow's fluent API (``mlflow.start_run``, ``log_model``, ``log_input``) works on a
process-global tracking URI. ``fluent_store`` points it at our store only for the duration
of a call, under a lock, and then restores the URIs and environment variables it found,
so a ``ModelRegistry`` never leaks global state into its host process.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conveyor.errors import RegistryError, ServiceUnavailableError
from conveyor.registry.creation import uninterrupted
from conveyor.registry.dataset_inputs import dataset_source, redact_uri, sample_schema
from conveyor.registry.outages import registry_error
from conveyor.registry.serialization import (
    PICKLE_RISK,
    SerializationChoice,
    choose_serialization,
    code_paths,
    pip_requirements,
)

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient

    from conveyor.registry.onnx_export import OnnxExport

__all__ = [
    "MODEL_NAME",
    "ONNX_MODEL_PATH",
    "ONNX_PARITY_PATH",
    "ONNX_TAG",
    "PICKLE_RISK_TAG",
    "TRUSTED_TYPES_TAG",
    "TrainingRun",
    "artifact_folder",
    "ensure_experiment",
    "first_line",
    "flatten_params",
    "fluent_store",
    "import_mlflow",
    "log_training_run",
    "onnx_tags",
    "quiet_mlflow",
    "resolve_store",
]

logger = logging.getLogger(__name__)

MODEL_NAME = "model"
ONNX_TAG = "conveyor.onnx"
ONNX_MODEL_PATH = "onnx/model.onnx"
ONNX_PARITY_PATH = "onnx/parity.json"
PICKLE_RISK_TAG = "conveyor.pickle_risk"
TRUSTED_TYPES_TAG = "conveyor.trusted_types"
INPUT_EXAMPLE_ROWS = 5
MAX_PARAM_VALUE = 6000  # MLflow's limits (mlflow.utils.validation)
MAX_TAG_VALUE = 8000
MAX_KEY = 250
PARAMS_PER_BATCH = 100
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".svg", ".gif"})

_REGISTRATION_MODULES = (
    "mlflow.data.pandas_dataset",
    "mlflow.models",
    "mlflow.sklearn",
    "mlflow.store.model_registry.sqlalchemy_store",
    "mlflow.store.tracking.sqlalchemy_store",
)
_FLUENT_LOCK = threading.RLock()
_URI_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


def quiet_mlflow() -> None:
    """Telemetry off; no run links, progress bars or INFO chatter (user settings win)."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")


def import_mlflow() -> None:
    """Import the parts of MLflow a registration uses (about a second), ahead of it;
    nothing is opened or written."""
    import importlib

    quiet_mlflow()
    for module in _REGISTRATION_MODULES:
        importlib.import_module(module)


@contextmanager
def fluent_store(uri: str) -> Iterator[None]:
    """Point MLflow's fluent API at ``uri`` for the duration of the block.

    Args:
        uri: tracking and registry URI.

    Yields:
        Nothing; on exit the previous URIs and ``MLFLOW_*_URI`` variables are restored.
    """
    quiet_mlflow()
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    with _FLUENT_LOCK:
        saved_env = {key: os.environ.get(key) for key in _URI_ENV}
        saved_tracking = tracking_utils._tracking_uri
        saved_registry = registry_utils._registry_uri
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        try:
            yield
        finally:
            mlflow.set_tracking_uri(saved_tracking)  # type: ignore[arg-type]  # None unsets
            registry_utils._registry_uri = saved_registry
            for key, value in saved_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested params as ``{"a.b": "value"}`` strings, cut to MLflow's length limits.

    Args:
        params: possibly nested mapping (a config dump, estimator params).
        prefix: key prefix used for recursion.

    Returns:
        Flat mapping of string keys to string values; lists are JSON.
    """
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten_params(value, prefix=f"{name}."))
            continue
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        flat[name[:MAX_KEY]] = _cut(text, MAX_PARAM_VALUE)
    return flat


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def artifact_folder(path: Path) -> str:
    """Where a run artifact goes: images under ``plots/``, everything else under ``reports/``."""
    return "plots" if path.suffix.lower() in IMAGE_SUFFIXES else "reports"


def ensure_experiment(client: MlflowClient, name: str, artifact_root: str | None) -> str:
    """The id of the experiment ``name``, created (or restored from deleted) as needed.

    Args:
        client: an MLflow client on the store.
        name: experiment name.
        artifact_root: base URI for the experiment's artifacts; ``None``: the store's default.

    Returns:
        The experiment id.
    """
    found = client.get_experiment_by_name(name)
    if found is not None:
        if found.lifecycle_stage == "deleted":
            client.restore_experiment(found.experiment_id)
        return str(found.experiment_id)
    location = None
    if artifact_root is not None:
        location = f"{artifact_root.rstrip('/')}/{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}"
    return str(client.create_experiment(name, artifact_location=location))


@dataclass(frozen=True)
class TrainingRun:
    """Everything one training run records (see ``ModelRegistry.log_training_run``)."""

    experiment: str
    run_name: str
    params: Mapping[str, Any]
    metrics: Mapping[str, float]
    artifacts: list[Path]
    pipeline: Any
    input_example: pd.DataFrame
    dataset: pd.DataFrame
    dataset_name: str
    dataset_source: str
    dataset_digest: str
    target: str
    tags: Mapping[str, str]
    onnx: OnnxExport | None = None
    allow_pickle: bool = False
    trusted_types: tuple[str, ...] = ()

    def check(self) -> None:
        """Fail before a run exists when the request cannot succeed.

        Raises:
            RegistryError: a missing artifact, an empty input example, a target not in the data.
        """
        missing = [str(p) for p in self.artifacts if not Path(p).is_file()]
        if missing:
            raise RegistryError(f"run {self.run_name!r}: artifact not found: {missing[0]}")
        if len(self.input_example) == 0:
            raise RegistryError(f"run {self.run_name!r}: the input example has no rows")
        if self.target not in self.dataset.columns:
            raise RegistryError(
                f"run {self.run_name!r}: target column {self.target!r} is not in the dataset"
            )


def log_training_run(client: MlflowClient, uri: str, experiment_id: str, run: TrainingRun) -> str:
    """Record one training run; on any failure the run ends FAILED (KILLED if interrupted).

    Args:
        client: an MLflow client on the store.
        uri: the store's tracking URI (for the fluent calls).
        experiment_id: experiment to log into.
        run: what to record.

    Returns:
        The MLflow run id.

    Raises:
        RegistryError: anything failed; the message names the run and the cause.
    """
    run.check()
    tags = {k: _cut(str(v), MAX_TAG_VALUE) for k, v in run.tags.items()}
    run_id = str(client.create_run(experiment_id, run_name=run.run_name, tags=tags).info.run_id)
    status = "FAILED"
    try:
        # A Ctrl-C waits for the logging to end, then ends the run KILLED: raised inside
        # MLflow's database calls it can come out as another error (a driver failing to
        # roll back the statement it broke), and the run would end FAILED.
        with uninterrupted():
            _log_contents(client, uri, run_id, run)
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    except Exception as exc:
        raise _run_failed(run, run_id, exc, store=uri) from exc
    finally:
        client.set_terminated(run_id, status=status)
    return run_id


def _run_failed(run: TrainingRun, run_id: str, exc: Exception, *, store: str) -> RegistryError:
    """The error for a run whose logging failed: retryable when the store did not answer."""
    what = f"run {run.run_name!r} ({run_id}) failed"
    error = registry_error(what, exc, store=store)
    if isinstance(error, ServiceUnavailableError):
        return error
    if isinstance(exc, RegistryError):
        return RegistryError(f"{what}: {exc}")
    return RegistryError(f"{what}: {type(exc).__name__}: {first_line(exc)}")


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (MLflow's are long), for one-line errors."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def _log_contents(client: MlflowClient, uri: str, run_id: str, run: TrainingRun) -> None:
    from mlflow.entities import Metric, Param

    params = [Param(k, v) for k, v in flatten_params(run.params).items()]
    for start in range(0, len(params), PARAMS_PER_BATCH):
        client.log_batch(run_id, params=params[start : start + PARAMS_PER_BATCH])
    stamp = int(time.time() * 1000)
    metrics = [Metric(k, float(v), stamp, 0) for k, v in run.metrics.items()]
    client.log_batch(run_id, metrics=metrics)
    for path in run.artifacts:
        client.log_artifact(run_id, str(path), artifact_path=artifact_folder(Path(path)))
    choice = choose_serialization(
        run.pipeline, allow_pickle=run.allow_pickle, trusted_types=run.trusted_types
    )
    client.set_tag(run_id, "conveyor.serialization", choice.format)
    client.set_tag(run_id, "conveyor.serialization_reason", _cut(choice.reason, MAX_TAG_VALUE))
    if choice.format == "cloudpickle":
        client.set_tag(run_id, PICKLE_RISK_TAG, PICKLE_RISK)
    if run.trusted_types:
        client.set_tag(run_id, TRUSTED_TYPES_TAG, ",".join(run.trusted_types))
    if run.onnx is not None:
        _log_onnx(client, run_id, run.onnx)
    with fluent_store(uri):
        _log_model_and_dataset(client, run_id, run, choice)


def onnx_tags(export: OnnxExport) -> dict[str, str]:
    """The tags an ONNX export leaves on a run and its model version.

    Args:
        export: the export and its parity result.

    Returns:
        ``conveyor.onnx`` (status), with ``conveyor.onnx_reason`` and
        ``conveyor.onnx_max_abs_diff`` when known.
    """
    tags: dict[str, str] = {ONNX_TAG: export.status}
    if export.reason:
        tags[f"{ONNX_TAG}_reason"] = _cut(export.reason, MAX_TAG_VALUE)
    if export.max_abs_diff is not None:
        tags[f"{ONNX_TAG}_max_abs_diff"] = f"{export.max_abs_diff:.3g}"
    return tags


def _log_onnx(client: MlflowClient, run_id: str, export: OnnxExport) -> None:
    """``onnx/parity.json`` always, ``onnx/model.onnx`` when a graph was built (also a
    failed one, for inspection: only ``conveyor.onnx = verified`` is ever served)."""
    folder = Path(ONNX_MODEL_PATH).parent.as_posix()
    with tempfile.TemporaryDirectory(prefix="conveyor-onnx-") as tmp:
        if export.model is not None:
            path = Path(tmp) / Path(ONNX_MODEL_PATH).name
            path.write_bytes(export.model)
            client.log_artifact(run_id, str(path), artifact_path=folder)
        client.log_dict(run_id, export.to_dict(), ONNX_PARITY_PATH)
    for key, value in onnx_tags(export).items():
        client.set_tag(run_id, key, value)


def _log_model_and_dataset(
    client: MlflowClient, run_id: str, run: TrainingRun, choice: SerializationChoice
) -> None:
    import mlflow
    from mlflow.data.pandas_dataset import from_pandas
    from mlflow.models import infer_signature

    example = run.input_example.head(INPUT_EXAMPLE_ROWS)
    with warnings.catch_warnings():
        # MLflow hints about integer columns and ambiguous local sources; both are expected.
        warnings.filterwarnings("ignore", message=r"Hint: Inferred schema contains integer")
        warnings.filterwarnings("ignore", message=r"The specified dataset source can be")
        signature = infer_signature(run.input_example, run.pipeline.predict(run.input_example))
        with mlflow.start_run(run_id=run_id):
            info = mlflow.sklearn.log_model(
                run.pipeline,
                name=MODEL_NAME,
                signature=signature,
                input_example=example,
                pip_requirements=pip_requirements(choice),
                serialization_format=choice.format,
                skops_trusted_types=list(choice.trusted_types) or None,
                code_paths=code_paths(choice) or None,
                tags={"conveyor.serialization": choice.format},
            )
            client.set_tag(run_id, "conveyor.model_id", str(info.model_id))
            client.set_tag(run_id, "conveyor.model_uri", str(info.model_uri))
            dataset = from_pandas(
                run.dataset,
                source=dataset_source(redact_uri(run.dataset_source)),
                name=run.dataset_name,
                targets=run.target,
                digest=run.dataset_digest,
            )
            # MLflow infers the dataset schema value by value over every row (~30 s on 1M
            # rows); the same schema comes from a sample holding every column's nulls.
            dataset.__dict__["schema"] = sample_schema(run.dataset)
            mlflow.log_input(dataset, context="training")


def resolve_store(uri: str, artifact_root: str | None) -> tuple[str, str | None]:
    """Absolute SQLite path (parent created) and its artifact folder; other URIs as given.

    Args:
        uri: the tracking URI.
        artifact_root: explicit artifact root, if any.

    Returns:
        The normalised URI and the artifact root for new experiments (None: store default).

    Raises:
        RegistryError: an in-memory SQLite URI, or the folder cannot be created.
    """
    if not uri.startswith("sqlite:///"):
        return uri, artifact_root
    path_part, sep, query = uri.removeprefix("sqlite:///").partition("?")
    if path_part in ("", ":memory:"):
        raise RegistryError(f"tracking URI {uri!r}: an embedded store needs a file path")
    db = Path(path_part).expanduser().resolve()
    try:
        db.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RegistryError(f"cannot create the store folder {db.parent}: {exc}") from exc
    root = artifact_root or (db.parent / "mlartifacts").as_uri()
    return f"sqlite:///{db}{sep}{query}", root
