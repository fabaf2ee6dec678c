"""Registered model versions: registration once per key, lookups, tags and aliases read.

:class:`VersionRegistry` adds the model registry to a
:class:`~conveyor.registry.tracking_store.TrackingStore`; :class:`ModelVersionInfo` is
one version as Conveyor sees it. Moving the aliases is
:class:`~conveyor.registry.store.ModelRegistry`'s.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from conveyor.errors import PromotionError, RegistryError
from conveyor.registry.lineage import iso_time
from conveyor.registry.outages import registry_error
from conveyor.registry.tracking import PICKLE_RISK_TAG, TRUSTED_TYPES_TAG, fluent_store
from conveyor.registry.tracking_store import NOT_FOUND, TrackingStore, error_code
from conveyor.registry.verified import signature_tags, verified_claims

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.entities.model_registry import ModelVersion

    from conveyor.registry.signing import ModelClaims

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "KEY_TAG",
    "PREVIOUS",
    "ModelVersionInfo",
    "VersionRegistry",
]

logger = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS = "previous"
KEY_TAG = "conveyor.key"
READY_TIMEOUT_S = 300.0
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


def _quoted(value: str, what: str) -> str:
    if "'" in value or "\\" in value:
        raise RegistryError(f"{what} {value!r} must not contain quotes or backslashes")
    return f"'{value}'"


class VersionRegistry(TrackingStore):
    """Registered models and their versions on one MLflow store."""

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
            if error_code(exc) not in _EXISTS:
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
            if error_code(exc) not in (NOT_FOUND, "INVALID_PARAMETER_VALUE"):
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
            if error_code(exc) != NOT_FOUND:
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
            if error_code(exc) != NOT_FOUND:
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
