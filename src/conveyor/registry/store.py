"""ModelRegistry: Conveyor's adapter to the MLflow tracking store and model registry.

Aliases carry the deployment state of a registered model:

- ``champion``: the version serving traffic. ``promote`` moves it.
- ``previous``: the champion before the last move; ``rollback`` moves ``champion`` back to
  it, and ``previous`` then points at the version rolled back from (so a second rollback
  undoes the first).
- ``challenger``: a registered version that did not pass the promotion gate (reason in
  the version tag ``conveyor.gate_reason``).

Every call orders its writes so that an interruption never leaves a model without a
champion where it had one. MLflow is imported lazily (it costs ~3 s); library errors are
wrapped into :class:`RegistryError` / :class:`PromotionError` with one clear line.
"""

from __future__ import annotations

import logging
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse
from urllib.request import url2pathname

from conveyor.errors import PromotionError, RegistryError
from conveyor.registry.creation import open_client
from conveyor.registry.outages import apply_http_limits, registry_error
from conveyor.registry.tracking import (
    ONNX_MODEL_PATH,
    ONNX_TAG,
    PICKLE_RISK_TAG,
    TRUSTED_TYPES_TAG,
    TrainingRun,
    describe_run,
    ensure_experiment,
    fluent_store,
    iso_time,
    log_training_run,
    quiet_mlflow,
    resolve_store,
)
from conveyor.registry.verified import (
    check_onnx,
    load_verified_pipeline,
    signature_tags,
    verified_claims,
)

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient
    from mlflow.entities import Run
    from mlflow.entities.model_registry import ModelVersion

    from conveyor.registry.onnx_export import OnnxExport
    from conveyor.registry.signing import ModelClaims

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "KEY_TAG",
    "PREVIOUS",
    "REPORT_PATH",
    "ModelRegistry",
    "ModelVersionInfo",
]

logger = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS = "previous"
KEY_TAG = "conveyor.key"
GATE_REASON_TAG = "conveyor.gate_reason"
REPORT_PATH = "reports/model_report.html"
READY_TIMEOUT_S = 300.0
_NOT_FOUND = "RESOURCE_DOES_NOT_EXIST"
_EXISTS = ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS")


@dataclass(frozen=True)
class ModelVersionInfo:
    """One registered model version as Conveyor sees it."""

    name: str
    version: str
    run_id: str
    aliases: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)
    created_at: str = ""
    source: str = ""

    @property
    def uri(self) -> str:
        """``models:/<name>/<version>``, loadable with ``ModelRegistry.load_pipeline``."""
        return f"models:/{self.name}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "name": self.name,
            "version": self.version,
            "run_id": self.run_id,
            "aliases": list(self.aliases),
            "tags": dict(self.tags),
            "created_at": self.created_at,
            "source": self.source,
        }


def _error_code(exc: BaseException) -> str:
    return str(getattr(exc, "error_code", ""))


def _quoted(value: str, what: str) -> str:
    if "'" in value or "\\" in value:
        raise RegistryError(f"{what} {value!r} must not contain quotes or backslashes")
    return f"'{value}'"


class ModelRegistry:
    """Tracking runs, registered versions, aliases and lineage on one MLflow store.

    Example:
        >>> registry = ModelRegistry("sqlite:///.conveyor/mlflow.db")  # doctest: +SKIP
        >>> registry.get_alias("adult-income", "champion")  # doctest: +SKIP
    """

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

    def report_location(self, name: str, version: str) -> str | None:
        """Where the HTML model report of a version is.

        Returns:
            A local file path when the store keeps its artifacts on this machine (open it
            in a browser), else the artifact URI (``mlflow artifacts download -u URI``);
            None when the version's run logged no report.

        Raises:
            PromotionError: unknown model or version.
            RegistryError: its run or artifacts cannot be read.
        """
        info = self.get_version(name, version)
        run = self._run(info.run_id)
        with self._errors(f"listing the reports of run {info.run_id}"):
            listed = {a.path for a in self.client.list_artifacts(info.run_id, "reports")}
        if REPORT_PATH not in listed:
            return None
        uri = f"{str(run.info.artifact_uri).rstrip('/')}/{REPORT_PATH}"
        parsed = urlparse(uri)
        return url2pathname(parsed.path) if parsed.scheme == "file" else uri

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
            if _error_code(exc) == _NOT_FOUND:
                raise RegistryError(f"no MLflow run with id {run_id!r}") from exc
            raise registry_error(f"reading run {run_id!r}", exc, store=self.tracking_uri) from exc

    # ---------------------------------------------------------------- versions
    def register(
        self, *, name: str, run_id: str, key: str, tags: dict[str, str]
    ) -> ModelVersionInfo:
        """Register the model of a finished run, once per ``key``.

        If a version of ``name`` already carries ``conveyor.key == key`` it is returned and
        nothing is created, so re-running or resuming after a crash makes no duplicate.

        Returns:
            The (new or existing) version, READY, with ``tags`` and ``conveyor.key`` set.

        Raises:
            RegistryError: the run is unknown, not FINISHED, or logged no model.
        """
        existing = self.find_version(name, key=key)
        if existing is not None:
            logger.info("model %s version %s already has key %s", name, existing.version, key)
            return existing
        run = self._run(run_id)
        if run.info.status != "FINISHED":
            raise RegistryError(f"run {run_id} is {run.info.status}; only a finished run registers")
        model_uri = run.data.tags.get("conveyor.model_uri")
        if not model_uri:
            raise RegistryError(f"run {run_id} logged no model")
        version_tags = {**tags, KEY_TAG: key, "conveyor.run_id": run_id}
        uri = self.tracking_uri
        for copied in ("conveyor.serialization", PICKLE_RISK_TAG, TRUSTED_TYPES_TAG):
            if value := run.data.tags.get(copied):
                version_tags[copied] = value
        version_tags.update(self._signature(run, model_uri))
        # The store resolves a models:/<id> source through MLflow's global URIs.
        with self._errors(f"registering model {name!r} from run {run_id}"), fluent_store(uri):
            self._ensure_registered_model(name)
            created = self.client.create_model_version(
                name,
                source=model_uri,
                run_id=run_id,
                tags=version_tags,
                model_id=run.data.tags.get("conveyor.model_id"),
                await_creation_for=0,
            )
            self._wait_ready(name, str(created.version))
        logger.info("registered model %s version %s", name, created.version)
        return self.get_version(name, str(created.version))

    def _signature(self, run: Run, model_uri: str) -> dict[str, str]:
        """The digest and signature tags of a run's model files and ONNX graph."""
        with self._errors(f"reading the model files of run {run.info.run_id}"):
            return signature_tags(self.tracking_uri, run, model_uri)

    def verify_version(self, info: ModelVersionInfo) -> ModelClaims:
        """The version's signed claims, once its signature checks out with the keys in
        force (its files are checked against them when they are loaded).

        Raises:
            ModelIntegrityError: unsigned, or a wrong signature.
            ConfigError: no signing key is configured for this store.
        """
        return verified_claims(self.tracking_uri, info)

    def _ensure_registered_model(self, name: str) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.create_registered_model(name)
        except MlflowException as exc:
            if _error_code(exc) not in _EXISTS:
                raise

    def _wait_ready(self, name: str, version: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            mv = self.client.get_model_version(name, version)
            if mv.status == "READY":
                return
            if mv.status == "FAILED_REGISTRATION" or time.monotonic() > deadline:
                raise RegistryError(
                    f"model {name!r} version {version} is {mv.status}: {mv.status_message or ''}"
                )
            time.sleep(0.5)

    def find_version(self, name: str, *, key: str) -> ModelVersionInfo | None:
        """The version of ``name`` registered with ``key`` (the oldest if several), or None."""
        query = f"name = {_quoted(name, 'model name')} and tags.`{KEY_TAG}` = {_quoted(key, 'key')}"
        with self._errors(f"searching versions of {name!r}"):
            found = self.client.search_model_versions(query)
        if not found:
            return None
        oldest = min(found, key=lambda mv: int(mv.version))
        return self.get_version(name, str(oldest.version))

    def get_version(self, name: str, version: str) -> ModelVersionInfo:
        """One version of a registered model.

        Raises:
            PromotionError: unknown model name or version (the message lists the known ones).
        """
        from mlflow.exceptions import MlflowException

        aliases = self._aliases(name)
        try:
            mv = self.client.get_model_version(name, str(version))
        except MlflowException as exc:
            if _error_code(exc) not in (_NOT_FOUND, "INVALID_PARAMETER_VALUE"):
                what = f"reading {name!r} version {version}"
                raise registry_error(what, exc, store=self.tracking_uri) from exc
            known = ", ".join(v.version for v in self.list_versions(name)) or "none"
            raise PromotionError(
                f"model {name!r} has no version {version!r} (versions: {known})"
            ) from exc
        return self._info(mv, aliases)

    def list_versions(self, name: str) -> list[ModelVersionInfo]:
        """All versions of a registered model, newest first.

        Raises:
            PromotionError: unknown model name.
        """
        aliases = self._aliases(name)
        with self._errors(f"listing versions of {name!r}"):
            found = self._search_versions(name)
        return [self._info(mv, aliases) for mv in sorted(found, key=lambda m: -int(m.version))]

    def _search_versions(self, name: str) -> list[ModelVersion]:
        versions: list[ModelVersion] = []
        token: str | None = None
        while True:
            page = self.client.search_model_versions(
                f"name = {_quoted(name, 'model name')}", page_token=token
            )
            versions.extend(page)
            token = page.token
            if not token:
                return versions

    def set_version_tags(self, name: str, version: str, tags: dict[str, str]) -> None:
        """Set tags on a version (existing keys are overwritten).

        Raises:
            PromotionError: unknown model or version.
        """
        self.get_version(name, version)
        with self._errors(f"tagging {name!r} version {version}"):
            for key, value in tags.items():
                self.client.set_model_version_tag(name, str(version), key, str(value))

    def _info(self, mv: ModelVersion, aliases: dict[str, str]) -> ModelVersionInfo:
        version = str(mv.version)
        return ModelVersionInfo(
            name=str(mv.name),
            version=version,
            run_id=str(mv.run_id or ""),
            aliases=tuple(sorted(a for a, v in aliases.items() if v == version)),
            tags={str(k): str(v) for k, v in (mv.tags or {}).items()},
            created_at=iso_time(mv.creation_timestamp),
            source=str(mv.source or ""),
        )

    # ---------------------------------------------------------------- models & aliases
    def get_model_tag(self, name: str, key: str) -> str | None:
        """A tag of the registered model (not of a version); None when it is not set.

        Raises:
            PromotionError: no registered model of that name.
            RegistryError: the registry did not answer.
        """
        from mlflow.exceptions import MlflowException

        try:
            model = self.client.get_registered_model(name)
        except MlflowException as exc:
            if _error_code(exc) != _NOT_FOUND:
                raise registry_error(
                    f"reading model {name!r}", exc, store=self.tracking_uri
                ) from exc
            raise PromotionError(f"no registered model named {name!r}") from exc
        value = (model.tags or {}).get(key)
        return None if value is None else str(value)

    def set_model_tag(self, name: str, key: str, value: str | None) -> None:
        """Set (or, with None, delete) a tag of the registered model.

        Raises:
            RegistryError: the registry refused or did not answer.
        """
        with self._errors(f"tagging model {name!r}"):
            if value is None:
                if self.get_model_tag(name, key) is not None:
                    self.client.delete_registered_model_tag(name, key)
            else:
                self.client.set_registered_model_tag(name, key, value)

    def _aliases(self, name: str) -> dict[str, str]:
        """Alias -> version of a registered model.

        Raises:
            PromotionError: no registered model of that name.
        """
        from mlflow.exceptions import MlflowException

        try:
            model = self.client.get_registered_model(name)
        except MlflowException as exc:
            if _error_code(exc) != _NOT_FOUND:
                raise registry_error(
                    f"reading model {name!r}", exc, store=self.tracking_uri
                ) from exc
            known = ", ".join(sorted(m["name"] for m in self.list_models())) or "none"
            raise PromotionError(f"no registered model named {name!r} (known: {known})") from exc
        return {str(alias): str(version) for alias, version in (model.aliases or {}).items()}

    def list_models(self) -> list[dict[str, Any]]:
        """Every registered model: name, latest version, champion/challenger/previous, count."""
        with self._errors("listing registered models"):
            models: list[Any] = []
            token: str | None = None
            while True:
                page = self.client.search_registered_models(page_token=token)
                models.extend(page)
                token = page.token
                if not token:
                    break
            return [self._summary(m) for m in sorted(models, key=lambda m: m.name)]

    def _summary(self, model: Any) -> dict[str, Any]:
        versions = [int(mv.version) for mv in self._search_versions(model.name)]
        aliases = {str(a): str(v) for a, v in (model.aliases or {}).items()}
        return {
            "name": model.name,
            "latest": str(max(versions)) if versions else None,
            "champion": aliases.get(CHAMPION),
            "challenger": aliases.get(CHALLENGER),
            "previous": aliases.get(PREVIOUS),
            "versions": len(versions),
        }

    def get_alias(self, name: str, alias: str) -> ModelVersionInfo | None:
        """The version an alias points at; None if the model or the alias does not exist."""
        try:
            aliases = self._aliases(name)
        except PromotionError:
            return None
        if alias not in aliases:
            return None
        return self.get_version(name, aliases[alias])

    def _set_alias(self, name: str, alias: str, version: str) -> None:
        with self._errors(f"setting alias {alias!r} of {name!r} to version {version}"):
            self.client.set_registered_model_alias(name, alias, str(version))

    def _delete_alias(self, name: str, alias: str) -> None:
        with self._errors(f"deleting alias {alias!r} of {name!r}"):
            self.client.delete_registered_model_alias(name, alias)

    def promote(self, name: str, version: str) -> ModelVersionInfo:
        """Make ``version`` the champion; the champion it replaces becomes ``previous``.

        Writes ``previous`` first, then ``champion``, then drops ``challenger`` if it
        pointed at this version: an interruption leaves the old or the new champion.

        Raises:
            PromotionError: unknown model or version.
        """
        target = self.get_version(name, version)
        self.verify_version(target)
        aliases = self._aliases(name)
        current = aliases.get(CHAMPION)
        if current is not None and current != target.version:
            self._set_alias(name, PREVIOUS, current)
        if current != target.version:
            self._set_alias(name, CHAMPION, target.version)
            self.set_version_tags(name, target.version, {"conveyor.promoted_at": _now()})
        if aliases.get(CHALLENGER) == target.version:
            self._delete_alias(name, CHALLENGER)
        logger.info("model %s: champion %s -> %s", name, current, target.version)
        return self.get_version(name, target.version)

    def mark_challenger(self, name: str, version: str, *, reason: str) -> ModelVersionInfo:
        """Alias ``version`` as ``challenger`` with the gate's reason; the champion stays.

        A version that is already the champion keeps its aliases (it cannot challenge
        itself); only the reason tag is recorded.

        Raises:
            PromotionError: unknown model or version.
        """
        target = self.get_version(name, version)
        self.set_version_tags(name, target.version, {GATE_REASON_TAG: reason[:5000]})
        if CHAMPION in target.aliases:
            logger.warning("model %s version %s is the champion; not a challenger", name, version)
        else:
            self._set_alias(name, CHALLENGER, target.version)
        return self.get_version(name, target.version)

    def rollback(self, name: str) -> ModelVersionInfo:
        """Move ``champion`` back to the ``previous`` version; ``previous`` then points at
        the version rolled back from (a second rollback undoes the first).

        Returns:
            The new champion.

        Raises:
            PromotionError: unknown model, no ``previous`` alias, or it is the champion already.
        """
        aliases = self._aliases(name)
        previous, current = aliases.get(PREVIOUS), aliases.get(CHAMPION)
        if previous is None:
            raise PromotionError(f"model {name!r} has no 'previous' version to roll back to")
        if previous == current:
            raise PromotionError(f"model {name!r}: version {previous} is already the champion")
        self.verify_version(self.get_version(name, previous))
        self._set_alias(name, CHAMPION, previous)
        if current is None:
            self._delete_alias(name, PREVIOUS)
        else:
            self._set_alias(name, PREVIOUS, current)
            self.set_version_tags(name, current, {"conveyor.rolled_back_at": _now()})
        logger.info("model %s: rolled back champion %s -> %s", name, current, previous)
        return self.get_version(name, previous)

    # ---------------------------------------------------------------- lineage & loading
    def lineage(self, name: str, version: str) -> dict[str, Any]:
        """Where a version came from: run, params, metrics, ``conveyor.*`` tags, data, files.

        Raises:
            PromotionError: unknown model or version.
            RegistryError: its run cannot be read.
        """
        info = self.get_version(name, version)
        run = self._run(info.run_id)
        with self._errors(f"listing artifacts of run {info.run_id}"):
            record = describe_run(self.client, run)
        return {"version": info.to_dict(), **record, "model_uri": info.source}

    def load_pipeline(self, model_uri: str) -> Any:
        """Load a registered version back as the fitted pipeline, after checking its files
        against the signature recorded at registration.

        Args:
            model_uri: ``models:/name@alias`` or ``models:/name/3``.

        Returns:
            The scikit-learn pipeline.

        Raises:
            ModelIntegrityError: the version is unsigned, its signature is wrong, or its
                files changed since registration (nothing of it is deserialised).
            RegistryError: unknown model, alias or version; not a registered version's URI;
                not a scikit-learn model; its skops allowlist names a type not on the list.
        """
        info = self.resolve(model_uri)
        with self._errors(f"loading {model_uri}"):
            return load_verified_pipeline(self.tracking_uri, info)

    def resolve(self, model_uri: str) -> ModelVersionInfo:
        """The registered version a ``models:/name@alias`` or ``models:/name/N`` URI names.

        Raises:
            RegistryError: another kind of URI, or an unknown model, alias or version.
        """
        ref = model_uri.removeprefix("models:/")
        if model_uri.startswith("models:/") and "@" in ref:
            name, alias = ref.split("@", 1)
            found = self.get_alias(name, alias)
            if found is None:
                self._aliases(name)  # raises for an unknown model
                raise RegistryError(f"model {name!r} has no alias {alias!r}")
            return found
        name, _, version = ref.rpartition("/")
        if not model_uri.startswith("models:/") or not name or not version.isdigit():
            raise RegistryError(
                f"{model_uri!r}: load a registered version (models:/<name>@<alias> or"
                " models:/<name>/<version>)"
            )
        return self.get_version(name, version)

    def load_reference_profile(self, info: ModelVersionInfo) -> dict[str, Any]:
        """The version's reference profile (``registry.profiles.load_reference_profile``)."""
        from conveyor.registry.profiles import load_reference_profile

        return load_reference_profile(self, info)

    def load_onnx(self, info: ModelVersionInfo) -> bytes | None:
        """The parity-verified ONNX model of a version's run, from this registry only.

        Args:
            info: the version (its run logged the export).

        Returns:
            The serialised ONNX model; None when the run's export was not verified
            (``conveyor.onnx`` tag) or its ``onnx/model.onnx`` artifact is missing.

        Raises:
            RegistryError: the run or its artifacts cannot be read.
        """
        claims = self.verify_version(info)
        run = self._run(info.run_id)
        status = run.data.tags.get(ONNX_TAG)
        if status != "verified":
            logger.debug("run %s: ONNX export %s", info.run_id, status or "absent")
            return None
        folder = Path(ONNX_MODEL_PATH).parent.as_posix()
        with self._errors(f"reading the ONNX model of run {info.run_id}"):
            listed = {a.path for a in self.client.list_artifacts(info.run_id, folder)}
            if ONNX_MODEL_PATH not in listed:
                logger.warning("run %s is tagged verified but has no %s", info.run_id, folder)
                return None
            with tempfile.TemporaryDirectory(prefix="conveyor-onnx-") as tmp:
                local = self.client.download_artifacts(info.run_id, ONNX_MODEL_PATH, tmp)
                return check_onnx(claims, info, Path(local).read_bytes())

    def ui_command(self, *, port: int = 5000) -> list[str]:
        """The argv that runs ``mlflow ui`` on this store (one worker, localhost).

        Raises:
            RegistryError: the store is already a tracking server (open its URL instead).
        """
        if self.tracking_uri.startswith(("http://", "https://")):
            raise RegistryError(f"{self.tracking_uri} is a tracking server; open it in a browser")
        argv = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", self.tracking_uri]
        if self.artifact_root is not None:
            argv += ["--default-artifact-root", self.artifact_root]
        return [*argv, "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()
