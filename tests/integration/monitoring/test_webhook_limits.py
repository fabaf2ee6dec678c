"""The retraining receiver's request limits, as `conveyor monitor serve-webhook` runs:
the token before the body, the body deadline and size, and no start beyond loopback
without a token."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.integration.rawhttp import Trickle, connect, head, read_answer, wait_until

pytestmark = pytest.mark.integration

CONVEYOR = str(Path(sys.executable).with_name("conveyor"))
TOKEN = secrets.token_urlsafe(24)


def environment(**variables: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "CONVEYOR_"))}
    return {**env, "COLUMNS": "200", **variables}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project config; nothing is trained (no notification here starts a run)."""
    config = tmp_path_factory.mktemp("webhook-project") / "conveyor.yaml"
    config.write_text("name: hook-test\ndata: {source: data.csv, target: label}\n", "utf-8")
    return config


def serve_webhook(project: Path, *options: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    argv = [CONVEYOR, "monitor", "serve-webhook", "-c", str(project), *options]
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


@pytest.fixture(scope="module")
def receiver(project: Path) -> Iterator[str]:
    port = free_port()
    options = ("--port", str(port), "--body-timeout", "1", "--max-body-bytes", "4096")
    process = serve_webhook(project, *options, env=environment(CONVEYOR_WEBHOOK_TOKEN=TOKEN))
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: up(url, process), timeout=60)
        yield url
    finally:
        process.terminate()
        process.communicate(timeout=20)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def up(url: str, process: subprocess.Popen[bytes]) -> bool:
    assert process.poll() is None, process.communicate()[0].decode()
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def test_a_wrong_token_is_refused_before_the_body_is_read(receiver: str) -> None:
    headers = {"Content-Type": "application/json", "Content-Length": "3000"}
    headers["Authorization"] = "Bearer wrong-token-0123456789"
    with connect(receiver) as sock:
        sock.sendall(head("/alerts", headers) + b'{"version": "4"')
        answer = read_answer(sock)
    assert answer.status == 401  # reading the body first would end in 408
    assert answer.headers["www-authenticate"] == "Bearer"


def test_a_slow_notification_gets_408(receiver: str) -> None:
    headers = {"Content-Type": "application/json", "Content-Length": "3000"}
    headers["Authorization"] = f"Bearer {TOKEN}"
    with connect(receiver) as sock:
        sock.sendall(head("/alerts", headers) + b'{"version": "4"')
        with Trickle(sock):
            answer = read_answer(sock)
    assert answer.status == 408
    assert "did not arrive within 1 s" in answer.json()["detail"]


def test_a_notification_over_the_limit_gets_413(receiver: str) -> None:
    body = b'{"alerts": [' + b"{}," * 2000 + b"{}]}"
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    answer = httpx.post(f"{receiver}/alerts", content=body, headers=headers, timeout=10)
    assert answer.status_code == 413
    assert "exceeds the limit of 4096 bytes" in answer.json()["detail"]


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({}, "--host 0.0.0.0 listens beyond loopback, where POST /alerts needs authentication"),
        ({"CONVEYOR_WEBHOOK_TOKEN": "short"}, "CONVEYOR_WEBHOOK_TOKEN: the token must have"),
        ({"CONVEYOR_ADMIN_TOKEN": "short"}, "CONVEYOR_ADMIN_TOKEN: the token must have"),
    ],
    ids=["no-token", "short-webhook-token", "short-admin-token"],
)
def test_the_receiver_refuses_to_start_without_a_strong_token(
    project: Path, variables: dict[str, str], message: str
) -> None:
    options = ("--host", "0.0.0.0", "--port", "1")
    process = serve_webhook(project, *options, env=environment(**variables))
    output = process.communicate(timeout=60)[0].decode()
    assert process.returncode == 2
    assert message in output
