"""Signing a version's files at registration, and loading them only once they check out.

The registry adapter (``ModelRegistry``) calls these with its store's tracking URI; they
download what MLflow holds, digest it (``conveyor.registry.signing``) and either sign the
digests or compare them with the signed ones before anything is deserialised.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conveyor.errors import ModelIntegrityError, RegistryError
from conveyor.registry.model_loading import download_artifacts, load_sklearn_model
from conveyor.registry.signing import (
    ModelClaims,
    check_digest,
    signing_keys,
    tree_digest,
    verify_claims,
)
from conveyor.registry.tracking import ONNX_MODEL_PATH, ONNX_TAG, TRUSTED_TYPES_TAG

if TYPE_CHECKING:
    from mlflow.entities import Run

    from conveyor.registry.store import ModelVersionInfo

__all__ = [
    "check_model_files",
    "check_onnx",
    "load_verified_pipeline",
    "signature_tags",
    "signed_source",
    "trusted_types",
    "verified_claims",
]


def signature_tags(tracking_uri: str, run: Run, model_uri: str) -> dict[str, str]:
    """The digest and signature tags of a run's model files and verified ONNX graph.

    Args:
        tracking_uri: the store (its signing key is made for an embedded store).
        run: the finished training run.
        model_uri: the run's logged model (``models:/m-...``), the version's source.

    Raises:
        ConfigError: no usable signing key for this store.
    """
    key = signing_keys(tracking_uri, create=True)[0]
    run_id = str(run.info.run_id)
    onnx = ""
    with tempfile.TemporaryDirectory(prefix="conveyor-sign-") as tmp:
        folder = download_artifacts(tracking_uri, model_uri, Path(tmp) / "model")
        if run.data.tags.get(ONNX_TAG) == "verified":
            graph = download_artifacts(tracking_uri, f"runs:/{run_id}/{ONNX_MODEL_PATH}", Path(tmp))
            onnx = hashlib.sha256(graph.read_bytes()).hexdigest()
        claims = ModelClaims(
            run_id=run_id,
            model_digest=tree_digest(folder),
            onnx_digest=onnx,
            serialization=run.data.tags.get("conveyor.serialization", ""),
        )
    return claims.tags(key)


def _what(info: ModelVersionInfo) -> str:
    return f"model {info.name!r} version {info.version}"


def verified_claims(tracking_uri: str, info: ModelVersionInfo) -> ModelClaims:
    """A version's signed claims, once its signature checks out with the keys in force.

    Raises:
        ModelIntegrityError: unsigned, a wrong signature, or one made for another run.
        ConfigError: no signing key is configured for this store.
    """
    claims = verify_claims(info.tags, signing_keys(tracking_uri), what=_what(info))
    if claims.run_id != info.run_id:
        raise ModelIntegrityError(f"{_what(info)}: its signature is for another run")
    return claims


def check_model_files(claims: ModelClaims, info: ModelVersionInfo, folder: Path) -> None:
    """Check a downloaded model folder against the version's signed digest.

    Raises:
        RegistryError: the folder holds no model (gone, not changed: an outage to fix).
        ModelIntegrityError: its files differ from the signed ones.
    """
    if not (folder / "MLmodel").is_file():
        raise RegistryError(f"{_what(info)}: its model files are missing from the store")
    check_digest(claims.model_digest, tree_digest(folder), what=_what(info), part="model files")


def trusted_types(info: ModelVersionInfo) -> frozenset[str]:
    """The exact types the version's skops allowlist adds (its trusted-types tag)."""
    return frozenset(t for t in info.tags.get(TRUSTED_TYPES_TAG, "").split(",") if t)


def signed_source(info: ModelVersionInfo) -> str:
    """What was signed: the version's source (a ``models:/<name>/<n>`` download also gets a
    registered_model_meta file that MLflow writes on the way)."""
    return info.source or info.uri


def load_verified_pipeline(tracking_uri: str, info: ModelVersionInfo) -> Any:
    """Download a version's model, check its files against the signature, then load it.

    Raises:
        ModelIntegrityError: unsigned, or its files changed (nothing is deserialised).
        RegistryError: its files are gone, or it is not a model Conveyor loads.
    """
    claims = verified_claims(tracking_uri, info)
    return load_sklearn_model(
        tracking_uri,
        signed_source(info),
        verify=lambda folder: check_model_files(claims, info, folder),
        trusted_types=trusted_types(info),
    )


def check_onnx(claims: ModelClaims, info: ModelVersionInfo, data: bytes) -> bytes:
    """The ONNX graph, if it is the one signed for the version.

    Raises:
        ModelIntegrityError: the graph differs from the signed one.
    """
    actual = hashlib.sha256(data).hexdigest()
    check_digest(claims.onnx_digest, actual, what=_what(info), part="ONNX graph")
    return data
