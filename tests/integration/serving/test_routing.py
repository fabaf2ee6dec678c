"""Traffic routing on a real server: split weights, stickiness, shadow copies, the admin
endpoint, and routing from the project config."""

from __future__ import annotations

import secrets
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.integration.serving.conftest import (
    launch,
    make_table,
    metric_value,
    register_model,
    rows_payload,
)

from conveyor.registry.store import ModelRegistry

pytestmark = pytest.mark.integration

ROUTE_MODEL = "route-test"
TOKEN = secrets.token_urlsafe(24)
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ONE_ROW = rows_payload(1)


@pytest.fixture(scope="module")
def versions(
    store: tuple[ModelRegistry, str], tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, str]:
    """Champion v1 and challenger v2 of their own model."""
    registry, _ = store
    folder = tmp_path_factory.mktemp("route-artifacts")
    first = register_model(registry, make_table(seed=41), folder, name=ROUTE_MODEL, key="r-1")
    second = register_model(
        registry, make_table(seed=42), folder, name=ROUTE_MODEL, key="r-2", promote=False
    )
    registry.mark_challenger(ROUTE_MODEL, second, reason="routing test")
    return first, second


@pytest.fixture(scope="module")
def server(
    store: tuple[ModelRegistry, str],
    versions: tuple[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    registry, _ = store
    folder = tmp_path_factory.mktemp("route-server")
    options = ("--poll-interval", "0", "--drain-seconds", "0")
    uri = f"models:/{ROUTE_MODEL}@champion"
    env = {"CONVEYOR_ADMIN_TOKEN": TOKEN}
    with launch(registry.tracking_uri, uri, folder, *options, env=env) as (_, url, _):
        yield url


def set_routing(url: str, **routing: object) -> httpx.Response:
    return httpx.post(f"{url}/admin/routing", json=routing, headers=AUTH, timeout=60.0)


def routes(
    url: str, n: int, key: str | None = None, *, new_connections: bool = False
) -> list[tuple[str, str]]:
    """The (route, version) of ``n`` one-row predictions (each on a new connection, so
    that every worker process answers some, when ``new_connections``)."""
    headers = {"X-Conveyor-Caller": key} if key else {}
    if new_connections:
        headers["Connection"] = "close"
    seen = []
    with httpx.Client(base_url=url, timeout=30.0) as client:
        for _ in range(n):
            answer = client.post("/invocations", json=ONE_ROW, headers=headers)
            assert answer.status_code == 200, answer.text
            seen.append((answer.headers["x-conveyor-route"], answer.headers["x-model-version"]))
    return seen


def test_split_follows_the_weight_and_labels_every_answer(
    server: str, versions: tuple[str, str]
) -> None:
    first, second = versions
    changed = set_routing(server, mode="split", weight=0.3)
    assert changed.status_code == 200, changed.text
    assert changed.json()["challenger_version"] == second
    seen = routes(server, 400)
    assert set(seen) == {("primary", first), ("challenger", second)}  # route matches version
    share = Counter(route for route, _ in seen)["challenger"] / len(seen)
    assert abs(share - 0.3) < 0.1  # 400 draws: sd 0.023
    assert metric_value(server, "conveyor_routed_requests_total", variant="challenger") > 0


def test_a_caller_key_always_takes_the_same_route(server: str) -> None:
    assert set_routing(server, mode="split", weight=0.5).status_code == 200
    for caller in ("alice", "bob", "carol", "dave"):
        assert len(set(routes(server, 8, key=caller))) == 1


def test_shadow_never_leaks_into_answers_and_is_recorded(
    server: str, versions: tuple[str, str]
) -> None:
    first, second = versions
    assert set_routing(server, mode="shadow").status_code == 200
    copies_before = shadow_copies(server)
    scored_before = shadow_rows(server, second, "same", "different")
    seen = routes(server, 60)
    assert set(seen) == {("primary", first)}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if shadow_rows(server, second, "same", "different", "error") - scored_before >= 60:
            break
        time.sleep(0.2)
    assert shadow_copies(server) - copies_before == 60
    assert shadow_rows(server, second, "same", "different") - scored_before == 60  # one row each
    assert shadow_rows(server, second, "error") == 0


def shadow_copies(url: str) -> float:
    return metric_value(url, "conveyor_routed_requests_total", variant="shadow", default=0.0)


def shadow_rows(url: str, version: str, *outcomes: str) -> float:
    """Rows the shadow model scored with these outcomes (each counted from its first row)."""
    return sum(
        metric_value(url, "conveyor_shadow_rows_total", version=version, outcome=o, default=0.0)
        for o in outcomes
    )


def test_a_routing_whose_model_cannot_serve_is_refused_and_changes_nothing(server: str) -> None:
    assert set_routing(server, mode="split", weight=0.2).status_code == 200
    refused = set_routing(server, mode="split", challenger="no-such-alias")
    assert refused.status_code == 409
    assert "no alias 'no-such-alias'" in refused.json()["error"]
    current = httpx.get(f"{server}/admin/routing", headers=AUTH, timeout=10.0).json()
    assert current["routing"]["weight"] == 0.2 and current["routing"]["challenger"] == "challenger"
    invalid = set_routing(server, mode="sideways")
    assert invalid.status_code == 422 and "mode" in invalid.json()["message"]
    assert httpx.post(f"{server}/admin/routing", json={"mode": "single"}).status_code == 401
    reset = httpx.delete(f"{server}/admin/routing", headers=AUTH, timeout=60.0)
    assert reset.status_code == 200 and reset.json()["shared"] is True
    assert reset.json()["routing"]["mode"] == "single"  # the server's configured routing
    assert set(routes(server, 5)) == {("primary", versions_of(server)[0])}


def versions_of(url: str) -> list[str]:
    meta = httpx.get(f"{url}/v2/models/{ROUTE_MODEL}", timeout=10.0).json()
    return list(meta["versions"])


def test_an_operators_routing_reaches_every_worker(
    store: tuple[ModelRegistry, str], versions: tuple[str, str], tmp_path: Path
) -> None:
    registry, _ = store
    _, second = versions
    options = ("--workers", "2", "--poll-interval", "1")
    uri = f"models:/{ROUTE_MODEL}@champion"
    env = {"CONVEYOR_ADMIN_TOKEN": TOKEN}
    with launch(registry.tracking_uri, uri, tmp_path, *options, env=env) as (_, url, _):
        changed = set_routing(url, mode="split", weight=1.0)
        assert changed.status_code == 200 and changed.json()["shared"] is True
        deadline = time.monotonic() + 30  # every worker polls the registry every second
        while (seen := set(routes(url, 40, new_connections=True))) != {("challenger", second)}:
            assert time.monotonic() < deadline, f"answers still routed to {seen}"
            time.sleep(0.5)
        assert httpx.delete(f"{url}/admin/routing", headers=AUTH, timeout=60).status_code == 200


def test_routing_from_the_project_config(
    store: tuple[ModelRegistry, str], versions: tuple[str, str], tmp_path: Path
) -> None:
    registry, _ = store
    _, second = versions
    config = tmp_path / "conveyor.yaml"
    config.write_text(
        f"name: {ROUTE_MODEL}\n"
        "data: {source: data.csv, target: label}\n"
        "serving:\n  routing: {mode: split, weight: 1.0}\n",
        encoding="utf-8",
    )
    options = ("-c", str(config), "--poll-interval", "0", "--drain-seconds", "0")
    uri = f"models:/{ROUTE_MODEL}@champion"
    with launch(registry.tracking_uri, uri, tmp_path, *options) as (_, url, _):
        assert set(routes(url, 20)) == {("challenger", second)}
        meta = httpx.get(f"{url}/v2/models/{ROUTE_MODEL}", timeout=10.0).json()
        assert meta["parameters"]["routing"]["mode"] == "split"
        assert sorted(meta["versions"]) == sorted(versions)
        tensors = [
            {"name": "age", "shape": [1], "datatype": "FP64", "data": [40.0]},
            {"name": "hours", "shape": [1], "datatype": "FP64", "data": [38.0]},
            {"name": "job", "shape": [1], "datatype": "BYTES", "data": ["clerk"]},
        ]
        pinned = httpx.post(
            f"{url}/v2/models/{ROUTE_MODEL}/versions/{versions[0]}/infer",
            json={"inputs": tensors},
            timeout=10.0,
        )
        assert pinned.status_code == 200, pinned.text
        assert pinned.headers["x-model-version"] == versions[0]
