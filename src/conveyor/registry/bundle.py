"""A registered model version exported to a folder, and served from it with no registry.

This is what a baked image holds (``conveyor image build``). The folder::

    version.json      the version as the registry records it (name, number, run id, the
                      tags carrying its signed digests) and its lineage, where and when
                      it was exported
    model/            the version's MLflow model folder, exactly as it was signed
    onnx/model.onnx   its parity-verified ONNX graph, when it has one
    profile.json      its training data's reference profile, when it has one

:func:`export_bundle` reads everything through the registry and checks each part against
the version's signature before writing it. :class:`ModelBundle` offers the registry
methods serving uses; it checks the files against the signed digests on every load, and
the signature itself when a signing key is configured (``CONVEYOR_SIGNING_KEY``): without
one, the check made at export is what vouches for the signature.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conveyor.errors import RegistryError
from conveyor.redaction import redact
from conveyor.registry.model_loading import download_artifacts, load_local_sklearn_model
from conveyor.registry.signing import KEY_ENV, ModelClaims
from conveyor.registry.source import BUNDLE_SCHEME
from conveyor.registry.store import ModelVersionInfo
from conveyor.registry.verified import (
    check_model_files,
    check_onnx,
    signed_source,
    trusted_types,
    verified_claims,
)

if TYPE_CHECKING:
    from conveyor.registry.store import ModelRegistry

__all__ = ["FORMAT", "ModelBundle", "export_bundle"]

logger = logging.getLogger(__name__)

FORMAT = 1
RECORD = "version.json"
MODEL_DIR = "model"
ONNX_FILE = "onnx/model.onnx"
PROFILE_FILE = "profile.json"


def _what(info: ModelVersionInfo) -> str:
    return f"model {info.name!r} version {info.version}"


def export_bundle(registry: ModelRegistry, info: ModelVersionInfo, folder: Path) -> Path:
    """Write a version's bundle into ``folder`` (which must not exist yet).

    Args:
        registry: the registry holding the version (a signing key must be in force).
        info: the version.
        folder: where to write it.

    Returns:
        ``folder``.

    Raises:
        ModelIntegrityError: unsigned, a wrong signature, or files that changed since
            registration.
        ConfigError: no signing key is configured for the store.
        RegistryError: the store cannot be read.
    """
    from conveyor.registry.profiles import load_reference_profile

    claims = registry.verify_version(info)
    folder.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="conveyor-bundle-") as tmp:
        try:
            local = download_artifacts(registry.tracking_uri, signed_source(info), Path(tmp))
        except Exception as exc:
            raise RegistryError(f"{_what(info)}: downloading its model files: {exc}") from exc
        check_model_files(claims, info, local)
        shutil.copytree(local, folder / MODEL_DIR)
    onnx = registry.load_onnx(info)  # checked against the signed digest
    if onnx is not None:
        (folder / ONNX_FILE).parent.mkdir()
        (folder / ONNX_FILE).write_bytes(onnx)
    try:
        profile: dict[str, Any] | None = load_reference_profile(registry, info)
    except RegistryError as exc:
        logger.info("%s: exported without a reference profile: %s", _what(info), exc)
        profile = None
    if profile is not None:
        (folder / PROFILE_FILE).write_text(json.dumps(profile), encoding="utf-8")
    record = {
        "format": FORMAT,
        "version": info.to_dict(),
        "lineage": registry.lineage(info.name, info.version),
        "exported_from": redact(registry.tracking_uri),
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "onnx": onnx is not None,
        "profile": profile is not None,
    }
    (folder / RECORD).write_text(json.dumps(record, indent=2, default=str), encoding="utf-8")
    logger.info("exported %s to %s", _what(info), folder)
    return folder


class ModelBundle:
    """An exported version, read back: the registry methods serving calls.

    Args:
        folder: the bundle's folder.

    Raises:
        RegistryError: no bundle there, or one this Conveyor cannot read.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        path = folder / RECORD
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RegistryError(f"no model bundle at {folder}: {exc}") from exc
        if record.get("format") != FORMAT:
            raise RegistryError(
                f"{path}: bundle format {record.get('format')!r}, this Conveyor reads {FORMAT}"
            )
        version = record["version"]
        self.record: dict[str, Any] = record
        self.info = ModelVersionInfo(
            name=version["name"],
            version=str(version["version"]),
            run_id=version["run_id"],
            aliases=tuple(version.get("aliases", ())),
            tags=dict(version.get("tags", {})),
            created_at=version.get("created_at", ""),
            source=version.get("source", ""),
        )

    @classmethod
    def from_uri(cls, model_uri: str) -> ModelBundle:
        """The bundle a ``bundle:/path`` URI names."""
        return cls(Path(model_uri.removeprefix(BUNDLE_SCHEME)))

    @property
    def tracking_uri(self) -> str:
        return f"{BUNDLE_SCHEME}{self.folder}"

    def _claims(self) -> ModelClaims:
        if os.environ.get(KEY_ENV, "").strip():
            return verified_claims(self.tracking_uri, self.info)
        logger.info(
            "%s: files checked against the digests signed at registration; the signature "
            "itself was checked at export (set %s to check it at start too)",
            _what(self.info),
            KEY_ENV,
        )
        return ModelClaims.from_tags(self.info.tags, what=_what(self.info))

    def _check(self, name: str, version: str) -> None:
        if (name, str(version)) != (self.info.name, self.info.version):
            raise RegistryError(
                f"this bundle holds model {self.info.name!r} version {self.info.version} "
                f"only, not {name!r} version {version}"
            )

    def get_version(self, name: str, version: str) -> ModelVersionInfo:
        """The bundled version, if that is the one asked for."""
        self._check(name, version)
        return self.info

    def get_alias(self, name: str, alias: str) -> ModelVersionInfo | None:
        """The bundled version when it carried ``alias`` at export; else None."""
        return self.info if name == self.info.name and alias in self.info.aliases else None

    def list_versions(self, name: str) -> list[ModelVersionInfo]:
        """The one bundled version."""
        self._check(name, self.info.version)
        return [self.info]

    def load_pipeline(self, model_uri: str) -> Any:
        """The bundled scikit-learn pipeline, once its files match the signed digest.

        Raises:
            ModelIntegrityError: unsigned, a wrong signature, or changed files.
            RegistryError: not a scikit-learn model Conveyor loads.
        """
        claims = self._claims()
        return load_local_sklearn_model(
            self.folder / MODEL_DIR,
            model_uri,
            verify=lambda folder: check_model_files(claims, self.info, folder),
            trusted_types=trusted_types(self.info),
        )

    def load_onnx(self, info: ModelVersionInfo) -> bytes | None:
        """The bundled ONNX graph (checked against the signed digest), or None."""
        self._check(info.name, info.version)
        path = self.folder / ONNX_FILE
        if not path.is_file():
            return None
        return check_onnx(self._claims(), info, path.read_bytes())

    def load_reference_profile(self, info: ModelVersionInfo) -> dict[str, Any]:
        """The bundled reference profile.

        Raises:
            RegistryError: the version was exported without one.
        """
        self._check(info.name, info.version)
        path = self.folder / PROFILE_FILE
        if not path.is_file():
            raise RegistryError(f"{_what(info)}: the bundle holds no reference profile")
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return data

    def get_model_tag(self, name: str, key: str) -> str | None:
        """No registered-model tags travel with a bundle (the routing is the settings')."""
        return None

    def set_model_tag(self, name: str, key: str, value: str | None) -> None:
        """Refused: a bundle is immutable.

        Raises:
            RegistryError: always.
        """
        raise RegistryError(
            f"model {name!r} is served from a bundle ({self.folder}): there is no registry "
            "to store shared settings in"
        )
