"""Conveyor's serving images: their size and container start to ready, against MLflow's.

Builds ``conveyor-serve`` from this checkout on the local Debian base (``make images``) and
reads its size and the largest packages inside. One real ``mlflow server`` (SQLite
backend) keeps its artifacts in a real S3 server (SeaweedFS), and a small LightGBM
pipeline is registered there as ``bench-image@champion``. From it come:

- a baked image, ``conveyor image build bench-image@champion``;
- the peer, ``mlflow models build-docker``'s Dockerfile for the same model, built on the
  same Debian base plus apt (``benchmarks/mlflow_peer.py``).

Then, for ``--rounds`` interleaved rounds, it times from ``podman run`` (or the process
start) to the first 200 on the readiness endpoint:

- the serving image following the alias on the tracking server (read-only root, host
  network), its artifacts coming from S3 through the server;
- the same ``conveyor serve`` as a process on the host (what the container adds);
- the baked image, and MLflow's image (``/ping``), both with their port published, no
  registry needed.

Usage: python -m benchmarks.images [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
from tests.s3_server import S3Server, running_s3_server

from benchmarks import publish
from benchmarks.mlflow_peer import build_peer
from benchmarks.process import BIN, ROOT
from benchmarks.serving.targets import base_env, free_port

RESULTS = ROOT / "benchmarks" / "results-images.json"
DOCS = (ROOT / "docs" / "deployment.md", ROOT / "docs" / "benchmarks.md")
SECTION = "## Serving image"
START, END = "<!-- images:start -->", "<!-- images:end -->"
NAME = "bench-image"
BASE = "localhost/conveyor-python:3.11-bookworm"
PEER_BASE = "localhost/conveyor-python:3.11-bookworm-apt"
BAKED = "localhost/conveyor-bench-baked:1"
PEER = "localhost/conveyor-bench-mlflow-peer:1"
KEY = "bench-image-signing-key-32-chars-long"
CONF = ROOT / "deploy" / "podman" / "containers.conf"
ENV = {**base_env(), "CONTAINERS_CONF": str(CONF)}


def podman(*args: str) -> str:
    return subprocess.run(
        ["podman", *args], env=ENV, capture_output=True, text=True, check=True
    ).stdout


def build() -> tuple[str, float]:
    """``deploy/docker/build-images.sh`` for the serving image: its tag and build seconds."""
    started = time.perf_counter()
    subprocess.run(
        ["bash", "deploy/docker/build-images.sh", str(BIN / "python"), "serve"],
        cwd=ROOT,
        env=ENV,
        check=True,
    )
    from conveyor import __version__

    return f"localhost/conveyor-serve:{__version__}", time.perf_counter() - started


def largest_packages(tag: str, count: int = 8) -> list[tuple[str, float]]:
    """The biggest entries of the image's site-packages, MB."""
    site = "/opt/conveyor/venv/lib/python3.11/site-packages"
    script = f"du -sk {site}/* | sort -n | tail -{count}"
    listing = podman("run", "--rm", "--entrypoint", "sh", tag, "-c", script)
    rows = [line.split("\t") for line in listing.strip().splitlines()]
    return [(Path(path).name, round(int(kb) / 1024, 1)) for kb, path in reversed(rows)]


def start_server(folder: Path, s3: S3Server, bucket: str) -> tuple[subprocess.Popen[bytes], str]:
    """``mlflow server`` on SQLite with artifacts proxied to ``s3://bucket``, until healthy."""
    port = free_port()
    argv = [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--workers", "1", "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}"]
    argv += ["--artifacts-destination", f"s3://{bucket}/mlartifacts"]
    env = {
        **s3.child_env(ENV),
        "MLFLOW_S3_ENDPOINT_URL": s3.endpoint,
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }
    with (folder / "server.log").open("wb") as log:
        process = subprocess.Popen(argv, env=env, stdout=log, stderr=log, cwd=folder)
    url = f"http://127.0.0.1:{port}"
    wait_ready(f"{url}/health", lambda: process.poll() is None, 120)
    return process, url


def register(url: str) -> None:
    """A small LightGBM pipeline, logged, registered, signed and promoted to champion."""
    import lightgbm
    import numpy as np
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    from conveyor.registry.store import ModelRegistry

    os.environ["CONVEYOR_SIGNING_KEY"] = KEY
    rng = np.random.default_rng(0)
    table = pd.DataFrame(
        {"age": rng.normal(40, 12, 400), "plan": rng.choice(["basic", "plus", "pro"], 400)}
    )
    table["churned"] = np.where(table["age"] > 45, "yes", "no")
    pre = ColumnTransformer(
        [("num", "passthrough", ["age"]), ("cat", OneHotEncoder(handle_unknown="ignore"), ["plan"])]
    )
    pipeline = Pipeline([("pre", pre), ("model", lightgbm.LGBMClassifier(verbose=-1))])
    pipeline.fit(table[["age", "plan"]], table["churned"])
    registry = ModelRegistry(url)
    run_id = registry.log_training_run(
        experiment=NAME,
        run_name="bench",
        params={"model": "lightgbm"},
        metrics={"roc_auc": 0.9},
        artifacts=[],
        pipeline=pipeline,
        input_example=table[["age", "plan"]].head(5),
        dataset=table,
        dataset_name=NAME,
        dataset_source="synthetic",
        dataset_digest="bench",
        target="churned",
        tags={},
    )
    version = registry.register(name=NAME, run_id=run_id, key="bench", tags={})
    registry.promote(NAME, version.version)


def wait_ready(url: str, alive: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if not alive():
            raise RuntimeError(f"{url}: the server exited before it was ready")
        time.sleep(0.05)
    raise RuntimeError(f"{url}: not ready within {timeout} s")


SERVE_ARGS = ["--poll-interval", "0", "--drain-seconds", "0"]


def time_container(name: str, url: str, *run_args: str) -> float:
    """Seconds from ``podman run --detach --name NAME RUN_ARGS`` to the first 200 on
    ``url``; the container is removed afterwards."""
    started = time.perf_counter()
    podman("run", "--detach", "--name", name, *run_args)

    def alive() -> bool:
        return podman("inspect", "--format", "{{.State.Status}}", name).strip() == "running"

    try:
        wait_ready(url, alive, 120)
        return time.perf_counter() - started
    finally:
        podman("rm", "--force", "--time", "5", name)


def start_container(tag: str, tracking: str) -> float:
    """The serving image following the alias (read-only root, host network): seconds."""
    port = free_port()
    return time_container(
        f"bench-serve-{port}", f"http://127.0.0.1:{port}/readyz",
        "--read-only", "--network", "host",
        "--env", f"CONVEYOR_SERVE_MODEL_URI=models:/{NAME}@champion",
        "--env", f"MLFLOW_TRACKING_URI={tracking}", "--env", f"CONVEYOR_SIGNING_KEY={KEY}",
        tag, "serve", "--host", "127.0.0.1", "--port", str(port), *SERVE_ARGS,
    )  # fmt: skip


def start_process(tracking: str) -> float:
    """Seconds from starting ``conveyor serve`` on the host to the first 200 on ``/readyz``."""
    port = free_port()
    env = {**ENV, "MLFLOW_TRACKING_URI": tracking, "CONVEYOR_SIGNING_KEY": KEY}
    argv = [str(BIN / "conveyor"), "serve", "--model-uri", f"models:/{NAME}@champion"]
    argv += ["--port", str(port), *SERVE_ARGS]
    started = time.perf_counter()
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", lambda: process.poll() is None, 120)
        return time.perf_counter() - started
    finally:
        process.terminate()
        process.communicate(timeout=30)


def start_published(tag: str, path: str) -> float:
    """A model-holding image, port 8080 published: seconds to the first 200 on ``path``."""
    port = free_port()
    token = f"CONVEYOR_FEEDBACK_TOKEN={'f' * 32}"  # the baked server listens on 0.0.0.0
    return time_container(
        f"bench-baked-{port}", f"http://127.0.0.1:{port}{path}",
        "--publish", f"127.0.0.1:{port}:8080", "--env", token, tag,
    )  # fmt: skip


def bake(tracking: str, serve_tag: str, folder: Path) -> float:
    """``conveyor image build`` of the champion on the serving image: seconds."""
    env = {**ENV, "CONVEYOR_SIGNING_KEY": KEY}
    argv = [str(BIN / "conveyor"), "image", "build", f"{NAME}@champion", "--tag", BAKED]
    argv += ["--tracking-uri", tracking, "--base-image", serve_tag]
    started = time.perf_counter()
    subprocess.run(argv, env=env, cwd=folder, check=True, capture_output=True)
    return time.perf_counter() - started


def size_mb(tag: str) -> float:
    return round(int(podman("image", "inspect", "--format", "{{.Size}}", tag)) / 1e6, 1)


MEASURES = ("container_s", "process_s", "baked_s", "peer_s")


def measure(rounds: int) -> dict[str, Any]:
    tag, build_s = build()
    subprocess.run(["bash", "deploy/docker/build-base.sh", PEER_BASE, "apt"], cwd=ROOT, env=ENV,
                   check=True)  # fmt: skip
    result: dict[str, Any] = {
        "image": tag,
        "base": BASE,
        "image_mb": size_mb(tag),
        "base_mb": size_mb(BASE),
        "peer_base": PEER_BASE,
        "peer_base_mb": size_mb(PEER_BASE),
        "build_s": round(build_s, 1),
        "largest_packages_mb": largest_packages(tag),
        "rounds": [],
    }
    with tempfile.TemporaryDirectory(prefix="bench-images-") as tmp, ExitStack() as stack:
        folder = Path(tmp)
        (folder / "s3").mkdir()
        s3 = stack.enter_context(running_s3_server(folder / "s3"))
        server, url = start_server(folder, s3, s3.create_bucket("bench"))
        stack.callback(server.communicate, timeout=30)
        stack.callback(server.terminate)
        register(url)
        stack.callback(podman, "rmi", "--force", BAKED)
        result["bake_s"] = round(bake(url, tag, folder), 1)
        result["baked_mb"] = size_mb(BAKED)
        stack.callback(podman, "rmi", "--force", PEER)
        peer_build = build_peer(
            f"models:/{NAME}@champion",
            tracking_uri=url,
            base=PEER_BASE,
            folder=folder,
            tag=PEER,
            env=ENV,
        )
        result["peer_build_s"] = round(peer_build, 1)
        result["peer_mb"] = size_mb(PEER)
        for index in range(rounds):
            print(f"round {index + 1}/{rounds}", file=sys.stderr)
            result["rounds"].append(
                {
                    "container_s": start_container(tag, url),
                    "process_s": start_process(url),
                    "baked_s": start_published(BAKED, "/readyz"),
                    "peer_s": start_published(PEER, "/ping"),
                }
            )
    result["summary"] = {key: publish.stats([r[key] for r in result["rounds"]]) for key in MEASURES}
    return result


def render(result: dict[str, Any]) -> str:
    """The Markdown between the markers in the docs."""
    meta, s = result["meta"], result["summary"]

    def spread(key: str) -> str:
        v = s[key]
        return f"{v['median']:.1f} ({v['min']:.1f}-{v['max']:.1f})"

    packages = ", ".join(f"{name} {mb:.0f}" for name, mb in result["largest_packages_mb"])
    ratio = result["peer_mb"] / result["baked_mb"]
    return "\n".join(
        [
            f"Measured in `benchmarks/results-images.json` ({meta['date'][:10]}, "
            f"{meta['machine'].split(',')[0]}, commit {meta['commit'][:10]}, "
            f"{len(result['rounds'])} interleaved rounds, median (min-max)); "
            "`python -m benchmarks.images` reproduces it. The tracking server keeps its "
            "artifacts in a real S3 server (SeaweedFS); MLflow's image is its "
            "`build-docker` Dockerfile built on the same Debian base plus apt.",
            "",
            "| measure | Conveyor | MLflow `build-docker` |",
            "|---|---|---|",
            f"| serving image without a model, MB (base {result['base_mb']:.0f}) | "
            f"{result['image_mb']:.0f} | |",
            f"| image holding the model, MB (bases {result['base_mb']:.0f} and "
            f"{result['peer_base_mb']:.0f}) | {result['baked_mb']:.0f} | "
            f"{result['peer_mb']:.0f} ({ratio:.1f}x) |",
            f"| building that image, s | {result['bake_s']:.0f} | "
            f"{result['peer_build_s']:.0f} (installs from PyPI) |",
            f"| start to ready, model baked in, s | {spread('baked_s')} | {spread('peer_s')} |",
            f"| start to ready, following the alias on the tracking server and S3, s | "
            f"{spread('container_s')} | |",
            f"| the same `conveyor serve` as a host process, s | {spread('process_s')} | |",
            "",
            f"Largest packages in the serving image, MB: {packages}.",
            "",
            f"Goals: serving image 500 MB or less ({publish.verdict(result['image_mb'] <= 500)}); "
            f"start to ready with the model baked in 5 s or less in every round "
            f"({publish.verdict(s['baked_s']['max'] <= 5)}); following an alias from the tracking "
            f"server and S3, 10 s or less in every round "
            f"({publish.verdict(s['container_s']['max'] <= 10)}).",
        ]
    )


def main() -> None:
    """Measure, print, and record the results (and the tables in the docs)."""
    publish.main(
        argparse.ArgumentParser(description=__doc__.splitlines()[0]),
        lambda args: measure(args.rounds),
        publish.Publication(RESULTS, DOCS, START, END, SECTION, render),
    )


if __name__ == "__main__":
    main()
