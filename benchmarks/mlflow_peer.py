"""The peer of Conveyor's baked image: ``mlflow models build-docker`` for the same model.

``mlflow models build-docker`` is ``generate-dockerfile`` plus a ``docker build``. Here the
generated Dockerfile is built with podman on the same base as Conveyor's images (the
official slim Python image it names cannot be pulled on these machines), changed only
where that base differs: the base's Python is Debian's, which keeps ``pip`` out of the
system interpreter, so a virtualenv comes first on the PATH, as the official image's own
``pip`` would be. Everything else is MLflow's: nginx from Debian, ``pip install mlflow``
and the model's requirements from PyPI inside the build, its entrypoint and port 8080.
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

from benchmarks.process import BIN

# The host's CA bundle (package registries may sit behind a TLS proxy with its own CA).
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
PRELUDE = "ARG PIP_CERT\nRUN python3 -m venv /opt/venv\nENV PATH=/opt/venv/bin:$PATH\n"


def dockerfile_on(base: str, generated: str) -> str:
    """MLflow's generated Dockerfile with its first ``FROM`` on ``base``, plus the prelude.

    Raises:
        ValueError: the Dockerfile has no ``FROM`` line (MLflow changed its template).
    """
    patched, count = re.subn(
        r"^FROM \S+\n", lambda _: f"FROM {base}\n{PRELUDE}", generated, count=1, flags=re.M
    )
    if count != 1:
        raise ValueError("MLflow's generated Dockerfile has no FROM line")
    return patched


def build_peer(
    model_uri: str, *, tracking_uri: str, base: str, folder: Path, tag: str, env: dict[str, str]
) -> float:
    """Generate MLflow's Dockerfile for ``model_uri`` and build it as ``tag``: seconds."""
    context = folder / "mlflow-docker"
    started = time.perf_counter()
    subprocess.run(
        [str(BIN / "mlflow"), "models", "generate-dockerfile", "-m", model_uri, "-d", str(context)],
        env={**env, "MLFLOW_TRACKING_URI": tracking_uri},
        check=True,
        capture_output=True,
    )
    dockerfile = context / "Dockerfile"
    dockerfile.write_text(dockerfile_on(base, dockerfile.read_text(encoding="utf-8")))
    argv = ["podman", "build", "--quiet", "--format", "docker", "--tag", tag]
    if HOST_CA.is_file():
        argv += ["--volume", f"{HOST_CA}:/run/host-ca.crt:ro"]
        argv += ["--build-arg", "PIP_CERT=/run/host-ca.crt"]
    built = subprocess.run(
        [*argv, str(context)], env=env, capture_output=True, text=True, check=False
    )
    if built.returncode != 0:
        raise RuntimeError(f"building MLflow's image failed:\n{built.stderr[-3000:]}")
    return time.perf_counter() - started
