"""Fixtures every test tier may use: a real S3-compatible server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.s3_server import S3Server, running_s3_server


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A SeaweedFS S3 server for the whole session (one per xdist worker), stopped at its end."""
    with running_s3_server(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server
