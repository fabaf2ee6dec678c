"""Following the model alias: notice when it moves, load the new version beside, swap at once.

A check resolves the alias in the model URI to a version (in a worker thread: the
registry call blocks). When the version differs from the one serving, the new version is
loaded and warmed in a worker thread while the old one keeps answering, and only then is
``ServingState.slot`` rebound to it: one assignment on the event loop, so every request
sees either the old or the new slot, never a half-loaded one, and a request that took the
old slot finishes on it. A version that fails to load or warm is never swapped in; the
failure is logged and counted, and polling does not retry that same version until the
alias moves again (``POST /admin/reload`` always retries).

The routing's second model (``split``/``shadow``: ``models:/<name>@challenger`` or a
version) is followed the same way into ``ServingState.challenger``; a version that one
route already serves is shared, not loaded twice. A new routing from the admin endpoint
takes effect only once its second model is loaded, and is stored in the registered model's
``conveyor.routing`` tag so that every worker and replica applies it at its next poll.

Checks are serialised by a lock, so a reload during a poll waits and then sees the
result instead of loading the same version twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
from pydantic import ValidationError

from conveyor.config import RoutingConfig
from conveyor.errors import ModelIntegrityError
from conveyor.serving.routing import CHALLENGER, PRIMARY
from conveyor.serving.slot import load_version, open_registry, resolve_version

if TYPE_CHECKING:
    from conveyor.registry.source import ModelSource
    from conveyor.registry.store import ModelVersionInfo
    from conveyor.serving.settings import ServingSettings
    from conveyor.serving.slot import ModelSlot
    from conveyor.serving.state import ServingState

__all__ = [
    "ROUTING_TAG",
    "AliasFollower",
    "ReloadResult",
    "challenger_uri",
    "follows_alias",
    "model_name",
    "share_routing",
    "shared_routing",
    "should_load",
]

ROUTING_TAG = "conveyor.routing"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReloadResult:
    """What one check of the alias did.

    Attributes:
        previous: the version serving before the check.
        current: the version serving after it.
        target: the version the alias pointed at ("" when the registry did not answer).
        swapped: a new version was loaded and is now serving.
        error: why the check or the load failed (None when it did not).
    """

    previous: str
    current: str
    target: str
    swapped: bool
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (the ``POST /admin/reload`` answer)."""
        return {
            "previous_version": self.previous,
            "current_version": self.current,
            "target_version": self.target,
            "swapped": self.swapped,
            "error": self.error,
        }


def follows_alias(model_uri: str) -> bool:
    """Whether the URI names an alias (``models:/name@alias``), which can move."""
    return "@" in model_uri.removeprefix("models:/")


def should_load(*, serving: str, target: str, failed: str | None, forced: bool) -> bool:
    """Whether a check should load ``target``.

    Args:
        serving: the version serving now.
        target: the version the alias points at.
        failed: the last version that failed to load, if any.
        forced: the check was asked for (``POST /admin/reload``), not a poll.

    Returns:
        True when ``target`` is a different version and either it has not failed before
        or the check was forced.

    Example:
        >>> should_load(serving="1", target="2", failed=None, forced=False)
        True
        >>> should_load(serving="1", target="2", failed="2", forced=False)
        False
    """
    if target == serving:
        return False
    return forced or target != failed


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def challenger_uri(model_uri: str, routing: RoutingConfig) -> str | None:
    """The registry URI of the routing's second model, or None for ``single`` routing.

    Example:
        >>> challenger_uri("models:/churn@champion", RoutingConfig(mode="shadow"))
        'models:/churn@challenger'
        >>> challenger_uri("models:/churn/3", RoutingConfig(mode="split", challenger="4"))
        'models:/churn/4'
    """
    if routing.mode == "single":
        return None
    name = model_name(model_uri)
    target = routing.challenger
    return f"models:/{name}/{target}" if target.isdigit() else f"models:/{name}@{target}"


def model_name(model_uri: str) -> str:
    """The registered model name in a ``models:/`` URI.

    Example:
        >>> model_name("models:/churn@champion"), model_name("models:/churn/3")
        ('churn', 'churn')
    """
    ref = model_uri.removeprefix("models:/")
    return ref.split("@", 1)[0] if "@" in ref else ref.rpartition("/")[0]


def shared_routing(settings: ServingSettings) -> RoutingConfig:
    """The routing every server of the model should apply (blocking).

    An operator's ``POST /admin/routing`` stores it in the registered model's
    ``conveyor.routing`` tag, so every worker and replica picks it up at its next poll;
    without the tag (or with an invalid one, logged) it is ``settings.routing``.

    Raises:
        RegistryError: the registry did not answer.
    """
    registry = open_registry(settings)
    raw = registry.get_model_tag(model_name(settings.model_uri), ROUTING_TAG)
    if raw is None:
        return settings.routing
    try:
        return RoutingConfig.model_validate_json(raw)
    except ValidationError as exc:
        logger.warning("ignoring the registry's %s tag: %s", ROUTING_TAG, _first_line(exc))
        return settings.routing


def share_routing(settings: ServingSettings, routing: RoutingConfig | None) -> None:
    """Store (or, with None, remove) the shared routing in the registry (blocking).

    Raises:
        RegistryError: the registry refused or did not answer.
    """
    value = None if routing is None else routing.model_dump_json()
    open_registry(settings).set_model_tag(model_name(settings.model_uri), ROUTING_TAG, value)


def _resolve(settings: ServingSettings, uri: str) -> tuple[ModelSource, ModelVersionInfo]:
    registry = open_registry(settings)
    return registry, resolve_version(registry, uri)


class AliasFollower:
    """Checks the served model's alias (and the routing's second model) and swaps.

    Args:
        state: the app state whose ``slot`` and ``challenger`` are swapped.
    """

    def __init__(self, state: ServingState) -> None:
        self.state = state
        self._lock = anyio.Lock()
        self._failed: dict[str, str | None] = {PRIMARY: None, CHALLENGER: None}

    async def check(self, *, forced: bool = False) -> ReloadResult:
        """Resolve the alias and, if it moved, load, warm and swap in the new version.

        Never raises for a registry or model failure: the result carries the error and the
        version that was serving keeps serving.

        Args:
            forced: retry a version that failed before (an operator asked).

        Returns:
            What happened.
        """
        async with self._lock:
            result, slot = await self._follow(
                PRIMARY, self.state.settings.model_uri, self.state.slot, forced=forced
            )
            if slot is not None:
                self.state.slot = slot  # the atomic swap: requests holding the old slot finish
                self.state.publish_models()
            return result

    async def check_challenger(
        self, *, forced: bool = False, routing: RoutingConfig | None = None
    ) -> ReloadResult | None:
        """Bring the routing and its second model up to date (load, swap, or drop it).

        Args:
            forced: retry a version that failed before.
            routing: a new routing from an operator; it takes effect only when its second
                model is loaded. None: the shared routing (the registry's
                ``conveyor.routing`` tag, else ``settings.routing``) is put in force, and
                its second model is followed.

        Returns:
            What happened (None when the routing has no second model).
        """
        state = self.state
        explicit = routing is not None
        wanted = routing if routing is not None else await self._shared_routing()
        uri = challenger_uri(state.settings.model_uri, wanted)
        async with self._lock:
            if uri is None:
                state.routing, state.challenger = wanted, None
                state.publish_models()
                return None
            same_model = uri == challenger_uri(state.settings.model_uri, state.routing)
            current = state.challenger if same_model else None
            result, slot = await self._follow(CHALLENGER, uri, current, forced=forced)
            if result.error is not None and explicit:
                return result  # an operator's routing whose model cannot serve is refused
            if slot is not None:
                state.challenger = slot
            elif not same_model:
                state.challenger = None
            state.routing = wanted
            state.publish_models()
            return result

    async def _shared_routing(self) -> RoutingConfig:
        settings = self.state.settings
        try:
            return await anyio.to_thread.run_sync(shared_routing, settings)
        except Exception as exc:  # a registry outage keeps the routing in force
            logger.info("reading the shared routing failed: %s", _first_line(exc))
            return self.state.routing

    async def _follow(
        self, role: str, uri: str, current: ModelSlot | None, *, forced: bool
    ) -> tuple[ReloadResult, ModelSlot | None]:
        state, metrics = self.state, self.state.metrics
        serving = current.version if current else ""
        try:
            registry, info = await anyio.to_thread.run_sync(_resolve, state.settings, uri)
        except Exception as exc:  # a registry outage must not stop the server
            metrics.count_alias_check("error")
            log = logger.warning if role == PRIMARY else logger.info
            log("checking %s failed: %s", uri, _first_line(exc))
            return ReloadResult(serving, serving, "", swapped=False, error=_first_line(exc)), None
        metrics.count_alias_check("unchanged" if info.version == serving else "changed")
        if not should_load(
            serving=serving, target=info.version, failed=self._failed[role], forced=forced
        ):
            return ReloadResult(serving, serving, info.version, swapped=False), None
        loaded = next((s for s in state.loaded() if s.version == info.version), None)
        if loaded is not None:  # the other route already serves that version: share it
            return ReloadResult(serving, loaded.version, loaded.version, swapped=True), loaded
        logger.info("%s moved: version %s -> %s", uri, serving or "none", info.version)
        try:
            slot = await anyio.to_thread.run_sync(
                lambda: load_version(registry, info, runtime=state.settings.runtime)
            )
        except Exception as exc:  # any load or warm-up failure keeps the old version serving
            self._failed[role] = info.version
            refused = isinstance(exc, ModelIntegrityError)  # unsigned or tampered: never loaded
            metrics.count_swap("refused" if refused else "failure")
            logger.error(
                "version %s of %s not swapped in; version %s keeps serving: %s",
                info.version,
                info.name,
                serving or "none",
                _first_line(exc),
            )
            return ReloadResult(serving, serving, info.version, False, _first_line(exc)), None
        self._failed[role] = None
        metrics.count_swap("success")
        logger.info("swapped %s (%s): version %s -> %s", slot.name, role, serving, slot.version)
        return ReloadResult(serving, slot.version, slot.version, swapped=True), slot

    async def poll(self) -> None:
        """Check every ``poll_interval`` seconds until cancelled (at app shutdown)."""
        interval = self.state.settings.poll_interval
        logger.info("following %s every %s s", self.state.settings.model_uri, interval)
        while True:
            await anyio.sleep(interval)
            await self.check()
            await self.check_challenger()
