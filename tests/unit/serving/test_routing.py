"""Routing decisions: weights, stickiness and shadow."""

from __future__ import annotations

import random

from conveyor.config import RoutingConfig
from conveyor.serving.routing import CHALLENGER, PRIMARY, Route, choose_route, sticky_point


def share(routing: RoutingConfig, keys: list[str | None]) -> float:
    routes = [choose_route(routing, key=k, has_challenger=True).answer for k in keys]
    return routes.count(CHALLENGER) / len(routes)


def test_split_sends_the_weight_share_to_the_challenger() -> None:
    random.seed(7)
    routing = RoutingConfig(mode="split", weight=0.2)
    assert abs(share(routing, [None] * 20_000) - 0.2) < 0.015  # ~5 standard errors
    keyed = [f"caller-{i}" for i in range(20_000)]
    assert abs(share(routing, list(keyed)) - 0.2) < 0.015


def test_sticky_callers_keep_their_route_and_stay_when_the_weight_grows() -> None:
    small = RoutingConfig(mode="split", weight=0.1)
    large = RoutingConfig(mode="split", weight=0.5)
    challengers = 0
    for i in range(500):
        key = f"user-{i}"
        first = choose_route(small, key=key, has_challenger=True)
        assert all(choose_route(small, key=key, has_challenger=True) == first for _ in range(3))
        if first.answer == CHALLENGER:
            challengers += 1
            assert choose_route(large, key=key, has_challenger=True).answer == CHALLENGER
    assert challengers > 0  # the weight-growth check above ran


def test_shadow_answers_from_the_primary_and_copies_to_the_challenger() -> None:
    route = choose_route(RoutingConfig(mode="shadow"), key="k", has_challenger=True)
    assert route == Route(PRIMARY, shadow=True)


def test_without_a_challenger_or_in_single_mode_the_primary_answers() -> None:
    split = RoutingConfig(mode="split", weight=1.0)
    assert choose_route(split, key=None, has_challenger=False) == Route(PRIMARY)
    assert choose_route(RoutingConfig(), key=None, has_challenger=True) == Route(PRIMARY)
    assert choose_route(split, key=None, has_challenger=True, draw=0.999).answer == CHALLENGER


def test_sticky_points_are_uniform_enough() -> None:
    points = [sticky_point(f"k{i}") for i in range(10_000)]
    deciles = [sum(1 for p in points if d / 10 <= p < (d + 1) / 10) for d in range(10)]
    assert min(deciles) > 850 and max(deciles) < 1150
