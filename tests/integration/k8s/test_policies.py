"""Policy checks on what each overlay renders: the restricted Pod Security fields, probes,
limits, image references, the rollout settings and secrets kept out of the manifests."""

from __future__ import annotations

import re
from typing import Any

import pytest
from tests.integration.k8s.conftest import OVERLAYS, containers, find, pod_specs

from conveyor import __version__

pytestmark = pytest.mark.integration

# Variables that hold credentials (database URIs carry their password).
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY(_ID)?$|DATABASE_URI$|STORE_URI$")
Objects = dict[str, list[dict[str, Any]]]


def all_containers(rendered: Objects) -> list[tuple[str, str, dict[str, Any]]]:
    return [(t, name, c) for t in OVERLAYS for name, c in containers(rendered[t])]


def all_pods(rendered: Objects) -> list[tuple[str, str, dict[str, Any]]]:
    return [(t, name, spec) for t in OVERLAYS for name, spec in pod_specs(rendered[t])]


def test_the_namespace_enforces_the_restricted_pod_security_standard(rendered: Objects) -> None:
    for target in OVERLAYS:
        (namespace,) = [o for o in rendered[target] if o["kind"] == "Namespace"]
        labels = namespace["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted", target


def test_every_object_is_in_the_overlays_namespace(rendered: Objects) -> None:
    for target in OVERLAYS:
        (namespace,) = [o for o in rendered[target] if o["kind"] == "Namespace"]
        name = namespace["metadata"]["name"]
        outside = [
            f"{o['kind']}/{o['metadata']['name']}"
            for o in rendered[target]
            if o["kind"] != "Namespace" and o["metadata"].get("namespace") != name
        ]
        assert outside == [], target


def test_every_pod_runs_non_root_with_the_runtime_default_seccomp_profile(
    rendered: Objects,
) -> None:
    for target, name, spec in all_pods(rendered):
        context = spec["securityContext"]
        assert context["runAsNonRoot"] is True, (target, name)
        assert context["runAsUser"] > 0, (target, name)
        assert context["seccompProfile"]["type"] == "RuntimeDefault", (target, name)


def test_every_container_drops_all_capabilities_and_cannot_escalate(rendered: Objects) -> None:
    for target, name, container in all_containers(rendered):
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False, (target, name)
        assert context["capabilities"]["drop"] == ["ALL"], (target, name)
        assert "add" not in context["capabilities"], (target, name)


def test_every_container_has_a_read_only_root_filesystem(rendered: Objects) -> None:
    for target, name, container in all_containers(rendered):
        assert container["securityContext"]["readOnlyRootFilesystem"] is True, (target, name)


def test_no_pod_mounts_the_service_account_token(rendered: Objects) -> None:
    for target, name, spec in all_pods(rendered):
        assert spec["automountServiceAccountToken"] is False, (target, name)


def test_every_container_has_cpu_and_memory_requests_and_limits(rendered: Objects) -> None:
    for target, name, container in all_containers(rendered):
        resources = container["resources"]
        for kind in ("requests", "limits"):
            assert set(resources[kind]) >= {"cpu", "memory"}, (target, name, kind)


def test_every_long_running_container_has_startup_readiness_and_liveness_probes(
    rendered: Objects,
) -> None:
    for target in OVERLAYS:
        for o in rendered[target]:
            if o["kind"] != "Deployment":
                continue
            for container in o["spec"]["template"]["spec"]["containers"]:
                for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                    assert probe in container, (target, o["metadata"]["name"], probe)


def test_no_image_is_untagged_or_latest(rendered: Objects) -> None:
    for target, name, container in all_containers(rendered):
        image = container["image"]
        assert "@sha256:" in image or re.search(r":[\w.-]+$", image.split("/")[-1]), image
        assert not image.endswith(":latest"), (target, name)


def test_production_pins_every_image_by_digest(rendered: Objects) -> None:
    for name, container in containers(rendered["overlays/production"]):
        assert re.search(r"@sha256:[0-9a-f]{64}$", container["image"]), name


def test_the_base_images_carry_the_package_version(rendered: Objects) -> None:
    for name, container in containers(rendered["base"]):
        assert container["image"].endswith(f":{__version__}"), name


def test_no_overlay_defines_a_secret(rendered: Objects) -> None:
    for target in OVERLAYS:
        kinds = {o["kind"] for o in rendered[target]}
        assert "Secret" not in kinds, target


def test_credentials_come_from_secret_references(rendered: Objects) -> None:
    credentials = [
        (target, name, variable)
        for target, name, container in all_containers(rendered)
        for variable in container.get("env", [])
        if SECRET_NAME.search(variable["name"])
    ]
    # Every overlay passes credentials (the signing key at least): the check is not vacuous.
    assert {target for target, _, _ in credentials} == set(OVERLAYS)
    for target, name, variable in credentials:
        assert "secretKeyRef" in variable.get("valueFrom", {}), (target, name, variable["name"])


def test_serving_rolls_out_one_new_pod_before_stopping_an_old_one(rendered: Objects) -> None:
    for target in OVERLAYS:
        serve = find(rendered[target], "Deployment", "conveyor-serve")
        strategy = serve["spec"]["strategy"]
        assert strategy["type"] == "RollingUpdate", target
        assert strategy["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}, target


def test_serving_pods_carry_the_name_label_the_service_selects(rendered: Objects) -> None:
    for target in OVERLAYS:
        serve = find(rendered[target], "Deployment", "conveyor-serve")
        service = find(rendered[target], "Service", "conveyor-serve")
        labels = serve["spec"]["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "conveyor-serve", target
        assert service["spec"]["selector"].items() <= labels.items(), target


def test_the_grace_period_covers_pre_stop_drain_and_in_flight_requests(
    rendered: Objects,
) -> None:
    for target in OVERLAYS:
        spec = find(rendered[target], "Deployment", "conveyor-serve")["spec"]["template"]["spec"]
        (container,) = spec["containers"]
        env = {v["name"]: v.get("value") for v in container["env"]}
        pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
        assert pre_stop[0] == "sleep", target
        needed = (
            float(pre_stop[1])
            + float(env["CONVEYOR_SERVE_DRAIN_SECONDS"])
            + float(env["CONVEYOR_SERVE_GRACEFUL_TIMEOUT"])
        )
        assert spec["terminationGracePeriodSeconds"] > needed, target


def test_production_runs_at_least_three_serving_replicas(rendered: Objects) -> None:
    objects = rendered["overlays/production"]
    assert find(objects, "Deployment", "conveyor-serve")["spec"]["replicas"] >= 3
    assert find(objects, "HorizontalPodAutoscaler", "conveyor-serve")["spec"]["minReplicas"] >= 3


def test_the_disruption_budget_selects_the_serving_pods(rendered: Objects) -> None:
    for target in OVERLAYS:
        pdb = find(rendered[target], "PodDisruptionBudget", "conveyor-serve")
        labels = find(rendered[target], "Deployment", "conveyor-serve")["spec"]["template"][
            "metadata"
        ]["labels"]
        assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items(), target


def test_a_default_deny_policy_covers_every_pod_in_both_directions(rendered: Objects) -> None:
    for target in OVERLAYS:
        deny = find(rendered[target], "NetworkPolicy", "default-deny")
        assert deny["spec"]["podSelector"] == {}, target
        assert sorted(deny["spec"]["policyTypes"]) == ["Egress", "Ingress"], target
        assert "ingress" not in deny["spec"] and "egress" not in deny["spec"], target


def test_the_service_monitor_scrapes_the_serving_service_port(rendered: Objects) -> None:
    for target in OVERLAYS:
        monitor = find(rendered[target], "ServiceMonitor", "conveyor-serve")
        service = find(rendered[target], "Service", "conveyor-serve")
        selector = monitor["spec"]["selector"]["matchLabels"]
        assert selector.items() <= service["metadata"]["labels"].items(), target
        ports = {p["name"] for p in service["spec"]["ports"]}
        assert {e["port"] for e in monitor["spec"]["endpoints"]} <= ports, target


def test_permanent_training_failures_fail_the_job_and_outages_are_retried(
    rendered: Objects,
) -> None:
    cron = find(rendered["base"], "CronJob", "conveyor-training")
    job = cron["spec"]["jobTemplate"]["spec"]
    (fail,) = [r for r in job["podFailurePolicy"]["rules"] if r["action"] == "FailJob"]
    assert fail["onExitCodes"] == {"containerName": "pipeline", "operator": "NotIn", "values": [75]}
    assert job["backoffLimit"] >= 1
