"""The servers under test, each started in its own process group and always stopped.

- ``conveyor serve`` (options detected from ``conveyor serve --help``: the ONNX runtime,
  micro-batching and the concurrency limit may not exist yet in the build under test);
- ``mlflow models serve`` on the same registered version;
- Seldon MLServer + mlserver-sklearn in their own venv (``.venv-bench-mlserver``), serving
  the same fitted pipeline saved with joblib, adaptive batching on;
- a bare ASGI "hello" app (``benchmarks.serving.hello``) on uvicorn, started as
  ``conveyor serve`` starts it.

Every server gets the same environment (:data:`THREAD_ENV`: one OpenMP/BLAS thread) and
runs without an access log; micro-batching, where a server has it, waits for the same
number of rows and milliseconds (:data:`BATCH_MAX_ROWS`, :data:`BATCH_MAX_WAIT_MS`).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import httpx

__all__ = [
    "BATCH_MAX_ROWS",
    "BATCH_MAX_WAIT_MS",
    "BATCHING_OPTIONS",
    "BIN",
    "MLSERVER_VENV",
    "MLSERVER_WORKERS",
    "ROOT",
    "ServeFeatures",
    "Server",
    "THREAD_ENV",
    "TargetError",
    "access_log_lines",
    "conveyor_serve",
    "detect_features",
    "ensure_mlserver",
    "hello_app",
    "mlflow_serve",
    "mlserver",
    "server_env",
]

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
MLSERVER_VENV = ROOT / ".venv-bench-mlserver"
MLSERVER_PINS = ("mlserver==1.7.1", "mlserver-sklearn==1.7.1", "uvloop==0.21.0")
# uvloop 0.22+ makes MLServer 1.7.1's inference workers die at start ("There is no current
# event loop in thread 'MainThread'"), so it is pinned. The model's libraries are pinned to
# the versions of this venv so the joblib pickle loads exactly as it was saved.
MODEL_PACKAGES = ("scikit-learn", "numpy", "scipy", "pandas", "joblib", "lightgbm")
# The same thread settings for every server. Conveyor also sets every estimator's n_jobs to
# 1 when it loads a pipeline (an explicit n_jobs beats OMP_NUM_THREADS in LightGBM), and the
# peers are handed the same pipeline with n_jobs=1 (see ``demo.served_pipeline``).
THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
# Micro-batching where a server has it: Conveyor's --batch-max-rows/--batch-max-wait-ms and
# MLServer's max_batch_size/max_batch_time get the same values.
BATCH_MAX_ROWS = 64
BATCH_MAX_WAIT_MS = 10.0
BATCHING_OPTIONS = (
    "--batch-max-rows",
    str(BATCH_MAX_ROWS),
    "--batch-max-wait-ms",
    f"{BATCH_MAX_WAIT_MS:g}",
)
MLSERVER_WORKERS = 2
STARTUP_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 20.0


class TargetError(RuntimeError):
    """A server could not be set up or did not become ready (message: why, log tail)."""


@dataclass(frozen=True)
class ServeFeatures:
    """Which ``conveyor serve`` options the build under test has.

    Attributes:
        runtime: ``--runtime auto|onnx|pyfunc``.
        batching: ``--batch-max-rows`` / ``--batch-max-wait-ms`` (micro-batching).
        max_concurrency: ``--max-concurrency``.
    """

    runtime: bool
    batching: bool
    max_concurrency: bool


def detect_features() -> ServeFeatures:
    """Read ``conveyor serve --help`` for the options added by the serving work."""
    env = {**os.environ, "COLUMNS": "250", "NO_COLOR": "1"}
    done = subprocess.run(
        [str(BIN / "conveyor"), "serve", "--help"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    text = done.stdout + done.stderr
    return ServeFeatures(
        runtime="--runtime" in text,
        batching="--batch-max-rows" in text and "--batch-max-wait-ms" in text,
        max_concurrency="--max-concurrency" in text,
    )


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def base_env() -> dict[str, str]:
    """Our environment without MLflow/Conveyor variables, venv first (also used by
    ``benchmarks.images``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "CONVEYOR_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    return env


def server_env() -> dict[str, str]:
    """The environment of every server under test: :func:`base_env`, :data:`THREAD_ENV`,
    and uvicorn's access log off for servers that start uvicorn from its command line
    (``mlflow models serve``)."""
    env = {k: v for k, v in base_env().items() if not k.startswith("UVICORN_")}
    return {**env, "UVICORN_ACCESS_LOG": "false", **THREAD_ENV}


@dataclass
class Server:
    """A running server: its own process group, a log file, a base URL."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def log_tail(self, chars: int = 1500) -> str:
        """The end of the server's log."""
        return self.log.read_text(encoding="utf-8", errors="replace")[-chars:]

    def access_log_lines(self) -> int:
        """Lines of the server's log that log a POST (0 when the access log is off)."""
        return access_log_lines(self.log)

    def stop(self) -> None:
        """SIGTERM to the whole process group, SIGKILL after a grace period."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=STOP_TIMEOUT_S)
        with contextlib.suppress(ProcessLookupError):  # stragglers (workers) too
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)


def access_log_lines(log: Path) -> int:
    """Lines of ``log`` that log a request to a POST endpoint (uvicorn's access log format)."""
    with log.open(encoding="utf-8", errors="replace") as lines:
        return sum('"POST /' in line for line in lines)


@contextlib.contextmanager
def _running(
    name: str,
    argv: list[str],
    *,
    port: int,
    ready_path: str,
    logs: Path,
    env: dict[str, str],
    cwd: Path,
) -> Iterator[Server]:
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{name}-{port}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=sink, stderr=sink, start_new_session=True
        )
    server = Server(name, f"http://127.0.0.1:{port}", process, log)
    try:
        _wait_ready(server, ready_path)
        yield server
    finally:
        server.stop()


def _wait_ready(server: Server, path: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise TargetError(
                f"{server.name} exited ({server.process.returncode}): {server.log_tail()}"
            )
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(server.url + path, timeout=2.0).status_code == 200:
                return
        time.sleep(0.3)
    raise TargetError(f"{server.name} not ready in {STARTUP_TIMEOUT_S:.0f} s: {server.log_tail()}")


def conveyor_serve(
    config: Path,
    *,
    workers: int,
    options: tuple[str, ...],
    logs: Path,
    env: dict[str, str] | None = None,
) -> contextlib.AbstractContextManager[Server]:
    """``conveyor serve -c CONFIG`` (the champion; alias polling off, no drain delay; its
    access log is off by default)."""
    port = free_port()
    argv = [str(BIN / "conveyor"), "serve", "-c", str(config), "--port", str(port)]
    argv += ["--workers", str(workers), "--poll-interval", "0", "--drain-seconds", "0"]
    argv += list(options)
    environment = {**server_env(), "COLUMNS": "200", **(env or {})}
    return _running(
        f"conveyor-w{workers}",
        argv,
        port=port,
        ready_path="/readyz",
        logs=logs,
        env=environment,
        cwd=config.parent,
    )


def mlflow_serve(
    model_folder: Path, *, workers: int, logs: Path
) -> contextlib.AbstractContextManager[Server]:
    """``mlflow models serve --env-manager local`` on a local MLflow model folder.

    MLflow starts ``uvicorn`` from its command line: ``UVICORN_ACCESS_LOG=false`` (in
    :func:`server_env`) turns its access log off.
    """
    port = free_port()
    argv = [str(BIN / "mlflow"), "models", "serve", "-m", str(model_folder)]
    argv += ["--env-manager", "local", "-w", str(workers), "-p", str(port), "-h", "127.0.0.1"]
    return _running(
        f"mlflow-w{workers}",
        argv,
        port=port,
        ready_path="/ping",
        logs=logs,
        env=server_env(),
        cwd=logs,
    )


def hello_app(*, workers: int, logs: Path) -> contextlib.AbstractContextManager[Server]:
    """The bare ASGI app on uvicorn started as ``conveyor serve`` starts it (see
    ``benchmarks.serving.hello``), access log off."""
    port = free_port()
    argv = [sys.executable, "-m", "benchmarks.serving.hello", str(port), str(workers)]
    return _running(
        f"hello-w{workers}",
        argv,
        port=port,
        ready_path="/",
        logs=logs,
        env=server_env(),
        cwd=ROOT,
    )


def _mlserver_requirements() -> list[str]:
    pins = [f"{name}=={metadata.version(name)}" for name in MODEL_PACKAGES]
    return [*MLSERVER_PINS, *pins]


def ensure_mlserver() -> Path:
    """The MLServer venv, created (pip from PyPI, pinned) on first use; its ``mlserver``.

    Raises:
        TargetError: the venv or the install failed (the message holds pip's last lines).
    """
    wanted = "\n".join(_mlserver_requirements())
    stamp = MLSERVER_VENV / "bench-requirements.txt"
    mlserver_bin = MLSERVER_VENV / "bin" / "mlserver"
    if stamp.exists() and stamp.read_text() == wanted and mlserver_bin.exists():
        return mlserver_bin
    base = getattr(sys, "_base_executable", sys.executable)
    steps = [
        [base, "-m", "venv", str(MLSERVER_VENV)],
        [
            str(MLSERVER_VENV / "bin" / "pip"),
            "install",
            "-q",
            "--disable-pip-version-check",
            *wanted.splitlines(),
        ],
    ]
    for argv in steps:
        print(f"mlserver venv: {' '.join(argv)}", flush=True)
        done = subprocess.run(argv, capture_output=True, text=True, timeout=1800, check=False)
        if done.returncode != 0:
            noise = "WARNING: Location"
            lines = [x for x in (done.stdout + done.stderr).splitlines() if noise not in x]
            raise TargetError(f"{argv[0]} failed: {' '.join(lines[-8:])}")
    stamp.write_text(wanted)
    return mlserver_bin


def mlserver(
    mlserver_bin: Path, model_file: Path, *, model_name: str, code: Path, logs: Path
) -> contextlib.AbstractContextManager[Server]:
    """MLServer with mlserver-sklearn serving ``model_file`` (joblib), adaptive batching on
    (its access log follows ``debug``: off); ``code`` (the modules the pickle names, not in
    MLServer's venv) on its ``PYTHONPATH``."""
    folder = model_file.parent
    http, grpc, metrics = free_port(), free_port(), free_port()
    settings = {
        "http_port": http,
        "grpc_port": grpc,
        "metrics_port": metrics,
        "host": "127.0.0.1",
        "parallel_workers": MLSERVER_WORKERS,
        "debug": False,
    }
    model = {
        "name": model_name,
        "implementation": "mlserver_sklearn.SKLearnModel",
        "max_batch_size": BATCH_MAX_ROWS,
        "max_batch_time": BATCH_MAX_WAIT_MS / 1000,
        "parameters": {"uri": f"./{model_file.name}"},
    }
    (folder / "settings.json").write_text(json.dumps(settings))
    (folder / "model-settings.json").write_text(json.dumps(model))
    argv = [str(mlserver_bin), "start", str(folder)]
    return _running(
        f"mlserver-w{MLSERVER_WORKERS}",
        argv,
        port=http,
        ready_path=f"/v2/models/{model_name}/ready",
        logs=logs,
        env={**server_env(), "PYTHONPATH": str(code)},
        cwd=folder,
    )
