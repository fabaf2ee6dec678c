"""An S3 endpoint that refuses connections: a retryable error (exit 75), not a data error."""

from __future__ import annotations

import pytest
from tests.integration.faults.conftest import free_port

from conveyor.config import DataConfig
from conveyor.data.sources import source_fingerprint
from conveyor.errors import SourceUnavailableError

pytestmark = pytest.mark.integration


def test_an_unreachable_s3_source_is_retryable(monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "conveyor")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "conveyor-secret")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    config = DataConfig(source="s3://churn/data.csv", target="churned")
    with pytest.raises(SourceUnavailableError, match="the object store did not answer") as err:
        source_fingerprint(config)
    assert err.value.exit_code == 75
