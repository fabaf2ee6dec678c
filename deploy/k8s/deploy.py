"""Deploy an overlay, check it, roll it back on failure; check that replicas follow an alias.

    python deploy/k8s/deploy.py render --overlay staging|production [--image IMAGE ...]
    python deploy/k8s/deploy.py apply  --overlay staging|production [--image IMAGE ...]
                                       --model NAME [--timeout 300]
    python deploy/k8s/deploy.py smoke  (--namespace NS | --url URL) --model NAME
    python deploy/k8s/deploy.py follow (--namespace NS | --url URL ...) --model NAME
                                       --version V [--timeout 180]

``render`` prints the overlay's manifests with each ``--image`` (``NAME@sha256:...`` or
``NAME:TAG``, NAME as the overlay writes it, e.g. ``ghcr.io/conveyor-mlops/conveyor-serve``)
set by a kustomization that wraps the overlay: the checkout is not edited.

``apply`` renders, applies (``kubectl apply``), waits for ``kubectl rollout status`` of
the serving Deployment, then sends a smoke prediction. If the rollout does not finish in
``--timeout`` seconds or the smoke prediction fails, it runs ``kubectl rollout undo``,
waits for that rollout, and exits 1.

``smoke`` asks the server for the model's inputs (``GET /v2/models/NAME``), builds one row
from them (0 for numbers, "smoke" for text: an unseen level, which the server accepts and
counts) and expects a 200 naming a model version. ``follow`` waits until every serving pod
(or every ``--url``) answers with ``--version``: after ``conveyor promote`` moves the alias,
the replicas load the new version on their next poll. Without ``--url`` both reach the pods
through ``kubectl port-forward``. Standard library only; needs ``kubectl``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OVERLAYS = ("staging", "production")
NAMESPACES = {"staging": "conveyor-staging", "production": "conveyor"}
DEPLOYMENT = "deployment/conveyor-serve"
SERVE_LABEL = "app.kubernetes.io/name=conveyor-serve"
IMAGE = re.compile(
    r"^(?P<name>[a-z0-9][a-z0-9./_-]*)"
    r"(?:@(?P<digest>sha256:[0-9a-f]{64})|:(?P<tag>[\w][\w.-]{0,127}))$"
)
PLACEHOLDER = "sha256:" + "0" * 64  # the production overlay's "not deployed" digest
FORWARDING = re.compile(r"Forwarding from 127\.0\.0\.1:(\d+)")


class DeployError(Exception):
    """A step failed; the message says which."""


def say(message: str) -> None:
    sys.stdout.write(f"{time.strftime('%H:%M:%S')} {message}\n")
    sys.stdout.flush()


def kubectl(*args: str, stdin: str | None = None, timeout: float = 600) -> str:
    result = subprocess.run(
        ["kubectl", *args], input=stdin, capture_output=True, text=True, timeout=timeout,
        check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise DeployError(f"kubectl {' '.join(args[:3])} failed: {result.stderr.strip()}")
    return result.stdout


# -- render --------------------------------------------------------------------------
def image_override(image: str) -> dict[str, str]:
    """``NAME@sha256:D`` or ``NAME:TAG`` as a kustomize ``images`` entry."""
    match = IMAGE.match(image)
    if match is None:
        raise DeployError(f"--image {image!r}: expected NAME@sha256:<64 hex> or NAME:TAG")
    entry = {"name": match["name"]}
    if match["digest"]:
        entry["digest"] = match["digest"]
    else:
        entry["newTag"] = match["tag"]
    return entry


def render(overlay: str, images: list[str]) -> str:
    """The overlay's manifests, ``images`` set on top (a wrapping kustomization)."""
    entries = [image_override(i) for i in images]
    with tempfile.TemporaryDirectory(prefix="conveyor-deploy-") as folder:
        wrapper = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            # kustomize takes no absolute root: the overlay, relative to the wrapper
            "resources": [os.path.relpath(HERE / "overlays" / overlay, folder)],
            "images": entries,
        }
        # JSON is YAML: kustomize reads it, and no YAML library is needed here
        (Path(folder) / "kustomization.yaml").write_text(json.dumps(wrapper), encoding="utf-8")
        manifests = kubectl("kustomize", folder)
    for entry in entries:
        if entry["name"] + ("@" if "digest" in entry else ":") not in manifests:
            raise DeployError(f"--image {entry['name']}: the overlay has no such image")
    placeholders = sorted(set(re.findall(rf"image: (\S+)@{PLACEHOLDER}", manifests)))
    if placeholders:
        raise DeployError(
            f"{overlay}: no digest given for {', '.join(placeholders)} (the overlay holds a "
            "placeholder); pass --image NAME@sha256:... for each"
        )
    return manifests


# -- talking to the server -----------------------------------------------------------
def get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return dict(json.loads(answer.read()))


def smoke_row(metadata: dict[str, Any]) -> dict[str, Any]:
    """One row from the model's inputs: 0 for numbers, False for booleans, "smoke" for text."""
    values = {"BOOL": False, "BYTES": "smoke"}
    return {i["name"]: values.get(i["datatype"], 0) for i in metadata["inputs"]}


def predict(url: str, model: str) -> str:
    """One prediction; the version that answered (an error unless 200 with a version)."""
    try:
        row = smoke_row(get_json(f"{url}/v2/models/{model}"))
        body = json.dumps({"dataframe_records": [row]}).encode("utf-8")
        request = urllib.request.Request(
            f"{url}/invocations", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            version = answer.headers.get("X-Model-Version")
            payload = json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", errors="replace")[:300]
        raise DeployError(f"{url}: HTTP {exc.code} {detail}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise DeployError(f"{url}: no answer ({exc})") from exc
    if not version or "predictions" not in payload:
        raise DeployError(f"{url}: the answer names no model version or holds no predictions")
    return str(version)


@contextmanager
def port_forward(namespace: str, target: str) -> Iterator[str]:
    """``kubectl port-forward`` to ``target`` (e.g. pod/x) on a free local port: its URL."""
    process = subprocess.Popen(
        ["kubectl", "-n", namespace, "port-forward", target, ":http"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = FORWARDING.search(line)
        if match is None:
            error = process.stderr.read() if process.stderr else ""
            raise DeployError(f"kubectl port-forward {target}: {line.strip()} {error.strip()}")
        yield f"http://127.0.0.1:{match[1]}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def pods(namespace: str) -> list[str]:
    names = kubectl(
        "-n", namespace, "get", "pods", "-l", SERVE_LABEL,
        "--field-selector", "status.phase=Running", "-o", "name",
    ).split()  # fmt: skip
    if not names:
        raise DeployError(f"no running serving pod in namespace {namespace}")
    return names


# -- commands ------------------------------------------------------------------------
def smoke(url: str, model: str) -> None:
    say(f"smoke prediction answered by {model} version {predict(url, model)}")


def follow(urls: list[str], model: str, version: str, timeout: float) -> None:
    """Until every URL answers with ``version``; an error naming the laggards at the end."""
    deadline = time.monotonic() + timeout
    while True:
        answers = {}
        for url in urls:
            try:
                answers[url] = predict(url, model)
            except DeployError as exc:
                answers[url] = str(exc)
        behind = {url: v for url, v in answers.items() if v != version}
        if not behind:
            say(f"all {len(urls)} replicas serve {model} version {version}")
            return
        if time.monotonic() > deadline:
            raise DeployError(
                f"not every replica serves version {version} after {timeout:.0f} s: "
                + "; ".join(f"{url} answered {v}" for url, v in behind.items())
            )
        time.sleep(2.0)


def apply(overlay: str, images: list[str], model: str, timeout: float) -> None:
    namespace = NAMESPACES[overlay]
    manifests = render(overlay, images)
    say(kubectl("apply", "-f", "-", stdin=manifests).strip())
    try:
        kubectl("-n", namespace, "rollout", "status", DEPLOYMENT, f"--timeout={timeout:.0f}s",
                timeout=timeout + 30)  # fmt: skip
        say(f"{DEPLOYMENT} rolled out in {namespace}")
        with port_forward(namespace, "service/conveyor-serve") as url:
            smoke(url, model)
    except DeployError as exc:
        say(f"deploy failed, rolling back: {exc}")
        kubectl("-n", namespace, "rollout", "undo", DEPLOYMENT)
        kubectl("-n", namespace, "rollout", "status", DEPLOYMENT, f"--timeout={timeout:.0f}s",
                timeout=timeout + 30)  # fmt: skip
        raise DeployError(f"deploy to {overlay} failed and was rolled back: {exc}") from exc


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="deploy.py", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("render", "apply", "smoke", "follow"):
        command = commands.add_parser(name)
        if name in ("render", "apply"):
            command.add_argument("--overlay", choices=OVERLAYS, required=True)
            command.add_argument("--image", action="append", default=[], help="NAME@DIGEST")
        if name in ("smoke", "follow"):
            where = command.add_mutually_exclusive_group(required=True)
            where.add_argument("--namespace", help="reach the serving pods through kubectl")
            where.add_argument("--url", action="append", help="a replica's base URL")
        if name != "render":
            command.add_argument("--model", required=True, help="the registered model's name")
        if name == "follow":
            command.add_argument("--version", required=True)
        if name in ("apply", "follow"):
            command.add_argument("--timeout", type=float, default=300.0, help="seconds")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> None:
    if args.command == "render":
        sys.stdout.write(render(args.overlay, args.image))
    elif args.command == "apply":
        apply(args.overlay, args.image, args.model, args.timeout)
    elif args.url:
        if args.command == "smoke":
            for url in args.url:
                smoke(url.rstrip("/"), args.model)
        else:
            follow([u.rstrip("/") for u in args.url], args.model, args.version, args.timeout)
    else:
        with ExitStack() as stack:
            if args.command == "smoke":
                url = stack.enter_context(port_forward(args.namespace, "service/conveyor-serve"))
                smoke(url, args.model)
            else:
                urls = [stack.enter_context(port_forward(args.namespace, p))
                        for p in pods(args.namespace)]  # fmt: skip
                follow(urls, args.model, args.version, args.timeout)


def main(argv: list[str] | None = None) -> int:
    try:
        run(parse(sys.argv[1:] if argv is None else argv))
    except DeployError as exc:
        sys.stderr.write(f"deploy: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
