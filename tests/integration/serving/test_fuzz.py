"""Fuzzing the server's OpenAPI schema with schemathesis: valid and invalid requests to
every operation, and not one 5xx answer."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig
from tests.integration.serving.conftest import MODEL, launch, metric_samples

from conveyor.registry.store import ModelRegistry

pytestmark = pytest.mark.integration

TOKEN = secrets.token_urlsafe(24)
EXAMPLES_PER_OPERATION = 25


@pytest.fixture(scope="module")
def fuzzed(
    store: tuple[ModelRegistry, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A server of its own (the fuzzer may change its routing through the admin API)."""
    registry, _ = store
    folder = tmp_path_factory.mktemp("fuzz-server")
    options = ("--poll-interval", "0", "--drain-seconds", "0", "--max-body-bytes", "100000")
    env = {"CONVEYOR_ADMIN_TOKEN": TOKEN}
    with launch(registry.tracking_uri, f"models:/{MODEL}@champion", folder, *options, env=env) as (
        _,
        url,
        _,
    ):
        yield url


def test_no_request_gets_a_server_error(fuzzed: str) -> None:
    config = SchemathesisConfig.from_dict(
        {"headers": {"Authorization": f"Bearer {TOKEN}"}, "base-url": fuzzed}
    )
    api = schemathesis.openapi.from_url(f"{fuzzed}/openapi.json", config=config)
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 15  # every route is in the schema
    server_errors: list[str] = []
    sent = [0]
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES_PER_OPERATION,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def fuzz(case: Any) -> None:
                response = case.call(base_url=fuzzed, timeout=30)
                sent[0] += 1
                if response.status_code >= 500:
                    server_errors.append(
                        f"{case.method} {case.formatted_path} -> {response.status_code}: "
                        f"{response.text[:200]} (body {str(case.body)[:200]})"
                    )

            try:
                fuzz()
            except Unsatisfiable:  # nothing in this operation can be made invalid
                assert mode is GenerationMode.NEGATIVE, operation.label
    assert sent[0] > len(operations) * 10
    assert not server_errors, "\n".join(server_errors[:10])


def test_the_server_is_healthy_after_fuzzing(fuzzed: str) -> None:
    ready = httpx.get(f"{fuzzed}/readyz", timeout=10.0)
    assert ready.status_code == 200 and ready.json()["model"] == MODEL
    statuses = {s.labels["status"] for s in metric_samples(fuzzed, "conveyor_requests_total")}
    assert any(status.startswith("4") for status in statuses), statuses  # the fuzzing is counted
    assert not any(status.startswith("5") for status in statuses), statuses
