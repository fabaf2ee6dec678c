"""Alias following: when to load, and what a check does on success and on failure (fakes)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from conveyor.errors import RegistryError
from conveyor.registry.store import ModelVersionInfo
from conveyor.serving import follow
from conveyor.serving.follow import AliasFollower, ReloadResult, follows_alias, should_load
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


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> FakeRegistry:
    fake = FakeRegistry("1", set())

    def resolve_model(settings: ServingSettings) -> tuple[FakeRegistry, ModelVersionInfo]:
        if fake.target == "down":
            raise RegistryError("registry unreachable")
        return fake, ModelVersionInfo(name="m", version=fake.target, run_id="r")

    def load_version(registry: Any, info: ModelVersionInfo) -> ModelSlot:
        fake.loads += 1
        if info.version in fake.broken:
            raise RegistryError(f"version {info.version} failed its warm-up prediction")
        return slot(info.version)

    monkeypatch.setattr(follow, "resolve_model", resolve_model)
    monkeypatch.setattr(follow, "load_version", load_version)
    return fake


def state() -> ServingState:
    settings = ServingSettings(model_uri="models:/m@champion", tracking_uri="sqlite:///x.db")
    serving = ServingState(settings=settings, slot=slot("1"), ready=True)
    serving.metrics.set_model(slot("1"))
    return serving


def sample(serving: ServingState, metric: str, **labels: str) -> float:
    value = serving.metrics.registry.get_sample_value(metric, labels)
    return 0.0 if value is None else value


def test_check_swaps_in_the_new_version(registry: FakeRegistry) -> None:
    serving = state()
    old = serving.slot
    registry.target = "2"
    result = anyio.run(AliasFollower(serving).check)
    assert result == ReloadResult("1", "2", "2", swapped=True)
    assert serving.slot is not None and serving.slot.version == "2"
    assert old is not None and old.version == "1"  # a request holding it still has version 1
    assert sample(serving, "conveyor_model_swaps_total", result="success") == 1.0
    info = {"name": "m", "version": "2", "run_id": "r", "runtime": "pipeline"}
    assert sample(serving, "conveyor_model_info", **info) == 1.0


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
