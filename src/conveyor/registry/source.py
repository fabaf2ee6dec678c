"""Where a server gets its model: the registry, or a bundle exported from it.

Serving talks to a :class:`ModelSource`; :func:`open_source` gives the registry at a
tracking URI (``ModelRegistry``) or, for a ``bundle:/path`` model URI, the exported
bundle (``ModelBundle``) that a baked image carries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from conveyor.registry.store import ModelVersionInfo

__all__ = ["BUNDLE_SCHEME", "ModelSource", "is_bundle_uri", "open_source"]

BUNDLE_SCHEME = "bundle:"


def is_bundle_uri(model_uri: str) -> bool:
    """Whether a model URI names an exported bundle (``bundle:/path``)."""
    return model_uri.startswith(BUNDLE_SCHEME)


class ModelSource(Protocol):
    """The registry methods serving calls."""

    @property
    def tracking_uri(self) -> str: ...

    def get_version(self, name: str, version: str) -> ModelVersionInfo: ...

    def get_alias(self, name: str, alias: str) -> ModelVersionInfo | None: ...

    def list_versions(self, name: str) -> list[ModelVersionInfo]: ...

    def load_pipeline(self, model_uri: str) -> Any: ...

    def load_onnx(self, info: ModelVersionInfo) -> bytes | None: ...

    def load_reference_profile(self, info: ModelVersionInfo) -> dict[str, Any]: ...

    def get_model_tag(self, name: str, key: str) -> str | None: ...

    def set_model_tag(self, name: str, key: str, value: str | None) -> None: ...


def open_source(tracking_uri: str, model_uri: str) -> ModelSource:
    """The bundle a ``bundle:/path`` model URI names, else the registry at ``tracking_uri``.

    Raises:
        RegistryError: no readable bundle at that path.
    """
    from conveyor.registry.bundle import ModelBundle
    from conveyor.registry.store import ModelRegistry

    if is_bundle_uri(model_uri):
        return ModelBundle.from_uri(model_uri)
    return ModelRegistry(tracking_uri)
