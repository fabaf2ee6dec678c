"""The gate's decision applied only while the champion is the one the gate compared with.

Several machines may run the pipeline of one model against one tracking server; the
project lock (``pipeline.lock``) cannot keep them apart. Between the moment the gate reads
the champion and the moment the aliases move, another run may have crowned a new one:
moving ``champion`` then would promote a model that was never compared with the champion
it replaces, and set ``previous`` to a version that was not the champion. So the champion
is read again right before any alias moves; if it changed, nothing moves and
:class:`ChampionMovedError` (exit 75) asks for a retry, which gates the challenger against
the new champion. MLflow has no compare-and-set on aliases: this narrows the window to the
alias writes themselves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from conveyor.errors import ChampionMovedError

if TYPE_CHECKING:
    from conveyor.registry.store import ModelRegistry, ModelVersionInfo

__all__ = ["PARENT_TAG", "apply_gate_decision", "check_champion"]

PARENT_TAG = "conveyor.parent_champion"


def check_champion(registry: ModelRegistry, name: str, *, expected: str | None) -> None:
    """Raise unless the champion of ``name`` is still ``expected`` (None: no champion).

    Raises:
        ChampionMovedError: the champion is another version now (exit 75: retry).
        RegistryError: the registry did not answer.
    """
    current = registry.get_alias(name, "champion")
    now = current.version if current else None
    if now != expected:
        raise ChampionMovedError(
            f"model {name!r}: the champion moved from {_label(expected)} to {_label(now)}"
            " while the gate ran; no alias was changed. Retry: the gate then compares with"
            " the new champion"
        )


def apply_gate_decision(
    registry: ModelRegistry,
    name: str,
    version: str,
    *,
    gated_against: str | None,
    promote: bool,
    reason: str = "",
) -> ModelVersionInfo:
    """Promote ``version`` or mark it challenger, if the champion has not moved meanwhile.

    Args:
        registry: the model registry.
        name: the registered model.
        version: the gated version.
        gated_against: the champion version the gate compared with (None: there was none).
        promote: True to make it the champion, False to mark it challenger.
        reason: why it is a challenger (the gate's failed checks).

    Returns:
        The version after the alias moved.

    Raises:
        ChampionMovedError: the champion is no longer ``gated_against`` (exit 75: retry).
        PromotionError: unknown model or version.
        RegistryError: the registry did not answer.
    """
    check_champion(registry, name, expected=gated_against)
    if not promote:
        return registry.mark_challenger(name, version, reason=reason)
    parent = gated_against or "none"
    if registry.get_version(name, version).tags.get(PARENT_TAG) != parent:
        # Registered under another champion: the lineage names the one it replaces.
        registry.set_version_tags(name, version, {PARENT_TAG: parent})
    return registry.promote(name, version)


def _label(version: str | None) -> str:
    return f"v{version}" if version else "none"
