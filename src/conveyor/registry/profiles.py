"""Reference profiles stored with the model: ``reference/profile.json`` on its MLflow run."""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conveyor.errors import RegistryError
from conveyor.registry.outages import registry_error

if TYPE_CHECKING:
    from conveyor.registry.store import ModelRegistry, ModelVersionInfo

__all__ = ["PROFILE_ARTIFACT", "load_reference_profile", "log_reference_profile"]

logger = logging.getLogger(__name__)

PROFILE_FOLDER = "reference"
PROFILE_ARTIFACT = f"{PROFILE_FOLDER}/profile.json"


def log_reference_profile(registry: ModelRegistry, run_id: str, profile: dict[str, Any]) -> None:
    """Store a reference profile as the artifact ``reference/profile.json`` of a run.

    Args:
        registry: the registry whose store holds the run.
        run_id: the training run.
        profile: ``ReferenceProfile.to_dict()``.

    Raises:
        RegistryError: the run is unknown or the artifact could not be written.
    """
    from mlflow.exceptions import MlflowException

    text = json.dumps(profile, separators=(",", ":"), allow_nan=False)
    try:
        registry.client.log_text(run_id, text, PROFILE_ARTIFACT)
    except (MlflowException, OSError) as exc:
        what = f"storing the reference profile on run {run_id}"
        raise registry_error(what, exc, store=registry.tracking_uri) from exc
    logger.info("stored reference profile (%s bytes) on run %s", len(text), run_id)


def load_reference_profile(registry: ModelRegistry, info: ModelVersionInfo) -> dict[str, Any]:
    """Read the reference profile stored with a model version.

    Args:
        registry: the registry holding the version.
        info: the model version (its ``run_id`` holds the artifact).

    Returns:
        The profile as stored (``ReferenceProfile.from_dict`` reads it).

    Raises:
        RegistryError: the version has no profile (registered before drift profiles
            existed), or it cannot be read.
    """
    from mlflow.exceptions import MlflowException

    where = f"model {info.name!r} version {info.version}"
    try:
        names = [item.path for item in registry.client.list_artifacts(info.run_id, PROFILE_FOLDER)]
        if PROFILE_ARTIFACT not in names:
            raise RegistryError(
                f"{where}: version {info.version} has no reference profile; it was registered"
                " before drift profiles existed — retrain"
            )
        with tempfile.TemporaryDirectory(prefix="conveyor-profile-") as folder:
            path = registry.client.download_artifacts(info.run_id, PROFILE_ARTIFACT, folder)
            data: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
    except (MlflowException, OSError, ValueError) as exc:
        what = f"{where}: reading its reference profile"
        raise registry_error(what, exc, store=registry.tracking_uri) from exc
    return data
