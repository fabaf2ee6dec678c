"""Fixtures for the data tests: a real S3 API (moto's server) on a free local port."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from typing import Any

import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """URL of moto's S3-compatible server, running in a thread for the whole session."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A fresh bucket, with the standard AWS_* variables pointing at the local server.

    Returns a boto3 S3 client with ``.bucket`` naming the bucket.
    """
    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    bucket = f"conveyor-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    return _Bucket(client, bucket)


class _Bucket:
    """A boto3 client bound to one bucket."""

    def __init__(self, client: Any, name: str) -> None:
        self.client = client
        self.name = name

    def put(self, key: str, body: bytes) -> str:
        """Upload ``body`` and return the object's s3:// URL."""
        self.client.put_object(Bucket=self.name, Key=key, Body=body)
        return f"s3://{self.name}/{key}"
