"""The Kubernetes variant of a step task: a pod of the Conveyor image runs the same CLI.

Chosen with the Airflow Variable ``conveyor_executor=kubernetes``; needs the
``apache-airflow-providers-cncf-kubernetes`` provider (pinned in ``airflow/``). The
project (config, ``.conveyor/`` run store) lives on a PersistentVolumeClaim mounted at
``/project`` in every pod, so the steps of one run see each other's outputs.
"""

from __future__ import annotations

from typing import Any

from conveyor_dags.settings import setting

__all__ = ["PROJECT_MOUNT", "step_pod"]

PROJECT_MOUNT = "/project"
# Passed through to the pods when set on the Airflow side (Variables of the same name).
_POD_ENV = ("MLFLOW_TRACKING_URI", "CONVEYOR_DVC_REMOTE", "AWS_ENDPOINT_URL")


def step_pod(step: str, *, config: str, **task_args: Any) -> Any:
    """A KubernetesPodOperator running ``conveyor run --step STEP`` in the Conveyor image.

    Args:
        step: pipeline step name.
        config: templated path of conveyor.yaml inside the pod (under ``/project``).
        **task_args: operator arguments (task_id, execution_timeout, callbacks, ...).

    Returns:
        The pod operator. Every pod failure is retried: the operator reports a failed
        container without its exit code, so exit 1/2 cannot be told from exit 75 here.
    """
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from kubernetes.client import models as k8s

    claim = setting("conveyor_k8s_pvc", "conveyor-project") or "conveyor-project"
    env = {name: value for name in _POD_ENV if (value := setting(name.lower()))}
    return KubernetesPodOperator(
        name=f"conveyor-{step}",
        namespace=setting("conveyor_k8s_namespace", "conveyor"),
        image=setting("conveyor_image", "conveyor:latest"),
        cmds=["conveyor"],
        arguments=[
            "run",
            "-c",
            config,
            "--step",
            step,
            "--run-id",
            "{{ conveyor_run_id(dag_run) }}",
            "{{ '--force' if params.force else '--no-force' }}",
        ],
        env_vars=env,
        volumes=[
            k8s.V1Volume(
                name="project",
                persistent_volume_claim=k8s.V1PersistentVolumeClaimVolumeSource(claim_name=claim),
            )
        ],
        volume_mounts=[k8s.V1VolumeMount(name="project", mount_path=PROJECT_MOUNT)],
        service_account_name=setting("conveyor_k8s_service_account", "conveyor"),
        get_logs=True,
        on_finish_action="delete_succeeded_pod",
        do_xcom_push=False,
        labels={"app.kubernetes.io/name": "conveyor", "conveyor/step": step},
        **task_args,
    )
