"""Baked model images: one registered version, immutable, served with no registry.

:func:`build_model_image` exports the version's bundle (``registry.bundle``: model files,
ONNX graph and reference profile, each checked against the version's signature) into a
fresh build context with a short Containerfile on top of the serving image, and builds
it with podman (or docker), offline, labelled with the version's lineage. The image
serves that version on port 8080 with ``CONVEYOR_SERVE_MODEL_URI=bundle:/opt/conveyor/model``
and no alias polling: what `mlflow models build-docker` does, for Conveyor's server.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conveyor.errors import ConfigError, ImageBuildError

if TYPE_CHECKING:
    from conveyor.registry.store import ModelRegistry, ModelVersionInfo

__all__ = ["BUNDLE_PATH", "ModelImage", "build_model_image", "container_engine", "image_labels"]

logger = logging.getLogger(__name__)

BUNDLE_PATH = "/opt/conveyor/model"
LABEL_PREFIX = "io.conveyor.model"
MAX_LABEL_CHARS = 512
BUILD_TIMEOUT_S = 1800.0
CONTAINERFILE = f"""\
ARG BASE_IMAGE
FROM ${{BASE_IMAGE}}
COPY bundle {BUNDLE_PATH}
ENV CONVEYOR_SERVE_MODEL_URI=bundle:{BUNDLE_PATH} \\
    CONVEYOR_SERVE_POLL_INTERVAL=0
"""


@dataclass(frozen=True)
class ModelImage:
    """A built image: its tag, the version it holds and its labels."""

    tag: str
    name: str
    version: str
    labels: dict[str, str]


def image_labels(record: dict[str, Any], *, tag: str, base_image: str) -> dict[str, str]:
    """The labels of a baked image, from a bundle's ``version.json`` record.

    OCI labels name the image; ``io.conveyor.model.*`` labels carry the version, its run,
    its signed digests and its lineage (the run's ``conveyor.*`` tags), so
    ``podman image inspect`` answers where the model came from without a registry.

    Example:
        >>> record = {"version": {"name": "churn", "version": "3", "run_id": "r1",
        ...           "aliases": ["champion"], "tags": {"conveyor.model_digest": "ab"}},
        ...           "lineage": {"lineage": {"conveyor.data_md5": "d41d"}},
        ...           "exported_from": "http://mlflow:5000", "exported_at": "2026-12-05T10:00:00"}
        >>> labels = image_labels(record, tag="churn:3", base_image="conveyor-serve:0.1.0")
        >>> labels["io.conveyor.model.version"], labels["io.conveyor.model.lineage.data_md5"]
        ('3', 'd41d')
    """
    version = record["version"]
    labels = {
        "org.opencontainers.image.title": tag.rsplit("/", 1)[-1].split(":", 1)[0],
        "org.opencontainers.image.description": (
            f"Conveyor model server baked with {version['name']} version {version['version']}"
        ),
        "org.opencontainers.image.version": f"{version['name']}-{version['version']}",
        "org.opencontainers.image.base.name": base_image,
        "org.opencontainers.image.created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        f"{LABEL_PREFIX}.name": str(version["name"]),
        f"{LABEL_PREFIX}.version": str(version["version"]),
        f"{LABEL_PREFIX}.run-id": str(version["run_id"]),
        f"{LABEL_PREFIX}.aliases": ",".join(version.get("aliases", ())),
        f"{LABEL_PREFIX}.exported-from": str(record.get("exported_from", "")),
        f"{LABEL_PREFIX}.exported-at": str(record.get("exported_at", "")),
    }
    for key, value in version.get("tags", {}).items():
        if key in ("conveyor.model_digest", "conveyor.onnx_digest", "conveyor.signature"):
            labels[f"{LABEL_PREFIX}.{key.removeprefix('conveyor.')}"] = str(value)
    lineage = record.get("lineage", {}).get("lineage", {})
    for key, value in sorted(lineage.items()):
        text = str(value)
        if key.startswith("conveyor.") and len(text) <= MAX_LABEL_CHARS:
            labels[f"{LABEL_PREFIX}.lineage.{key.removeprefix('conveyor.')}"] = text
    return labels


def container_engine(preferred: str | None = None) -> str:
    """The container engine to build with: ``preferred``, else podman, else docker.

    Raises:
        ConfigError: it is not installed.
    """
    for name in [preferred] if preferred else ["podman", "docker"]:
        found = shutil.which(name)
        if found:
            return found
    wanted = preferred or "podman or docker"
    raise ConfigError(f"--engine: {wanted} is not installed (podman builds images offline here)")


def build_model_image(
    registry: ModelRegistry,
    info: ModelVersionInfo,
    *,
    tag: str,
    base_image: str,
    engine: str | None = None,
    on_stage: Callable[[str], None] | None = None,
) -> ModelImage:
    """Export ``info`` from ``registry`` and bake it into ``tag`` on ``base_image``.

    Args:
        registry: the registry holding the version (its signing key must be in force).
        info: the version to bake.
        tag: the new image's tag.
        base_image: the serving image to build on (``conveyor-serve:<version>``).
        engine: ``podman`` or ``docker``; default the first one installed.
        on_stage: called with a short description as each stage starts (progress).

    Returns:
        The built image.

    Raises:
        ModelIntegrityError: the version is unsigned or its files changed.
        RegistryError: the registry cannot be read.
        ConfigError: no container engine.
        ImageBuildError: the build failed (the engine's last output lines say why).
    """
    from conveyor.registry.bundle import RECORD, export_bundle

    binary = container_engine(engine)
    stage = on_stage or (lambda _: None)
    with tempfile.TemporaryDirectory(prefix="conveyor-image-") as tmp:
        context = Path(tmp)
        stage(f"exporting {info.name} version {info.version}")
        bundle = export_bundle(registry, info, context / "bundle")
        _make_readable(bundle)
        (context / "Containerfile").write_text(CONTAINERFILE, encoding="utf-8")
        record = json.loads((bundle / RECORD).read_text(encoding="utf-8"))
        labels = image_labels(record, tag=tag, base_image=base_image)
        argv = [binary, "build", "--file", str(context / "Containerfile"), "--tag", tag]
        argv += ["--build-arg", f"BASE_IMAGE={base_image}"]
        if Path(binary).name == "podman":
            argv += ["--network=none", "--format", "docker"]  # docker format keeps HEALTHCHECK
        for key, value in labels.items():
            argv += ["--label", f"{key}={value}"]
        stage(f"building {tag} on {base_image}")
        result = subprocess.run(
            [*argv, str(context)],
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_S,
            check=False,
        )
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-8:])
        raise ImageBuildError(f"{Path(binary).name} build of {tag} failed:\n{tail}")
    logger.info("built %s holding %s version %s", tag, info.name, info.version)
    return ModelImage(tag=tag, name=info.name, version=info.version, labels=labels)


def _make_readable(folder: Path) -> None:
    """World-readable files and folders: the image runs as a non-root user."""
    folder.chmod(0o755)
    for path in folder.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
