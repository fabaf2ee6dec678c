"""Every rendered object validates against the Kubernetes API schemas of a pinned version
(``kubernetes-validate --strict``: unknown fields are errors), and the Prometheus
Operator's objects against the operator's CRD schemas."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.integration.k8s.conftest import K8S, OVERLAYS, ROOT, find

pytestmark = pytest.mark.integration

KUBERNETES_VERSION = "1.34.0"
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}
VALIDATOR = Path(__file__).with_name("crd_validator")
Objects = dict[str, list[dict[str, Any]]]


def kubernetes_validate(path: Path) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "kubernetes_validate", "--strict", "--quiet"]
    argv += ["-k", KUBERNETES_VERSION, str(path)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.parametrize("target", OVERLAYS)
def test_every_core_object_validates_strictly(
    target: str, rendered: Objects, tmp_path: Path
) -> None:
    core = [o for o in rendered[target] if o["kind"] not in CRD_KINDS]
    manifest = tmp_path / "core.yaml"
    manifest.write_text(yaml.safe_dump_all(core), encoding="utf-8")
    result = kubernetes_validate(manifest)
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_unknown_field_fails_strict_validation(rendered: Objects, tmp_path: Path) -> None:
    serve = json.loads(json.dumps(find(rendered["base"], "Deployment", "conveyor-serve")))
    serve["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    manifest = tmp_path / "bad.yaml"
    manifest.write_text(yaml.safe_dump(serve), encoding="utf-8")
    result = kubernetes_validate(manifest)
    # kubernetes-validate: 1 when a resource does not validate (2: it could not validate).
    assert result.returncode == 1, result.stdout + result.stderr
    assert "did not validate" in result.stdout
    assert "readinessProbes" in result.stdout


@pytest.fixture(scope="session")
def crd_validator(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The validator's folder with its pinned npm dependencies installed (``npm ci``)."""
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        pytest.fail("Node.js and npm are not installed: run `make system-deps`", pytrace=False)
    folder = tmp_path_factory.mktemp("crd-validator")
    for name in ("package.json", "package-lock.json", "validate.mjs"):
        shutil.copy(VALIDATOR / name, folder / name)
    installed = subprocess.run(
        [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
        cwd=folder, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    return folder


def validate_crds(folder: Path, objects: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["node", "validate.mjs"], cwd=folder, input=json.dumps(objects),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("target", OVERLAYS)
def test_the_prometheus_operator_objects_validate_against_their_crds(
    target: str, rendered: Objects, crd_validator: Path
) -> None:
    objects = [o for o in rendered[target] if o["kind"] in CRD_KINDS]
    assert {o["kind"] for o in objects} == CRD_KINDS
    result = validate_crds(crd_validator, objects)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_malformed_rule_duration_fails_crd_validation(
    rendered: Objects, crd_validator: Path
) -> None:
    rule = json.loads(json.dumps(find(rendered["base"], "PrometheusRule", "conveyor")))
    rule["spec"]["groups"][0]["rules"][0]["for"] = "15 minutes"
    result = validate_crds(crd_validator, [rule])
    assert result.returncode == 1
    assert "/spec/groups/0/rules/0/for" in result.stdout


def test_the_prometheus_rule_is_rendered_from_the_current_rule_files() -> None:
    result = subprocess.run(
        [sys.executable, str(K8S / "render_rules.py"), "--check"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
