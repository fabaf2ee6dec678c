"""The gate's decision is applied only while the champion is the one it compared with."""

from __future__ import annotations

import pytest

from conveyor.errors import ChampionMovedError
from conveyor.registry.guard import PARENT_TAG, apply_gate_decision
from conveyor.registry.store import ModelRegistry

pytestmark = pytest.mark.integration


def _versions(registry: ModelRegistry, name: str, run_id: str, count: int) -> list[str]:
    tags = {PARENT_TAG: "none"}
    return [
        registry.register(name=name, run_id=run_id, key=f"k-{i}", tags=tags).version
        for i in range(count)
    ]


def _aliases(registry: ModelRegistry, name: str) -> tuple[str | None, ...]:
    found = [registry.get_alias(name, a) for a in ("champion", "previous", "challenger")]
    return tuple(v.version if v else None for v in found)


def test_a_champion_that_moved_since_the_gate_blocks_every_alias_move(
    registry: ModelRegistry, lightgbm_run: str
) -> None:
    name = "guarded-moved"
    one, two, three = _versions(registry, name, lightgbm_run, 3)
    registry.promote(name, one)
    registry.promote(name, two)  # another machine crowned v2 while v3 was gated against v1
    for promote in (True, False):
        with pytest.raises(ChampionMovedError, match="moved from v1 to v2") as err:
            apply_gate_decision(registry, name, three, gated_against=one, promote=promote)
        assert err.value.exit_code == 75
    assert _aliases(registry, name) == (two, one, None)


def test_an_unmoved_champion_is_replaced_and_becomes_previous(
    registry: ModelRegistry, lightgbm_run: str
) -> None:
    name = "guarded-still"
    one, two = _versions(registry, name, lightgbm_run, 2)
    registry.promote(name, one)
    apply_gate_decision(registry, name, two, gated_against=one, promote=True)
    assert _aliases(registry, name) == (two, one, None)
    assert registry.get_version(name, two).tags[PARENT_TAG] == one


def test_a_first_model_is_refused_once_another_became_champion(
    registry: ModelRegistry, lightgbm_run: str
) -> None:
    name = "guarded-first"
    one, two = _versions(registry, name, lightgbm_run, 2)
    registry.promote(name, one)
    with pytest.raises(ChampionMovedError, match="moved from none to v1"):
        apply_gate_decision(registry, name, two, gated_against=None, promote=True)
    assert _aliases(registry, name) == (one, None, None)
