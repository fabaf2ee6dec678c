"""Following the model alias: notice when it moves, load the new version beside, swap at once.

A check resolves the alias in the model URI to a version (in a worker thread: the
registry call blocks). When the version differs from the one serving, the new version is
loaded and warmed in a worker thread while the old one keeps answering, and only then is
``ServingState.slot`` rebound to it: one assignment on the event loop, so every request
sees either the old or the new slot, never a half-loaded one, and a request that took the
old slot finishes on it. A version that fails to load or warm is never swapped in; the
failure is logged and counted, and polling does not retry that same version until the
alias moves again (``POST /admin/reload`` always retries).

Checks are serialised by a lock, so a reload during a poll waits and then sees the
result instead of loading the same version twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from conveyor.serving.slot import load_version, resolve_model

if TYPE_CHECKING:
    from conveyor.serving.state import ServingState

__all__ = ["AliasFollower", "ReloadResult", "follows_alias", "should_load"]

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


class AliasFollower:
    """Checks the alias on demand or every ``settings.poll_interval`` seconds and swaps.

    Args:
        state: the app state whose ``slot`` is swapped.
    """

    def __init__(self, state: ServingState) -> None:
        self.state = state
        self._lock = anyio.Lock()
        self._failed: str | None = None

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
            return await self._check(forced=forced)

    async def _check(self, *, forced: bool) -> ReloadResult:
        state, metrics = self.state, self.state.metrics
        serving = state.slot.version if state.slot else ""
        try:
            registry, info = await anyio.to_thread.run_sync(resolve_model, state.settings)
        except Exception as exc:  # a registry outage must not stop the server
            metrics.count_alias_check("error")
            logger.warning("checking %s failed: %s", state.settings.model_uri, _first_line(exc))
            return ReloadResult(serving, serving, "", swapped=False, error=_first_line(exc))
        metrics.count_alias_check("unchanged" if info.version == serving else "changed")
        if not should_load(
            serving=serving, target=info.version, failed=self._failed, forced=forced
        ):
            return ReloadResult(serving, serving, info.version, swapped=False)
        logger.info("%s moved: version %s -> %s", state.settings.model_uri, serving, info.version)
        try:
            slot = await anyio.to_thread.run_sync(load_version, registry, info)
        except Exception as exc:  # any load or warm-up failure keeps the old version serving
            self._failed = info.version
            metrics.count_swap("failure")
            logger.error(
                "version %s of %s not swapped in; version %s keeps serving: %s",
                info.version,
                info.name,
                serving,
                _first_line(exc),
            )
            return ReloadResult(serving, serving, info.version, False, _first_line(exc))
        state.slot = slot  # the atomic swap: requests that hold the old slot finish on it
        self._failed = None
        metrics.set_model(slot)
        metrics.count_swap("success")
        logger.info("swapped %s: version %s -> %s", slot.name, serving, slot.version)
        return ReloadResult(serving, slot.version, slot.version, swapped=True)

    async def poll(self) -> None:
        """Check every ``poll_interval`` seconds until cancelled (at app shutdown)."""
        interval = self.state.settings.poll_interval
        logger.info("following %s every %s s", self.state.settings.model_uri, interval)
        while True:
            await anyio.sleep(interval)
            await self.check()
