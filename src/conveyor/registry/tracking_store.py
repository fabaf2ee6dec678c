"""TrackingStore: one MLflow store, opened lazily, and the runs Conveyor logs to it.

The base of :class:`~conveyor.registry.store.ModelRegistry`: the store's URIs and client,
the mapping of MLflow's errors to :class:`RegistryError`, training runs and their reports.
MLflow is imported lazily (it costs ~3 s).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conveyor.errors import RegistryError
from conveyor.registry.creation import open_client
from conveyor.registry.outages import apply_http_limits, registry_error
from conveyor.registry.tracking import (
    TrainingRun,
    ensure_experiment,
    log_training_run,
    quiet_mlflow,
    resolve_store,
)

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient
    from mlflow.entities import Run

    from conveyor.registry.onnx_export import OnnxExport

__all__ = ["NOT_FOUND", "REPORT_PATH", "TrackingStore", "error_code"]

logger = logging.getLogger(__name__)

REPORT_PATH = "reports/model_report.html"
NOT_FOUND = "RESOURCE_DOES_NOT_EXIST"


def error_code(exc: BaseException) -> str:
    """The ``error_code`` of an MLflow exception ("" when it has none)."""
    return str(getattr(exc, "error_code", ""))


class TrackingStore:
    """The MLflow store at one tracking URI: its client, its errors, its runs."""

    def __init__(self, tracking_uri: str, *, artifact_root: str | None = None) -> None:
        """Open (lazily) the store at ``tracking_uri``.

        Args:
            tracking_uri: ``sqlite:///path.db`` (parent folder created, artifacts in
                ``<folder>/mlartifacts``), ``http(s)://server`` or ``postgresql://...``.
            artifact_root: base URI for new experiments' artifacts (default: next to a
                SQLite file; the server's or MLflow's default otherwise).

        Raises:
            RegistryError: a SQLite URI without a file path.
        """
        quiet_mlflow()  # before anything imports mlflow: it configures its logging on import
        apply_http_limits()
        self.tracking_uri, self.artifact_root = resolve_store(tracking_uri, artifact_root)
        self._client: MlflowClient | None = None

    @property
    def client(self) -> MlflowClient:
        """The MLflow client on this store (created on first use)."""
        if self._client is None:
            self._client = open_client(self.tracking_uri)
        return self._client

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        from mlflow.exceptions import MlflowException

        try:
            yield
        except (MlflowException, OSError) as exc:
            raise registry_error(what, exc, store=self.tracking_uri) from exc

    # ---------------------------------------------------------------- tracking
    def log_training_run(
        self,
        *,
        experiment: str,
        run_name: str,
        params: dict[str, Any],
        metrics: dict[str, float],
        artifacts: list[Path],
        pipeline: Any,
        input_example: pd.DataFrame,
        dataset: pd.DataFrame,
        dataset_name: str,
        dataset_source: str,
        dataset_digest: str,
        target: str,
        tags: dict[str, str],
        onnx: OnnxExport | None = None,
        allow_pickle: bool = False,
        trusted_types: tuple[str, ...] = (),
    ) -> str:
        """Record one training run: params, metrics, plots/reports, model, dataset, lineage.

        ``allow_pickle`` and ``trusted_types`` are the project's ``registry`` settings
        (see ``conveyor.registry.serialization``).

        The model is logged under the name ``model`` with a signature and an input example;
        the dataset as an MLflow dataset input (context ``training``) with its digest; an
        ONNX export (``onnx``) as ``onnx/model.onnx`` and ``onnx/parity.json`` with the
        run tag ``conveyor.onnx`` = its status.

        Returns:
            The run id.

        Raises:
            RegistryError: anything failed; the run (if created) is marked FAILED.
        """
        run = TrainingRun(
            experiment=experiment,
            run_name=run_name,
            params=params,
            metrics=metrics,
            artifacts=list(artifacts),
            pipeline=pipeline,
            input_example=input_example,
            dataset=dataset,
            dataset_name=dataset_name,
            dataset_source=dataset_source,
            dataset_digest=dataset_digest,
            allow_pickle=allow_pickle,
            trusted_types=trusted_types,
            target=target,
            tags=tags,
            onnx=onnx,
        )
        run.check()
        with self._errors(f"logging run {run_name!r} to {self.tracking_uri}"):
            experiment_id = ensure_experiment(self.client, experiment, self.artifact_root)
            run_id = log_training_run(self.client, self.tracking_uri, experiment_id, run)
        logger.info("logged run %s (%s) in experiment %s", run_name, run_id, experiment)
        return run_id

    def log_report(self, run_id: str, path: Path) -> str:
        """Attach an HTML model report to a run, as ``reports/model_report.html``.

        Args:
            run_id: the training run (log the report before its version is registered).
            path: the local report file (any name).

        Returns:
            The report's path inside the run's artifacts.

        Raises:
            RegistryError: unknown run, unreadable file, or the store refused it.
        """
        folder, name = REPORT_PATH.rsplit("/", 1)
        with (
            self._errors(f"logging the model report to run {run_id}"),
            tempfile.TemporaryDirectory(prefix="conveyor-report-") as tmp,
        ):
            staged = shutil.copyfile(path, Path(tmp) / name)
            self.client.log_artifact(run_id, str(staged), artifact_path=folder)
        logger.info("logged %s to run %s", REPORT_PATH, run_id)
        return REPORT_PATH

    def run_metrics(self, run_id: str) -> dict[str, float]:
        """The metrics of a run (latest value per key).

        Raises:
            RegistryError: no such run.
        """
        return {k: float(v) for k, v in self._run(run_id).data.metrics.items()}

    def _run(self, run_id: str) -> Run:
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_run(run_id)
        except MlflowException as exc:
            if error_code(exc) == NOT_FOUND:
                raise RegistryError(f"no MLflow run with id {run_id!r}") from exc
            raise registry_error(f"reading run {run_id!r}", exc, store=self.tracking_uri) from exc
