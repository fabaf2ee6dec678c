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

:class:`ModelRegistry` moves the aliases and loads versions back; it stands on
:class:`~conveyor.registry.versions.VersionRegistry` (registered versions, aliases read)
and :class:`~conveyor.registry.tracking_store.TrackingStore` (the store and its runs).
"""

from __future__ import annotations

import logging
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

from conveyor.errors import PromotionError, RegistryError
from conveyor.registry.lineage import describe_run
from conveyor.registry.tracking import ONNX_MODEL_PATH, ONNX_TAG
from conveyor.registry.tracking_store import REPORT_PATH
from conveyor.registry.verified import check_onnx, load_verified_pipeline
from conveyor.registry.versions import (
    CHALLENGER,
    CHAMPION,
    PREVIOUS,
    ModelVersionInfo,
    VersionRegistry,
)

__all__ = ["ModelRegistry", "ModelVersionInfo"]

logger = logging.getLogger(__name__)

GATE_REASON_TAG = "conveyor.gate_reason"


class ModelRegistry(VersionRegistry):
    """Tracking runs, registered versions, aliases and lineage on one MLflow store.

    Example:
        >>> registry = ModelRegistry("sqlite:///.conveyor/mlflow.db")  # doctest: +SKIP
        >>> registry.get_alias("adult-income", "champion")  # doctest: +SKIP
    """

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
