"""deploy/compose/stack.py: start order, wait conditions and the generated secrets file."""

from __future__ import annotations

import stat
from pathlib import Path
from types import ModuleType

import pytest
from tests.source_files import load_module

STACK_PY = Path(__file__).resolve().parents[2] / "deploy" / "compose" / "stack.py"


@pytest.fixture(scope="module")
def stack() -> ModuleType:
    return load_module(STACK_PY, "compose_stack")


SERVICES = {
    "db": {},
    "store": {},
    "init": {"depends_on": {"store": {"condition": "service_healthy"}}},
    "tracking": {
        "depends_on": {
            "db": {"condition": "service_healthy"},
            "init": {"condition": "service_completed_successfully"},
        }
    },
    "replica": {"depends_on": {"tracking": {"condition": "service_started"}}},
    "job": {"profiles": ["jobs"], "depends_on": {"tracking": {"condition": "service_healthy"}}},
}


def test_tiers_start_each_service_after_its_dependencies(stack: ModuleType) -> None:
    assert stack.tiers(SERVICES) == [["db", "store"], ["init"], ["tracking"], ["replica"]]


def test_conditions_take_the_strictest_a_dependent_asks(stack: ModuleType) -> None:
    # The profiled job asks for a healthy tracking server; the replica only a started one.
    assert stack.conditions(SERVICES)["tracking"] == "service_healthy"


def test_conditions_wait_for_a_one_shot_job_to_exit(stack: ModuleType) -> None:
    assert stack.conditions(SERVICES)["init"] == "service_completed_successfully"


def test_a_dependency_cycle_is_refused(stack: ModuleType) -> None:
    cycle = {"a": {"depends_on": {"b": {}}}, "b": {"depends_on": {"a": {}}}}
    with pytest.raises(SystemExit):
        stack.tiers(cycle)


def test_env_file_gets_every_secret_readable_by_the_owner_only(
    stack: ModuleType, tmp_path: Path
) -> None:
    env_file = tmp_path / ".env"
    stack.write_env(env_file)
    values = stack.read_env(env_file)
    assert set(values) == set(stack.SECRETS)
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600


def test_existing_env_file_is_kept(stack: ModuleType, tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("POSTGRES_PASSWORD=mine\n")
    stack.write_env(env_file)
    assert env_file.read_text() == "POSTGRES_PASSWORD=mine\n"


def test_generated_fernet_key_is_one_airflow_accepts(stack: ModuleType, tmp_path: Path) -> None:
    from cryptography.fernet import Fernet

    env_file = tmp_path / ".env"
    stack.write_env(env_file)
    key = stack.read_env(env_file)["AIRFLOW_FERNET_KEY"]
    assert Fernet(key).decrypt(Fernet(key).encrypt(b"conn")) == b"conn"
