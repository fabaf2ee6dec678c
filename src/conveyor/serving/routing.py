"""Traffic routing between the served model and a second one: A/B or canary split, shadow.

``single``: the served model (route ``primary``) answers everything. ``split``: a
``weight`` share of requests goes to the second model (route ``challenger``); a request
carrying the sticky header is routed by a hash of its value, so one caller always takes
the same route while the weight stays the same (and a caller on the challenger stays there
when the weight grows). ``shadow``: the primary answers every request and the challenger
receives a copy whose answer is only recorded.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Literal

from conveyor.config import RoutingConfig

__all__ = ["CHALLENGER", "PRIMARY", "Route", "RouteName", "choose_route", "sticky_point"]

RouteName = Literal["primary", "challenger"]
PRIMARY: RouteName = "primary"
CHALLENGER: RouteName = "challenger"


@dataclass(frozen=True)
class Route:
    """Where one request goes.

    Attributes:
        answer: the route whose model answers the request.
        shadow: the challenger also scores a copy (its answer is never returned).
    """

    answer: RouteName
    shadow: bool = False


def sticky_point(key: str) -> float:
    """A caller key's fixed point in [0, 1): the same key always lands on the same point.

    Example:
        >>> sticky_point("user-42") == sticky_point("user-42")
        True
        >>> 0 <= sticky_point("user-42") < 1
        True
    """
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def choose_route(
    routing: RoutingConfig,
    *,
    key: str | None,
    has_challenger: bool,
    draw: float | None = None,
) -> Route:
    """Pick the route of one request.

    Args:
        routing: mode and weight.
        key: the caller's sticky key (the sticky header's value), or None.
        has_challenger: whether the second model is loaded; without it everything goes
            to the primary.
        draw: a uniform number in [0, 1) for a request without a key (default: random).

    Returns:
        The route.

    Example:
        >>> split = RoutingConfig(mode="split", weight=0.25)
        >>> choose_route(split, key=None, has_challenger=True, draw=0.1).answer
        'challenger'
        >>> choose_route(split, key=None, has_challenger=True, draw=0.9).answer
        'primary'
    """
    if not has_challenger or routing.mode == "single":
        return Route(PRIMARY)
    if routing.mode == "shadow":
        return Route(PRIMARY, shadow=True)
    point = sticky_point(key) if key else (random.random() if draw is None else draw)
    return Route(CHALLENGER if point < routing.weight else PRIMARY)
