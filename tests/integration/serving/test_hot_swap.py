"""The server follows its alias: hot swap under load, failed swaps, the admin token."""

from __future__ import annotations

import secrets
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from tests.integration.serving.conftest import (
    Load,
    Served,
    launch,
    make_table,
    metric_samples,
    metric_value,
    register_model,
    rows_payload,
)

from conveyor.registry.store import ModelRegistry

pytestmark = pytest.mark.integration

SWAP_MODEL = "swap-test"
SWAP_URI = f"models:/{SWAP_MODEL}@champion"
TOKEN = secrets.token_urlsafe(24)
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def swap_store(
    store: tuple[ModelRegistry, str], tmp_path_factory: pytest.TempPathFactory
) -> tuple[ModelRegistry, Path]:
    """A second model in the package's store, with a champion; its own artifacts folder."""
    registry, _ = store
    folder = tmp_path_factory.mktemp("swap-artifacts")
    register_model(registry, make_table(seed=21), folder, name=SWAP_MODEL, key="swap-1")
    return registry, folder


def add_version(registry: ModelRegistry, folder: Path, *, seed: int) -> str:
    table = make_table(seed=seed)
    key = uuid.uuid4().hex
    return register_model(registry, table, folder, name=SWAP_MODEL, key=key, promote=False)


def champion(registry: ModelRegistry) -> str:
    info = registry.get_alias(SWAP_MODEL, "champion")
    assert info is not None
    return info.version


def serving_version(url: str) -> str:
    """The version the server answers with (the champion when it last loaded)."""
    return str(httpx.get(f"{url}/readyz", timeout=5.0).json()["version"])


def reload(url: str) -> httpx.Response:
    return httpx.post(f"{url}/admin/reload", headers=AUTH, timeout=60.0)


@pytest.fixture(scope="module")
def admin_server(
    swap_store: tuple[ModelRegistry, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Serves the swap model's champion; no polling; admin token set."""
    registry, _ = swap_store
    folder = tmp_path_factory.mktemp("admin-server")
    options = ("--poll-interval", "0", "--drain-seconds", "0")
    env = {"CONVEYOR_ADMIN_TOKEN": TOKEN}
    with launch(registry.tracking_uri, SWAP_URI, folder, *options, env=env) as (_, url, _):
        yield url


def test_reload_swaps_under_load_with_no_failed_request(
    admin_server: str,
    swap_store: tuple[ModelRegistry, Path],
    record_property: Callable[[str, object], None],
) -> None:
    registry, folder = swap_store
    before = serving_version(admin_server)
    successes = metric_value(admin_server, "conveyor_model_swaps_total", result="success")
    new = add_version(registry, folder, seed=31)
    with Load(admin_server, rows_payload(5)) as load:
        load.wait_for(20)
        registry.promote(SWAP_MODEL, new)
        reloaded = reload(admin_server)
        swapped_at = time.monotonic()
        load.wait_for(20, started_after=swapped_at)
    assert reloaded.status_code == 200, reloaded.text
    assert reloaded.json() == {
        "previous_version": before,
        "current_version": new,
        "target_version": new,
        "swapped": True,
        "error": None,
        "challenger": None,  # single routing: no second model
    }
    assert load.failures == []
    assert {a.version for a in load.answers} == {before, new}
    after = [a.version for a in load.answers if a.started > swapped_at]
    assert after and set(after) == {new}
    swaps = metric_value(admin_server, "conveyor_model_swaps_total", result="success")
    assert swaps == successes + 1
    assert metric_value(admin_server, "conveyor_model_info", version=new) == 1.0
    assert metric_samples(admin_server, "conveyor_model_info", version=before) == []
    record_property("requests_during_reload_test", len(load.answers))


def _delete_model_files(registry: ModelRegistry, version: str) -> None:
    source = registry.get_version(SWAP_MODEL, version).source  # models:/m-<id>
    model_id = source.removeprefix("models:/")
    store_dir = Path(registry.tracking_uri.removeprefix("sqlite:///")).parent
    found = [p for p in store_dir.rglob(model_id) if p.is_dir()]
    assert found, f"no artifact folder for {model_id} under {store_dir}"
    for path in found:
        shutil.rmtree(path)


def test_a_version_that_fails_to_load_is_not_swapped_in(
    admin_server: str, swap_store: tuple[ModelRegistry, Path]
) -> None:
    registry, folder = swap_store
    good = serving_version(admin_server)
    failures_before = metric_value(admin_server, "conveyor_model_swaps_total", result="failure")
    broken = add_version(registry, folder, seed=41)
    _delete_model_files(registry, broken)
    registry.promote(SWAP_MODEL, broken)
    try:
        with Load(admin_server, rows_payload(5), threads=2) as load:
            load.wait_for(10)
            reloaded = reload(admin_server)
            load.wait_for(10, started_after=time.monotonic())
    finally:
        registry.promote(SWAP_MODEL, good)  # later servers start on a loadable champion
    assert reloaded.status_code == 502
    body = reloaded.json()
    assert body["swapped"] is False
    assert (body["previous_version"], body["current_version"]) == (good, good)
    assert body["target_version"] == broken
    assert body["error"]
    assert load.failures == []
    assert {a.version for a in load.answers} == {good}
    answer = httpx.post(f"{admin_server}/invocations", json=rows_payload(3), timeout=10.0)
    assert answer.status_code == 200
    assert answer.headers["x-model-version"] == good
    failures = metric_value(admin_server, "conveyor_model_swaps_total", result="failure")
    assert failures == failures_before + 1
    assert metric_value(admin_server, "conveyor_model_info", version=good) == 1.0


def _unsigned_version(registry: ModelRegistry, signed: str) -> str:
    """A version made with MLflow's own client from a signed version's files."""
    from conveyor.registry.tracking import fluent_store

    info = registry.get_version(SWAP_MODEL, signed)
    with fluent_store(registry.tracking_uri):
        created = registry.client.create_model_version(
            SWAP_MODEL, source=info.source, run_id=info.run_id
        )
    return str(created.version)


def test_an_alias_moved_to_an_unsigned_version_is_refused_and_the_old_one_keeps_serving(
    admin_server: str, swap_store: tuple[ModelRegistry, Path]
) -> None:
    registry, _ = swap_store
    good = serving_version(admin_server)
    refused_before = metric_value(admin_server, "conveyor_model_swaps_total", result="refused")
    unsigned = _unsigned_version(registry, good)
    registry.client.set_registered_model_alias(SWAP_MODEL, "champion", unsigned)  # not promote
    try:
        reloaded = reload(admin_server)
    finally:
        registry.promote(SWAP_MODEL, good)
    assert reloaded.status_code == 502
    assert "is not signed" in reloaded.json()["error"]
    answer = httpx.post(f"{admin_server}/invocations", json=rows_payload(3), timeout=10.0)
    assert answer.headers["x-model-version"] == good
    refused = metric_value(admin_server, "conveyor_model_swaps_total", result="refused")
    assert refused == refused_before + 1


def test_polling_follows_the_alias_under_load(
    swap_store: tuple[ModelRegistry, Path],
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    registry, folder = swap_store
    before = champion(registry)
    new = add_version(registry, folder, seed=51)
    options = ("--poll-interval", "1", "--drain-seconds", "0")
    with launch(registry.tracking_uri, SWAP_URI, tmp_path, *options) as (_, url, _):
        with Load(url, rows_payload(5)) as load:
            load.wait_for(20)
            registry.promote(SWAP_MODEL, new)
            promoted_at = time.monotonic()
            load.wait_until(lambda answers: any(a.version == new for a in answers), timeout=30)
            new_seen_at = time.monotonic()
            load.wait_for(20, started_after=new_seen_at)
        assert metric_value(url, "conveyor_model_swaps_total", result="success") == 1.0
    assert load.failures == []
    assert {a.version for a in load.answers} == {before, new}
    first_new = min(a.ended for a in load.answers if a.version == new)
    # one poll interval plus loading and warming, on a machine busy with other tests
    assert first_new - promoted_at < 20.0
    assert {a.version for a in load.answers if a.started > new_seen_at} == {new}
    record_property("requests_during_poll_test", len(load.answers))
    record_property("promote_to_first_new_answer_s", round(first_new - promoted_at, 2))


def test_admin_endpoints_are_off_without_a_token(served: Served) -> None:
    response = served.client.post("/admin/reload", headers={"Authorization": "Bearer anything"})
    assert response.status_code == 404


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token-of-some-length"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": f"Bearer {TOKEN}x"},
    ],
    ids=["missing", "wrong", "not-bearer", "longer"],
)
def test_admin_endpoints_refuse_a_missing_or_wrong_token(
    admin_server: str, headers: dict[str, str]
) -> None:
    response = httpx.post(f"{admin_server}/admin/reload", headers=headers, timeout=10.0)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "admin bearer token" in response.json()["message"]


def test_admin_reload_with_the_token_reports_an_unchanged_alias(
    admin_server: str, swap_store: tuple[ModelRegistry, Path]
) -> None:
    registry, _ = swap_store
    synced = reload(admin_server)  # earlier tests may have moved the alias since it loaded
    assert synced.status_code == 200, synced.text
    current = champion(registry)
    assert serving_version(admin_server) == current
    response = reload(admin_server)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "previous_version": current,
        "current_version": current,
        "target_version": current,
        "swapped": False,
        "error": None,
        "challenger": None,
    }
