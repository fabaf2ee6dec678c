"""Logged scikit-learn models back out of the store: downloaded, checked, loaded.

Nothing in a model folder is deserialised before ``verify`` (the signature check) has
accepted it and its MLflow flavor says skops or cloudpickle with only trusted types.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conveyor.errors import RegistryError
from conveyor.registry.serialization import TRUSTED_TYPES, import_skops
from conveyor.registry.tracking import fluent_store

__all__ = ["download_artifacts", "load_local_sklearn_model", "load_sklearn_model"]


def download_artifacts(uri: str, artifact_uri: str, dst: Path) -> Path:
    """Download a model or run artifact (``models:/...``, ``runs:/...``) into ``dst``.

    Returns:
        The local path of what was downloaded.
    """
    import mlflow

    with fluent_store(uri):
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=artifact_uri, dst_path=str(dst), tracking_uri=uri, registry_uri=uri
        )
    return Path(local)


def load_sklearn_model(
    uri: str,
    model_uri: str,
    *,
    verify: Callable[[Path], None],
    trusted_types: frozenset[str] = frozenset(),
) -> Any:
    """Download a logged scikit-learn model and load it, after checking its files and
    how it was saved.

    Args:
        uri: the store's tracking URI.
        model_uri: ``models:/<name>/<version>`` (or any MLflow artifact URI).
        verify: checks the downloaded folder before anything in it is read (the
            signature check); raises to refuse it.
        trusted_types: exact types the version may trust beyond ``TRUSTED_TYPES``.

    Returns:
        The fitted pipeline.

    Raises:
        RegistryError: refused by ``verify``, not a scikit-learn model, saved with plain
            pickle, or trusting a type not on the list.
    """
    with tempfile.TemporaryDirectory(prefix="conveyor-model-") as tmp:
        local = download_artifacts(uri, model_uri, Path(tmp))
        with fluent_store(uri):
            return load_local_sklearn_model(
                local, model_uri, verify=verify, trusted_types=trusted_types
            )


def load_local_sklearn_model(
    local: Path,
    model_uri: str,
    *,
    verify: Callable[[Path], None],
    trusted_types: frozenset[str] = frozenset(),
) -> Any:
    """Load a scikit-learn model from a local MLflow model folder, after ``verify`` and
    the flavor checks of :func:`load_sklearn_model` (``model_uri`` names it in errors)."""
    import mlflow
    from mlflow.models import Model

    verify(local)
    flavor = Model.load(str(local)).flavors.get("sklearn")
    _check_flavor(model_uri, flavor, trusted_types)
    if flavor and flavor.get("serialization_format") == "skops":
        import_skops()  # before MLflow imports it: without torch
    saved_path = list(sys.path)
    try:
        return mlflow.sklearn.load_model(str(local))
    finally:  # MLflow prepends the model's code folder, which may be deleted after
        sys.path[:] = saved_path


def _check_flavor(
    model_uri: str, flavor: dict[str, Any] | None, trusted_types: frozenset[str]
) -> None:
    if flavor is None:
        raise RegistryError(f"{model_uri} is not a scikit-learn model")
    fmt = flavor.get("serialization_format")
    if fmt not in ("skops", "cloudpickle"):
        raise RegistryError(f"{model_uri} is saved as {fmt!r}; Conveyor loads skops or cloudpickle")
    allowed = TRUSTED_TYPES | trusted_types
    refused = [t for t in flavor.get("skops_trusted_types") or [] if t not in allowed]
    if refused:
        raise RegistryError(f"{model_uri} trusts type {refused[0]}, which is not on the list")
