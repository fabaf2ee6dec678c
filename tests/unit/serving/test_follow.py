"""Alias following: when to load, and what a check does on success and on failure (fakes)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from conveyor.config import RoutingConfig
from conveyor.errors import RegistryError
from conveyor.registry.store import ModelVersionInfo
from conveyor.serving import follow
from conveyor.serving.follow import (
    AliasFollower,
    ReloadResult,
    challenger_uri,
    follows_alias,
    should_load,
)
from conveyor.serving.inputs import InputSchema
from conveyor.serving.settings import ServingSettings
from conveyor.serving.slot import ModelSlot
from conveyor.serving.state import ServingState


@pytest.mark.parametrize(
    ("serving", "target", "failed", "forced", "expected"),
    [
        ("1", "1", None, False, False),
        ("1", "1", None, True, False),
        ("1", "2", None, False, True),
        ("2", "1", None, False, True),  # a rollback is followed too
        ("1", "2", "2", False, False),  # polling does not retry a version that failed
        ("1", "2", "2", True, True),  # an operator's reload does
        ("1", "3", "2", False, True),  # the alias moved on from the failed version
    ],
)
def test_should_load(
    serving: str, target: str, failed: str | None, forced: bool, expected: bool
) -> None:
    assert should_load(serving=serving, target=target, failed=failed, forced=forced) is expected


@pytest.mark.parametrize(
    ("uri", "expected"),
    [("models:/m@champion", True), ("models:/m/3", False), ("models:/m", False)],
)
def test_follows_alias(uri: str, expected: bool) -> None:
    assert follows_alias(uri) is expected


def test_reload_result_to_dict() -> None:
    result = ReloadResult("1", "1", "2", swapped=False, error="boom")
    assert result.to_dict() == {
        "previous_version": "1",
        "current_version": "1",
        "target_version": "2",
        "swapped": False,
        "error": "boom",
    }


def slot(version: str) -> ModelSlot:
    return ModelSlot(pipeline=None, name="m", version=version, run_id="r", schema=InputSchema(()))


class FakeRegistry:
    """The alias target and which versions load."""

    def __init__(self, target: str, broken: set[str]) -> None:
        self.target, self.broken, self.loads = target, broken, 0
        self.challenger: str | None = None
        self.shared: RoutingConfig | None = None


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> FakeRegistry:
    fake = FakeRegistry("1", set())

    def resolve(settings: ServingSettings, uri: str) -> tuple[FakeRegistry, ModelVersionInfo]:
        if fake.target == "down":
            raise RegistryError("registry unreachable")
        target = fake.challenger if uri.endswith("@challenger") else fake.target
        if target is None:
            raise RegistryError("model 'm' has no alias 'challenger'")
        return fake, ModelVersionInfo(name="m", version=target, run_id="r")

    def load_version(registry: Any, info: ModelVersionInfo, *, runtime: str) -> ModelSlot:
        fake.loads += 1
        if info.version in fake.broken:
            raise RegistryError(f"version {info.version} failed its warm-up prediction")
        return slot(info.version)

    monkeypatch.setattr(follow, "_resolve", resolve)
    monkeypatch.setattr(follow, "shared_routing", lambda s: fake.shared or s.routing)
    monkeypatch.setattr(follow, "load_version", load_version)
    return fake


def state() -> ServingState:
    settings = ServingSettings(model_uri="models:/m@champion", tracking_uri="sqlite:///x.db")
    serving = ServingState(settings=settings, slot=slot("1"), ready=True)
    serving.publish_models()
    return serving


def sample(serving: ServingState, metric: str, **labels: str) -> float | None:
    """The sample with exactly these labels; None when it does not exist."""
    return serving.metrics.registry.get_sample_value(metric, labels)


def test_check_swaps_in_the_new_version(registry: FakeRegistry) -> None:
    serving = state()
    old = serving.slot
    registry.target = "2"
    result = anyio.run(AliasFollower(serving).check)
    assert result == ReloadResult("1", "2", "2", swapped=True)
    assert serving.slot is not None and serving.slot.version == "2"
    assert old is not None and old.version == "1"  # a request holding it still has version 1
    assert sample(serving, "conveyor_model_swaps_total", result="success") == 1.0
    info = {"name": "m", "run_id": "r", "runtime": "pyfunc"}
    assert sample(serving, "conveyor_model_info", version="2", **info) == 1.0
    assert sample(serving, "conveyor_model_info", version="1", **info) is None


def test_check_keeps_the_old_version_when_the_new_one_fails(registry: FakeRegistry) -> None:
    serving = state()
    follower = AliasFollower(serving)
    registry.target, registry.broken = "2", {"2"}
    result = anyio.run(follower.check)
    assert (result.current, result.target, result.swapped) == ("1", "2", False)
    assert result.error == "version 2 failed its warm-up prediction"
    assert serving.slot is not None and serving.slot.version == "1"
    assert sample(serving, "conveyor_model_swaps_total", result="failure") == 1.0
    anyio.run(follower.check)  # the next poll does not load the broken version again
    assert registry.loads == 1
    forced = anyio.run(lambda: follower.check(forced=True))
    assert registry.loads == 2 and forced.error is not None
    registry.broken = set()
    assert anyio.run(lambda: follower.check(forced=True)).swapped is True


def test_check_survives_a_registry_outage(registry: FakeRegistry) -> None:
    serving = state()
    registry.target = "down"
    result = anyio.run(AliasFollower(serving).check)
    assert result == ReloadResult("1", "1", "", swapped=False, error="registry unreachable")
    assert sample(serving, "conveyor_model_alias_checks_total", result="error") == 1.0
    assert serving.slot is not None and serving.slot.version == "1"


def test_challenger_is_loaded_shared_and_dropped_with_the_routing(registry: FakeRegistry) -> None:
    serving = state()
    follower = AliasFollower(serving)
    shadow = RoutingConfig(mode="shadow")
    missing = anyio.run(lambda: follower.check_challenger(routing=shadow))
    assert missing is not None and missing.error == "model 'm' has no alias 'challenger'"
    assert serving.routing.mode == "single"  # a routing whose model cannot serve is refused
    registry.challenger = "2"
    loaded = anyio.run(lambda: follower.check_challenger(routing=shadow))
    assert loaded is not None and loaded.swapped
    assert serving.routing == shadow
    assert serving.challenger is not None and serving.challenger.version == "2"
    assert [s.version for s in serving.loaded()] == ["1", "2"]
    assert sample(serving, "conveyor_model_info", name="m", version="2", run_id="r",
                  runtime="pyfunc") == 1.0  # fmt: skip
    registry.target = "2"  # champion moves to the challenger's version: shared, not reloaded
    loads = registry.loads
    assert anyio.run(follower.check).swapped
    assert registry.loads == loads and serving.slot is serving.challenger
    assert anyio.run(lambda: follower.check_challenger(routing=RoutingConfig())) is None
    assert serving.challenger is None and serving.routing.mode == "single"


@pytest.mark.parametrize(
    ("uri", "routing", "expected"),
    [
        ("models:/m@champion", RoutingConfig(), None),
        ("models:/m@champion", RoutingConfig(mode="split"), "models:/m@challenger"),
        ("models:/m/3", RoutingConfig(mode="shadow", challenger="7"), "models:/m/7"),
        ("models:/m@champion", RoutingConfig(mode="split", challenger="beta"), "models:/m@beta"),
    ],
)
def test_challenger_uri(uri: str, routing: RoutingConfig, expected: str | None) -> None:
    assert challenger_uri(uri, routing) == expected


def test_a_poll_applies_the_shared_routing_even_before_its_model_exists(
    registry: FakeRegistry,
) -> None:
    serving = state()
    follower = AliasFollower(serving)
    registry.shared = RoutingConfig(mode="split", weight=0.5)
    waiting = anyio.run(follower.check_challenger)  # no challenger alias yet
    assert waiting is not None and waiting.error is not None
    assert serving.routing == registry.shared and serving.challenger is None
    registry.challenger = "3"
    anyio.run(follower.check_challenger)
    assert serving.challenger is not None and serving.challenger.version == "3"
    registry.shared = None  # the operator's routing was removed: back to the config's
    assert anyio.run(follower.check_challenger) is None
    assert serving.routing.mode == "single" and serving.challenger is None
